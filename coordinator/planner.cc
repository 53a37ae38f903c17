#include "coordinator/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"
#include "cost/tokens.h"
#include "datasets/dataset.h"
#include "nlohmann/json.hpp"

namespace ftb::coordinator {
namespace {

nlohmann::json ToJson(const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kNullValue:
      return nullptr;
    case google::protobuf::Value::kNumberValue: {
      // YAML integers arrive as doubles; keep them integers in the JSON.
      double v = value.number_value();
      if (std::trunc(v) == v && std::fabs(v) < 9007199254740992.0) {
        return static_cast<int64_t>(v);
      }
      return v;
    }
    case google::protobuf::Value::kStringValue:
      return value.string_value();
    case google::protobuf::Value::kBoolValue:
      return value.bool_value();
    case google::protobuf::Value::kStructValue: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [k, v] : value.struct_value().fields()) out[k] = ToJson(v);
      return out;
    }
    case google::protobuf::Value::kListValue: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& v : value.list_value().values()) out.push_back(ToJson(v));
      return out;
    }
    default:
      return nullptr;
  }
}

// Shortest decimal that round-trips, so 0.1 hashes as "0.1" everywhere.
std::string FormatDouble(double v) {
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

template <typename T>
std::vector<T> AxisOr(const google::protobuf::RepeatedField<T>& model_axis,
                      const google::protobuf::RepeatedField<T>& grid_axis) {
  const auto& axis = model_axis.empty() ? grid_axis : model_axis;
  return std::vector<T>(axis.begin(), axis.end());
}

// The canonical key's spelling of the two axes that may be `auto`: "auto"
// is no number, so it never collides with one.
std::string LrKey(double v) {
  return v == kAutoLearningRateMultiplier ? "auto" : FormatDouble(v);
}
std::string BatchKey(uint32_t v) { return v == kAutoBatchSize ? "auto" : absl::StrCat(v); }

void HashKeyWithoutEpochs(Sha256& h, const v1::CellKey& key) {
  h.UpdateField(key.dataset());
  h.UpdateField(key.dataset_fingerprint());
  h.UpdateField(key.model());
  h.UpdateField(key.backend());
  h.UpdateField(key.backend_options_json());
  h.UpdateField(LrKey(key.learning_rate_multiplier()));
  h.UpdateField(BatchKey(key.batch_size()));
  h.UpdateField(absl::StrCat(key.seed()));
}

}  // namespace

std::string LearningRateMultiplierText(double v) {
  return v == kAutoLearningRateMultiplier ? "auto" : absl::StrFormat("%g", v);
}

std::string BatchSizeText(uint32_t v) {
  return v == kAutoBatchSize ? "auto" : absl::StrCat(v);
}

std::string CanonicalOptionsJson(const google::protobuf::Struct& options) {
  google::protobuf::Value v;
  *v.mutable_struct_value() = options;
  return ToJson(v).dump();
}

DatasetSummary Summarize(const v1::DatasetSpec& spec, const v1::Dataset& dataset) {
  DatasetSummary s;
  s.label = spec.label().empty() ? spec.name() : spec.label();
  s.fingerprint = datasets::DatasetFingerprint(dataset);
  s.training_examples = static_cast<uint32_t>(dataset.training_size());
  s.test_questions = static_cast<uint32_t>(datasets::TestQuestionCount(dataset));
  s.notes.assign(dataset.notes().begin(), dataset.notes().end());
  for (const v1::QaItem& item : dataset.training()) {
    s.training_tokens += cost::ChatExampleTokens(item.prompt(), item.answer());
  }
  for (const v1::QuestionSet& set : dataset.tests()) {
    const bool comparison = set.type() == v1::QUESTION_TYPE_COMPARISON;
    for (const v1::QaItem& item : set.items()) {
      s.test_prompt_tokens += cost::EstimateTokens(item.prompt());
      s.test_answer_tokens += cost::EstimateTokens(item.answer());
      if (comparison) {
        ++s.comparison_questions;
        if (datasets::IsNameOnlyComparison(item)) ++s.comparison_name_only;
      }
    }
  }
  return s;
}

DatasetSummary FromProto(const v1::DatasetSummary& d) {
  DatasetSummary s{d.label(), d.fingerprint(), d.training_examples(), d.test_questions(),
                   {d.notes().begin(), d.notes().end()}};
  s.training_tokens = d.training_tokens();
  s.test_prompt_tokens = d.test_prompt_tokens();
  s.test_answer_tokens = d.test_answer_tokens();
  s.comparison_name_only = d.comparison_name_only();
  s.comparison_questions = d.comparison_questions();
  return s;
}

