#include "cli/commands.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "coordinator/cost_estimate.h"
#include "coordinator/planner.h"
#include "cost/price_table.h"
#include "datasets/builtin.h"
#include "datasets/dataset.h"
#include "datasets/export.h"
#include "datasets/finetunebench.h"
#include "nlohmann/json.hpp"
#include "spec/spec.h"

namespace ftb::cli {
namespace {

std::string DefaultFineTuneBenchPath(const std::string& path) {
  if (!path.empty()) return path;
  const char* env = std::getenv("FINETUNEBENCH_DIR");
  return env ? env : "";
}

bool IsBuiltin(const std::string& name) {
  for (const auto& b : datasets::BuiltinDatasets()) {
    if (b.name == name) return true;
  }
  return false;
}

absl::StatusOr<v1::Dataset> Resolve(const DatasetRef& ref) {
  v1::DatasetSpec spec;
  spec.set_name(ref.name);
  if (IsBuiltin(ref.name)) {
    spec.set_source(v1::DATASET_SOURCE_BUILTIN);
    spec.set_size(ref.size != 0 ? ref.size : (ref.name == "people" ? 25 : 40));
    spec.set_seed(ref.seed);
  } else {
    std::string path = DefaultFineTuneBenchPath(ref.path);
    if (path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dataset ", ref.name,
          " is not built in; name a FineTuneBench checkout with --path or FINETUNEBENCH_DIR"));
    }
    spec.set_source(v1::DATASET_SOURCE_FINETUNEBENCH);
    spec.set_path(path);
  }
  return datasets::LoadDataset(spec);
}

absl::StatusOr<v1::CampaignSpec> LoadSpec(const std::string& path) {
  if (path.empty()) {
    return spec::ParseCampaignSpec(EmbeddedDefaultSpec(), kEmbeddedDefaultName,
                                   spec::ProcessEnv());
  }
  return spec::LoadCampaignSpecFile(path);
}

}  // namespace

