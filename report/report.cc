#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "coordinator/planner.h"
#include "coordinator/scheduler.h"
#include "datasets/dataset.h"
#include "ftb/v1/coordinator.pb.h"
#include "nlohmann/json.hpp"
#include "report/agreement.h"

namespace ftb::report {
namespace {

int TypeOrder(const std::string& type) {
  std::optional<v1::QuestionType> t = datasets::ParseQuestionType(type);
  return t ? static_cast<int>(*t) : 1000;
}

std::vector<std::string> OrderedTypes(const CampaignReport& r, const std::string& dataset) {
  std::set<std::string> seen;
  for (const CellReport& c : r.cells) {
    if (!dataset.empty() && c.key.dataset() != dataset) continue;
    for (const auto& [type, counts] : c.types) seen.insert(type);
  }
  std::vector<std::string> types(seen.begin(), seen.end());
  std::stable_sort(types.begin(), types.end(), [](const std::string& a, const std::string& b) {
    return TypeOrder(a) < TypeOrder(b);
  });
  return types;
}

std::vector<std::string> Datasets(const CampaignReport& r) {
  std::vector<std::string> out;
  for (const CellReport& c : r.cells) {
    if (std::find(out.begin(), out.end(), c.key.dataset()) == out.end()) {
      out.push_back(c.key.dataset());
    }
  }
  return out;
}

std::string Pct(double v) { return absl::StrFormat("%.1f%%", 100 * v); }

// "3 no_answer, 1 error": the answers left out of n, by why.
std::string FormatUngraded(const TypeCounts& t) {
  std::vector<std::string> parts;
  if (t.no_answer) parts.push_back(absl::StrCat(t.no_answer, " no_answer"));
  if (t.errors) parts.push_back(absl::StrCat(t.errors, " error"));
  const uint64_t other = t.excluded - t.no_answer - t.errors;
  if (other) parts.push_back(absl::StrCat(other, " ungraded"));
  return absl::StrJoin(parts, ", ");
}

std::string FormatCounts(const TypeCounts& t) {
  if (t.n == 0) return t.excluded ? absl::StrCat("— (", FormatUngraded(t), ")") : "—";
  auto [lo, hi] = WilsonInterval(t.correct, t.n);
  std::string s = absl::StrFormat("%s [%.0f–%.0f] n=%d", Pct(double(t.correct) / t.n), 100 * lo,
                                  100 * hi, t.n);
  if (t.stale) absl::StrAppend(&s, absl::StrFormat(", stale %d", t.stale));
  if (t.excluded) absl::StrAppend(&s, ", ", FormatUngraded(t));
  return s;
}

// The learning rate multiplier and batch size as plans show them: 0 is
// `auto` (the provider's default; coordinator/planner.h).
std::string Lr(double v) { return v == 0 ? "auto" : absl::StrFormat("%g", v); }
std::string Batch(uint32_t v) { return v == 0 ? "auto" : absl::StrCat(v); }
nlohmann::ordered_json LrJson(double v) {
  return v == 0 ? nlohmann::ordered_json("auto") : nlohmann::ordered_json(v);
}
nlohmann::ordered_json BatchJson(uint32_t v) {
  return v == 0 ? nlohmann::ordered_json("auto") : nlohmann::ordered_json(v);
}

// A reference answer as a yes/no class: 'y', 'n', or 0 for anything else
// (case, surrounding whitespace and one final '.' ignored).
char YesNoClass(const std::string& reference) {
  std::string r = absl::AsciiStrToLower(absl::StripAsciiWhitespace(reference));
  if (!r.empty() && r.back() == '.') r.pop_back();
  if (r == "yes") return 'y';
  if (r == "no") return 'n';
  return 0;
}

// Adds one verdict to `t` (see the accounting in report.h); "" (no verdict)
// adds nothing. `reference` is the question's YesNoClass (0 when unknown).
void CountVerdict(const std::string& verdict, TypeCounts& t, char reference = 0) {
  if (verdict.empty()) return;
  if (verdict == "no_answer" || verdict == "error") {
    ++t.excluded;
    ++(verdict == "error" ? t.errors : t.no_answer);
    return;
  }
  ++t.n;
  if (verdict == "correct") ++t.correct;
  if (verdict == "stale") ++t.stale;
  if (reference == 'y') ++t.reference_yes;
  if (reference == 'n') ++t.reference_no;
}

void Add(const TypeCounts& from, TypeCounts& to) {
  to.correct += from.correct;
  to.n += from.n;
  to.stale += from.stale;
  to.excluded += from.excluded;
  to.no_answer += from.no_answer;
  to.errors += from.errors;
  to.reference_yes += from.reference_yes;
  to.reference_no += from.reference_no;
}

bool Gradable(const std::string& v) {
  return v == "correct" || v == "incorrect" || v == "stale" || v == "abstained";
}

// Correct-vs-not decisions of a panel, for kappa.
class AgreementCounter {
 public:
  explicit AgreementCounter(size_t graders) : graders_(graders), by_rater_(graders) {}
  // One answer's verdicts, in panel order; counted only when every grader
  // gave a gradable verdict.
  void Add(const std::vector<std::string>& votes) {
    if (votes.size() != graders_) return;
    for (const std::string& v : votes) {
      if (!Gradable(v)) return;
    }
    uint32_t yes = 0;
    for (size_t k = 0; k < graders_; ++k) {
      const bool correct = votes[k] == "correct";
      by_rater_[k].push_back(correct);
      yes += correct ? 1 : 0;
    }
    yes_.push_back(yes);
    if (yes == 0 || yes == graders_) ++unanimous_;
  }
  PanelAgreement Finish() const {
    PanelAgreement a;
    a.n = yes_.size();
    a.unanimous = unanimous_;
    a.kappa = graders_ == 2 ? CohenKappa(by_rater_[0], by_rater_[1])
                            : FleissKappa(yes_, static_cast<uint32_t>(graders_));
    return a;
  }

