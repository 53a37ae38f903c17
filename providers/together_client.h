// A client for Together AI's fine-tuning REST API: files, fine-tune jobs,
// their events and checkpoints, and chat completions on the tuned model,
// over an HttpTransport (libcurl in production, scripted in tests).
//
// Wire details follow Together's published OpenAPI document
// (togethercomputer/openapi, openapi.yaml at commit
// 090263aa0fde006d9cd958bef52719958079bbc4, 2026-04-28) and API reference
// (docs.together.ai/reference): server https://api.together.ai/v1,
// "Authorization: Bearer <key>", multipart POST /files/upload (fields
// purpose=fine-tune, file_name, file), POST /fine-tunes, GET /fine-tunes,
// GET /fine-tunes/{id}, .../events, .../checkpoints, POST .../cancel,
// POST /chat/completions. List replies are {"data": [...]} with no paging
// (FinetuneTruncatedList, FinetuneListEvents, FinetuneListCheckpoints). Job
// "status" is one of FinetuneJobStatus: pending, queued, running,
// compressing, uploading, cancel_requested, cancelled, error, completed. A
// job object carries no error field: a failed job has status "error" and
// the reason is the message of its FineTuneEvent of type "job_error"
// (FailureReason). Errors are ErrorData {"error": {"message", "type",
// "param", "code"}}, which ParseProviderError (retry.h) reads.
//
// Every call goes through RestClient (rest_client.h): rate limiter, retries
// per RetryPolicy (retry.h, x-should-retry and retry-after honoured), stats
// and redaction. UploadFile and CreateJob are creates: never repeated after
// an ambiguous failure (timeout or 5xx after the request was sent), which
// fails with IsMaybeCreated(); the caller then looks the job up with
// FindJobsByTag before creating again (never pay twice).
//
// SECRETS. The API key goes only into the Authorization header; every error
// message returned has it replaced by "[REDACTED]".
//
// Thread-safe: one client may serve all of a worker's slots.
#ifndef FTB_PROVIDERS_TOGETHER_CLIENT_H_
#define FTB_PROVIDERS_TOGETHER_CLIENT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "nlohmann/json.hpp"
#include "providers/http.h"
#include "providers/rest_client.h"
#include "providers/retry.h"

namespace ftb::providers {

struct TogetherClientOptions {
  // Up to and including the version, without a trailing slash.
  std::string base_url = "https://api.together.ai/v1";
  std::string api_key;
  // Transport loop settings (retries, client-side limits, timeout, clock);
  // rest.provider labels the ProviderStats counters.
  RestClientOptions rest = DefaultRest();

  static RestClientOptions DefaultRest() {
    RestClientOptions r;
    r.provider = "together";
    return r;
  }
};

// The body of POST /fine-tunes (openapi.yaml, /fine-tunes post requestBody:
// model and training_file required; togethercomputer/openapi at 090263a,
// 2026-04-28). Unset optionals are left out so the
// service applies its own defaults.
struct TogetherJobRequest {
  std::string model;
  std::string training_file;
  int n_epochs = 1;
  // How many checkpoints to keep over the run; set to n_epochs so one job
  // serves every epoch count up to n_epochs (one checkpoint per epoch).
  std::optional<int> n_checkpoints;
  std::optional<double> learning_rate;
  // An integer; Together also accepts the string "max", not used here.
  std::optional<int> batch_size;
  // LoRA adapter (schema LoRATrainingType: type "Lora", lora_r and
  // lora_alpha required); false = full fine-tuning (FullTrainingType).
  bool lora = true;
  int lora_r = 8;
  int lora_alpha = 16;
  std::optional<double> lora_dropout;
  std::optional<std::string> lora_trainable_modules;
  // Appended to the output model name; carries our idempotency tag, which
  // is how FindJobsByTag recognises our job after an ambiguous create.
  std::string suffix;
  // Sent as random_seed.
  std::optional<int> seed;
  // training_method is TrainingMethodSFT {method: "sft", train_on_inputs},
  // both required by the schema; train_on_inputs is a boolean or "auto"
  // (the top-level train_on_inputs is deprecated and not sent). One of
  // "auto", "true", "false".
  std::string train_on_inputs = "auto";

  Json ToJson() const;
};

class TogetherClient {
 public:
  TogetherClient(TogetherClientOptions options, std::unique_ptr<HttpTransport> transport);

  // POST /files/upload (multipart: purpose=fine-tune, file_name, file). The
  // file object ("id" is the training_file of a job).
  absl::StatusOr<Json> UploadFile(const std::string& filename, const std::string& jsonl,
                                  const Sleeper& sleep);
  // POST /fine-tunes. The job object ("id", "status", ...).
  absl::StatusOr<Json> CreateJob(const TogetherJobRequest& request, const Sleeper& sleep);
  // GET /fine-tunes/{id}.
  absl::StatusOr<Json> GetJob(const std::string& id, const Sleeper& sleep);
  // GET /fine-tunes: every job of the account, one {"data": [...]} reply
  // (the operation takes no parameters; kInternal when "data" is missing).
  absl::StatusOr<std::vector<Json>> ListJobs(const Sleeper& sleep);
  // The jobs of ListJobs whose "suffix" or "model_output_name"
  // (FinetuneResponseTruncated) contains `tag`, in listed order. Used to
  // adopt a job created by an earlier attempt (or by a create whose reply
  // was lost).
  absl::StatusOr<std::vector<Json>> FindJobsByTag(const std::string& tag, const Sleeper& sleep);
  // GET /fine-tunes/{id}/events: the job's events as listed.
  absl::StatusOr<std::vector<Json>> ListEvents(const std::string& id, const Sleeper& sleep);
  // GET /fine-tunes/{id}/checkpoints: {"data": [{step, path, checkpoint_type,
  // created_at}, ...]}; "path" is the model name to send to chat completions.
  absl::StatusOr<std::vector<Json>> ListCheckpoints(const std::string& id, const Sleeper& sleep);
  // The message of the newest event of type "job_error" in `events`
  // (ListEvents), "" when there is none.
  static std::string FailureReason(const std::vector<Json>& events);
  // POST /fine-tunes/{id}/cancel. Cancelling is idempotent on the service.
  absl::StatusOr<Json> CancelJob(const std::string& id, const Sleeper& sleep);
  // POST /chat/completions. `estimated_tokens` feeds the tokens bucket.
  absl::StatusOr<Json> ChatCompletion(const Json& request, double estimated_tokens,
                                      const Sleeper& sleep);

  RateLimiter& limiter() { return rest_.limiter(); }
  const TogetherClientOptions& options() const { return options_; }

 private:
  absl::StatusOr<Json> Call(const std::string& method, const std::string& path,
                            const std::string& body, const std::string& content_type,
                            double estimated_tokens, const Sleeper& sleep,
                            bool idempotent = true);
  // The "data" list of a reply, or kInternal naming `what`.
  static absl::StatusOr<std::vector<Json>> DataList(Json reply, const std::string& what);

  const TogetherClientOptions options_;
  RestClient rest_;
};

}  // namespace ftb::providers

#endif  // FTB_PROVIDERS_TOGETHER_CLIENT_H_
