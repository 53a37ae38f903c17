// Client-side rate limiting: token buckets for requests and tokens per
// minute, seeded from the spec's limits and corrected by the provider's
// x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers, so a worker
// slows down before the provider starts answering 429.
//
// Thread-safe (one limiter per provider account, shared by a worker's slots).
#ifndef FTB_PROVIDERS_RATE_LIMIT_H_
#define FTB_PROVIDERS_RATE_LIMIT_H_

#include <algorithm>
#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "providers/http.h"

namespace ftb::providers {

// A bucket of `capacity` units refilled at `per_second`. Not thread-safe
// (RateLimiter locks around it). Capacity 0 means unlimited.
class TokenBucket {
 public:
  TokenBucket(double capacity, double per_second, int64_t now_ms);

  // Takes `n` units if available (an unlimited bucket always has them);
  // otherwise takes nothing and returns how long until `n` are available (n
  // above the capacity waits for a full bucket, then goes through).
  absl::Duration TryTake(double n, int64_t now_ms);
  // Returns `n` units taken by TryTake (never above the capacity).
  void Give(double n) { tokens_ = capacity_ > 0 ? std::min(capacity_, tokens_ + n) : tokens_; }
  // From the provider: its limit, what it says is left, and when the window
  // resets (time until `remaining` is back to `limit`).
  void Observe(double limit, double remaining, absl::Duration reset, int64_t now_ms);

  double available(int64_t now_ms);
  double capacity() const { return capacity_; }
  // New capacity and rate (0 = unlimited), keeping what is left up to the
  // new capacity (a bucket that was unlimited starts full).
  void Reconfigure(double capacity, double per_second, int64_t now_ms);

 private:
  void Refill(int64_t now_ms);
  double capacity_;
  // Set by Reconfigure: the provider's headers may lower the capacity below
  // it but never raise it above (0 = none).
  double ceiling_ = 0;
  double per_second_;
  double tokens_;
  int64_t last_ms_;
};

class RateLimiter {
 public:
  // 0 = unlimited until the provider's headers say otherwise. `clock` must
  // outlive the limiter; `sleep` waits (tests pass a fake that advances a
  // FakeClock) and returns false to give up (e.g. the task was cancelled).
  RateLimiter(double requests_per_minute, double tokens_per_minute, const Clock* clock);

  // Blocks until one request carrying about `tokens` tokens may go out.
  // Returns false if `sleep` returned false (cancelled).
  bool Acquire(double tokens, const std::function<bool(absl::Duration)>& sleep);
  // Feeds the x-ratelimit-* headers of a reply (absent ones are ignored).
  void Observe(const HttpResponse& response);
  // Sets the client-side limits (e.g. this worker's share of a campaign's
  // limits, from the coordinator) as ceilings the provider's headers cannot
  // raise; 0 leaves that bucket as it is. A no-op when unchanged.
  void SetLimits(double requests_per_minute, double tokens_per_minute);

  double available_requests();
  double available_tokens();

 private:
  const Clock* clock_;
  absl::Mutex mu_;
  TokenBucket requests_ ABSL_GUARDED_BY(mu_);
  TokenBucket tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ftb::providers

#endif  // FTB_PROVIDERS_RATE_LIMIT_H_
