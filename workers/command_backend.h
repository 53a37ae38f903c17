// The "command" backend: bring your own trainer. For users with GPUs and
// their own scripts, ftb writes the training data, runs the user's training
// command, then the user's answering command, and turns the answers into
// judge items like every other backend.
//
// MODEL OPTIONS (TuneWork.model.options):
//   train           required. Command template run by /bin/sh -c to train.
//   answer          command template run once per trained model to answer
//                   the questions; or, instead,
//   endpoint        an OpenAI-compatible chat completions server that serves
//                   the trained model (e.g. vLLM with the adapter loaded):
//                     base_url     required, e.g. http://gpu-node:8000/v1
//                     model        required template of the served model's
//                                  name: {model_dir} {epochs} {base_model}
//                                  (substituted as is, not quoted)
//                     api_key_env  variable holding its key (default: none)
//                     max_tokens   1..4096 (default 64)
//                   Every question is asked at temperature 0 with the seed,
//                   through the providers' client (retries with backoff,
//                   rate-limit headers honoured, key redacted).
//                   At epochs 0 (the untuned base model) no training
//                   command runs and the endpoint is asked with the model's
//                   own name ({base_model}): serve the base model under it.
//                   Epochs 0 without an endpoint is an error (an answering
//                   command needs a trained model).
//   snapshots       bool (default false). false: one training run per
//                   distinct epoch count of the task, {epochs} = that count.
//                   true: ONE run to the largest epoch count that saves a
//                   checkpoint at each of {snapshot_epochs} under
//                   {artifact_dir}/epoch-<N>/ (ftb checks they exist).
//   format          training JSONL: "openai" (chat messages; default) or
//                   "vertex" (contents/parts), as `ftb datasets export`.
//   timeout_s       seconds one training command may run (default 86400).
//   answer_timeout_s  seconds one answering command may run (default 3600).
//   artifact_dir    overrides the worker's artifact directory.
//   env             map of extra environment variables for both commands.
// Any other option is an error naming it.
//
// ENVIRONMENT. Both commands are code from whoever submitted the campaign,
// run with the worker's user and files: a worker offering `command` must
// belong to a trusted pool. They do NOT inherit the worker's environment,
// which holds the coordinator token (FTB_AUTH_TOKEN) and provider keys; they
// get only the variables CommandInheritsVariable() admits (PATH, HOME, USER,
// LOGNAME, SHELL, LANG, LANGUAGE, TZ, TERM, TMPDIR, TMP, TEMP,
// LD_LIBRARY_PATH, PYTHONPATH, VIRTUAL_ENV, CONDA_PREFIX, HF_HOME,
// XDG_CACHE_HOME, OMP_NUM_THREADS, and names starting LC_, CUDA_, NVIDIA_,
// ROCR_, HIP_), never one that looks like a secret (common/secret_names.h),
// plus the spec's `env`.
//
// AUTO. `auto` learning rate multiplier or batch size (0 in TuneWork) is an
// error: a training command has no provider default to fall back on (the
// spec refuses it at plan time, naming the field).
//
// PLACEHOLDERS, replaced by shell-quoted values (so paths with spaces are
// safe; do not quote them again in the template):
//   train:  {train_jsonl} {epochs} {snapshot_epochs} (comma-separated)
//           {learning_rate_multiplier} {batch_size} {seed} {base_model}
//           {artifact_dir} {dataset}
//   answer: {model_dir} (the trained model: {artifact_dir}, or its
//           epoch-<N> checkpoint) {questions_jsonl} {answers_jsonl} {epochs}
//           {base_model} {seed}
// An unknown {name} in a template is an error (kInvalidArgument) before
// anything runs.
//
// FILES. questions_jsonl has one line per question, its id unique in the
// file ("<type>/<question id>"):
//   {"id": "memorization/q17", "type": "memorization", "prompt": "..."}
// The answering command writes answers_jsonl, one line per answer:
//   {"id": "...", "answer": "..."}
// A question without an answer line becomes an unavailable item (shown as
// no_answer in reports, not graded); a malformed line is an error naming the
// file and line.
//
// ARTIFACTS. A trained model lives in <artifact_dir>/<key>/, key = SHA-256
// hex of the dataset fingerprint, base model, the train template, format,
// env, learning rate multiplier, batch size, seed and epochs (or the snapshot
// list). Training writes into <key>.tmp.<pid>.<n>/ and renames it when the
// command succeeds (and a `ftb-complete` marker is written), so a model in
// <key>/ is complete, and any worker on the shared volume reuses it instead
// of training again. train.jsonl is written next to the model.
//
// ERRORS. kInvalidArgument for bad options/templates (not retried). A
// command that exits non-zero, is killed by a signal or times out fails
// the attempt (kInternal / kDeadlineExceeded, retried up to max_attempts)
// with the exit status and the tail of its stderr in the message. Output
// lines of both commands go to the task log as they come.
#ifndef FTB_WORKERS_COMMAND_BACKEND_H_
#define FTB_WORKERS_COMMAND_BACKEND_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "workers/backend.h"

namespace ftb::workers {

struct CommandEndpoint {
  std::string base_url;
  std::string model;  // template
  std::string api_key_env;
  int max_tokens = 64;
};

struct CommandModelOptions {
  std::string train;
  std::string answer;  // empty when `endpoint` is set
  std::optional<CommandEndpoint> endpoint;
  bool snapshots = false;
  std::string format = "openai";
  absl::Duration timeout = absl::Seconds(86400);
  absl::Duration answer_timeout = absl::Seconds(3600);
  std::string artifact_dir;  // empty = not set in the task
  std::map<std::string, std::string> env;
};

// Errors: kInvalidArgument naming model.options.<name> and what was expected.
absl::StatusOr<CommandModelOptions> ParseCommandModelOptions(
    const google::protobuf::Struct& options);

// Replaces each {name} in `tmpl` by ShellQuote(values[name]). kInvalidArgument
// for a name not in `values` or an unclosed brace; `{{` and `}}` stand for
// literal braces.
absl::StatusOr<std::string> ExpandTemplate(std::string_view tmpl,
                                           const std::map<std::string, std::string>& values,
                                           std::string_view option_name, bool quote = true);

// True if the commands inherit the worker's variable `name` (the list under
// ENVIRONMENT above).
bool CommandInheritsVariable(std::string_view name);

class CommandBackend : public TuningBackend {
 public:
  static constexpr char kName[] = "command";

  explicit CommandBackend(std::string artifact_dir);
  // Reads options.params["artifact_dir"], else $FTB_ARTIFACT_DIR, else
  // ".ftb-artifacts".
  static std::unique_ptr<CommandBackend> Create(const BackendOptions& options);

  absl::StatusOr<v1::TaskResult> Run(const v1::TaskAssignment& task, TaskContext& ctx) override;

  // For tests: training commands run, and trained models reused.
  int trainings() const { return trainings_.load(); }
  int reuses() const { return reuses_.load(); }

 private:
  const std::string artifact_dir_;
  std::atomic<int> trainings_{0};
  std::atomic<int> reuses_{0};
};

absl::Status RegisterCommandBackend(BackendRegistry& registry);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_COMMAND_BACKEND_H_
