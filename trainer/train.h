// Training and querying the local transformer on question -> answer pairs.
//
// A training sequence is `<bos> question <sep> answer <eos>`; the loss is
// the cross-entropy of the answer tokens and <eos> only (the question is
// context, not a target). Optimizer: Adam with a constant learning rate
// after a short linear warm-up, optional global-norm gradient clipping.
//
// Determinism: epoch e visits the examples in an order drawn from
// (seed, e) alone, and nothing depends on the total number of epochs, so a
// run to 30 epochs passes through exactly the weights of a run to 5 epochs
// at its 5th epoch: one run serves every requested epoch count, and the same
// seed gives bit-identical weights on the same machine and build.
//
// Thread-compatible: Train mutates the model it is given; separate models
// may be trained concurrently.
#ifndef FTB_TRAINER_TRAIN_H_
#define FTB_TRAINER_TRAIN_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "trainer/model.h"

namespace ftb::trainer {

// One question -> answer pair as token ids (no special tokens).
struct Example {
  std::vector<int> question;
  std::vector<int> answer;
};

// `<bos> question <sep> answer <eos>`, dropping question tokens from the
// left until it fits max_len (then answer tokens from the right if even the
// empty question does not fit). *answer_start = index of the first answer
// token (the first scored token).
std::vector<int> TrainingSequence(const Example& example, int max_len, int* answer_start);
// `<bos> question <sep>`, dropping question tokens from the left so that
// at least one token can follow within max_len.
std::vector<int> PromptSequence(const std::vector<int>& question, int max_len);

struct TrainConfig {
  // Adam step size (after warm-up). The default memorizes the built-in
  // `people` dataset (25 people, batch 8, the default model) in 30 epochs
  // for every seed tried; rates from 1.5e-3 up plateau far above that loss.
  double learning_rate = 5e-4;
  // The first warmup_steps optimizer steps ramp the rate up linearly
  // (step k uses learning_rate * k / warmup_steps); counted per Train call.
  int warmup_steps = 10;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  // Global L2 norm the gradient is clipped to; <= 0 disables clipping.
  double grad_clip = 1.0;
  // Sequences per optimizer step (the last step of an epoch takes the
  // rest).
  int batch_size = 8;
  // Data order (the initial weights come from Model::Create's seed).
  uint64_t seed = 0;
};

// kInvalidArgument naming the field: learning_rate > 0 and finite,
// warmup_steps >= 0, beta1 and beta2 in [0, 1), epsilon > 0, batch_size >= 1.
absl::Status ValidateTrainConfig(const TrainConfig& config);

struct TrainCallbacks {
  // Called after each epoch listed in snapshot_epochs with the weights at
  // that point; a non-OK status stops training and is returned.
  std::function<absl::Status(int epoch, const Model& model)> on_snapshot;
  // Polled before every step; true stops training with kCancelled.
  std::function<bool()> cancelled;
  // After every step: steps done so far in this call, and the total.
  std::function<void(int64_t step, int64_t total_steps, double loss)> on_step;
};

struct TrainStats {
  int64_t steps = 0;
  // Tokens fed through the model (whole sequences, question included).
  int64_t tokens = 0;
  // Mean training loss per epoch (mean over the epoch's steps).
  std::vector<double> epoch_loss;
};

// Optimizer steps of one epoch.
int64_t StepsPerEpoch(size_t examples, int batch_size);

// Trains `model` on `examples` for max(snapshot_epochs) epochs with a fresh
// optimizer, calling on_snapshot after each listed epoch. snapshot_epochs
// must be non-empty, positive and ascending (duplicates allowed, reported
// once). Errors: kInvalidArgument for bad epochs, an invalid config, no
// examples or tokens outside the vocabulary; kCancelled; whatever
// on_snapshot returns.
absl::StatusOr<TrainStats> Train(Model& model, const std::vector<Example>& examples,
                                 const TrainConfig& config, const std::vector<int>& snapshot_epochs,
                                 const TrainCallbacks& callbacks = {});

// Greedy answers (token ids, no <eos>) to `questions`, in order.
std::vector<std::vector<int>> Answer(const Model& model,
                                     const std::vector<std::vector<int>>& questions,
                                     int max_new_tokens);

}  // namespace ftb::trainer

#endif  // FTB_TRAINER_TRAIN_H_