 private:
  size_t graders_;
  std::vector<std::vector<bool>> by_rater_;
  std::vector<uint32_t> yes_;
  uint64_t unanimous_ = 0;
};

TypeCounts PoolAll(const std::map<std::string, TypeCounts>& types) {
  TypeCounts out;
  for (const auto& [type, t] : types) Add(t, out);
  return out;
}

std::string FormatKappa(const std::optional<double>& kappa) {
  return kappa ? absl::StrFormat("%.3f", *kappa) : "—";
}

std::string FormatUnanimous(const PanelAgreement& a) {
  if (a.n == 0) return "—";
  return absl::StrFormat("%d/%d (%s)", a.unanimous, a.n, Pct(double(a.unanimous) / a.n));
}

// accuracy, n, stale, no_answer, error keyed by question type (accuracy
// null when n is 0), into `j`.
void AddCountsJson(const std::map<std::string, TypeCounts>& types, nlohmann::ordered_json& j) {
  for (const char* field : {"accuracy", "correct", "n", "stale", "no_answer", "error"}) {
    j[field] = nlohmann::ordered_json::object();
  }
  for (const auto& [type, t] : types) {
    j["accuracy"][type] = t.n ? nlohmann::ordered_json(double(t.correct) / t.n) : nullptr;
    j["correct"][type] = t.correct;
    j["n"][type] = t.n;
    j["stale"][type] = t.stale;
    j["no_answer"][type] = t.no_answer;
    j["error"][type] = t.errors;
  }
}

nlohmann::ordered_json CountsJson(const std::map<std::string, TypeCounts>& types) {
  nlohmann::ordered_json j;
  AddCountsJson(types, j);
  return j;
}

nlohmann::ordered_json OptionalJson(const std::optional<double>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

std::string FormatOptional(const std::optional<double>& v) { return v ? Pct(*v) : "—"; }

// "chance 50.0%, majority 61.3% (No)" for a yes/no set, "" otherwise.
std::string FormatBaseline(const TypeCounts& t) {
  if (!IsYesNo(t)) return "";
  return absl::StrCat("chance 50.0%, majority ", Pct(MajorityBaseline(t)), " (",
                      MajorityAnswer(t), ")");
}

nlohmann::ordered_json AgreementJson(const PanelAgreement& a, size_t graders) {
  nlohmann::ordered_json j;
  j["statistic"] = graders == 2 ? "cohen" : "fleiss";
  j["kappa"] = a.kappa ? nlohmann::ordered_json(*a.kappa) : nullptr;
  j["n"] = a.n;
  j["unanimous"] = a.unanimous;
  return j;
}

bool Varies(const CampaignReport& r, auto field) {
  std::set<std::string> values;
  for (const CellReport& c : r.cells) values.insert(field(c.key));
  return values.size() > 1;
}

TypeCounts Memorization(const CellReport& c) {
  auto it = c.types.find("memorization");
  return it == c.types.end() ? TypeCounts{} : it->second;
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

}  // namespace

bool IsYesNo(const TypeCounts& t) {
  return t.n > 0 && t.reference_yes + t.reference_no == t.n;
}

double MajorityBaseline(const TypeCounts& t) {
  return t.n ? double(std::max(t.reference_yes, t.reference_no)) / t.n : 0.0;
}

std::string MajorityAnswer(const TypeCounts& t) {
  return t.reference_yes > t.reference_no ? "Yes" : "No";
}

bool IsGeneralizationType(const std::string& type) {
  return type == "rephrased" || type == "date_changed" || type == "vignette" || type == "code";
}

bool IsInferenceType(const std::string& type) {
  return type == "secondary" || type == "comparison";
}

TypeCounts PaperGeneralization(const CellReport& cell) {
  TypeCounts out;
  for (const auto& [type, t] : cell.types) {
    if (IsGeneralizationType(type)) Add(t, out);
  }
  return out;
}

std::vector<LeaderboardRow> Leaderboard(const CampaignReport& r) {
  auto mean = [](const std::vector<double>& v) -> std::optional<double> {
    if (v.empty()) return std::nullopt;
    double sum = 0;
    for (double x : v) sum += x;
    return sum / v.size();
  };
  auto accuracy = [](const TypeCounts& t) -> std::optional<double> {
    if (t.n == 0) return std::nullopt;
    return double(t.correct) / t.n;
  };
  const std::vector<std::string> datasets = Datasets(r);
  const std::set<std::string> updated(r.updated_knowledge.begin(), r.updated_knowledge.end());
  std::vector<LeaderboardRow> rows;
  // Group key: model and the other swept axes, in plan order.
  std::map<std::tuple<std::string, std::string, uint32_t, uint64_t>, size_t> row_of;
  // Per row and dataset: the cell with the largest epoch count.
  std::vector<std::map<std::string, const CellReport*>> last;
  for (const CellReport& c : r.cells) {
    auto key = std::make_tuple(c.key.model(), Lr(c.key.learning_rate_multiplier()),
                               c.key.batch_size(), c.key.seed());
    auto [it, added] = row_of.try_emplace(key, rows.size());
    if (added) {
      LeaderboardRow row;
      row.model = c.key.model();
      row.learning_rate_multiplier = c.key.learning_rate_multiplier();
      row.batch_size = c.key.batch_size();
      row.seed = c.key.seed();
      rows.push_back(std::move(row));
      last.emplace_back();
    }
    const CellReport*& best = last[it->second][c.key.dataset()];
    if (best == nullptr || c.key.epochs() > best->key.epochs()) best = &c;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    LeaderboardRow& row = rows[i];
    std::vector<double> mem, gen, fresh, revised;
    for (const std::string& dataset : datasets) {
      auto it = last[i].find(dataset);
      if (it == last[i].end()) continue;
      LeaderboardRow::Dataset d;
      d.dataset = dataset;
      d.epochs = it->second->key.epochs();
      d.updated_knowledge = updated.contains(dataset);
      d.memorization = accuracy(Memorization(*it->second));
      d.generalization = accuracy(PaperGeneralization(*it->second));
      if (d.memorization) mem.push_back(*d.memorization);
      if (d.generalization) {
        gen.push_back(*d.generalization);
        (d.updated_knowledge ? revised : fresh).push_back(*d.generalization);
      }
      row.datasets.push_back(std::move(d));
    }
    row.memorization = mean(mem);
    row.generalization = mean(gen);
    row.new_knowledge = mean(fresh);
    row.updated_knowledge = mean(revised);
  }
  if (rows.size() >= 2) {
    LeaderboardRow all;
    all.model = "all models";
    std::vector<double> mem, gen, fresh, revised;
    for (const LeaderboardRow& row : rows) {
      if (row.memorization) mem.push_back(*row.memorization);
      if (row.generalization) gen.push_back(*row.generalization);
      if (row.new_knowledge) fresh.push_back(*row.new_knowledge);
      if (row.updated_knowledge) revised.push_back(*row.updated_knowledge);
    }
    all.memorization = mean(mem);
    all.generalization = mean(gen);
    all.new_knowledge = mean(fresh);
    all.updated_knowledge = mean(revised);
    rows.push_back(std::move(all));
  }
  return rows;
}

std::string KappaName(size_t graders) {
  if (graders < 2) return "";
  return graders == 2 ? "Cohen's kappa" : "Fleiss' kappa";
}

std::pair<double, double> WilsonInterval(uint64_t k, uint64_t n) {
  if (n == 0) return {0, 0};
  const double z = 1.959963984540054;
  double p = double(k) / n, z2 = z * z, nn = double(n);
  double denom = 1 + z2 / nn;
  double center = (p + z2 / (2 * nn)) / denom;
  double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

absl::StatusOr<std::vector<std::string>> ListCampaignIds(const storage::StateStore& store) {
  std::vector<std::pair<int64_t, std::string>> found;
  absl::Status bad;
  FTB_RETURN_IF_ERROR(store.Scan(coordinator::keys::kCampaignPrefix, {},
                                 [&](std::string_view, std::string_view value) {
                                   v1::Campaign c;
                                   if (!c.ParseFromArray(value.data(), int(value.size()))) {
                                     bad = absl::DataLossError("unreadable campaign record");
                                     return false;
                                   }
                                   found.emplace_back(c.created_ms(), c.id());
                                   return true;
                                 }));
  FTB_RETURN_IF_ERROR(bad);
  std::sort(found.begin(), found.end());
  std::vector<std::string> ids;
  for (auto& [t, id] : found) ids.push_back(id);
  return ids;
}

absl::StatusOr<CampaignReport> LoadCampaignReport(const storage::StateStore& store,
                                                  const std::string& campaign_id) {
  absl::StatusOr<std::string> raw = store.Get(coordinator::keys::Campaign(campaign_id));
  if (!raw.ok()) {
    if (raw.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat("no campaign ", campaign_id, " in this state"));
    }
    return raw.status();
  }
  v1::Campaign campaign;
  if (!campaign.ParseFromString(*raw)) {
    return absl::DataLossError(absl::StrCat("unreadable campaign record ", campaign_id));
  }
  std::vector<coordinator::DatasetSummary> summaries;
  CampaignReport report;
  for (const auto& d : campaign.datasets()) {
    summaries.push_back(coordinator::FromProto(d));
    for (const auto& n : d.notes()) report.notes.push_back(absl::StrCat(d.label(), ": ", n));
    if (d.comparison_questions() > 0) {
      report.notes.push_back(absl::StrFormat(
          "%s: %d of %d comparison questions are answerable from the two names alone (e.g. "
          "\"Is A alphabetically first than B?\"), without any trained fact",
          d.label(), d.comparison_name_only(), d.comparison_questions()));
    }
  }
  FTB_ASSIGN_OR_RETURN(coordinator::Plan plan,
                       coordinator::PlanCampaign(campaign.spec(), std::move(summaries)));
  report.campaign_id = campaign.id();
  report.name = campaign.spec().name();
  report.state = campaign.state();
  const auto& graders = campaign.spec().judge().graders();
  for (const v1::GraderSpec& g : graders) {
    report.graders.push_back(g.name().empty() ? g.kind() : g.name());
  }
  report.grader = report.graders.empty() ? "rules" : report.graders[0];
  const bool panel = report.graders.size() >= 2;
  absl::flat_hash_map<std::string, size_t> by_id;
  report.cells.resize(plan.cells.size());
  for (size_t i = 0; i < plan.cells.size(); ++i) {
    CellReport& c = report.cells[i];
    c.key = coordinator::MakeCellKey(campaign.spec(), plan, plan.cells[i]);
    c.id = coordinator::CellId(c.key);
    c.state = campaign.state() == v1::CAMPAIGN_STATE_CANCELLED ? "cancelled" : "pending";
    by_id[c.id] = i;
  }
  // Task states: a TUNE task's index is its training run.
  const uint32_t runs = static_cast<uint32_t>(plan.runs.size());
  auto run_cells = [&](uint32_t run, auto fn) {
    for (uint32_t k = 0; k < plan.runs[run].cell_count; ++k) fn(plan.runs[run].first_cell + k);
  };
  absl::flat_hash_map<size_t, int> judges_open;  // by cell
  // Backend notes ("dataset: note"), once each, with the models that gave them.
  std::vector<std::pair<std::string, std::vector<std::string>>> backend_notes;
  absl::flat_hash_map<std::string, size_t> note_index;
  absl::Status bad;
  FTB_RETURN_IF_ERROR(store.Scan(
      coordinator::keys::TaskRecordPrefix(campaign_id), {},
      [&](std::string_view key, std::string_view value) {
        uint32_t task;
        v1::TaskRecord r;
        if (!coordinator::keys::TaskIndexFromKey(key, &task) ||
            !r.ParseFromArray(value.data(), int(value.size()))) {
          bad = absl::DataLossError("unreadable task record");
          return false;
        }
        if (task < runs) {
          const char* state = r.state() == v1::TASK_STATE_DONE     ? "judging"
                              : r.state() == v1::TASK_STATE_FAILED ? "failed"
                              : r.state() == v1::TASK_STATE_LEASED ? "running"
                                                                   : nullptr;
          if (state) run_cells(task, [&](size_t cell) { report.cells[cell].state = state; });
          if (r.state() == v1::TASK_STATE_FAILED) {
            run_cells(task, [&](size_t cell) {
              report.cells[cell].last_error = r.last_error();
              report.cells[cell].attempts = r.attempt();
            });
          }
        }
        return true;
      }));
  FTB_RETURN_IF_ERROR(bad);
  // Judge task definitions tell which judged cells still wait for verdicts,
  // and which grader of the panel a task's verdicts belong to.
  absl::flat_hash_map<uint32_t, size_t> judge_cell;
  absl::flat_hash_map<uint32_t, int> judge_grader;  // index into report.graders
  // Yes/no class of each question's reference, by cell and (type, question).
  absl::flat_hash_map<size_t, absl::flat_hash_map<std::pair<std::string, std::string>, char>>
      reference_class;
  // Updated-knowledge datasets: the ones the loaders mark updates_knowledge
  // (FineTuneBench medical and coding, builtin `updates`; datasets/), known
  // here by name because a report does not load the data, plus any dataset
  // whose questions carry a pre-update answer (below).
  std::set<std::string> updated;
  for (const v1::DatasetSpec& d : campaign.spec().datasets()) {
    const bool known =
        (d.source() == v1::DATASET_SOURCE_FINETUNEBENCH &&
         (d.name() == "medical" || d.name() == "coding")) ||
        (d.source() == v1::DATASET_SOURCE_BUILTIN && d.name() == "updates");
    if (known) updated.insert(d.label().empty() ? d.name() : d.label());
  }
  FTB_RETURN_IF_ERROR(store.Scan(coordinator::keys::JudgeTaskPrefix(campaign_id), {},
                                 [&](std::string_view key, std::string_view value) {
                                   uint32_t task;
                                   v1::JudgeTaskRecord j;
                                   if (coordinator::keys::TaskIndexFromKey(key, &task) &&
                                       j.ParseFromArray(value.data(), int(value.size()))) {
                                     judge_cell[task] = j.cell_index();
                                     ++judges_open[j.cell_index()];
                                     for (const v1::JudgeItem& item : j.work().items()) {
                                       auto cell = by_id.find(item.cell_id());
                                       if (cell == by_id.end()) continue;
                                       reference_class[cell->second][{item.question_type(),
                                                                      item.question_id()}] =
                                           YesNoClass(item.reference());
                                       if (!item.answer_before().empty()) {
                                         updated.insert(report.cells[cell->second].key.dataset());
                                       }
                                     }
                                     const v1::GraderSpec& g = j.work().grader();
                                     const std::string& name = g.name().empty() ? g.kind()
                                                                                : g.name();
                                     for (size_t k = 0; k < report.graders.size(); ++k) {
                                       if (report.graders[k] == name) {
                                         judge_grader[task] = static_cast<int>(k);
                                         break;
                                       }
                                     }
                                   }
                                   return true;
                                 }));
  // Panels: every grader's verdict per answer, by cell and (type, question).
  absl::flat_hash_map<size_t, std::map<std::pair<std::string, std::string>,
                                       std::vector<std::string>>>
      answers;
  if (panel) {
    for (CellReport& c : report.cells) c.by_grader.resize(report.graders.size());
  }
  FTB_RETURN_IF_ERROR(store.Scan(
      coordinator::keys::ResultPrefix(campaign_id), {},
      [&](std::string_view key, std::string_view value) {
        uint32_t task;
        v1::TaskCompletion done;
        if (!coordinator::keys::TaskIndexFromKey(key, &task) ||
            !done.ParseFromArray(value.data(), int(value.size()))) {
          bad = absl::DataLossError("unreadable result");
          return false;
        }
        const v1::TaskResult& result = done.result();
        if (task < runs) {
          const v1::CellKey& key = report.cells[plan.runs[task].first_cell].key;
          for (const std::string& note : result.notes()) {
            std::string line = absl::StrCat(key.dataset(), ": ", note);
            auto [it, added] = note_index.try_emplace(line, backend_notes.size());
            if (added) backend_notes.push_back({std::move(line), {}});
            std::vector<std::string>& models = backend_notes[it->second].second;
            if (std::find(models.begin(), models.end(), key.model()) == models.end()) {
              models.push_back(key.model());
            }
          }
          // Training cost is shared by the cells of the run.
          double share = result.cost_usd() / plan.runs[task].cell_count;
          run_cells(task, [&](size_t cell) {
            CellReport& c = report.cells[cell];
            c.cost_usd = c.cost_usd.value_or(0) + share;
          });
          return true;
        }
        auto grader_of = judge_grader.find(task);
        for (const v1::Verdict& v : result.verdicts()) {
          auto it = by_id.find(v.cell_id());
          if (it == by_id.end()) continue;
          int g = -1;
          if (grader_of != judge_grader.end()) {
            g = grader_of->second;
          } else {
            // No task definition (older state): match the verdict's grader
            // id against the first grader, as reports always did.
            const std::string& id = v.grader();
            if (id == report.grader || id.rfind(report.grader + "/", 0) == 0) g = 0;
          }
          if (g < 0) continue;
          CellReport& c = report.cells[it->second];
          char reference = 0;
          if (auto refs = reference_class.find(it->second); refs != reference_class.end()) {
            auto ref = refs->second.find({v.question_type(), v.question_id()});
            if (ref != refs->second.end()) reference = ref->second;
          }
          if (g == 0) CountVerdict(v.verdict(), c.types[v.question_type()], reference);
          if (panel) {
            CountVerdict(v.verdict(), c.by_grader[g][v.question_type()], reference);
            std::vector<std::string>& votes =
                answers[it->second][{v.question_type(), v.question_id()}];
            votes.resize(report.graders.size());
            votes[g] = v.verdict();
          }
        }
        if (!result.verdicts().empty()) {
          auto it = by_id.find(result.verdicts(0).cell_id());
          if (it != by_id.end()) {
            CellReport& c = report.cells[it->second];
            c.cost_usd = c.cost_usd.value_or(0) + result.cost_usd();
          }
        }
        return true;
      }));
  FTB_RETURN_IF_ERROR(bad);
  FTB_RETURN_IF_ERROR(store.Scan(
      coordinator::keys::TaskRecordPrefix(campaign_id), {},
      [&](std::string_view key, std::string_view value) {
        uint32_t task;
        v1::TaskRecord r;
        if (coordinator::keys::TaskIndexFromKey(key, &task) && task >= runs &&
            r.ParseFromArray(value.data(), int(value.size()))) {
          auto it = judge_cell.find(task);
          if (it == judge_cell.end()) return true;
          if (r.state() == v1::TASK_STATE_DONE) --judges_open[it->second];
          if (r.state() == v1::TASK_STATE_FAILED) {
            report.cells[it->second].state = "failed";
            if (report.cells[it->second].last_error.empty()) {
              report.cells[it->second].last_error = r.last_error();
              report.cells[it->second].attempts = r.attempt();
            }
          }
        }
        return true;
      }));
  for (CellReport& c : report.cells) {
    size_t i = by_id[c.id];
    if (c.state == "judging" && judges_open[i] <= 0) c.state = "done";
  }
  if (panel) {
    AgreementCounter all(report.graders.size());
    for (auto& [cell, by_answer] : answers) {
      CellReport& c = report.cells[cell];
      AgreementCounter counter(report.graders.size());
      for (const auto& [answer, votes] : by_answer) {
        char reference = 0;
        if (auto refs = reference_class.find(cell); refs != reference_class.end()) {
          auto ref = refs->second.find(answer);
          if (ref != refs->second.end()) reference = ref->second;
        }
        CountVerdict(MajorityVerdict(votes), c.panel[answer.first], reference);
        counter.Add(votes);
        all.Add(votes);
      }
      c.agreement = counter.Finish();
    }
    report.agreement = all.Finish();
  }
  for (auto& [line, models] : backend_notes) {
    report.notes.push_back(absl::StrCat(line, " (", absl::StrJoin(models, ", "), ")"));
  }
  for (const std::string& dataset : Datasets(report)) {
    if (updated.contains(dataset)) report.updated_knowledge.push_back(dataset);
  }
  return report;
}

namespace {

// Types of `dataset` ("" = every dataset) that are yes/no sets in some cell.
std::set<std::string> YesNoTypes(const CampaignReport& r, const std::string& dataset) {
  std::set<std::string> out;
  for (const CellReport& c : r.cells) {
    if (!dataset.empty() && c.key.dataset() != dataset) continue;
    for (const auto& [type, t] : c.types) {
      if (IsYesNo(t)) out.insert(type);
    }
  }
  return out;
}

// Inference types (secondary, comparison) any cell has, in type order.
std::vector<std::string> InferenceTypes(const CampaignReport& r) {
  std::vector<std::string> out;
  for (const std::string& t : OrderedTypes(r, "")) {
    if (IsInferenceType(t)) out.push_back(t);
  }
  return out;
}

// Rephrase-type sets any cell of `dataset` has ("" = every dataset).
std::vector<std::string> GeneralizationTypes(const CampaignReport& r, const std::string& dataset) {
  std::vector<std::string> out;
  for (const std::string& t : OrderedTypes(r, dataset)) {
    if (IsGeneralizationType(t)) out.push_back(t);
  }
  return out;
}

struct Axes {
  bool lr, batch, seed;
};

Axes VaryingAxes(const CampaignReport& r) {
  return {Varies(r, [](const v1::CellKey& k) { return Lr(k.learning_rate_multiplier()); }),
          Varies(r, [](const v1::CellKey& k) { return Batch(k.batch_size()); }),
          Varies(r, [](const v1::CellKey& k) { return absl::StrCat(k.seed()); })};
}

std::string LeaderboardDatasets(const LeaderboardRow& row) {
  std::vector<std::string> parts;
  for (const LeaderboardRow::Dataset& d : row.datasets) {
    const bool empty = !d.memorization && !d.generalization;
    parts.push_back(absl::StrCat(d.dataset, " @", d.epochs, " (",
                                 d.updated_knowledge ? "updated" : "new",
                                 empty ? ", no graded answers" : "", ")"));
  }
  return absl::StrJoin(parts, ", ");
}

constexpr char kLeaderboardDefinition[] =
    "The paper's headline (FineTuneBench, Wu, Wu & Zou 2024: leaderboard and abstract). For "
    "each model and dataset the cell with the largest epoch count is used (the paper reports "
    "its models after their full training); memorization is the accuracy on the training "
    "questions asked verbatim, generalization the accuracy on the rephrase-type sets "
    "(rephrased, date_changed, vignette, code; counts pooled within the dataset). Each column "
    "is the unweighted mean over the datasets where it is defined; new knowledge averages "
    "generalization over the new-knowledge datasets (news, people), updated knowledge over "
    "the updated-knowledge ones (medical, coding: questions with a pre-update answer). "
    "Secondary and comparison (yes/no inference) questions are not part of generalization; "
    "they are reported on their own with their chance and majority-class baselines.";

}  // namespace

std::string RenderMarkdown(const CampaignReport& r) {
  std::string out = absl::StrFormat("# Campaign %s (%s)\n\n", r.name, r.campaign_id);
  std::string state = v1::CampaignState_Name(r.state);
  absl::StrAppend(&out, "State: ", absl::AsciiStrToLower(state.substr(15)),
                  ". Graded by `", r.grader,
                  "`. Each entry is accuracy with its 95% Wilson interval and the number of "
                  "graded answers; `stale` counts answers that gave the pre-update value; "
                  "`no_answer` (nothing recorded to grade) and `error` (the grader failed) "
                  "answers are counted apart and left out of the accuracy.\n\n");
  const Axes axes = VaryingAxes(r);
  auto axis_header = [&] {
    return absl::StrCat(axes.lr ? " lr |" : "", axes.batch ? " batch |" : "",
                        axes.seed ? " seed |" : "");
  };
  auto axis_rule = [&] {
    return absl::StrCat(axes.lr ? "---|" : "", axes.batch ? "---|" : "", axes.seed ? "---|" : "");
  };
  auto axis_values = [&](double lr_value, uint32_t batch_value, uint64_t seed_value) {
    return absl::StrCat(axes.lr ? absl::StrCat(" ", Lr(lr_value), " |") : "",
                        axes.batch ? absl::StrCat(" ", Batch(batch_value), " |") : "",
                        axes.seed ? absl::StrCat(" ", seed_value, " |") : "");
  };
  auto key_axes = [&](const v1::CellKey& k) {
    return axis_values(k.learning_rate_multiplier(), k.batch_size(), k.seed());
  };

  // Leaderboard.
  absl::StrAppend(&out, "## Leaderboard\n\n", kLeaderboardDefinition, "\n\n| model |",
                  axis_header(),
                  " memorization | generalization | new knowledge | updated knowledge | "
                  "datasets @ epochs |\n|---|",
                  axis_rule(), "---|---|---|---|---|\n");
  for (const LeaderboardRow& row : Leaderboard(r)) {
    const bool all = row.datasets.empty() && row.model == "all models";
    absl::StrAppend(&out, "| ", all ? "**all models**" : row.model, " |",
                    all ? absl::StrCat(axes.lr ? " |" : "", axes.batch ? " |" : "",
                                       axes.seed ? " |" : "")
                        : axis_values(row.learning_rate_multiplier, row.batch_size, row.seed),
                    " ", FormatOptional(row.memorization), " | ",
                    FormatOptional(row.generalization), " | ", FormatOptional(row.new_knowledge),
                    " | ", FormatOptional(row.updated_knowledge), " | ",
                    all ? "mean of the rows above" : LeaderboardDatasets(row), " |\n");
  }
  absl::StrAppend(&out, "\n");

  // Per dataset: every question type, with baselines next to yes/no sets.
  for (const std::string& dataset : Datasets(r)) {
    std::vector<std::string> types = OrderedTypes(r, dataset);
    std::set<std::string> yes_no = YesNoTypes(r, dataset);
    absl::StrAppend(&out, "## ", dataset, "\n\n| model | epochs |", axis_header());
    size_t columns = 0;
    for (const auto& t : types) {
      absl::StrAppend(&out, " ", t, " |");
      ++columns;
      if (yes_no.contains(t)) {
        absl::StrAppend(&out, " ", t, " baselines |");
        ++columns;
      }
    }
    absl::StrAppend(&out, " state | cost |\n|---|---|", axis_rule());
    for (size_t i = 0; i < columns; ++i) absl::StrAppend(&out, "---|");
    absl::StrAppend(&out, "---|---|\n");
    for (const CellReport& c : r.cells) {
      if (c.key.dataset() != dataset) continue;
      absl::StrAppend(&out, "| ", c.key.model(), " | ", c.key.epochs(), " |", key_axes(c.key));
      for (const auto& t : types) {
        auto it = c.types.find(t);
        absl::StrAppend(&out, " ", it == c.types.end() ? "—" : FormatCounts(it->second), " |");
        if (yes_no.contains(t)) {
          std::string b = it == c.types.end() ? "" : FormatBaseline(it->second);
          absl::StrAppend(&out, " ", b.empty() ? "—" : b, " |");
        }
      }
      absl::StrAppend(&out, " ", c.state, " | ",
                      c.cost_usd ? absl::StrFormat("$%.4f", *c.cost_usd) : "—", " |\n");
    }
    absl::StrAppend(&out, "\n");
  }

  // The paper's per-cell figures.
  const std::vector<std::string> inference = InferenceTypes(r);
  absl::StrAppend(&out, "## Memorization, generalization and inference\n\n"
                        "Generalization is the paper's: the rephrase-type sets (",
                  absl::StrJoin(GeneralizationTypes(r, ""), ", ").empty()
                      ? std::string("none in this campaign")
                      : absl::StrJoin(GeneralizationTypes(r, ""), ", "),
                  ") pooled per cell. Inference columns (secondary, comparison: yes/no "
                  "questions derived from a trained fact) are shown on their own, each with "
                  "the chance baseline (50%) and the majority-class baseline (the share of the "
                  "most frequent reference answer among the graded questions).\n\n"
                  "| dataset | model | epochs |",
                  axis_header(), " memorization | generalization |");
  for (const std::string& t : inference) absl::StrAppend(&out, " ", t, " | ", t, " baselines |");
  absl::StrAppend(&out, " state |\n|---|---|---|", axis_rule(), "---|---|");
  for (size_t i = 0; i < inference.size(); ++i) absl::StrAppend(&out, "---|---|");
  absl::StrAppend(&out, "---|\n");
  for (const CellReport& c : r.cells) {
    absl::StrAppend(&out, "| ", c.key.dataset(), " | ", c.key.model(), " | ", c.key.epochs(),
                    " |", key_axes(c.key), " ", FormatCounts(Memorization(c)), " | ",
                    FormatCounts(PaperGeneralization(c)), " |");
    for (const std::string& t : inference) {
      auto it = c.types.find(t);
      std::string b = it == c.types.end() ? "" : FormatBaseline(it->second);
      absl::StrAppend(&out, " ", it == c.types.end() ? "—" : FormatCounts(it->second), " | ",
                      b.empty() ? "—" : b, " |");
    }
    absl::StrAppend(&out, " ", c.state, " |\n");
  }

  // Failed cells stay visible with what went wrong.
  bool any_failed = false;
  for (const CellReport& c : r.cells) {
    if (c.state != "failed") continue;
    if (!any_failed) absl::StrAppend(&out, "\n## Failed cells\n\n");
    any_failed = true;
    absl::StrAppend(&out, "- ", c.key.dataset(), " / ", c.key.model(), " / ", c.key.epochs(),
                    " epochs / lr ", Lr(c.key.learning_rate_multiplier()), " / batch ",
                    Batch(c.key.batch_size()), " / seed ", c.key.seed(), " (cell ", c.id, "): ",
                    c.last_error.empty() ? "no error recorded" : c.last_error, "\n");
  }
  const bool lr = axes.lr, batch = axes.batch, seed = axes.seed;
  if (r.graders.size() >= 2) {
    std::vector<std::string> names;
    for (const std::string& g : r.graders) names.push_back(absl::StrCat("`", g, "`"));
    absl::StrAppend(
        &out, "\n## Judge agreement\n\n", "Panel of ", r.graders.size(), " graders: ",
        absl::StrJoin(names, ", "),
        ". Each grader's accuracy (question types pooled), then the panel's: the majority "
        "verdict of each answer (`error` verdicts do not vote; a tie goes to the tied verdict "
        "of the grader listed first). Agreement is on correct vs not correct, over the answers "
        "every grader graded: how many got the same decision from every grader, and ",
        KappaName(r.graders.size()), " (— when undefined: every decision the same).\n\n",
        "| dataset | model | epochs |", lr ? " lr |" : "", batch ? " batch |" : "",
        seed ? " seed |" : "");
    for (const std::string& g : r.graders) absl::StrAppend(&out, " ", g, " |");
    absl::StrAppend(&out, " panel | unanimous | kappa |\n|---|---|---|", lr ? "---|" : "",
                    batch ? "---|" : "", seed ? "---|" : "");
    for (size_t i = 0; i < r.graders.size(); ++i) absl::StrAppend(&out, "---|");
    absl::StrAppend(&out, "---|---|---|\n");
    for (const CellReport& c : r.cells) {
      absl::StrAppend(&out, "| ", c.key.dataset(), " | ", c.key.model(), " | ", c.key.epochs(),
                      " |");
      if (lr) absl::StrAppend(&out, " ", Lr(c.key.learning_rate_multiplier()), " |");
      if (batch) absl::StrAppend(&out, " ", Batch(c.key.batch_size()), " |");
      if (seed) absl::StrAppend(&out, " ", c.key.seed(), " |");
      for (size_t g = 0; g < r.graders.size(); ++g) {
        absl::StrAppend(&out, " ",
                        g < c.by_grader.size() ? FormatCounts(PoolAll(c.by_grader[g])) : "—",
                        " |");
      }
      absl::StrAppend(&out, " ", FormatCounts(PoolAll(c.panel)), " | ",
                      FormatUnanimous(c.agreement), " | ", FormatKappa(c.agreement.kappa),
                      " |\n");
    }
    absl::StrAppend(&out, "\nOverall: ", KappaName(r.graders.size()), " ",
                    FormatKappa(r.agreement.kappa), " over ", r.agreement.n,
                    " answers graded by every grader, ", r.agreement.unanimous,
                    " of them unanimous.\n");
  }
  if (!r.notes.empty()) {
    absl::StrAppend(&out, "\n## Notes\n\n");
    for (const auto& n : r.notes) absl::StrAppend(&out, "- ", n, "\n");
  }
  return out;
}

std::string RenderJson(const CampaignReport& r) {
  nlohmann::ordered_json j;
  j["schema_version"] = kReportSchemaVersion;
  j["campaign"] = r.campaign_id;
  j["cells"] = nlohmann::ordered_json::array();
  for (const CellReport& c : r.cells) {
    nlohmann::ordered_json cell;
    cell["dataset"] = c.key.dataset();
    cell["model"] = c.key.model();
    cell["backend"] = c.key.backend();
    cell["epochs"] = c.key.epochs();
    cell["learning_rate_multiplier"] = LrJson(c.key.learning_rate_multiplier());
    cell["batch_size"] = BatchJson(c.key.batch_size());
    cell["seed"] = c.key.seed();
    cell["state"] = c.state;
    if (!c.last_error.empty()) cell["last_error"] = c.last_error;
    AddCountsJson(c.types, cell);
    const TypeCounts gen = PaperGeneralization(c);
    nlohmann::ordered_json g;
    g["accuracy"] = gen.n ? nlohmann::ordered_json(double(gen.correct) / gen.n) : nullptr;
    g["correct"] = gen.correct;
    g["n"] = gen.n;
    g["types"] = nlohmann::ordered_json::array();
    for (const auto& [type, t] : c.types) {
      if (IsGeneralizationType(type)) g["types"].push_back(type);
    }
    cell["generalization"] = std::move(g);
    cell["baselines"] = nlohmann::ordered_json::object();
    for (const auto& [type, t] : c.types) {
      if (!IsYesNo(t)) continue;
      cell["baselines"][type] = {{"chance", 0.5},
                                 {"majority", MajorityBaseline(t)},
                                 {"majority_answer", MajorityAnswer(t)},
                                 {"n", t.n}};
    }
    cell["cost_usd"] = c.cost_usd ? nlohmann::ordered_json(*c.cost_usd) : nullptr;
    if (r.graders.size() >= 2) {
      cell["panel"] = CountsJson(c.panel);
      cell["by_grader"] = nlohmann::ordered_json::object();
      for (size_t k = 0; k < r.graders.size(); ++k) {
        cell["by_grader"][r.graders[k]] =
            CountsJson(k < c.by_grader.size() ? c.by_grader[k]
                                              : std::map<std::string, TypeCounts>{});
      }
      cell["agreement"] = AgreementJson(c.agreement, r.graders.size());
    }
    j["cells"].push_back(std::move(cell));
  }
  j["graders"] = r.graders;
  if (r.graders.size() >= 2) j["agreement"] = AgreementJson(r.agreement, r.graders.size());
  j["updated_knowledge"] = r.updated_knowledge;
  j["leaderboard"] = nlohmann::ordered_json::array();
  for (const LeaderboardRow& row : Leaderboard(r)) {
    nlohmann::ordered_json l;
    l["model"] = row.model;
    const bool all = row.datasets.empty() && row.model == "all models";
    l["all_models"] = all;
    if (!all) {
      l["learning_rate_multiplier"] = LrJson(row.learning_rate_multiplier);
      l["batch_size"] = BatchJson(row.batch_size);
      l["seed"] = row.seed;
    }
    l["memorization"] = OptionalJson(row.memorization);
    l["generalization"] = OptionalJson(row.generalization);
    l["new_knowledge"] = OptionalJson(row.new_knowledge);
    l["updated_knowledge"] = OptionalJson(row.updated_knowledge);
    l["datasets"] = nlohmann::ordered_json::array();
    for (const LeaderboardRow::Dataset& d : row.datasets) {
      l["datasets"].push_back({{"dataset", d.dataset},
                               {"epochs", d.epochs},
                               {"knowledge", d.updated_knowledge ? "updated" : "new"},
                               {"memorization", OptionalJson(d.memorization)},
                               {"generalization", OptionalJson(d.generalization)}});
    }
    j["leaderboard"].push_back(std::move(l));
  }
  return j.dump(2) + "\n";
}

std::string RenderCsv(const CampaignReport& r) {
  std::string out =
      "campaign,cell,dataset,model,backend,epochs,learning_rate_multiplier,batch_size,seed,state,"
      "question_type,correct,n,accuracy,ci_low,ci_high,stale,ungraded,cost_usd,no_answer,error,"
      "chance,majority,majority_answer,last_error,datasets\n";
  auto quote = [](const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  auto row = [&](const CellReport& c, const std::string& type, const TypeCounts* t) {
    std::vector<std::string> f = {
        quote(r.campaign_id), c.id, quote(c.key.dataset()), quote(c.key.model()),
        quote(c.key.backend()), absl::StrCat(c.key.epochs()),
        Lr(c.key.learning_rate_multiplier()), Batch(c.key.batch_size()),
        absl::StrCat(c.key.seed()), c.state, type};
    if (t != nullptr) {
      auto [lo, hi] = WilsonInterval(t->correct, t->n);
      const bool yes_no = IsYesNo(*t);
      for (std::string v :
           {absl::StrCat(t->correct), absl::StrCat(t->n),
            t->n ? absl::StrFormat("%.6f", double(t->correct) / t->n) : std::string(),
            absl::StrFormat("%.6f", lo), absl::StrFormat("%.6f", hi), absl::StrCat(t->stale),
            absl::StrCat(t->excluded),
            c.cost_usd ? absl::StrFormat("%.6f", *c.cost_usd) : std::string(),
            absl::StrCat(t->no_answer), absl::StrCat(t->errors),
            yes_no ? std::string("0.500000") : std::string(),
            yes_no ? absl::StrFormat("%.6f", MajorityBaseline(*t)) : std::string(),
            yes_no ? MajorityAnswer(*t) : std::string()}) {
        f.push_back(std::move(v));
      }
    } else {
      for (int k = 0; k < 7; ++k) f.push_back("");
      f.push_back(c.cost_usd ? absl::StrFormat("%.6f", *c.cost_usd) : std::string());
      for (int k = 0; k < 5; ++k) f.push_back("");
    }
    f.push_back(quote(c.last_error));
    f.push_back("");
    absl::StrAppend(&out, absl::StrJoin(f, ","), "\n");
  };
  for (const CellReport& c : r.cells) {
    for (const auto& [type, t] : c.types) row(c, type, &t);
    const TypeCounts gen = PaperGeneralization(c);
    if (gen.n + gen.excluded > 0) row(c, "generalization", &gen);
    // A cell without any verdict (pending, running, failed, cancelled) still
    // gets a row, with its state and last error.
    if (c.types.empty()) row(c, "", nullptr);
  }
  // Leaderboard rows: means over datasets, no counts (see report-format.md).
  for (const LeaderboardRow& l : Leaderboard(r)) {
    const bool all = l.datasets.empty() && l.model == "all models";
    std::vector<std::string> names;
    for (const LeaderboardRow::Dataset& d : l.datasets) {
      names.push_back(absl::StrCat(d.dataset, "@", d.epochs));
    }
    for (const auto& [metric, value] :
         std::vector<std::pair<std::string, std::optional<double>>>{
             {"leaderboard:memorization", l.memorization},
             {"leaderboard:generalization", l.generalization},
             {"leaderboard:new_knowledge", l.new_knowledge},
             {"leaderboard:updated_knowledge", l.updated_knowledge}}) {
      std::vector<std::string> f = {
          quote(r.campaign_id), "", "", quote(l.model), "", "",
          all ? "" : Lr(l.learning_rate_multiplier), all ? "" : Batch(l.batch_size),
          all ? "" : absl::StrCat(l.seed), "", metric, "", "",
          value ? absl::StrFormat("%.6f", *value) : ""};
      for (int k = 0; k < 11; ++k) f.push_back("");
      f.push_back(quote(absl::StrJoin(names, ";")));
      absl::StrAppend(&out, absl::StrJoin(f, ","), "\n");
    }
  }
  return out;
}

namespace {

// A line chart: x = epochs, one line per series, y = accuracy in [0, 1].
std::string LineChart(const std::string& title,
                      const std::map<std::string, std::map<uint32_t, TypeCounts>>& series) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                  "#9467bd", "#8c564b", "#17becf"};
  std::set<uint32_t> xs;
  for (const auto& [name, points] : series) {
    for (const auto& [x, t] : points) xs.insert(x);
  }
  const int w = 460, h = 260, left = 50, right = 130, top = 30, bottom = 40;
  const int pw = w - left - right, ph = h - top - bottom;
  std::vector<uint32_t> xv(xs.begin(), xs.end());
  auto px = [&](uint32_t x) {
    if (xv.size() <= 1) return double(left + pw / 2);
    // log(1 + epochs): epochs 0 (the untuned model) has a place too.
    double lx = std::log1p(double(x)), l0 = std::log1p(double(xv.front())),
           l1 = std::log1p(double(xv.back()));
    return left + pw * (lx - l0) / (l1 - l0);
  };
  auto py = [&](double y) { return top + ph * (1 - y); };
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" role=\"img\"><title>%s</title>"
      "<text x=\"%d\" y=\"18\" font-size=\"13\" font-weight=\"bold\">%s</text>",
      w, h, w, h, HtmlEscape(title), left, HtmlEscape(title));
  for (int i = 0; i <= 4; ++i) {
    double y = py(i / 4.0);
    absl::StrAppend(&svg, absl::StrFormat("<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
                                          "stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
                                          "font-size=\"10\" text-anchor=\"end\">%d%%</text>",
                                          left, left + pw, y, y, left - 4, y + 3, i * 25));
  }
  for (uint32_t x : xv) {
    absl::StrAppend(&svg, absl::StrFormat("<text x=\"%.1f\" y=\"%d\" font-size=\"10\" "
                                          "text-anchor=\"middle\">%d</text>",
                                          px(x), top + ph + 14, x));
  }
  absl::StrAppend(&svg, absl::StrFormat("<text x=\"%d\" y=\"%d\" font-size=\"10\" "
                                        "text-anchor=\"middle\">epochs</text>",
                                        left + pw / 2, h - 6));
  int i = 0;
  for (const auto& [name, points] : series) {
    const char* color = kColors[i % 7];
    std::string path;
    for (const auto& [x, t] : points) {
      if (t.n == 0) continue;
      double y = double(t.correct) / t.n;
      absl::StrAppend(&path, path.empty() ? "M" : " L", absl::StrFormat("%.1f %.1f", px(x), py(y)));
      absl::StrAppend(&svg, absl::StrFormat("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\">"
                                            "<title>%s, %d epochs: %s</title></circle>",
                                            px(x), py(y), color, HtmlEscape(name), x,
                                            FormatCounts(t)));
    }
    absl::StrAppend(&svg, absl::StrFormat("<path d=\"%s\" fill=\"none\" stroke=\"%s\" "
                                          "stroke-width=\"2\"/><text x=\"%d\" y=\"%d\" "
                                          "font-size=\"11\" fill=\"%s\">%s</text>",
                                          path, color, left + pw + 8, top + 12 + 16 * i, color,
                                          HtmlEscape(name)));
    ++i;
  }
  return svg + "</svg>";
}

// Two bars per group (memorization, generalization); an undefined value
// draws no bar and says so in the tooltip.
std::string BarChart(
    const std::string& title,
    const std::vector<std::pair<std::string, std::pair<std::optional<double>,
                                                       std::optional<double>>>>& groups) {
  const int bar = 18, gap = 22, left = 50, top = 30, ph = 180;
  // Labels are long model names: written slanted below the bars, with room
  // for the longest; the title gets its own width.
  size_t longest = 0;
  for (const auto& [label, pair] : groups) longest = std::max(longest, label.size());
  // The first label reaches left of its bars by about 4 px a character.
  const int first = groups.empty() ? 0 : int(groups.front().first.size());
  const int indent = std::max(gap / 2, 4 * first - bar - left + 10);
  const int w = std::max<int>({300, left + indent + int(groups.size()) * (2 * bar + gap) + 140,
                               left + 8 * int(title.size())});
  const int h = top + ph + 30 + 4 * int(longest);
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%d\" height=\"%d\" "
      "role=\"img\"><title>%s</title><text x=\"%d\" y=\"18\" font-size=\"13\" "
      "font-weight=\"bold\">%s</text>",
      w, h, HtmlEscape(title), left, HtmlEscape(title));
  for (int i = 0; i <= 4; ++i) {
    double y = top + ph * (1 - i / 4.0);
    absl::StrAppend(&svg, absl::StrFormat("<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
                                          "stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
                                          "font-size=\"10\" text-anchor=\"end\">%d%%</text>",
                                          left, w - 140, y, y, left - 4, y + 3, i * 25));
  }
  int x = left + indent;
  for (const auto& [label, pair] : groups) {
    int k = 0;
    for (const std::optional<double>* v : {&pair.first, &pair.second}) {
      double acc = v->value_or(0);
      absl::StrAppend(&svg, absl::StrFormat("<rect x=\"%d\" y=\"%.1f\" width=\"%d\" "
                                            "height=\"%.1f\" fill=\"%s\"><title>%s: %s</title>"
                                            "</rect>",
                                            x + k * bar, top + ph * (1 - acc), bar - 2, ph * acc,
                                            k == 0 ? "#1f77b4" : "#ff7f0e", HtmlEscape(label),
                                            FormatOptional(*v)));
      ++k;
    }
    absl::StrAppend(&svg, absl::StrFormat("<text x=\"%d\" y=\"%d\" font-size=\"10\" "
                                          "text-anchor=\"end\" transform=\"rotate(-40 %d %d)\">"
                                          "%s</text>",
                                          x + bar, top + ph + 14, x + bar, top + ph + 14,
                                          HtmlEscape(label)));
    x += 2 * bar + gap;
  }
  absl::StrAppend(&svg, absl::StrFormat(
                            "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#1f77b4\">"
                            "memorization</text><text x=\"%d\" y=\"%d\" font-size=\"11\" "
                            "fill=\"#ff7f0e\">generalization</text>",
                            w - 130, top + 12, w - 130, top + 28));
  return svg + "</svg>";
}

}  // namespace

