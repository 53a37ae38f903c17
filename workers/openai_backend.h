// The "openai" backend: fine-tunes through the OpenAI REST API (or any
// compatible service at `base_url`) and answers with the tuned models.
//
// WHAT RUN() DOES with a TUNE task (dataset, base model, epochs e1 < ... < en):
//  1. Loads the dataset and writes its training pairs as chat JSONL
//     (datasets::ExportTrainingJsonl, {"messages":[user, assistant]}).
//  2. Uploads it once (POST /files, purpose=fine-tune, file name
//     "<tag>.jsonl").
//  3. Creates as few jobs as the grid allows (POST /fine_tuning/jobs with
//     model, training_file, seed, suffix and metadata carrying the tag, and
//     method.supervised.hyperparameters {n_epochs, batch_size,
//     learning_rate_multiplier}). OpenAI keeps checkpoints of a job's last
//     three epochs, usable as models, so one job of E epochs serves every
//     requested epoch count in [E-2, E]: epochs [1,2,3] take one job,
//     [1,5,10,30] four. (`use_checkpoints: false`: one job per epoch count.)
//  4. Polls each job (GET /fine_tuning/jobs/{id}, backoff from poll_seconds
//     up to max_poll_seconds) until succeeded/failed/cancelled, reporting
//     progress from its newest events (ctx.SetProgress).
//  5. Maps epochs to models: E -> fine_tuned_model; E-1, E-2 -> the
//     checkpoints (GET .../checkpoints, ordered by step_number: the last k
//     checkpoints are epochs E-k+1..E).
//  6. Asks every test question of every cell (POST /chat/completions:
//     model, [system,] user = prompt, temperature 0, seed, max_tokens).
//  EPOCHS 0 is the untuned base model (the paper's baseline): its cell is
//  answered by the model name itself; a task whose only epoch count is 0
//  uploads no file and creates no job. An `auto` batch size or learning
//  rate multiplier (0 in TuneWork) is left out of the hyperparameters, so
//  OpenAI picks its default ("auto").
//  Result: answers per cell (as the local backend: one JudgeItem per
//  question); tokens = trained_tokens of every job + prompt + completion
//  tokens; cost_usd from cost::PriceTable::Builtin() ("openai", model name):
//  trained tokens x training price + usage x input/output prices (the
//  base_* prices for the base model's answers).
//
// NEVER PAYING TWICE. The task's tag is "ftb-" + 16 hex digits of SHA-256
// over (campaign id, task id); each job adds "-e<E>". Before an upload or a
// job creation the backend records an intent (ctx.RecordIntent: kind
// "file"/"job", the tag, no id) durably at the coordinator, and after it the
// provider's id. A later attempt receives those intents in
// TaskAssignment.intents and adopts the file/job they name; when an intent
// has no id (the worker died during the call) or there are no intents at all,
// it looks the resource up by its tag (files by name, jobs by
// metadata[ftb_tag]) before creating one. Answers are appended, as they
// arrive, to <artifact_dir>/openai/<tag>/answers.jsonl (flushed per line)
// and never asked again on a retry on the same machine (on another machine
// they are asked again: at most one task's answers are paid twice). Adopted
// jobs' trained tokens and cached answers' usage count in this attempt's cost:
// the attempt that paid them never reported.
//
// CANCELLATION. When ctx.cancelled() the backend stops polling; it cancels
// the provider jobs (POST .../cancel) only if the coordinator says the
// campaign was cancelled (RecordIntent "cancel" reply). A lost lease or a
// worker shutdown leaves the jobs running for the next attempt to adopt.
//
// MODEL OPTIONS (TuneWork.model.options):
//   base_url          string, default "https://api.openai.com/v1"
//   api_key_env       string: environment variable holding the key
//                     (default OPENAI_API_KEY)
//   api_key_file      string: a file holding the key (wins over the env var)
//   max_tokens        completion limit per answer, 1..4096 (default 64)
//   system_prompt     string, sent before each question (default none)
//   use_checkpoints   bool (default true)
//   poll_seconds      first poll interval, > 0 (default 10)
//   max_poll_seconds  longest poll interval (default 60)
//   paused_timeout_seconds  how long a paused job is waited for before the
//                     task fails, not retried, naming the job and its state
//                     (default 86400 = 24 h; counted from when this attempt
//                     first saw it paused)
//   requests_per_minute, tokens_per_minute   client-side limits (default 0:
//                     learn them from x-ratelimit-* headers)
//   http_max_attempts attempts per REST call, 1..20 (default 8)
//   http_backoff_ms   first retry backoff (default 500)
//   artifact_dir      string: where answers are cached (default: the
//                     worker's artifact_dir option, $FTB_ARTIFACT_DIR, or
//                     ".ftb-artifacts")
// Any other option is an error. The API key is never logged, never sent to
// the coordinator and redacted from every error.
//
// ERRORS: kInvalidArgument (bad task or options, 400s, a job that failed on
// its training file); kFailedPrecondition (no API key); kUnauthenticated /
// kPermissionDenied (401/403); kNotFound (404, e.g. an unknown model);
// kResourceExhausted with kPauseCampaignPayload (insufficient_quota: the
// coordinator pauses the campaign); kUnavailable (5xx / connection errors
// after retries, a job that failed on the provider's side); kCancelled.
//
// Thread-safe: Run() may be called concurrently; clients (and their rate
// limiters) are shared per (base_url, key).
#ifndef FTB_WORKERS_OPENAI_BACKEND_H_
#define FTB_WORKERS_OPENAI_BACKEND_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "providers/openai_client.h"
#include "workers/backend.h"

namespace ftb::workers {

class OpenAiBackend : public TuningBackend {
 public:
  static constexpr char kName[] = "openai";

  explicit OpenAiBackend(std::string artifact_dir);
  static std::unique_ptr<OpenAiBackend> Create(const BackendOptions& options);

  absl::StatusOr<v1::TaskResult> Run(const v1::TaskAssignment& task, TaskContext& ctx) override;

 private:
  providers::OpenAiClient* ClientFor(const providers::OpenAiClientOptions& options);

  const std::string artifact_dir_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<providers::OpenAiClient>> clients_ ABSL_GUARDED_BY(mu_);
};

// The idempotency tag of a task (see above).
std::string OpenAiTaskTag(const std::string& campaign_id, const std::string& task_id);

// Jobs for ascending `epochs`: each entry is a job's n_epochs and the epoch
// counts it serves (all within [n_epochs - 2, n_epochs] with checkpoints).
std::map<uint32_t, std::vector<uint32_t>> PlanOpenAiJobs(const std::vector<uint32_t>& epochs,
                                                         bool use_checkpoints);

absl::Status RegisterOpenAiBackend(BackendRegistry& registry);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_OPENAI_BACKEND_H_
