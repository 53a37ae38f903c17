// The transport loop every provider REST client shares: one JSON call goes
// through the client-side rate limiter (rate_limit.h), is sent over an
// HttpTransport, retried per RetryPolicy (retry.h: connection errors, 408,
// 409, 429 and 5xx with backoff honouring retry-after(-ms); never
// 400/401/403/404; a 429 `insufficient_quota` at once; a create call is not
// repeated after an ambiguous failure), counted in
// ProviderStats::Global(), and its errors have the bearer token redacted.
// OpenAiClient and VertexClient are thin layers of paths and bodies over it.
//
// SECRETS. The bearer token goes only into the Authorization header; every
// error message returned has it replaced by "[REDACTED]".
//
// Thread-safe: one RestClient may serve all of a worker's slots.
#ifndef FTB_PROVIDERS_REST_CLIENT_H_
#define FTB_PROVIDERS_REST_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/rng.h"
#include "nlohmann/json.hpp"
#include "providers/http.h"
#include "providers/rate_limit.h"
#include "providers/retry.h"

namespace ftb::providers {

using Json = nlohmann::json;

// Waits between attempts; returns false to give up (the caller was
// cancelled), which ends the call with kCancelled.
using Sleeper = std::function<bool(absl::Duration)>;
// absl::SleepFor, never cancelled.
Sleeper PlainSleeper();

struct RestClientOptions {
  // Label of ProviderStats counters.
  std::string provider;
  RetryOptions retry;
  // Client-side limits before the provider's headers are seen; 0 = none.
  double requests_per_minute = 0;
  double tokens_per_minute = 0;
  absl::Duration timeout = absl::Seconds(120);
  // Not owned; null = RealClock.
  const Clock* clock = nullptr;
  uint64_t jitter_seed = 0x0f7b;
};

class RestClient {
 public:
  RestClient(RestClientOptions options, std::unique_ptr<HttpTransport> transport);

  // One JSON call to `url` with "Authorization: Bearer <bearer>" (none when
  // `bearer` is empty). `estimated_tokens` feeds the tokens bucket. Returns
  // the parsed 2xx body (an empty body parses as {}). Errors: as described
  // above, with `bearer` redacted; kCancelled when `sleep` gave up; kInternal
  // for a 2xx reply that is not JSON. `idempotent` false for a call that
  // creates a billable resource: see retry.h (IsMaybeCreated).
  absl::StatusOr<Json> Call(const std::string& method, const std::string& url,
                            const std::string& bearer, const std::string& body,
                            const std::string& content_type, double estimated_tokens,
                            const Sleeper& sleep, bool idempotent = true);

  RateLimiter& limiter() { return limiter_; }
  const RestClientOptions& options() const { return options_; }

 private:
  const RestClientOptions options_;
  const std::unique_ptr<HttpTransport> transport_;
  const RetryPolicy policy_;
  RateLimiter limiter_;
  absl::Mutex rng_mu_;
  Rng rng_ ABSL_GUARDED_BY(rng_mu_);
};

// `status` with every occurrence of `secret` in its message redacted
// (payloads kept).
absl::Status RedactStatus(const absl::Status& status, std::string_view secret);

// "%XX"-escapes everything but unreserved characters (RFC 3986).
std::string UrlEncode(const std::string& text);

}  // namespace ftb::providers

#endif  // FTB_PROVIDERS_REST_CLIENT_H_
