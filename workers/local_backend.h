// The "local" backend: fine-tunes a small decoder-only transformer
// (trainer/) in-process on CPU and answers with it, optionally after a
// pretraining stage on a built-in background corpus that stands in for a
// pretrained model's world knowledge. The default campaign runs on it; no
// GPU, key or download.
//
// WHAT RUN() DOES with a TUNE task:
//  1. Loads the dataset (datasets::LoadDataset on TuneWork.dataset). With
//     pretrain_epochs > 0, generates the background corpus
//     (datasets::GenerateBackground(background_size, background_seed), its
//     invented names avoiding every word of the dataset's texts). Builds a
//     word-level tokenizer from all texts (training, prior, every test set's
//     prompts and answers, the background corpus).
//  2. The base model. With pretrain_epochs > 0: the model initialized from
//     background_seed and trained pretrain_epochs epochs on the background
//     corpus (the base learning_rate without the task's multiplier, batch
//     size 16, data order from background_seed), so every cell of the same
//     model and dataset starts from the same pretrained model; it is stored
//     as an artifact of its own (ARTIFACTS) and reused. Otherwise: the model
//     initialized from TuneWork.seed (training from scratch). For a dataset
//     that `updates_knowledge` (with prior items), the base model then
//     trains `prior_epochs` epochs on `prior` (the old facts; the task's
//     learning rate, batch size and seed).
//  3. Fine-tunes on `training` with a fresh optimizer. One run to the
//     largest epoch count serves every cell: after each requested epoch count
//     it snapshots the weights. Epochs 0 (the base-model baseline) is the
//     base model of step 2 itself: the pretrained model (after the prior
//     phase for updates_knowledge), before any new fact; a task whose epochs
//     are all 0 does not fine-tune.
//  4. With each snapshot, answers every question of every test set greedily
//     (prompt = QaItem.prompt, at most max_new_tokens tokens) and fills that
//     cell's CellAnswers: one JudgeItem per question with question_type (the
//     type name), question_id (QaItem.id), prompt, reference (the answer),
//     answer_before, context and the model's answer (trimmed).
//  Result: answers parallel to cell_ids; tokens = training tokens processed
//  by this task (whole sequences, pretraining and prior phase included when
//  run here, not when the pretrained model came from its artifact; 0 when
//  every snapshot came from artifacts); cost_usd 0; digest = SHA-256 hex
//  over cell ids, question ids and answers.
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
//   pretrain_epochs epochs on the background corpus before anything else,
//                   0..1000; 0 = no pretraining, train from scratch
//                   (default 0; the default campaign sets 16)
//   background_size background people in the corpus, 0..10000 (default 40;
//                   the general facts are always in)
//   background_seed seed of the corpus, the pretrained model's initial
//                   weights and its data order, 0..2^30 (default 0)
//   learning_rate   base Adam rate, (0, 1] (default 5e-4)
//   grad_clip       gradient norm limit, >= 0, 0 = none (default 1.0)
//   tie_embeddings  bool: output projection = token embedding (default false)
//   artifact_dir    string: overrides the worker's artifact directory
// Any other option is an error.
//
// ARTIFACTS. Each snapshot's weights are stored content-addressed in
// <artifact_dir>/<key>/weights.bin (written to a temporary file and
// renamed), with the key's input text in key.txt beside it. key = SHA-256
// hex of the dataset fingerprint, the pretrained model's key (or "none"),
// model name, the resolved model and optimizer settings (not max_new_tokens
// or artifact_dir), learning rate multiplier, batch size, seed and that
// snapshot's epoch count (0 for the base model). A task whose snapshots are
// ALL present loads them and only answers (no training); otherwise it
// trains and (re)writes them. The pretrained model is stored the same way
// under its own key: SHA-256 of the background corpus's fingerprint, the
// vocabulary (every token in id order), model name and shape, the
// pretraining optimizer settings, seeds and pretrain_epochs (no task
// hyperparameter). A task that needs it and finds it loads it instead of
// pretraining; concurrent tasks needing the same one serialize on an
// flock(2) of <artifact_dir>/<key>.lock, so it is trained once (the others
// wait, polling cancellation). An unreadable or
// corrupt artifact is logged and the task trains instead; failing to write
// one is logged, not an error. artifact_dir: the task option, else the
// worker's backend option `artifact_dir`, else $FTB_ARTIFACT_DIR, else
// ".ftb-artifacts"; the value "off" disables artifacts.
//
// ERRORS (none retryable unless noted):
//   kInvalidArgument  not a TUNE task; no epochs; epochs not ascending or
//                     above 100000;
//                     epochs and cell_ids of different lengths; batch_size 0;
//                     learning_rate_multiplier not > 0; an invalid or unknown
//                     option (the message names model.options.<name> and
//                     what was expected); whatever LoadDataset rejects;
//   kNotFound         a missing dataset (as LoadDataset);
//   kCancelled        ctx.cancelled(), polled before every optimizer step
//                     (pretraining included), while waiting for another
//                     task's pretraining, and before answering each snapshot.
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
  int pretrain_epochs = 0;
  int background_size = 40;
  int background_seed = 0;
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
  // Pretraining stages run, and those served by a stored pretrained model.
  int pretrainings() const { return pretrainings_.load(); }
  int pretrain_reuses() const { return pretrain_reuses_.load(); }

 private:
  const std::string artifact_dir_;
  std::atomic<int> trainings_{0};
  std::atomic<int> reuses_{0};
  std::atomic<int> pretrainings_{0};
  std::atomic<int> pretrain_reuses_{0};
};

// Registers "local" in `registry`. Errors: as BackendRegistry::Register.
absl::Status RegisterLocalBackend(BackendRegistry& registry);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_LOCAL_BACKEND_H_
