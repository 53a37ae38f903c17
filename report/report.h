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

struct CellReport {
  std::string id;
  v1::CellKey key;
  std::string state;  // pending, running, judging, done, failed, cancelled
  // By question type name, in the dataset's order.
  std::map<std::string, TypeCounts> types;
  std::optional<double> cost_usd;
};

struct CampaignReport {
  std::string campaign_id;
  std::string name;
  v1::CampaignState state = v1::CAMPAIGN_STATE_UNSPECIFIED;
  std::vector<CellReport> cells;  // plan order
  std::vector<std::string> notes;  // dataset notes, skipped sets
  std::string grader;             // whose verdicts are shown
};

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
