#include "providers/rate_limit.h"

#include <algorithm>
#include <string>

#include "absl/strings/numbers.h"
#include "providers/retry.h"

namespace ftb::providers {

TokenBucket::TokenBucket(double capacity, double per_second, int64_t now_ms)
    : capacity_(capacity), per_second_(per_second), tokens_(capacity), last_ms_(now_ms) {}

void TokenBucket::Refill(int64_t now_ms) {
  if (now_ms > last_ms_) {
    tokens_ = std::min(capacity_, tokens_ + per_second_ * (now_ms - last_ms_) / 1000.0);
    last_ms_ = now_ms;
  }
}

double TokenBucket::available(int64_t now_ms) {
  Refill(now_ms);
  return tokens_;
}

absl::Duration TokenBucket::TryTake(double n, int64_t now_ms) {
  if (capacity_ <= 0) return absl::ZeroDuration();
  Refill(now_ms);
  const double need = std::min(n, capacity_);
  if (tokens_ >= need) {
    tokens_ -= need;
    return absl::ZeroDuration();
  }
  if (per_second_ <= 0) return absl::Seconds(1);
  return absl::Milliseconds(std::max(1.0, (need - tokens_) / per_second_ * 1000.0));
}

void TokenBucket::Observe(double limit, double remaining, absl::Duration reset, int64_t now_ms) {
  Refill(now_ms);
  if (limit > 0) capacity_ = ceiling_ > 0 ? std::min(limit, ceiling_) : limit;
  // Refill so that the window is full again when the provider says it
  // resets; without a reset, spread the limit over a minute.
  const double missing = std::max(0.0, capacity_ - remaining);
  const double reset_s = absl::ToDoubleSeconds(reset);
  per_second_ = reset_s > 0 && missing > 0 ? missing / reset_s : capacity_ / 60.0;
  // A configured share never refills faster than share per minute.
  if (ceiling_ > 0) per_second_ = std::min(per_second_, ceiling_ / 60.0);
  tokens_ = std::min(std::max(0.0, remaining), capacity_);
  last_ms_ = now_ms;
}

void TokenBucket::Reconfigure(double capacity, double per_second, int64_t now_ms) {
  if (capacity == ceiling_) return;  // unchanged (the headers may have lowered it since)
  Refill(now_ms);
  const bool was_unlimited = capacity_ <= 0;
  ceiling_ = capacity;
  capacity_ = capacity;
  per_second_ = per_second;
  tokens_ = was_unlimited ? capacity : std::min(tokens_, capacity);
  last_ms_ = now_ms;
}

void RateLimiter::SetLimits(double requests_per_minute, double tokens_per_minute) {
  absl::MutexLock lock(&mu_);
  const int64_t now = clock_->NowMs();
  if (requests_per_minute > 0) {
    requests_.Reconfigure(requests_per_minute, requests_per_minute / 60.0, now);
  }
  if (tokens_per_minute > 0) tokens_.Reconfigure(tokens_per_minute, tokens_per_minute / 60.0, now);
}

RateLimiter::RateLimiter(double requests_per_minute, double tokens_per_minute,
                         const Clock* clock)
    : clock_(clock),
      requests_(requests_per_minute, requests_per_minute / 60.0, clock->NowMs()),
      tokens_(tokens_per_minute, tokens_per_minute / 60.0, clock->NowMs()) {}

bool RateLimiter::Acquire(double tokens, const std::function<bool(absl::Duration)>& sleep) {
  while (true) {
    absl::Duration wait;
    {
      absl::MutexLock lock(&mu_);
      const int64_t now = clock_->NowMs();
      wait = requests_.TryTake(1, now);
      if (wait == absl::ZeroDuration()) {
        wait = tokens_.TryTake(tokens, now);
        if (wait == absl::ZeroDuration()) return true;
        // Give the request back: both must be taken together.
        requests_.Give(1);
      }
    }
    if (!sleep(wait)) return false;
  }
}

void RateLimiter::Observe(const HttpResponse& response) {
  auto number = [&response](const char* name, double* out) {
    std::string v = response.Header(name);
    return !v.empty() && absl::SimpleAtod(v, out);
  };
  absl::MutexLock lock(&mu_);
  const int64_t now = clock_->NowMs();
  double limit = 0, remaining = 0;
  if (number("x-ratelimit-limit-requests", &limit) &&
      number("x-ratelimit-remaining-requests", &remaining)) {
    requests_.Observe(limit, remaining,
                      ParseResetDuration(response.Header("x-ratelimit-reset-requests"))
                          .value_or(absl::ZeroDuration()),
                      now);
  }
  if (number("x-ratelimit-limit-tokens", &limit) &&
      number("x-ratelimit-remaining-tokens", &remaining)) {
    tokens_.Observe(limit, remaining,
                    ParseResetDuration(response.Header("x-ratelimit-reset-tokens"))
                        .value_or(absl::ZeroDuration()),
                    now);
  }
}

double RateLimiter::available_requests() {
  absl::MutexLock lock(&mu_);
  return requests_.available(clock_->NowMs());
}

double RateLimiter::available_tokens() {
  absl::MutexLock lock(&mu_);
  return tokens_.available(clock_->NowMs());
}

}  // namespace ftb::providers