absl::Status Plan(const PlanOptions& options, std::ostream& out) {
  FTB_ASSIGN_OR_RETURN(v1::CampaignSpec spec, LoadSpec(options.spec_path));
  std::vector<coordinator::DatasetSummary> summaries;
  for (const v1::DatasetSpec& ds : spec.datasets()) {
    absl::StatusOr<v1::Dataset> data = datasets::LoadDataset(ds);
    if (!data.ok()) {
      return absl::Status(data.status().code(),
                          absl::StrCat("dataset ", ds.label().empty() ? ds.name() : ds.label(),
                                       ": ", data.status().message()));
    }
    summaries.push_back(coordinator::Summarize(ds, *data));
  }
  FTB_RETURN_IF_ERROR(coordinator::ValidateDatasets(spec, summaries));
  FTB_ASSIGN_OR_RETURN(coordinator::Plan plan,
                       coordinator::PlanCampaign(spec, std::move(summaries)));
  // Runs that create no training job: every cell at epochs 0.
  uint64_t untrained_runs = 0;
  for (const coordinator::TrainingRun& r : plan.runs) untrained_runs += r.max_epochs == 0;
  // An axis value as JSON: "auto" or the number.
  const auto lr_json = [](double v) -> nlohmann::json {
    if (v == coordinator::kAutoLearningRateMultiplier) return "auto";
    return v;
  };
  const auto batch_json = [](uint32_t v) -> nlohmann::json {
    if (v == coordinator::kAutoBatchSize) return "auto";
    return v;
  };
  uint64_t shown = options.limit == 0 ? plan.cells.size()
                                      : std::min<uint64_t>(options.limit, plan.cells.size());
  if (options.json) {
    nlohmann::json j;
    j["campaign"] = spec.name();
    j["cells_total"] = plan.cells.size();
    double total_usd = 0;
    for (uint32_t r = 0; r < plan.runs.size(); ++r) {
      total_usd += coordinator::EstimateRun(cost::PriceTable::Builtin(), spec, plan, r).total();
    }
    j["estimated_cost_usd"] = total_usd;
    j["training_runs"] = plan.runs.size();
    j["training_runs_without_job"] = untrained_runs;
    for (size_t i = 0; i < plan.datasets.size(); ++i) {
      const auto& d = plan.datasets[i];
      j["datasets"].push_back({{"label", d.label},
                               {"fingerprint", d.fingerprint},
                               {"training_examples", d.training_examples},
                               {"test_questions", d.test_questions},
                               {"evaluation_only", spec.datasets(static_cast<int>(i)).evaluation_only()},
                               {"comparison_questions", d.comparison_questions},
                               {"comparison_name_only", d.comparison_name_only},
                               {"notes", d.notes}});
    }
    j["cells"] = nlohmann::json::array();
    for (uint64_t i = 0; i < shown; ++i) {
      v1::CellKey key = coordinator::MakeCellKey(spec, plan, plan.cells[i]);
      const auto& d = plan.datasets[plan.cells[i].dataset];
      coordinator::CostEstimate e =
          coordinator::EstimateCell(cost::PriceTable::Builtin(), spec, plan, plan.cells[i]);
      j["cells"].push_back({{"id", coordinator::CellId(key)},
                            {"dataset", key.dataset()},
                            {"model", key.model()},
                            {"backend", key.backend()},
                            {"epochs", key.epochs()},
                            {"learning_rate_multiplier", lr_json(key.learning_rate_multiplier())},
                            {"batch_size", batch_json(key.batch_size())},
                            {"seed", key.seed()},
                            {"training_examples", d.training_examples},
                            {"test_questions", d.test_questions},
                            {"estimated_train_usd", e.train_usd},
                            {"estimated_infer_usd", e.infer_usd}});
    }
    out << j.dump(2) << "\n";
    return absl::OkStatus();
  }

  out << absl::StrFormat("campaign %s: %d dataset(s) x %d model(s) -> %d cells in %d training runs\n",
                         spec.name(), spec.datasets_size(), spec.models_size(),
                         plan.cells.size(), plan.runs.size());
  if (untrained_runs > 0) {
    out << absl::StrFormat(
        "  %d of the runs evaluate the base model only (epochs 0): no training job, no training "
        "cost\n",
        untrained_runs);
  }
  out << "\ndatasets\n";
  out << absl::StrFormat("  %-20s %-14s %9s %9s  %s\n", "LABEL", "SOURCE", "TRAINING", "TEST Q",
                         "FINGERPRINT");
  for (int i = 0; i < spec.datasets_size(); ++i) {
    const auto& d = plan.datasets[i];
    std::string source = spec.datasets(i).source() == v1::DATASET_SOURCE_BUILTIN
                             ? "builtin"
                             : "finetunebench";
    out << absl::StrFormat("  %-20s %-14s %9d %9d  %s\n", d.label, source, d.training_examples,
                           d.test_questions, d.fingerprint.substr(0, 16));
    if (spec.datasets(i).evaluation_only()) {
      out << "    evaluation only: the base model at epochs 0, no training\n";
    }
    if (d.comparison_questions > 0) {
      out << absl::StrFormat(
          "    comparison: %d questions, %d of them answerable from the names alone (\"Is A "
          "alphabetically first than B?\")\n",
          d.comparison_questions, d.comparison_name_only);
    }
    for (const auto& note : d.notes) out << "    note: " << note << "\n";
  }
  out << "\nmodels\n";
  for (const auto& m : spec.models()) {
    out << absl::StrFormat("  %-28s backend %-8s options %s\n", m.name(), m.backend(),
                           coordinator::CanonicalOptionsJson(m.options()));
  }
  std::string graders;
  for (const auto& g : spec.judge().graders()) {
    absl::StrAppend(&graders, graders.empty() ? "" : ", ", g.name().empty() ? g.kind() : g.name());
  }
  out << "\njudge: " << graders << " (batches of " << spec.judge().batch_size() << ")\n";
  if (spec.budget().has_usd() || spec.budget().has_per_cell_usd()) {
    out << "budget:";
    if (spec.budget().has_usd()) out << absl::StrFormat(" $%.2f total", spec.budget().usd());
    if (spec.budget().has_per_cell_usd()) {
      out << absl::StrFormat(" $%.2f per cell", spec.budget().per_cell_usd());
    }
    out << "\n";
  }
  // Estimated cost by backend and model, before anything runs.
  std::map<std::pair<std::string, std::string>, coordinator::CostEstimate> estimates;
  coordinator::CostEstimate total;
  for (uint32_t r = 0; r < plan.runs.size(); ++r) {
    const auto& first = plan.cells[plan.runs[r].first_cell];
    const v1::ModelSpec& m = spec.models(static_cast<int>(first.model));
    coordinator::CostEstimate e =
        coordinator::EstimateRun(cost::PriceTable::Builtin(), spec, plan, r);
    estimates[{m.backend(), m.name()}] += e;
    total += e;
  }
  out << "\nestimated cost (pricing/*.yaml; tokens estimated at ~4 bytes each)\n";
  out << absl::StrFormat("  %-8s %-28s %14s %14s %10s %10s %10s\n", "BACKEND", "MODEL",
                         "TRAIN TOKENS", "INFER TOKENS", "TRAIN $", "INFER $", "TOTAL $");
  for (const auto& [key, e] : estimates) {
    std::string flag = !e.priced ? "  (no price: counted as $0)"
                                 : (!e.verified ? "  (unverified prices)" : "");
    out << absl::StrFormat("  %-8s %-28s %14d %14d %10.2f %10.2f %10.2f%s\n", key.first,
                           key.second, e.train_tokens, e.infer_tokens, e.train_usd, e.infer_usd,
                           e.total(), flag);
  }
  out << absl::StrFormat("  %-37s %14d %14d %10.2f %10.2f %10.2f\n", "total", total.train_tokens,
                         total.infer_tokens, total.train_usd, total.infer_usd, total.total());
  if (spec.budget().has_usd() && total.total() > spec.budget().usd()) {
    out << absl::StrFormat("  the estimate exceeds the budget of $%.2f: the campaign will pause "
                           "when the next task would exceed it\n",
                           spec.budget().usd());
  }
  out << absl::StrFormat("\ncells (%d of %d shown%s)\n", shown, plan.cells.size(),
                         shown < plan.cells.size() ? "; --limit 0 lists all" : "");
  out << "  (TRAIN $: training to the cell's own epochs, as the per-cell budget counts it; a "
         "run trains once, to its largest epoch count. Epochs 0 is the untuned base model.)\n";
  out << absl::StrFormat("  %-32s  %-16s %-24s %-8s %6s %6s %5s %6s %8s %6s %9s %9s\n", "CELL",
                         "DATASET", "MODEL", "BACKEND", "EPOCHS", "LR", "BATCH", "SEED",
                         "TRAINING", "TEST Q", "TRAIN $", "INFER $");
  for (uint64_t i = 0; i < shown; ++i) {
    v1::CellKey key = coordinator::MakeCellKey(spec, plan, plan.cells[i]);
    const auto& d = plan.datasets[plan.cells[i].dataset];
    coordinator::CostEstimate e =
        coordinator::EstimateCell(cost::PriceTable::Builtin(), spec, plan, plan.cells[i]);
    // At epochs 0 nothing is trained: no training examples are used.
    const std::string training =
        key.epochs() == 0 ? "-" : absl::StrCat(d.training_examples);
    out << absl::StrFormat("  %-32s  %-16s %-24s %-8s %6d %6s %5s %6d %8s %6d %9.4f %9.4f\n",
                           coordinator::CellId(key), key.dataset(), key.model(), key.backend(),
                           key.epochs(),
                           coordinator::LearningRateMultiplierText(key.learning_rate_multiplier()),
                           coordinator::BatchSizeText(key.batch_size()), key.seed(), training,
                           d.test_questions, e.train_usd, e.infer_usd);
  }
  return absl::OkStatus();
}

