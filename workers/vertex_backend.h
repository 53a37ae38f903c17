// The "vertex" backend: supervised tuning of Gemini models on Vertex AI
// (REST v1, providers/vertex_client.h) and answering with the tuned models.
//
// PREREQUISITE: the training data must already be in Cloud Storage. The
// backend does not upload it: export it with
//   ftb datasets export NAME --format vertex --out train.jsonl
// (the same dataset, size and seed as the campaign's), copy it to a bucket
// (`gcloud storage cp train.jsonl gs://BUCKET/ftb/NAME.jsonl`) and name the
// URI in `training_data_uri` ("{dataset}" in it is replaced by the dataset's
// name, so one campaign-wide option can serve several datasets).
//
// WHAT RUN() DOES with a TUNE task (dataset, base model, epochs e1 < ... < en):
//  1. Creates one tuning job per epoch count (POST .../tuningJobs with
//     baseModel, supervisedTuningSpec{trainingDatasetUri,
//     validationDatasetUri?, hyperParameters{epochCount,
//     learningRateMultiplier, adapterSize?}}, tunedModelDisplayName = the
//     job's tag and labels{ftb-tag}). Vertex keeps no intermediate
//     checkpoints that can be served, so unlike openai one job cannot serve
//     several epoch counts: [1, 2, 3] takes three jobs.
//  2. Polls each job (GET .../tuningJobs/ID, backoff from poll_seconds up to
//     max_poll_seconds) until JOB_STATE_SUCCEEDED / FAILED / CANCELLED /
//     EXPIRED.
//  3. Asks every test question of every cell on the tuned model's endpoint
//     (POST /v1/{tunedModel.endpoint}:generateContent: the prompt as one user
//     turn, generationConfig{temperature 0, maxOutputTokens, seed}).
//  EPOCHS 0 is the untuned base model (the paper's baseline): its cell is
//  answered by projects/P/locations/L/publishers/google/models/<model>, and
//  a task whose only epoch count is 0 creates no tuning job. An `auto`
//  learning rate multiplier (0 in TuneWork) is left out of hyperParameters,
//  so Vertex picks its default. Vertex tuning has no batch size: the value
//  is not sent (`auto` says so honestly).
//  Result: answers per cell (one JudgeItem per question); tokens = trained
//  tokens (tuningDataStats.supervisedTuningDataStats.totalBillableTokenCount
//  x epochCount, per job) + usageMetadata prompt + candidates tokens;
//  cost_usd at the built-in prices ("vertex", model name: pricing/vertex.yaml).
//
// NEVER PAYING TWICE. The task's tag is "ftb-" + 16 hex digits of SHA-256
// over (campaign id, task id); each job adds "-e<E>" and carries it as its
// display name and label ftb-tag. Before creating a job the backend records
// an intent (ctx.RecordIntent: kind "job", the tag, no id) durably at the
// coordinator, and after it the job's resource name. A later attempt adopts
// the job its intents name; when an intent has no name (the worker died
// during the call) or there are none, it lists jobs with the filter
// `labels.ftb-tag=TAG` and adopts a live or succeeded one before creating
// another. Answers are appended as they arrive to
// <artifact_dir>/vertex/<tag>/answers.jsonl and not asked again on a retry
// on the same machine. Adopted jobs and cached answers count in this
// attempt's cost (the attempt that paid them never reported).
//
// CANCELLATION. When ctx.cancelled() the backend stops polling; it cancels
// the tuning jobs (POST .../tuningJobs/ID:cancel) only if the coordinator
// says the campaign was cancelled; a lost lease or a worker shutdown leaves
// them running for the next attempt to adopt.
//
// MODEL OPTIONS (TuneWork.model.options):
//   project            string, required: the Google Cloud project id
//   location           string, default "us-central1"
//   training_data_uri  string, required: gs://BUCKET/PATH of the JSONL
//                      ({dataset} is replaced by the dataset name)
//   validation_data_uri string: gs:// URI of a validation JSONL (optional)
//   adapter_size       1, 4, 8, 16 or 32 (default: Vertex's choice)
//   max_output_tokens  completion limit per answer, 1..8192 (default 64)
//   system_prompt      string, sent as systemInstruction (default none)
//   base_url           default "https://{location}-aiplatform.googleapis.com"
//   access_token_env   environment variable holding an access token
//                      (default VERTEX_ACCESS_TOKEN)
//   token_command      a command printing an access token, e.g.
//                      "gcloud auth print-access-token" (wins over the env
//                      var; run once, and again when a call gets 401)
//   poll_seconds       first poll interval, > 0 (default 30)
//   max_poll_seconds   longest poll interval (default 300)
//   paused_timeout_seconds  how long a paused job is waited for before the
//                     task fails, not retried, naming the job and its state
//                     (default 86400 = 24 h; counted from when this attempt
//                     first saw it paused)
//   requests_per_minute, tokens_per_minute   client-side limits (default 0)
//   http_max_attempts  attempts per REST call, 1..20 (default 8)
//   http_backoff_ms    first retry backoff (default 1000)
//   artifact_dir       where answers are cached (default: the worker's
//                      artifact_dir option, $FTB_ARTIFACT_DIR, or
//                      ".ftb-artifacts"; "off" for none)
// Any other option is an error. Tokens are never logged, never sent to the
// coordinator and redacted from every error.
//
// ERRORS: kInvalidArgument (bad task or options, 400s, a job that failed on
// its data); kFailedPrecondition (no token); kUnauthenticated /
// kPermissionDenied (401/403, a failing token_command); kNotFound (404: an
// unknown project, model or job); kResourceExhausted / kUnavailable (429 /
// 5xx / connection errors after retries, a job that failed on Google's side:
// retried); kAborted (a job cancelled at the provider); kCancelled.
//
// Thread-safe: Run() may be called concurrently; clients (and their rate
// limiters) are shared per (base_url, project, location, credentials).
#ifndef FTB_WORKERS_VERTEX_BACKEND_H_
#define FTB_WORKERS_VERTEX_BACKEND_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "providers/vertex_client.h"
#include "workers/backend.h"

namespace ftb::workers {

class VertexBackend : public TuningBackend {
 public:
  static constexpr char kName[] = "vertex";

  explicit VertexBackend(std::string artifact_dir);
  static std::unique_ptr<VertexBackend> Create(const BackendOptions& options);

  absl::StatusOr<v1::TaskResult> Run(const v1::TaskAssignment& task, TaskContext& ctx) override;

 private:
  providers::VertexClient* ClientFor(const providers::VertexClientOptions& options);

  const std::string artifact_dir_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<providers::VertexClient>> clients_ ABSL_GUARDED_BY(mu_);
};

// The idempotency tag of a task (see above).
std::string VertexTaskTag(const std::string& campaign_id, const std::string& task_id);

// Checks a gs://BUCKET/OBJECT URI. kInvalidArgument naming `field` if not.
absl::Status ValidateGcsUri(const std::string& uri, const std::string& field);

absl::Status RegisterVertexBackend(BackendRegistry& registry);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_VERTEX_BACKEND_H_
