#include "coordinator/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace ftb::coordinator {

RateLimiter::RateLimiter(const Clock* clock, double per_minute, double burst, size_t max_keys)
    : clock_(clock),
      per_ms_(per_minute / 60'000.0),
      per_minute_(per_minute),
      burst_(std::max(1.0, burst)),
      max_keys_(std::max<size_t>(1, max_keys)) {}

void RateLimiter::RefillLocked(Bucket& b, int64_t now_ms) const {
  if (now_ms > b.updated_ms) {
    b.tokens = std::min(burst_, b.tokens + static_cast<double>(now_ms - b.updated_ms) * per_ms_);
  }
  b.updated_ms = std::max(b.updated_ms, now_ms);
}

void RateLimiter::EvictLocked(int64_t now_ms) {
  // Full buckets are indistinguishable from new ones: drop them all.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    RefillLocked(it->second, now_ms);
    if (it->second.tokens >= burst_) {
      buckets_.erase(it++);
    } else {
      ++it;
    }
  }
  if (buckets_.size() < max_keys_) return;
  // Still full of active clients: drop the least recently used.
  auto oldest = std::min_element(buckets_.begin(), buckets_.end(), [](const auto& a, const auto& b) {
    return a.second.last_used_ms < b.second.last_used_ms;
  });
  buckets_.erase(oldest);
}

absl::Status RateLimiter::Acquire(const std::string& key, const std::string& what) {
  const int64_t now_ms = clock_->NowMs();
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) EvictLocked(now_ms);
    it = buckets_.emplace(key, Bucket{burst_, now_ms, now_ms}).first;
  }
  Bucket& b = it->second;
  RefillLocked(b, now_ms);
  b.last_used_ms = now_ms;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return absl::OkStatus();
  }
  double wait_s = per_ms_ > 0 ? (1.0 - b.tokens) / per_ms_ / 1000.0 : INFINITY;
  return absl::ResourceExhaustedError(absl::StrFormat(
      "too many %s from this client: the limit is %g per minute (bursts of %g); "
      "retry in %.1f s",
      what, per_minute_, burst_, wait_s));
}

size_t RateLimiter::keys() const {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

}  // namespace ftb::coordinator
