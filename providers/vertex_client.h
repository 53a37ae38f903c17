// A client for Vertex AI's Gemini supervised tuning REST API (v1): tuning
// jobs (create, get, list with a filter, cancel) and generateContent on a
// tuned model's endpoint, over RestClient (rest_client.h: rate limiting,
// retries of connection errors / 408 / 409 / 429 / 5xx with backoff
// honouring retry-after, never 400/401/403/404, ProviderStats counters).
//
// AUTH. Google OAuth access tokens, sent as "Authorization: Bearer TOKEN".
// Either a fixed token (e.g. from $VERTEX_ACCESS_TOKEN), or a command that
// prints one (`gcloud auth print-access-token`): the command is run on the
// first call and again after a 401 (tokens expire after about an hour), and
// the call is then repeated once with the new token. Tokens are never logged;
// every error this client returns has each token it has used replaced by
// "[REDACTED]" (also in the command's own error output).
//
// Thread-safe: one client may serve all of a worker's slots.
#ifndef FTB_PROVIDERS_VERTEX_CLIENT_H_
#define FTB_PROVIDERS_VERTEX_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "providers/http.h"
#include "providers/rest_client.h"

namespace ftb::providers {

struct VertexClientOptions {
  // Scheme and host, without "/v1" or a trailing slash; empty = the regional
  // endpoint "https://{location}-aiplatform.googleapis.com".
  std::string base_url;
  std::string project;
  std::string location = "us-central1";
  // A fixed access token; used when `token_command` is empty.
  std::string access_token;
  // A shell command (/bin/sh -c) printing an access token on stdout.
  std::string token_command;
  absl::Duration token_command_timeout = absl::Seconds(60);
  // RestClient's settings (provider label "vertex" unless set).
  RestClientOptions rest;
};

class VertexClient {
 public:
  VertexClient(VertexClientOptions options, std::unique_ptr<HttpTransport> transport);

  // "projects/P/locations/R".
  std::string Parent() const;
  // The full name of a tuning job given its name or bare id.
  std::string JobName(const std::string& name_or_id) const;

  // POST /v1/{parent}/tuningJobs with `job` (a TuningJob) as the body. The
  // created TuningJob. A create: never repeated after an ambiguous failure,
  // which is marked IsMaybeCreated() (retry.h).
  absl::StatusOr<Json> CreateTuningJob(const Json& job, const Sleeper& sleep);
  // GET /v1/{name}.
  absl::StatusOr<Json> GetTuningJob(const std::string& name_or_id, const Sleeper& sleep);
  // GET /v1/{parent}/tuningJobs?filter=F&pageSize=100, following
  // nextPageToken through every page. `filter` may be empty (all jobs), e.g.
  // "labels.ftb-tag=ftb-0123abcd".
  absl::StatusOr<std::vector<Json>> ListTuningJobs(const std::string& filter,
                                                   const Sleeper& sleep);
  // POST /v1/{name}:cancel. Cancellation is asynchronous at the provider.
  absl::Status CancelTuningJob(const std::string& name_or_id, const Sleeper& sleep);
  // POST /v1/{endpoint}:generateContent, `endpoint` a resource name
  // ("projects/P/locations/R/endpoints/E") or a publisher model
  // ("projects/P/locations/R/publishers/google/models/M").
  // `estimated_tokens` feeds the tokens bucket.
  absl::StatusOr<Json> GenerateContent(const std::string& endpoint, const Json& request,
                                       double estimated_tokens, const Sleeper& sleep);

  // One JSON call to base_url + path with the current token, refreshing it
  // once on a 401 when it comes from a command. Errors: RestClient's;
  // kUnauthenticated (or the command's error) when no token can be had.
  absl::StatusOr<Json> Call(const std::string& method, const std::string& path,
                            const std::string& body, double estimated_tokens,
                            const Sleeper& sleep, bool idempotent = true);

  RateLimiter& limiter() { return rest_.limiter(); }
  const VertexClientOptions& options() const { return options_; }

 private:
  // The token to use; runs the command when there is none yet or `refresh`.
  absl::StatusOr<std::string> Token(bool refresh);
  absl::Status RedactAll(absl::Status status);

  const VertexClientOptions options_;
  const std::string base_url_;
  RestClient rest_;
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  // Every token used so far (newest last, a few at most), for redaction.
  std::vector<std::string> used_tokens_ ABSL_GUARDED_BY(mu_);
};

// Runs `command` with /bin/sh -c and returns its stdout, whitespace-trimmed.
// Errors: kUnauthenticated when it exits non-zero, prints nothing or takes
// longer than `timeout` (the tail of its stderr in the message; it is killed
// on timeout); kInternal when it cannot be started.
absl::StatusOr<std::string> RunTokenCommand(const std::string& command, absl::Duration timeout);

}  // namespace ftb::providers

#endif  // FTB_PROVIDERS_VERTEX_CLIENT_H_
