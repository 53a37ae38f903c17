#include "report/agreement.h"

#include <cmath>
#include <cstddef>

namespace ftb::report {

std::string MajorityVerdict(const std::vector<std::string>& verdicts) {
  // Distinct voting verdicts in order of first appearance, with counts.
  std::vector<std::pair<std::string, int>> votes;
  bool any_error = false;
  for (const std::string& v : verdicts) {
    if (v.empty()) continue;
    if (v == "error") {
      any_error = true;
      continue;
    }
    bool found = false;
    for (auto& [name, count] : votes) {
      if (name == v) {
        ++count;
        found = true;
        break;
      }
    }
    if (!found) votes.emplace_back(v, 1);
  }
  if (votes.empty()) return any_error ? "error" : "";
  // Strictly more votes replaces; equal keeps the earlier (panel order).
  size_t best = 0;
  for (size_t i = 1; i < votes.size(); ++i) {
    if (votes[i].second > votes[best].second) best = i;
  }
  return votes[best].first;
}

std::optional<double> CohenKappa(const std::vector<bool>& a, const std::vector<bool>& b) {
  if (a.empty() || a.size() != b.size()) return std::nullopt;
  const double n = static_cast<double>(a.size());
  double agree = 0, yes_a = 0, yes_b = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    agree += a[i] == b[i] ? 1 : 0;
    yes_a += a[i] ? 1 : 0;
    yes_b += b[i] ? 1 : 0;
  }
  const double po = agree / n, pa = yes_a / n, pb = yes_b / n;
  const double pe = pa * pb + (1 - pa) * (1 - pb);
  if (std::fabs(1 - pe) < 1e-12) return std::nullopt;
  return (po - pe) / (1 - pe);
}

std::optional<double> FleissKappa(const std::vector<uint32_t>& yes, uint32_t raters) {
  if (yes.empty() || raters < 2) return std::nullopt;
  const double r = raters;
  double sum_p = 0, total_yes = 0;
  for (uint32_t y : yes) {
    if (y > raters) return std::nullopt;
    const double yy = y, no = r - y;
    sum_p += (yy * yy + no * no - r) / (r * (r - 1));
    total_yes += yy;
  }
  const double items = static_cast<double>(yes.size());
  const double p_bar = sum_p / items;
  const double p = total_yes / (items * r);
  const double pe = p * p + (1 - p) * (1 - p);
  if (std::fabs(1 - pe) < 1e-12) return std::nullopt;
  return (p_bar - pe) / (1 - pe);
}

}  // namespace ftb::report