v1::DatasetSummary ToProto(const DatasetSummary& d) {
  v1::DatasetSummary s;
  s.set_label(d.label);
  s.set_fingerprint(d.fingerprint);
  s.set_training_examples(d.training_examples);
  s.set_test_questions(d.test_questions);
  for (const auto& n : d.notes) s.add_notes(n);
  s.set_training_tokens(d.training_tokens);
  s.set_test_prompt_tokens(d.test_prompt_tokens);
  s.set_test_answer_tokens(d.test_answer_tokens);
  s.set_comparison_name_only(d.comparison_name_only);
  s.set_comparison_questions(d.comparison_questions);
  return s;
}

absl::Status ValidateDatasets(const v1::CampaignSpec& spec,
                              const std::vector<DatasetSummary>& datasets) {
  for (int i = 0; i < spec.datasets_size() && i < static_cast<int>(datasets.size()); ++i) {
    const v1::DatasetSpec& ds = spec.datasets(i);
    const DatasetSummary& d = datasets[static_cast<size_t>(i)];
    if (d.training_examples > 0 || ds.evaluation_only()) continue;
    std::string why = d.notes.empty() ? "" : absl::StrCat(" (", absl::StrJoin(d.notes, "; "), ")");
    return absl::FailedPreconditionError(absl::StrCat(
        "datasets[", i, "] ", d.label, ": no training examples to fine-tune on", why,
        ". Add the training file, or set evaluation_only: true on the dataset to evaluate the "
        "base model only (epochs 0)"));
  }
  return absl::OkStatus();
}

namespace {

uint64_t SaturatingMul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

// Cells of one model on one dataset: its training runs times its epochs.
uint64_t RunsOf(const v1::CampaignSpec& spec, const v1::ModelSpec& model) {
  auto n = [](int own, int grid) { return static_cast<uint64_t>(own > 0 ? own : grid); };
  return SaturatingMul(SaturatingMul(n(model.grid().learning_rate_multiplier_size(),
                                       spec.grid().learning_rate_multiplier_size()),
                                     n(model.grid().batch_size_size(),
                                       spec.grid().batch_size_size())),
                       n(model.grid().seed_size(), spec.grid().seed_size()));
}

uint64_t EpochsOf(const v1::CampaignSpec& spec, const v1::ModelSpec& model, bool eval_only) {
  if (eval_only) return 1;
  return static_cast<uint64_t>(model.grid().epochs_size() > 0 ? model.grid().epochs_size()
                                                               : spec.grid().epochs_size());
}

}  // namespace

absl::Status TooManyCellsError(uint64_t cells, uint64_t limit) {
  return absl::InvalidArgumentError(absl::StrCat(
      "campaign has ", cells == UINT64_MAX ? "more than 18446744073709551614" : absl::StrCat(cells),
      " cells; the limit is ", limit,
      " (split the sweep into several campaigns, or raise the coordinator's --max-cells)"));
}

uint64_t CountCells(const v1::CampaignSpec& spec) {
  uint64_t cells = 0;
  for (const v1::DatasetSpec& ds : spec.datasets()) {
    for (const v1::ModelSpec& model : spec.models()) {
      cells = SaturatingAdd(
          cells, SaturatingMul(RunsOf(spec, model), EpochsOf(spec, model, ds.evaluation_only())));
    }
  }
  return cells;
}

