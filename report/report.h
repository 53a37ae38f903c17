// Campaign reports: the paper's kind of table (accuracy per model x epochs,
// per dataset x question type, with 95% Wilson intervals), from the
// coordinator's stored state. Pure functions over a CampaignReport, which
// LoadCampaignReport builds by reading a StateStore. Thread-safe.
//
// The FineTuneBench paper's figures (docs/report-format.md, "The paper's
// metrics"): generalization is the rephrase-type sets only
// (PaperGeneralization); secondary and comparison are inference sets,
// reported on their own with chance and majority-class baselines
// (IsYesNo, MajorityBaseline); Leaderboard averages datasets per model at
// the largest epoch count, with new- vs updated-knowledge means.
//
// Verdict accounting (docs/report-format.md): `correct` counts as right;
// `incorrect`, `stale` (the pre-update answer) and `abstained` count as
// wrong; `no_answer` (nothing recorded for the question, e.g. a replayed
// response that is missing or is itself a verdict) and `error` (the grader
// failed) are excluded from n and reported separately.
//
// Judge panels (judge.graders with several graders): `types` holds the
// first grader's verdicts as always; the panel's majority verdicts (see
// report/agreement.h for the rule and its tie-break), each grader's own
// counts and Cohen's / Fleiss' kappa are reported next to them. A verdict
// belongs to the grader its JUDGE task was created for.
#ifndef FTB_REPORT_REPORT_H_
#define FTB_REPORT_REPORT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ftb/v1/state.pb.h"
#include "storage/state_store.h"

