// The "local" backend: fine-tunes a small decoder-only transformer
// (trainer/) in-process on CPU, from scratch, and answers with it. The
// default campaign runs on it; no GPU, key or download.
//
// WHAT RUN() DOES with a TUNE task:
//  1. Loads the dataset (datasets::LoadDataset on TuneWork.dataset) and
//     builds a word-level tokenizer from all its texts (training, prior and
//     every test set's prompts and answers).
//  2. Initializes the model from TuneWork.seed. For a dataset that
//     `updates_knowledge` (with prior items), first trains `prior_epochs`
//     epochs on `prior` (the old facts: that is the "base model"), then
//     fine-tunes on `training` with a fresh optimizer (both phases use the
//     task's learning rate and batch size); otherwise fine-tunes
//     on `training` directly. One run to the largest epoch count serves every
//     cell: after each requested epoch count it snapshots the weights.
//  3. With each snapshot, answers every question of every test set greedily
//     (prompt = QaItem.prompt, at most max_new_tokens tokens) and fills that
//     cell's CellAnswers: one JudgeItem per question with question_type (the
//     type name), question_id (QaItem.id), prompt, reference (the answer),
//     answer_before, context and the model's answer (trimmed).
//  Result: answers parallel to cell_ids; tokens = training tokens processed
//  (whole sequences, prior phase included; 0 when every snapshot came from
//  artifacts); cost_usd 0; digest = SHA-256 hex over cell ids, question ids
//  and answers.
//
// HYPERPARAMETERS. learning rate = learning_rate (base) x
// TuneWork.learning_rate_multiplier; batch size = TuneWork.batch_size;
// Adam (0.9, 0.999, 1e-8), 10 warm-up steps, gradient clipping to norm
// grad_clip. The same task gives bit-identical weights and answers on the
// same machine and build.
//
// MODEL OPTIONS (TuneWork.model.options; integers may be given as numbers or
// strings holding integers):
//   layers          transformer blocks, 1..24 (default 2)
//   width           model dimension, 8..1024 (default 128)
//   heads           attention heads, dividing width (default 4)
//   max_new_tokens  longest generated answer, 1..256 (default 8)
//   max_len         longest sequence, 8..4096; 0 = the dataset's longest
//                   prompt plus its longest answer plus 3, rounded up to a
//                   multiple of 16 (default 0)
//   prior_epochs    epochs on the prior facts of an updates_knowledge
//                   dataset, 0..1000 (default 10)
//   learning_rate   base Adam rate, (0, 1] (default 5e-4)
//   grad_clip       gradient norm limit, >= 0, 0 = none (default 1.0)
//   tie_embeddings  bool: output projection = token embedding (default false)
//   artifact_dir    string: overrides the worker's artifact directory
// Any other option is an error.
//
// ARTIFACTS. Each snapshot's weights are stored content-addressed in
// <artifact_dir>/<key>/weights.bin (written to a temporary file and
// renamed), with the key's input text in key.txt beside it. key = SHA-256
// hex of the dataset fingerprint, model name, the resolved model and
// optimizer settings (not max_new_tokens or artifact_dir), learning rate
// multiplier, batch size, seed and that snapshot's epoch count. A task
// whose snapshots are ALL present loads them and only answers (no
// training); otherwise it trains and (re)writes them. An unreadable or
// corrupt artifact is logged and the task trains instead; failing to write
// one is logged, not an error. artifact_dir: the task option, else the
// worker's backend option `artifact_dir`, else $FTB_ARTIFACT_DIR, else
// ".ftb-artifacts"; the value "off" disables artifacts.
//
// ERRORS (none retryable unless noted):
//   kInvalidArgument  not a TUNE task; no epochs; epochs not ascending or 0;
//                     epochs and cell_ids of different lengths; batch_size 0;
//                     learning_rate_multiplier not > 0; an invalid or unknown
//                     option (the message names model.options.<name> and
//                     what was expected); whatever LoadDataset rejects;
//   kNotFound         a missing dataset (as LoadDataset);
//   kCancelled        ctx.cancelled(), polled before every optimizer step
//                     and before answering each snapshot.
//
// Thread-safe: Run() may be called concurrently (each call trains its own
// model single-threaded; run two slots on two cores).
#ifndef FTB_WORKERS_LOCAL_BACKEND_H_
#define FTB_WORKERS_LOCAL_BACKEND_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "workers/backend.h"

namespace ftb::workers {

// The parsed TuneWork.model.options of a local task, defaults filled in.
struct LocalModelOptions {
  int layers = 2;
  int width = 128;
  int heads = 4;
  int max_new_tokens = 8;
  int max_len = 0;
  int prior_epochs = 10;
  double learning_rate = 5e-4;
  double grad_clip = 1.0;
  bool tie_embeddings = false;
  // Empty = not set in the task.
  std::string artifact_dir;
};

// Errors: kInvalidArgument as described above.
absl::StatusOr<LocalModelOptions> ParseLocalModelOptions(const google::protobuf::Struct& options);

class LocalBackend : public TuningBackend {
 public:
  static constexpr char kName[] = "local";

  // `artifact_dir`: the worker-level default (see ARTIFACTS); "off"
  // disables artifacts unless a task sets its own directory.
  explicit LocalBackend(std::string artifact_dir);

  // Reads options.params["artifact_dir"], else $FTB_ARTIFACT_DIR, else
  // ".ftb-artifacts". Other params are ignored (they belong to other
  // backends).
  static std::unique_ptr<LocalBackend> Create(const BackendOptions& options);

  absl::StatusOr<v1::TaskResult> Run(const v1::TaskAssignment& task, TaskContext& ctx) override;

  const std::string& artifact_dir() const { return artifact_dir_; }

  // Observations for tests: Run() calls that trained a model, and those that
  // answered from stored artifacts only.
  int trainings() const { return trainings_.load(); }
  int reuses() const { return reuses_.load(); }

 private:
  const std::string artifact_dir_;
  std::atomic<int> trainings_{0};
  std::atomic<int> reuses_{0};
};

// Registers "local" in `registry`. Errors: as BackendRegistry::Register.
absl::Status RegisterLocalBackend(BackendRegistry& registry);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_LOCAL_BACKEND_H_