std::string RenderHtml(const CampaignReport& r) {
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ftb report: ",
      HtmlEscape(r.name),
      "</title><style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
      "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;"
      "padding:3px 8px;text-align:left}th{background:#f4f4f4}.chart{margin:0.5em 1em 1em 0}"
      "</style></head><body>\n<h1>Campaign ", HtmlEscape(r.name), " <small>(",
      HtmlEscape(r.campaign_id), ")</small></h1>\n<div id=\"plots\">\n");
  // Accuracy vs epochs per dataset and model (counts pooled over other axes).
  for (const std::string& dataset : Datasets(r)) {
    std::map<std::string, std::map<std::string, std::map<uint32_t, TypeCounts>>> by_model;
    for (const CellReport& c : r.cells) {
      if (c.key.dataset() != dataset) continue;
      for (const auto& [type, t] : c.types) Add(t, by_model[c.key.model()][type][c.key.epochs()]);
    }
    for (const auto& [model, series] : by_model) {
      absl::StrAppend(&out, LineChart(absl::StrCat(dataset, " — ", model), series), "\n");
    }
  }
  std::vector<std::pair<std::string, std::pair<std::optional<double>, std::optional<double>>>>
      groups;
  for (const LeaderboardRow& row : Leaderboard(r)) {
    std::string label = row.model;
    if (!row.datasets.empty() && VaryingAxes(r).lr) {
      absl::StrAppend(&label, " lr ", Lr(row.learning_rate_multiplier));
    }
    groups.emplace_back(label, std::make_pair(row.memorization, row.generalization));
  }
  absl::StrAppend(&out,
                  BarChart("Leaderboard: memorization vs generalization (mean over datasets, "
                           "largest epoch count)",
                           groups),
                  "\n</div>\n");
  absl::StrAppend(&out, "<h2>Leaderboard</h2>\n<p>", HtmlEscape(kLeaderboardDefinition),
                  "</p>\n<table><tr><th>model</th><th>lr</th><th>batch</th><th>seed</th>"
                  "<th>memorization</th><th>generalization</th><th>new knowledge</th>"
                  "<th>updated knowledge</th><th>datasets @ epochs</th></tr>\n");
  for (const LeaderboardRow& row : Leaderboard(r)) {
    const bool all = row.datasets.empty() && row.model == "all models";
    absl::StrAppend(&out, "<tr><td>", HtmlEscape(row.model), "</td><td>",
                    all ? "" : Lr(row.learning_rate_multiplier), "</td><td>",
                    all ? "" : Batch(row.batch_size), "</td><td>",
                    all ? "" : absl::StrCat(row.seed), "</td><td>",
                    FormatOptional(row.memorization), "</td><td>",
                    FormatOptional(row.generalization), "</td><td>",
                    FormatOptional(row.new_knowledge), "</td><td>",
                    FormatOptional(row.updated_knowledge), "</td><td>",
                    HtmlEscape(all ? "mean of the rows above" : LeaderboardDatasets(row)),
                    "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n");
  // Tables: the Markdown tables, as HTML.
  auto cell_axes = [](const CellReport& c) {
    return absl::StrCat("<td>", c.key.epochs(), "</td><td>", Lr(c.key.learning_rate_multiplier()),
                        "</td><td>", Batch(c.key.batch_size()), "</td><td>", c.key.seed(), "</td>");
  };
  for (const std::string& dataset : Datasets(r)) {
    std::vector<std::string> types = OrderedTypes(r, dataset);
    std::set<std::string> yes_no = YesNoTypes(r, dataset);
    absl::StrAppend(&out, "<h2>", HtmlEscape(dataset), "</h2>\n<table><tr><th>model</th>"
                          "<th>epochs</th><th>lr</th><th>batch</th><th>seed</th>");
    for (const auto& t : types) {
      absl::StrAppend(&out, "<th>", HtmlEscape(t), "</th>");
      if (yes_no.contains(t)) absl::StrAppend(&out, "<th>", HtmlEscape(t), " baselines</th>");
    }
    absl::StrAppend(&out, "<th>state</th><th>cost</th></tr>\n");
    for (const CellReport& c : r.cells) {
      if (c.key.dataset() != dataset) continue;
      absl::StrAppend(&out, "<tr><td>", HtmlEscape(c.key.model()), "</td>", cell_axes(c));
      for (const auto& t : types) {
        auto it = c.types.find(t);
        absl::StrAppend(&out, "<td>",
                        HtmlEscape(it == c.types.end() ? "—" : FormatCounts(it->second)),
                        "</td>");
        if (yes_no.contains(t)) {
          std::string b = it == c.types.end() ? "" : FormatBaseline(it->second);
          absl::StrAppend(&out, "<td>", HtmlEscape(b.empty() ? "—" : b), "</td>");
        }
      }
      absl::StrAppend(&out, "<td>", c.state, "</td><td>",
                      c.cost_usd ? absl::StrFormat("$%.4f", *c.cost_usd) : "—", "</td></tr>\n");
    }
    absl::StrAppend(&out, "</table>\n");
  }
  const std::vector<std::string> inference = InferenceTypes(r);
  absl::StrAppend(&out, "<h2>Memorization, generalization and inference</h2>\n<p>"
                        "Generalization is the paper's: the rephrase-type sets (rephrased, "
                        "date_changed, vignette, code) pooled per cell. Secondary and comparison "
                        "are yes/no inference sets, shown on their own with the chance (50%) and "
                        "majority-class baselines.</p>\n<table><tr><th>dataset</th><th>model</th>"
                        "<th>epochs</th><th>lr</th><th>batch</th><th>seed</th>"
                        "<th>memorization</th><th>generalization</th>");
  for (const std::string& t : inference) {
    absl::StrAppend(&out, "<th>", t, "</th><th>", t, " baselines</th>");
  }
  absl::StrAppend(&out, "<th>state</th></tr>\n");
  for (const CellReport& c : r.cells) {
    absl::StrAppend(&out, "<tr><td>", HtmlEscape(c.key.dataset()), "</td><td>",
                    HtmlEscape(c.key.model()), "</td>", cell_axes(c), "<td>",
                    HtmlEscape(FormatCounts(Memorization(c))), "</td><td>",
                    HtmlEscape(FormatCounts(PaperGeneralization(c))), "</td>");
    for (const std::string& t : inference) {
      auto it = c.types.find(t);
      std::string b = it == c.types.end() ? "" : FormatBaseline(it->second);
      absl::StrAppend(&out, "<td>",
                      HtmlEscape(it == c.types.end() ? "—" : FormatCounts(it->second)),
                      "</td><td>", HtmlEscape(b.empty() ? "—" : b), "</td>");
    }
    absl::StrAppend(&out, "<td>", c.state, "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n");
  bool any_failed = false;
  for (const CellReport& c : r.cells) {
    if (c.state != "failed") continue;
    if (!any_failed) {
      absl::StrAppend(&out, "<h2>Failed cells</h2>\n<table><tr><th>dataset</th><th>model</th>"
                            "<th>epochs</th><th>lr</th><th>batch</th><th>seed</th><th>cell</th>"
                            "<th>last error</th></tr>\n");
    }
    any_failed = true;
    absl::StrAppend(&out, "<tr><td>", HtmlEscape(c.key.dataset()), "</td><td>",
                    HtmlEscape(c.key.model()), "</td>", cell_axes(c), "<td>", c.id, "</td><td>",
                    HtmlEscape(c.last_error.empty() ? "no error recorded" : c.last_error),
                    "</td></tr>\n");
  }
  if (any_failed) absl::StrAppend(&out, "</table>\n");
  if (r.graders.size() >= 2) {
    absl::StrAppend(&out, "<h2>Judge agreement</h2>\n<p>Majority verdict of ", r.graders.size(),
                    " graders (ties: the grader listed first); ",
                    HtmlEscape(KappaName(r.graders.size())),
                    " on correct vs not correct. Overall: ", FormatKappa(r.agreement.kappa),
                    " over ", r.agreement.n, " answers.</p>\n<table><tr><th>dataset</th>"
                    "<th>model</th><th>epochs</th><th>lr</th><th>batch</th><th>seed</th>");
    for (const std::string& g : r.graders) absl::StrAppend(&out, "<th>", HtmlEscape(g), "</th>");
    absl::StrAppend(&out, "<th>panel</th><th>unanimous</th><th>kappa</th></tr>\n");
    for (const CellReport& c : r.cells) {
      absl::StrAppend(&out, "<tr><td>", HtmlEscape(c.key.dataset()), "</td><td>",
                      HtmlEscape(c.key.model()), "</td><td>", c.key.epochs(), "</td><td>",
                      Lr(c.key.learning_rate_multiplier()), "</td><td>", Batch(c.key.batch_size()),
                      "</td><td>", c.key.seed(), "</td>");
      for (size_t g = 0; g < r.graders.size(); ++g) {
        absl::StrAppend(
            &out, "<td>",
            HtmlEscape(g < c.by_grader.size() ? FormatCounts(PoolAll(c.by_grader[g])) : "—"),
            "</td>");
      }
      absl::StrAppend(&out, "<td>", HtmlEscape(FormatCounts(PoolAll(c.panel))), "</td><td>",
                      HtmlEscape(FormatUnanimous(c.agreement)), "</td><td>",
                      HtmlEscape(FormatKappa(c.agreement.kappa)), "</td></tr>\n");
    }
    absl::StrAppend(&out, "</table>\n");
  }
  if (!r.notes.empty()) {
    absl::StrAppend(&out, "<h2>Notes</h2><ul>");
    for (const auto& n : r.notes) absl::StrAppend(&out, "<li>", HtmlEscape(n), "</li>");
    absl::StrAppend(&out, "</ul>\n");
  }
  absl::StrAppend(&out, "</body></html>\n");
  return out;
}

}  // namespace ftb::report
