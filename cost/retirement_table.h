// The dated table of provider retirements (pricing/retirements.yaml,
// compiled in): the day a provider stops new fine-tuning jobs for a model
// (or for every model of the backend, model "*"), or stops serving a model
// at all, each with its source and the date that source carried. `ftb plan`
// warns about campaign models that are past or near such a date.
// Immutable after construction, so thread-safe.
#ifndef FTB_COST_RETIREMENT_TABLE_H_
#define FTB_COST_RETIREMENT_TABLE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"

namespace ftb::cost {

struct Retirement {
  enum class Kind { kFineTuning, kInference };
  std::string backend;
  std::string model;  // "*": every model of the backend
  Kind kind = Kind::kInference;
  absl::CivilDay date;  // the first day it no longer works
  std::string source;   // URL
  std::string as_of;    // the date on the source (or when it was read)
  std::string note;
  // False when only a third-party page (or a copy of the provider's page)
  // carried the date.
  bool verified = true;
};

// A YYYY-MM-DD date; kInvalidArgument "<what>: expected a date YYYY-MM-DD,
// got \"...\"" otherwise.
absl::StatusOr<absl::CivilDay> ParseDay(std::string_view text, std::string_view what);

// Today in UTC by this machine's clock.
absl::CivilDay TodayUtc();

class RetirementTable {
 public:
  // Parses one or more YAML documents, each
  //   {version: DATE, retirements: [{backend, model, kind: fine_tuning|inference,
  //    date: YYYY-MM-DD, source, as_of, note?, verified?}, ...]}
  // Errors (kInvalidArgument) read "<file>:<line>:<col>: <field>: <what>".
  // The same (backend, model, kind) twice is an error.
  absl::Status Add(std::string_view yaml, std::string_view filename);
  // The table of pricing/retirements.yaml at build time.
  static const RetirementTable& Builtin();

  // Every row for `model` on `backend`: its own rows and the backend's "*"
  // rows, in table order.
  std::vector<const Retirement*> Matching(std::string_view backend,
                                          std::string_view model) const;

  // One warning per matching row whose date is past or at most
  // `window_days` after `today`, e.g.
  //   "gpt-4.1-2025-04-14 (openai): new fine-tuning jobs stop on 2027-01-06,
  //    in 33 days (source: URL, as of 2026-05-07)"
  // Rows further away say nothing.
  std::vector<std::string> Warnings(std::string_view backend, std::string_view model,
                                    absl::CivilDay today, int window_days = 30) const;

  const std::vector<Retirement>& rows() const { return rows_; }

 private:
  std::vector<Retirement> rows_;
};

}  // namespace ftb::cost

#endif  // FTB_COST_RETIREMENT_TABLE_H_