absl::StatusOr<Plan> PlanCampaign(const v1::CampaignSpec& spec,
                                  std::vector<DatasetSummary> datasets) {
  if (datasets.size() != static_cast<size_t>(spec.datasets_size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("planner: ", datasets.size(), " loaded datasets for ",
                     spec.datasets_size(), " in the spec"));
  }
  Plan plan;
  plan.datasets = std::move(datasets);
  // Size the vectors exactly: million-cell grids should not pay for growth.
  uint64_t runs = 0;
  for (const v1::ModelSpec& model : spec.models()) runs = SaturatingAdd(runs, RunsOf(spec, model));
  plan.cells.reserve(CountCells(spec));
  plan.runs.reserve(SaturatingMul(runs, static_cast<uint64_t>(spec.datasets_size())));
  for (uint32_t d = 0; d < static_cast<uint32_t>(spec.datasets_size()); ++d) {
    for (uint32_t m = 0; m < static_cast<uint32_t>(spec.models_size()); ++m) {
      const v1::GridAxes& own = spec.models(m).grid();
      std::vector<uint32_t> epochs = AxisOr(own.epochs(), spec.grid().epochs());
      std::vector<double> lrs =
          AxisOr(own.learning_rate_multiplier(), spec.grid().learning_rate_multiplier());
      std::vector<uint32_t> batches = AxisOr(own.batch_size(), spec.grid().batch_size());
      std::vector<uint64_t> seeds = AxisOr(own.seed(), spec.grid().seed());
      if (epochs.empty() || lrs.empty() || batches.empty() || seeds.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "planner: models[", m, "] has an empty grid axis; parse the spec first"));
      }
      std::sort(epochs.begin(), epochs.end());
      // Nothing to train on: the base model only.
      if (spec.datasets(static_cast<int>(d)).evaluation_only()) epochs = {0};
      for (double lr : lrs) {
        for (uint32_t batch : batches) {
          for (uint64_t seed : seeds) {
            TrainingRun run;
            run.first_cell = plan.cells.size();
            run.cell_count = static_cast<uint32_t>(epochs.size());
            run.max_epochs = epochs.back();
            for (uint32_t e : epochs) {
              plan.cells.push_back(GridPoint{d, m, e, batch, lr, seed});
            }
            plan.runs.push_back(run);
          }
        }
      }
    }
  }
  return plan;
}

v1::CellKey MakeCellKey(const v1::CampaignSpec& spec, const Plan& plan,
                        const GridPoint& point) {
  return MakeCellKey(spec, plan, point,
                     CanonicalOptionsJson(spec.models(static_cast<int>(point.model)).options()));
}

v1::CellKey MakeCellKey(const v1::CampaignSpec& spec, const Plan& plan, const GridPoint& point,
                        std::string_view backend_options_json) {
  v1::CellKey key;
  const DatasetSummary& ds = plan.datasets[point.dataset];
  const v1::ModelSpec& model = spec.models(static_cast<int>(point.model));
  key.set_dataset(ds.label);
  key.set_dataset_fingerprint(ds.fingerprint);
  key.set_model(model.name());
  key.set_backend(model.backend());
  key.set_epochs(point.epochs);
  key.set_learning_rate_multiplier(point.learning_rate_multiplier);
  key.set_batch_size(point.batch_size);
  key.set_seed(point.seed);
  key.set_backend_options_json(std::string(backend_options_json));
  return key;
}

std::string CellId(const v1::CellKey& key) {
  Sha256 h;
  h.UpdateField("ftb.cell.v1");
  HashKeyWithoutEpochs(h, key);
  h.UpdateField(absl::StrCat(key.epochs()));
  return DigestHex(h.Finish(), 16);
}

CellIdHasher::CellIdHasher(const v1::CampaignSpec& spec, const Plan& plan)
    : models_(static_cast<size_t>(spec.models_size())) {
  prefixes_.reserve(plan.datasets.size() * models_);
  for (const DatasetSummary& ds : plan.datasets) {
    for (const v1::ModelSpec& model : spec.models()) {
      // As CellId: the fields before the grid point's own.
      Sha256 h;
      h.UpdateField("ftb.cell.v1");
      h.UpdateField(ds.label);
      h.UpdateField(ds.fingerprint);
      h.UpdateField(model.name());
      h.UpdateField(model.backend());
      h.UpdateField(CanonicalOptionsJson(model.options()));
      prefixes_.push_back(h);
    }
  }
}

std::string CellIdHasher::Id(const GridPoint& point) const {
  Sha256 h = prefixes_[point.dataset * models_ + point.model];
  h.UpdateField(LrKey(point.learning_rate_multiplier));
  h.UpdateField(BatchKey(point.batch_size));
  h.UpdateField(absl::StrCat(point.seed));
  h.UpdateField(absl::StrCat(point.epochs));
  return DigestHex(h.Finish(), 16);
}

std::string TrainingRunId(const v1::CellKey& any_cell_of_run) {
  Sha256 h;
  h.UpdateField("ftb.run.v1");
  HashKeyWithoutEpochs(h, any_cell_of_run);
  return DigestHex(h.Finish(), 16);
}

}  // namespace ftb::coordinator
