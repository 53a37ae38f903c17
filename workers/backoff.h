// Exponential backoff with jitter for retrying RPCs (kUnavailable,
// kDeadlineExceeded). Delay n (from 0) is drawn uniformly from
// [base/2, base] with base = min(max, initial * 2^n) ("equal jitter"): many
// workers retrying after a coordinator restart spread out instead of
// arriving together, and no delay exceeds `max`.
// Not thread-safe; one per retry loop. Could move to common/.
#ifndef FTB_WORKERS_BACKOFF_H_
#define FTB_WORKERS_BACKOFF_H_

#include <algorithm>
#include <cstdint>

#include "absl/time/time.h"
#include "common/rng.h"

namespace ftb::workers {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
      : initial_(std::max(initial, absl::Milliseconds(1))),
        max_(std::max(max, initial_)),
        rng_(seed) {}

  // The delay before the next retry; each call doubles the base.
  absl::Duration Next() {
    absl::Duration base = initial_;
    for (int i = 0; i < failures_ && base < max_; ++i) base *= 2;
    base = std::min(base, max_);
    ++failures_;
    int64_t base_us = absl::ToInt64Microseconds(base);
    return absl::Microseconds(rng_.Uniform(base_us / 2, base_us));
  }
  // After a success: the next delay starts from `initial` again.
  void Reset() { failures_ = 0; }
  // Consecutive Next() calls since the last Reset().
  int failures() const { return failures_; }

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  Rng rng_;
  int failures_ = 0;
};

}  // namespace ftb::workers

#endif  // FTB_WORKERS_BACKOFF_H_