absl::Status DatasetsList(const std::string& path, std::ostream& out) {
  out << "built-in (generated from a seed; --size, --seed):\n";
  for (const auto& b : datasets::BuiltinDatasets()) {
    out << absl::StrFormat("  %-18s %s\n", b.name, b.description);
  }
  std::string root = DefaultFineTuneBenchPath(path);
  out << "\nFineTuneBench checkout (--path or FINETUNEBENCH_DIR): ";
  if (root.empty()) {
    out << "not set\n";
    for (const auto& name : datasets::FineTuneBenchDatasetNames()) out << "  " << name << "\n";
    return absl::OkStatus();
  }
  out << root << "\n";
  for (const auto& name : datasets::FineTuneBenchDatasetNames()) {
    bool present = std::filesystem::is_directory(std::filesystem::path(root) / "datasets" / name);
    out << absl::StrFormat("  %-18s %s\n", name, present ? "present" : "absent");
  }
  return absl::OkStatus();
}

absl::Status DatasetsShow(const DatasetRef& ref, const std::string& type, uint64_t limit,
                          std::ostream& out) {
  FTB_ASSIGN_OR_RETURN(v1::Dataset data, Resolve(ref));
  out << "dataset " << data.name() << " ("
      << (data.source() == v1::DATASET_SOURCE_BUILTIN ? "builtin" : "finetunebench")
      << (data.updates_knowledge() ? ", updated knowledge" : ", new knowledge") << ")\n";
  out << absl::StrFormat("  %-14s %6d\n", "training", data.training_size());
  if (data.prior_size() > 0) out << absl::StrFormat("  %-14s %6d\n", "prior", data.prior_size());
  for (const auto& set : data.tests()) {
    out << absl::StrFormat("  %-14s %6d\n", datasets::QuestionTypeName(set.type()),
                           set.items_size());
    if (set.type() == v1::QUESTION_TYPE_COMPARISON) {
      int name_only = 0;
      for (const auto& item : set.items()) name_only += datasets::IsNameOnlyComparison(item);
      out << absl::StrFormat("  %-14s %6d  (comparison questions answerable from the names alone)\n",
                             "  name-only", name_only);
    }
  }
  for (const auto& note : data.notes()) out << "  note: " << note << "\n";
  if (limit == 0) return absl::OkStatus();
  const google::protobuf::RepeatedPtrField<v1::QaItem>* items = &data.training();
  std::string which = type.empty() ? "training" : type;
  if (which == "prior") {
    items = &data.prior();
  } else if (which != "training") {
    std::optional<v1::QuestionType> t = datasets::ParseQuestionType(which);
    if (!t) return absl::InvalidArgumentError(absl::StrCat("--type: unknown question type ", which));
    items = nullptr;
    for (const auto& set : data.tests()) {
      if (set.type() == *t) items = &set.items();
    }
    if (items == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--type: dataset ", data.name(), " has no ", which, " questions"));
    }
  }
  out << "\n" << which << " (first " << std::min<uint64_t>(limit, items->size()) << "):\n";
  for (int i = 0; i < items->size() && static_cast<uint64_t>(i) < limit; ++i) {
    const v1::QaItem& item = (*items)[i];
    out << "  [" << item.id() << "] "
        << absl::StrReplaceAll(item.prompt(), {{"\n", "\n      "}}) << "\n    -> "
        << item.answer();
    if (!item.answer_before().empty()) out << "   (before: " << item.answer_before() << ")";
    out << "\n";
  }
  return absl::OkStatus();
}

