// The `rules` grader: deterministic, no model, better than the FineTuneBench
// notebook's lowercase exact match. In order:
//
//  1. item.unavailable_reason set            -> no_answer (nothing to grade)
//  2. empty answer                           -> incorrect ("empty answer")
//  Both sides are normalised: lower case, punctuation to spaces, articles
//  (a, an, the) dropped, whitespace collapsed; numbers canonical: "1,200" ->
//  "1200", "$5" -> "5", "3.50" -> "3.5", "20 feet" keeps "20" as a token.
//  3. reference "None" (date-changed questions: the question cannot be
//     answered): an abstention ("None", "I don't know", "unknown", "N/A",
//     "cannot be answered", ...) -> correct; anything else -> incorrect.
//  4. an abstention where a reference exists  -> abstained
//  5. reference "yes"/"no": the answer's yes/no word decides ("Yes, he is."
//     = Yes); both or neither present -> incorrect.
//  6. normalised answer == reference          -> correct
//  7. numeric reference ("126", "20 feet"): the answer's numbers include it
//     as a whole number -> correct ("He weighs 126 pounds."; not "1260").
//  8. the reference's words appear contiguously, on word boundaries, in
//     the answer -> correct ("blue" in "His favourite colour is blue.").
//  9. updated knowledge: the answer matches answer_before by 5-8 and not the
//     reference -> stale.
// 10. otherwise incorrect.
#ifndef FTB_JUDGE_RULES_GRADER_H_
#define FTB_JUDGE_RULES_GRADER_H_

#include <string>
#include <string_view>
#include <vector>

#include "judge/grader.h"

namespace ftb::judge {

class RulesGrader : public Grader {
 public:
  static constexpr std::string_view kId = "rules/1";
  std::string_view id() const override { return kId; }
  Verdict Grade(const v1::JudgeItem& item) const override;
};

// Exposed for tests: the normalised tokens of `text`.
std::vector<std::string> NormalizeTokens(std::string_view text);

}  // namespace ftb::judge

#endif  // FTB_JUDGE_RULES_GRADER_H_
