#include "trainer/train.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "trainer/tokenizer.h"

namespace ftb::trainer {
namespace {

// Adam over a flat parameter vector.
class Adam {
 public:
  Adam(const TrainConfig& config, size_t size)
      : config_(config),
        m_(Vector<float>::Zero(static_cast<Eigen::Index>(size))),
        v_(Vector<float>::Zero(static_cast<Eigen::Index>(size))) {}

  void Step(AlignedVector<float>& parameters, const AlignedVector<float>& gradient) {
    ++t_;
    const double warmup = config_.warmup_steps > 0
                              ? std::min(1.0, static_cast<double>(t_) / config_.warmup_steps)
                              : 1.0;
    const double lr = config_.learning_rate * warmup;
    const float b1 = static_cast<float>(config_.beta1);
    const float b2 = static_cast<float>(config_.beta2);
    const float correction1 = static_cast<float>(1.0 - std::pow(config_.beta1, t_));
    const float correction2 = static_cast<float>(1.0 - std::pow(config_.beta2, t_));
    const float step = static_cast<float>(lr) / correction1;
    const float inv_sqrt_c2 = 1.0f / std::sqrt(correction2);
    const float eps = static_cast<float>(config_.epsilon);
    const Eigen::Index n = static_cast<Eigen::Index>(parameters.size());
    // In chunks that stay in cache across the three passes.
    constexpr Eigen::Index kChunk = 2048;
    for (Eigen::Index begin = 0; begin < n; begin += kChunk) {
      const Eigen::Index size = std::min(kChunk, n - begin);
      Eigen::Map<Vector<float>> p(parameters.data() + begin, size);
      Eigen::Map<const Vector<float>> g(gradient.data() + begin, size);
      auto m = m_.segment(begin, size).array();
      auto v = v_.segment(begin, size).array();
      m = b1 * m + (1.0f - b1) * g.array();
      v = b2 * v + (1.0f - b2) * g.array().square();
      p.array() -= step * m / (v.sqrt() * inv_sqrt_c2 + eps);
    }
  }

 private:
  const TrainConfig config_;
  Vector<float> m_;
  Vector<float> v_;
  int64_t t_ = 0;
};

// The order of epoch `epoch` (1-based): a function of (seed, epoch) only.
std::vector<size_t> EpochOrder(size_t n, uint64_t seed, int epoch) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  Rng rng(seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(epoch) * 0xd1b54a32d192ed03ULL +
          0x7368756666ULL);
  for (size_t k = n; k > 1; --k) {
    const size_t r = static_cast<size_t>(rng.Uniform(0, static_cast<int64_t>(k) - 1));
    std::swap(order[k - 1], order[r]);
  }
  return order;
}

}  // namespace

std::vector<int> TrainingSequence(const Example& example, int max_len, int* answer_start) {
  const size_t limit = static_cast<size_t>(std::max(max_len, 4));
  // Room left for the question next to <bos>, <sep>, answer and <eos>.
  size_t answer_len = example.answer.size();
  if (answer_len + 3 > limit) answer_len = limit - 3;
  const size_t question_len = std::min(example.question.size(), limit - 3 - answer_len);
  std::vector<int> sequence;
  sequence.reserve(question_len + answer_len + 3);
  sequence.push_back(kBosId);
  sequence.insert(sequence.end(), example.question.end() - static_cast<ptrdiff_t>(question_len),
                  example.question.end());
  sequence.push_back(kSepId);
  *answer_start = static_cast<int>(sequence.size());
  sequence.insert(sequence.end(), example.answer.begin(),
                  example.answer.begin() + static_cast<ptrdiff_t>(answer_len));
  sequence.push_back(kEosId);
  return sequence;
}

std::vector<int> PromptSequence(const std::vector<int>& question, int max_len) {
  const size_t limit = static_cast<size_t>(std::max(max_len, 4));
  const size_t question_len = std::min(question.size(), limit - 3);
  std::vector<int> sequence;
  sequence.reserve(question_len + 2);
  sequence.push_back(kBosId);
  sequence.insert(sequence.end(), question.end() - static_cast<ptrdiff_t>(question_len),
                  question.end());
  sequence.push_back(kSepId);
  return sequence;
}

absl::Status ValidateTrainConfig(const TrainConfig& c) {
  const auto bad = [](const char* field, double value, const char* expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("train config: ", field, " = ", value, ": expected ", expected));
  };
  if (!(c.learning_rate > 0) || !std::isfinite(c.learning_rate)) {
    return bad("learning_rate", c.learning_rate, "a finite number > 0");
  }
  if (c.warmup_steps < 0) return bad("warmup_steps", c.warmup_steps, ">= 0");
  if (!(c.beta1 >= 0 && c.beta1 < 1)) return bad("beta1", c.beta1, "[0, 1)");
  if (!(c.beta2 >= 0 && c.beta2 < 1)) return bad("beta2", c.beta2, "[0, 1)");
  if (!(c.epsilon > 0)) return bad("epsilon", c.epsilon, "> 0");
  if (c.batch_size < 1) return bad("batch_size", c.batch_size, ">= 1");
  return absl::OkStatus();
}

