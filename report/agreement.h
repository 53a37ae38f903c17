// Judge panels: the majority verdict of several graders on one answer, and
// chance-corrected agreement between graders (Cohen's kappa for two, Fleiss'
// kappa for three or more) on the binary decision "correct or not". Pure
// functions; thread-safe.
#ifndef FTB_REPORT_AGREEMENT_H_
#define FTB_REPORT_AGREEMENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ftb::report {

// The panel verdict of one answer from its graders' verdicts, in the
// panel's order (judge.graders); "" marks a grader with no verdict yet.
// `error` verdicts and "" do not vote. The verdict with the most votes wins;
// a tie goes to whichever tied verdict comes first in panel order (so the
// first grader's verdict when it is among the tied ones). With no votes:
// "error" if some grader reported one, else "".
// Examples: {correct, incorrect, correct} -> correct; {abstained,
// incorrect} -> abstained; {error, incorrect, correct} -> incorrect;
// {error, error} -> error.
std::string MajorityVerdict(const std::vector<std::string>& verdicts);

// Cohen's kappa of two raters' yes/no decisions on the same items
// (a[i], b[i]): (p_o - p_e) / (1 - p_e), p_o the share of items they agree
// on, p_e = p_a * p_b + (1 - p_a) * (1 - p_b) with p_a, p_b each rater's
// share of yes. nullopt when undefined: no items, sizes differ, or p_e = 1
// (both raters gave one and the same answer to every item).
std::optional<double> CohenKappa(const std::vector<bool>& a, const std::vector<bool>& b);

// Fleiss' kappa of `raters` (>= 2) raters on yes/no items, yes[i] = how many
// said yes on item i (<= raters): (P - P_e) / (1 - P_e), P the mean over
// items of P_i = (y^2 + (r - y)^2 - r) / (r (r - 1)), P_e = p^2 + (1 - p)^2
// with p the share of yes over all ratings. nullopt when undefined: no
// items, raters < 2, a count above raters, or P_e = 1 (every rating the
// same).
std::optional<double> FleissKappa(const std::vector<uint32_t>& yes, uint32_t raters);

}  // namespace ftb::report

#endif  // FTB_REPORT_AGREEMENT_H_
