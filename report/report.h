// Campaign reports: the paper's kind of table (accuracy per model x epochs,
// per dataset x question type, with 95% Wilson intervals), from the
// coordinator's stored state. Pure functions over a CampaignReport, which
// LoadCampaignReport builds by reading a StateStore. Thread-safe.
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
};

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
};

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