int64_t StepsPerEpoch(size_t examples, int batch_size) {
  const size_t b = static_cast<size_t>(std::max(batch_size, 1));
  return static_cast<int64_t>((examples + b - 1) / b);
}

absl::StatusOr<TrainStats> Train(Model& model, const std::vector<Example>& examples,
                                 const TrainConfig& config, const std::vector<int>& snapshot_epochs,
                                 const TrainCallbacks& callbacks) {
  absl::Status valid = ValidateTrainConfig(config);
  if (!valid.ok()) return valid;
  if (snapshot_epochs.empty()) {
    return absl::InvalidArgumentError("train: no epochs to train for");
  }
  for (size_t i = 0; i < snapshot_epochs.size(); ++i) {
    if (snapshot_epochs[i] < 1 || (i > 0 && snapshot_epochs[i] < snapshot_epochs[i - 1])) {
      return absl::InvalidArgumentError(
          absl::StrCat("train: snapshot epochs must be positive and ascending; entry ", i, " is ",
                       snapshot_epochs[i]));
    }
  }
  if (examples.empty()) return absl::InvalidArgumentError("train: no training examples");
  const ModelConfig& mc = model.config();

  // Sequences once, up front.
  std::vector<std::vector<int>> sequences(examples.size());
  std::vector<int> answer_start(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    sequences[i] = TrainingSequence(examples[i], mc.max_len, &answer_start[i]);
    for (int token : sequences[i]) {
      if (token < 0 || token >= mc.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("train: example ", i, " has token ", token,
                                                       " outside the vocabulary of ",
                                                       mc.vocab_size));
      }
    }
  }

  const int max_epoch = snapshot_epochs.back();
  const int64_t steps_per_epoch = StepsPerEpoch(examples.size(), config.batch_size);
  const int64_t total_steps = steps_per_epoch * max_epoch;
  Adam adam(config, model.parameters().size());
  Workspace<float> workspace;
  Batch batch;
  AlignedVector<float> gradient;
  TrainStats stats;
  size_t next_snapshot = 0;
  for (int epoch = 1; epoch <= max_epoch; ++epoch) {
    const std::vector<size_t> order = EpochOrder(examples.size(), config.seed, epoch);
    double epoch_loss = 0;
    for (size_t begin = 0; begin < order.size(); begin += static_cast<size_t>(config.batch_size)) {
      if (callbacks.cancelled && callbacks.cancelled()) {
        return absl::CancelledError(absl::StrCat("train: cancelled in epoch ", epoch));
      }
      batch.Clear();
      const size_t end = std::min(order.size(), begin + static_cast<size_t>(config.batch_size));
      for (size_t k = begin; k < end; ++k) {
        batch.Add(sequences[order[k]], answer_start[order[k]]);
      }
      const float loss = model.ForwardBackward(batch, &gradient, &workspace);
      if (config.grad_clip > 0) {
        Eigen::Map<Vector<float>> g(gradient.data(), static_cast<Eigen::Index>(gradient.size()));
        const double norm = std::sqrt(static_cast<double>(g.squaredNorm()));
        if (norm > config.grad_clip) g *= static_cast<float>(config.grad_clip / norm);
      }
      adam.Step(model.mutable_parameters(), gradient);
      ++stats.steps;
      stats.tokens += static_cast<int64_t>(batch.tokens.size());
      epoch_loss += loss;
      if (callbacks.on_step) callbacks.on_step(stats.steps, total_steps, loss);
    }
    stats.epoch_loss.push_back(epoch_loss / static_cast<double>(steps_per_epoch));
    bool snapshot = false;
    while (next_snapshot < snapshot_epochs.size() && snapshot_epochs[next_snapshot] == epoch) {
      snapshot = true;
      ++next_snapshot;
    }
    if (snapshot && callbacks.on_snapshot) {
      absl::Status status = callbacks.on_snapshot(epoch, model);
      if (!status.ok()) return status;
    }
  }
  return stats;
}

std::vector<std::vector<int>> Answer(const Model& model,
                                     const std::vector<std::vector<int>>& questions,
                                     int max_new_tokens) {
  std::vector<std::vector<int>> prompts;
  prompts.reserve(questions.size());
  for (const std::vector<int>& question : questions) {
    prompts.push_back(PromptSequence(question, model.config().max_len));
  }
  return model.Generate(prompts, max_new_tokens);
}

}  // namespace ftb::trainer
