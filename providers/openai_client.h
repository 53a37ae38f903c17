// A client for the OpenAI REST API (and compatible services): files,
// fine-tuning jobs and chat completions, over an HttpTransport (libcurl in
// production, scripted in tests).
//
// Every call goes through RestClient (rest_client.h): the rate limiter, then
// retries per RetryPolicy (retry.h): connection errors, 408, 409, 429 and
// 5xx with backoff honouring retry-after(-ms); never 400/401/403/404; a 429
// `insufficient_quota` returns at once with IsInsufficientQuota(). Every
// attempt and retry is counted in ProviderStats::Global().
//
// SECRETS. The API key goes only into the Authorization header. It is never
// logged, and every error message this client returns has it replaced by
// "[REDACTED]" (providers echo keys in 401 bodies).
//
// Thread-safe: one client may serve all of a worker's slots.
#ifndef FTB_PROVIDERS_OPENAI_CLIENT_H_
#define FTB_PROVIDERS_OPENAI_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/rng.h"
#include "nlohmann/json.hpp"
#include "providers/http.h"
#include "providers/rate_limit.h"
#include "providers/rest_client.h"
#include "providers/retry.h"

namespace ftb::providers {

struct OpenAiClientOptions {
  // Up to and including the version, without a trailing slash.
  std::string base_url = "https://api.openai.com/v1";
  std::string api_key;
  // Label of ProviderStats counters.
  std::string provider = "openai";
  RetryOptions retry;
  // Client-side limits before the provider's headers are seen; 0 = none.
  double requests_per_minute = 0;
  double tokens_per_minute = 0;
  absl::Duration timeout = absl::Seconds(120);
  // Not owned; null = RealClock.
  const Clock* clock = nullptr;
  uint64_t jitter_seed = 0x0f7b;
};

class OpenAiClient {
 public:
  OpenAiClient(OpenAiClientOptions options, std::unique_ptr<HttpTransport> transport);

  // POST /files (multipart: purpose=fine-tune, file=<jsonl>). The file object.
  // UploadFile and CreateJob are creates: never repeated after an ambiguous
  // failure, which is marked IsMaybeCreated() (retry.h).
  absl::StatusOr<Json> UploadFile(const std::string& filename, const std::string& jsonl,
                                  const Sleeper& sleep);
  // GET /files/{id}.
  absl::StatusOr<Json> GetFile(const std::string& id, const Sleeper& sleep);
  // GET /files?purpose=P, every page (newest first).
  absl::StatusOr<std::vector<Json>> ListFiles(const std::string& purpose, const Sleeper& sleep);
  // POST /fine_tuning/jobs with `request` as the body. The job object.
  absl::StatusOr<Json> CreateJob(const Json& request, const Sleeper& sleep);
  absl::StatusOr<Json> GetJob(const std::string& id, const Sleeper& sleep);
  // GET /fine_tuning/jobs?metadata[key]=value, following `after` cursors
  // through every page (newest first).
  absl::StatusOr<std::vector<Json>> ListJobsByMetadata(const std::string& key,
                                                       const std::string& value,
                                                       const Sleeper& sleep);
  // GET /fine_tuning/jobs/{id}/events?limit=N: the newest N events, newest
  // first.
  absl::StatusOr<std::vector<Json>> RecentEvents(const std::string& id, int limit,
                                                 const Sleeper& sleep);
  // GET /fine_tuning/jobs/{id}/checkpoints, every page.
  absl::StatusOr<std::vector<Json>> ListCheckpoints(const std::string& id, const Sleeper& sleep);
  // POST /fine_tuning/jobs/{id}/cancel.
  absl::StatusOr<Json> CancelJob(const std::string& id, const Sleeper& sleep);
  // POST /chat/completions. `estimated_tokens` feeds the tokens bucket.
  absl::StatusOr<Json> ChatCompletion(const Json& request, double estimated_tokens,
                                      const Sleeper& sleep);

  // One JSON call with rate limiting, retries and redaction. `path` starts
  // with '/' and is relative to base_url. Errors: as described above;
  // kInternal for a 2xx reply that is not JSON.
  absl::StatusOr<Json> Call(const std::string& method, const std::string& path,
                            const std::string& body, const std::string& content_type,
                            double estimated_tokens, const Sleeper& sleep,
                            bool idempotent = true);

  RateLimiter& limiter() { return rest_.limiter(); }
  const OpenAiClientOptions& options() const { return options_; }

 private:
  absl::StatusOr<std::vector<Json>> ListAll(const std::string& path_and_query,
                                            const Sleeper& sleep);
  const OpenAiClientOptions options_;
  RestClient rest_;
};

}  // namespace ftb::providers

#endif  // FTB_PROVIDERS_OPENAI_CLIENT_H_
