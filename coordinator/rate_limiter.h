// RateLimiter: one token bucket per client key (the coordinator uses it for
// campaign submissions, keyed by client identity; see coordinator/auth.h).
//
// A bucket holds up to `burst` tokens and refills at `per_minute` tokens a
// minute; each admitted request takes one. Time comes from an injected Clock
// so tests drive it by hand (FakeClock).
//
// Memory is bounded: at most `max_keys` buckets are kept; when a new key
// would exceed that, buckets that have refilled completely (and so carry no
// information) are dropped first, then the least recently used one.
//
// Thread-safe.
#ifndef FTB_COORDINATOR_RATE_LIMITER_H_
#define FTB_COORDINATOR_RATE_LIMITER_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace ftb::coordinator {

class RateLimiter {
 public:
  // `clock` is not owned and must outlive the limiter. per_minute > 0,
  // burst >= 1.
  RateLimiter(const Clock* clock, double per_minute, double burst, size_t max_keys = 10'000);

  // Takes a token from `key`'s bucket: OK, or kResourceExhausted whose
  // message names `what`, the limit and how long until the next token.
  absl::Status Acquire(const std::string& key, const std::string& what = "requests");

  // Buckets currently kept (tests).
  size_t keys() const;

 private:
  struct Bucket {
    double tokens = 0;
    int64_t updated_ms = 0;    // tokens are as of this time
    int64_t last_used_ms = 0;  // last Acquire (for eviction)
  };
  void RefillLocked(Bucket& b, int64_t now_ms) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* clock_;
  const double per_ms_;
  const double per_minute_;
  const double burst_;
  const size_t max_keys_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ftb::coordinator

#endif  // FTB_COORDINATOR_RATE_LIMITER_H_