namespace ftb::report {

struct TypeCounts {
  uint64_t correct = 0;
  uint64_t n = 0;          // graded answers (correct + wrong)
  uint64_t stale = 0;      // among the wrong: gave the pre-update answer
  uint64_t excluded = 0;   // no_answer + error: not graded
  uint64_t no_answer = 0;  // of excluded: nothing recorded to grade
  uint64_t errors = 0;     // of excluded: the grader failed (`error`)
  // Reference answers of the graded answers (the n above) that are "Yes" /
  // "No" (case, surrounding space and a final '.' ignored). Known only when
  // the judge task definitions are stored (every state since judge tasks
  // were recorded); 0 otherwise.
  uint64_t reference_yes = 0;
  uint64_t reference_no = 0;
};

// A yes/no question set: every graded answer's reference is Yes or No
// (n > 0). Such a set gets the chance baseline (50%) and the majority-class
// baseline: the share of the most frequent reference answer among the
// graded questions, i.e. what always answering that one word would score on
// the same questions the accuracy is computed over.
bool IsYesNo(const TypeCounts& t);
// max(reference_yes, reference_no) / n; 0 for n = 0.
double MajorityBaseline(const TypeCounts& t);
// "Yes" or "No" (ties: "No"), the answer MajorityBaseline always gives.
std::string MajorityAnswer(const TypeCounts& t);

// The FineTuneBench paper's question-type roles (docs/report-format.md).
// Generalization = the rephrase-type sets: rephrased, date_changed,
// vignette, code. Inference = the yes/no sets derived from a trained fact,
// secondary and comparison, reported on their own and never pooled into
// generalization.
bool IsGeneralizationType(const std::string& type);
bool IsInferenceType(const std::string& type);

// How far a judge panel agrees on "correct or not", over the answers that
// every grader graded (correct, incorrect, stale or abstained from each).
struct PanelAgreement {
  uint64_t n = 0;          // answers graded by every grader
  uint64_t unanimous = 0;  // of those, every grader made the same decision
  // Cohen's kappa (2 graders) or Fleiss' kappa (3 or more); nullopt when
  // undefined (no such answers, or every decision the same).
  std::optional<double> kappa;
};

struct CellReport {
  std::string id;
  v1::CellKey key;
  std::string state;  // pending, running, judging, done, failed, cancelled
  // The last error of the failed task (training run or judge task) that
  // made the cell failed; empty when none was recorded.
  std::string last_error;
  // Attempts the failed task made (TaskRecord.attempt); 0 when none failed.
  uint32_t attempts = 0;
  // By question type name, in the dataset's order.
  std::map<std::string, TypeCounts> types;
  std::optional<double> cost_usd;
  // Judge panels only (CampaignReport::graders has two or more names):
  // majority verdicts by question type; each grader's verdicts by question
  // type, parallel to CampaignReport::graders; the panel's agreement.
  std::map<std::string, TypeCounts> panel;
  std::vector<std::map<std::string, TypeCounts>> by_grader;
  PanelAgreement agreement;
};

struct CampaignReport {
  std::string campaign_id;
  std::string name;
  v1::CampaignState state = v1::CAMPAIGN_STATE_UNSPECIFIED;
  std::vector<CellReport> cells;  // plan order
  std::vector<std::string> notes;  // dataset notes, skipped sets
  std::string grader;             // whose verdicts are shown
  // judge.graders by name (kind when unnamed), in spec order; a panel when
  // there are two or more.
  std::vector<std::string> graders;
  // The panel's agreement over every cell's answers.
  PanelAgreement agreement;
  // Labels of the datasets that update knowledge: their questions carry a
  // pre-update answer (answer_before), e.g. medical, coding, builtin
  // `updates`. The others are new knowledge (latest_news,
  // fictional_people, builtin `people`).
  std::vector<std::string> updated_knowledge;
};

// The paper's generalization of one cell: the counts of its rephrase-type
// sets (IsGeneralizationType) pooled (correct and n summed).
TypeCounts PaperGeneralization(const CellReport& cell);

// One leaderboard row: a model (with one value of each other swept axis)
// averaged over datasets, as the paper's headline table and abstract do.
// For each dataset the row uses the cell with the largest epoch count the
// campaign has for that model and axis values (the paper reports its
// models after their full training); a dataset whose figure is undefined
// there (n = 0: not done, failed, or no such question set) is left out of
// that average. Each average is the unweighted mean of per-dataset
// accuracies (every dataset counts once, whatever its size).
struct LeaderboardRow {
  std::string model;
  double learning_rate_multiplier = 0;
  uint32_t batch_size = 0;
  uint64_t seed = 0;
  struct Dataset {
    std::string dataset;
    uint32_t epochs = 0;
    bool updated_knowledge = false;
    std::optional<double> memorization;    // accuracy of `memorization`
    std::optional<double> generalization;  // PaperGeneralization accuracy
  };
  std::vector<Dataset> datasets;  // in report order
  // Means over datasets of memorization / generalization accuracy; the
  // generalization mean over new-knowledge and over updated-knowledge
  // datasets. nullopt when no dataset contributes.
  std::optional<double> memorization, generalization, new_knowledge, updated_knowledge;
};
// One row per (model, learning rate, batch size, seed) in plan order, then,
// when there are two or more rows, an "all models" row whose averages are
// the means of the rows' averages (the abstract's "across all models").
std::vector<LeaderboardRow> Leaderboard(const CampaignReport& report);

// The report.json schema version (docs/report.schema.json); bumped when a
// field changes meaning.
inline constexpr int kReportSchemaVersion = 2;

// "Cohen's kappa" for 2 graders, "Fleiss' kappa" for more; "" for fewer.
std::string KappaName(size_t graders);

// 95% Wilson score interval of k successes in n trials; {0, 0} for n = 0.
std::pair<double, double> WilsonInterval(uint64_t k, uint64_t n);

// Reads a campaign from the store (the coordinator's state directory).
// kNotFound for an unknown id.
absl::StatusOr<CampaignReport> LoadCampaignReport(const storage::StateStore& store,
                                                  const std::string& campaign_id);
// Ids of every stored campaign, oldest first.
absl::StatusOr<std::vector<std::string>> ListCampaignIds(const storage::StateStore& store);

std::string RenderMarkdown(const CampaignReport& report);
// The stable JSON of docs/report-format.md.
std::string RenderJson(const CampaignReport& report);
// One row per cell and question type.
std::string RenderCsv(const CampaignReport& report);
// One self-contained page: tables plus SVG plots, no network.
std::string RenderHtml(const CampaignReport& report);

}  // namespace ftb::report

#endif  // FTB_REPORT_REPORT_H_