absl::Status DatasetsExport(const DatasetRef& ref, const std::string& format,
                            const std::string& set, const std::string& out_path,
                            std::ostream& out) {
  std::optional<datasets::ExportFormat> fmt = datasets::ParseExportFormat(format);
  if (!fmt) {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: expected openai or vertex, got \"", format, "\""));
  }
  FTB_ASSIGN_OR_RETURN(v1::Dataset data, Resolve(ref));
  std::vector<const v1::QaItem*> items;
  if (set == "training" || set == "prior") {
    for (const auto& item : set == "training" ? data.training() : data.prior()) {
      items.push_back(&item);
    }
  } else {
    std::optional<v1::QuestionType> t = datasets::ParseQuestionType(set);
    if (!t) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--set: expected training, prior or a question type, got \"", set, "\""));
    }
    for (const auto& s : data.tests()) {
      if (s.type() == *t) {
        for (const auto& item : s.items()) items.push_back(&item);
      }
    }
  }
  if (items.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset ", data.name(), " has no ", set, " items to export"));
  }
  std::string jsonl = datasets::ExportJsonl(items, *fmt);
  if (out_path.empty() || out_path == "-") {
    out << jsonl;
    return absl::OkStatus();
  }
  std::string tmp = out_path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << jsonl;
    f.close();
    if (!f) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out_path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot write ", out_path, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace ftb::cli
