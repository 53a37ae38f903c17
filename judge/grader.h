// Graders: turn a model's answer to a question into a verdict. A grader is
// chosen by kind from a registry; the judge worker runs it over JUDGE tasks.
// Implementations are thread-safe (Grade is const and keeps no state).
#ifndef FTB_JUDGE_GRADER_H_
#define FTB_JUDGE_GRADER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "ftb/v1/coordinator.pb.h"

namespace ftb::judge {

// Verdict names as stored (v1::Verdict.verdict) and counted by reports.
inline constexpr char kCorrect[] = "correct";
inline constexpr char kIncorrect[] = "incorrect";
inline constexpr char kStale[] = "stale";          // gave the pre-update answer
inline constexpr char kAbstained[] = "abstained";  // declined where an answer exists
inline constexpr char kNoAnswer[] = "no_answer";   // nothing to grade
inline constexpr char kError[] = "error";          // the grader failed

struct Verdict {
  std::string verdict;
  std::string reason;  // short, for humans
};

class Grader {
 public:
  virtual ~Grader() = default;
  // "<kind>/<version>", recorded with every verdict.
  virtual std::string_view id() const = 0;
  virtual Verdict Grade(const v1::JudgeItem& item) const = 0;
};

// By kind: "rules" (judge/rules_grader.h). "llm" is not built yet:
// kUnimplemented. Unknown kinds: kNotFound naming the known ones.
absl::StatusOr<std::unique_ptr<Grader>> CreateGrader(std::string_view kind);

}  // namespace ftb::judge

#endif  // FTB_JUDGE_GRADER_H_
