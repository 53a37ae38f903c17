// A small decoder-only transformer (GPT-2 shape) with hand-written forward
// and backward passes over Eigen: token + learned position embeddings, N
// pre-LayerNorm blocks (causal multi-head self-attention, then a 4x GELU
// MLP, each added to the residual stream), a final LayerNorm and an output
// projection (tied to the token embedding or separate). No dropout.
//
// All weights live in one flat vector (parameters()), in a fixed layout
// derived from the config, so the optimizer, checkpoints and equality checks
// treat them as one buffer. Templated on the scalar: Model (float) trains,
// ModelT<double> exists for gradient checks.
//
// Determinism: everything is single-threaded (Eigen's own threading is off,
// EIGEN_DONT_PARALLELIZE), so the same inputs give bit-identical outputs on
// the same machine and build.
//
// Thread-safety: const methods may be called concurrently (each call uses
// its own workspace); mutable_parameters() needs exclusive access.
#ifndef FTB_TRAINER_MODEL_H_
#define FTB_TRAINER_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "trainer/layers.h"

namespace ftb::trainer {

struct ModelConfig {
  int vocab_size = 0;
  int layers = 2;
  // Model (embedding) dimension; a multiple of heads.
  int width = 128;
  int heads = 4;
  // Longest sequence (number of position embeddings).
  int max_len = 64;
  // Output projection = token embedding (transposed) instead of its own
  // weights. Off by default: separate output weights memorize facts much
  // faster (people 25: 100% vs 50% of the training answers after 30 epochs).
  bool tie_embeddings = false;

  bool operator==(const ModelConfig&) const = default;
};

// kInvalidArgument naming the first field out of range: vocab_size in
// [kNumSpecialTokens + 1, 1 << 24], layers in [1, 64], width in [2, 4096],
// heads in [1, width] dividing width, max_len in [4, 65536].
absl::Status ValidateModelConfig(const ModelConfig& config);

// Number of scalars in the flat parameter vector of `config`.
size_t ParameterCount(const ModelConfig& config);

// A packed batch: sequences back to back, one token per column.
struct Batch {
  std::vector<int> tokens;
  // Position of each token within its sequence.
  std::vector<int> positions;
  // Sequence s is columns [offsets[s], offsets[s + 1]); offsets[0] == 0.
  std::vector<int> offsets = {0};
  // The columns whose next token is scored, and that next token.
  std::vector<int> loss_columns;
  std::vector<int> targets;

  void Clear();
  // Appends `sequence`, scoring the predictions of its tokens
  // sequence[first_target..] (from positions first_target - 1 on);
  // first_target >= 1.
  void Add(const std::vector<int>& sequence, int first_target);
  int sequences() const { return static_cast<int>(offsets.size()) - 1; }
};

// Activations kept between the forward and the backward pass, and scratch
// space. Reused across steps (buffers keep their allocation when the batch
// shape repeats). One per thread.
template <typename S>
struct Workspace {
  struct Block {
    Matrix<S> x_in;  // residual stream entering the block
    layers::LayerNormCache<S> ln1;
    Matrix<S> h1;
    Matrix<S> qkv;
    layers::AttentionCache<S> attention;
    Matrix<S> attention_out;
    Matrix<S> x_mid;  // residual stream after attention
    layers::LayerNormCache<S> ln2;
    Matrix<S> h2;
    Matrix<S> u;  // MLP pre-activation
    Matrix<S> u_tanh;
    Matrix<S> g;  // GELU(u)
  };
  std::vector<Block> blocks;
  Matrix<S> x;         // residual stream leaving the last block
  Matrix<S> final_in;  // x at the loss columns
  layers::LayerNormCache<S> ln_final;
  Matrix<S> final_norm;
  Matrix<S> logits;  // vocab x loss columns
  Matrix<S> probs;
  // Backward scratch.
  Matrix<S> dx, dlogits, dfinal_norm, dfinal, d_wide, d_wide2, d_narrow, d_narrow2, d_qkv,
      d_attention_scratch;
};

template <typename S>
class ModelT {
 public:
  // A model with weights drawn from `seed` (GPT-2 initialization: N(0, 0.02)
  // weights, residual output projections scaled by 1/sqrt(2 layers),
  // LayerNorm gains 1, biases 0). Errors: as ValidateModelConfig.
  static absl::StatusOr<ModelT> Create(const ModelConfig& config, uint64_t seed);
  // A model with the given weights. Errors: as ValidateModelConfig;
  // kInvalidArgument if parameters.size() != ParameterCount(config).
  static absl::StatusOr<ModelT> FromParameters(const ModelConfig& config,
                                               std::span<const S> parameters);

  const ModelConfig& config() const { return config_; }
  const AlignedVector<S>& parameters() const { return parameters_; }
  AlignedVector<S>& mutable_parameters() { return parameters_; }

  // Mean cross-entropy of batch.targets given the tokens. If `gradient` is
  // not null it is resized to parameters().size() and set to the gradient
  // of that loss. Leaves the logits (vocab x loss columns) in
  // workspace->logits. Requires tokens < vocab_size, positions < max_len.
  S ForwardBackward(const Batch& batch, AlignedVector<S>* gradient, Workspace<S>* workspace) const;

  // Greedy decoding: for each prompt (token ids, typically <bos> question
  // <sep>), the argmax continuation, one token at a time with a key/value
  // cache, until kEosId (not included), max_new_tokens tokens, or max_len
  // tokens in all. A prompt longer than max_len keeps its last max_len
  // tokens; an empty prompt gets an empty answer. Prompts are decoded in
  // chunks of `batch` in their order, so the same prompts in the same order
  // give the same answers.
  std::vector<std::vector<int>> Generate(const std::vector<std::vector<int>>& prompts,
                                         int max_new_tokens, int batch = 64) const;

 private:
  ModelT(const ModelConfig& config, AlignedVector<S> parameters)
      : config_(config), parameters_(std::move(parameters)) {}

  void GenerateChunk(const std::vector<std::vector<int>>& prompts, size_t begin, size_t end,
                     int max_new_tokens, std::vector<std::vector<int>>* out) const;

  ModelConfig config_;
  AlignedVector<S> parameters_;
};

using Model = ModelT<float>;

extern template class ModelT<float>;
extern template class ModelT<double>;

}  // namespace ftb::trainer

#endif  // FTB_TRAINER_MODEL_H_
