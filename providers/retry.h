// Retry policy for provider REST calls, and the header parsing it needs.
//
// What is retried (with exponential backoff and jitter, honouring the
// provider's retry-after-ms / retry-after when present):
//   - no reply at all (connection refused/reset/dropped: kUnavailable) and
//     timeouts (kDeadlineExceeded);
//   - HTTP 408, 409, 429 (rate limited) and every 5xx.
// Never retried: 400, 401, 403, 404 and other 4xx, and a 429 whose error
// code (or type) is `insufficient_quota`: the account is out of credit, and
// asking again cannot help; it surfaces as kResourceExhausted marked with
// kPausePayload (see IsInsufficientQuota) so the coordinator pauses the
// campaign instead of retrying it.
//
// CREATES ARE NOT RETRIED BLINDLY. A call that creates a billable resource
// (file upload, tuning job) is made with `idempotent` false: after a reply
// that means the server may have carried it out (a timeout, a connection
// reset or dropped after sending, 408, 409 or any 5xx) it is not repeated
// here, since the first request may have created the job and a second would
// pay twice. It fails with kMaybeCreatedPayload instead (IsMaybeCreated), and
// the caller first looks for the resource by its idempotency tag, adopts it
// when found, and creates again only when it is not there. 429, and a
// connection that was never made (RequestNotSent), are still retried: the
// request was refused before any work was done.
//
// THE SERVER'S WORD, as the official OpenAI SDKs take it (openai-python,
// src/openai/_base_client.py: `_should_retry`, `_parse_retry_after_header`,
// `_calculate_retry_timeout`):
//   - `x-should-retry: true` retries the reply whatever its status (a create
//     too: the server says the request was not carried out); `false` never
//     retries it (the error is final and, for a create, not marked
//     IsMaybeCreated: the next task attempt looks the job up anyway).
//   - retry-after-ms (ms), else retry-after as seconds or as an HTTP-date
//     (RFC 9110 section 10.2.3), the wait being the date minus now.
//   - A single wait is capped. The SDK honours a retry-after only when
//     0 < wait <= 60 s and otherwise falls back to its own short backoff; ftb
//     neither sleeps for minutes inside one call nor ignores the server:
//     past RetryOptions::max_retry_after (60 s by default, as the SDK) the
//     attempt fails at once with a retryable error that names the wait, and
//     the coordinator retries the task later.
//
// Thread-safe: RetryPolicy is immutable; RetryState is one per call.
#ifndef FTB_PROVIDERS_RETRY_H_
#define FTB_PROVIDERS_RETRY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/rng.h"
#include "providers/http.h"

namespace ftb::providers {

// Status payload type URL marking an error that needs a human (billing,
// quota): the worker asks the coordinator to pause the campaign.
inline constexpr char kPausePayload[] = "type.ftb.dev/ftb.provider.PauseCampaign";

// kResourceExhausted with kPausePayload.
absl::Status InsufficientQuotaError(std::string_view message);
bool IsInsufficientQuota(const absl::Status& status);

// Status payload type URL marking a failed create call that may nevertheless
// have created its resource (see above).
inline constexpr char kMaybeCreatedPayload[] = "type.ftb.dev/ftb.provider.MaybeCreated";
bool IsMaybeCreated(const absl::Status& status);

struct RetryOptions {
  // Attempts per call, the first included.
  int max_attempts = 8;
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(60);
  // A provider asking for a longer wait (retry-after) fails the attempt
  // instead (see above); 60 s as the OpenAI SDK's limit.
  absl::Duration max_retry_after = absl::Seconds(60);
};

// The error fields of an OpenAI-style error body
// {"error": {"message", "type", "param", "code"}}; empty when absent. For a
// Google-style body {"error": {"code": 404, "message", "status": "NOT_FOUND"}}
// `code` is the status name.
struct ProviderError {
  std::string message;
  std::string type;
  std::string param;
  std::string code;
};
ProviderError ParseProviderError(std::string_view body);

// What to do after one attempt.
struct RetryDecision {
  bool retry = false;
  // When retrying: how long to wait (already jittered / from the headers).
  absl::Duration delay;
  // When not retrying and the attempt failed: the error to return.
  absl::Status error;
};

class RetryPolicy {
 public:
  explicit RetryPolicy(RetryOptions options = {}) : options_(options) {}

  // Decides after attempt `attempt` (1-based) of `what` (e.g. "POST
  // /v1/files", used in messages) got `reply`. A 2xx reply gives
  // {retry=false, error=OK}. `rng` supplies the jitter. `idempotent` false
  // for a create call: an ambiguous failure is then final and marked
  // kMaybeCreatedPayload (see above).
  RetryDecision Decide(int attempt, std::string_view what,
                       const absl::StatusOr<HttpResponse>& reply, Rng& rng,
                       bool idempotent = true) const;

  // Backoff before retry `attempt` + 1 without provider guidance: "equal
  // jitter" in [d/2, d], d = min(max, initial * 2^(attempt-1)).
  absl::Duration Backoff(int attempt, Rng& rng) const;

  // The status code a final HTTP error maps to: 400 kInvalidArgument, 401
  // kUnauthenticated, 403 kPermissionDenied, 404 kNotFound, 408
  // kDeadlineExceeded, 409 kAborted, 429 kResourceExhausted, 5xx
  // kUnavailable, other 4xx kFailedPrecondition.
  static absl::StatusCode CodeForHttpStatus(int status);
  static bool IsRetryableHttpStatus(int status);

  const RetryOptions& options() const { return options_; }

 private:
  RetryOptions options_;
};

// retry-after-ms (milliseconds, may be fractional) wins over retry-after
// (seconds, integer or fractional, or an HTTP-date: IMF-fixdate
// "Sun, 06 Nov 1994 08:49:37 GMT", also the obsolete RFC 850 and asctime
// forms; the wait is the date minus `now`, zero when past). nullopt when
// neither parses.
std::optional<absl::Duration> ParseRetryAfter(const HttpResponse& response,
                                              absl::Time now = absl::Now());

// OpenAI's x-ratelimit-reset-* durations: "1s", "6m0s", "20ms", "1m30.5s",
// "2h0m0s", "0.5s", also a bare number of seconds. nullopt if malformed.
std::optional<absl::Duration> ParseResetDuration(std::string_view text);

}  // namespace ftb::providers

#endif  // FTB_PROVIDERS_RETRY_H_
