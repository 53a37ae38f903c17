#include "trainer/model.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "trainer/tokenizer.h"

namespace ftb::trainer {
namespace {

// Named views of the tensors in a flat parameter (or gradient) vector. The
// order of Take() calls IS the storage layout.
template <typename S, bool kConst>
struct Views {
  using Scalar = std::conditional_t<kConst, const S, S>;
  using M = Eigen::Map<std::conditional_t<kConst, const Matrix<S>, Matrix<S>>>;
  using V = Eigen::Map<std::conditional_t<kConst, const Vector<S>, Vector<S>>>;

  struct Block {
    V ln1_gain, ln1_bias;
    M w_qkv;
    V b_qkv;
    M w_out;
    V b_out;
    V ln2_gain, ln2_bias;
    M w_fc1;
    V b_fc1;
    M w_fc2;
    V b_fc2;
  };

  Views(Scalar* data, const ModelConfig& c)
      : cursor(data), tok_emb(TakeM(c.width, c.vocab_size)), pos_emb(TakeM(c.width, c.max_len)) {
    const Eigen::Index d = c.width;
    blocks.reserve(static_cast<size_t>(c.layers));
    for (int l = 0; l < c.layers; ++l) {
      // Braced initialization evaluates left to right: the layout order.
      blocks.push_back(Block{TakeV(d), TakeV(d), TakeM(3 * d, d), TakeV(3 * d), TakeM(d, d),
                             TakeV(d), TakeV(d), TakeV(d), TakeM(4 * d, d), TakeV(4 * d),
                             TakeM(d, 4 * d), TakeV(d)});
    }
    new (&lnf_gain) V(TakeV(d));
    new (&lnf_bias) V(TakeV(d));
    // The output projection, stored as width x vocab like the embedding:
    // logits = out_emb^T h.
    if (c.tie_embeddings) {
      new (&out_emb) M(tok_emb.data(), d, c.vocab_size);
    } else {
      new (&out_emb) M(TakeM(d, c.vocab_size));
    }
  }

  M TakeM(Eigen::Index rows, Eigen::Index cols) {
    M m(cursor, rows, cols);
    cursor += rows * cols;
    return m;
  }
  V TakeV(Eigen::Index size) {
    V v(cursor, size);
    cursor += size;
    return v;
  }

  Scalar* cursor;
  M tok_emb;
  M pos_emb;
  std::vector<Block> blocks;
  V lnf_gain{nullptr, 0};
  V lnf_bias{nullptr, 0};
  M out_emb{nullptr, 0, 0};
};

// Standard normal from two uniforms (Box-Muller); deterministic.
double Normal(Rng& rng) {
  double u1 = rng.UniformDouble();
  while (u1 <= 0) u1 = rng.UniformDouble();
  const double u2 = rng.UniformDouble();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
}

template <typename Map>
void FillNormal(Rng& rng, double stddev, Map& m) {
  for (Eigen::Index i = 0; i < m.size(); ++i) {
    m.data()[i] = static_cast<typename Map::Scalar>(stddev * Normal(rng));
  }
}

}  // namespace

absl::Status ValidateModelConfig(const ModelConfig& c) {
  const auto out_of_range = [](const char* field, int value, const std::string& expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("model config: ", field, " = ", value, ": expected ", expected));
  };
  if (c.vocab_size < kNumSpecialTokens + 1 || c.vocab_size > (1 << 24)) {
    return out_of_range("vocab_size", c.vocab_size,
                        absl::StrCat("[", kNumSpecialTokens + 1, ", ", 1 << 24, "]"));
  }
  if (c.layers < 1 || c.layers > 64) return out_of_range("layers", c.layers, "[1, 64]");
  if (c.width < 2 || c.width > 4096) return out_of_range("width", c.width, "[2, 4096]");
  if (c.heads < 1 || c.heads > c.width || c.width % c.heads != 0) {
    return out_of_range("heads", c.heads, absl::StrCat("a divisor of width (", c.width, ")"));
  }
  if (c.max_len < 4 || c.max_len > 65536) return out_of_range("max_len", c.max_len, "[4, 65536]");
  return absl::OkStatus();
}

size_t ParameterCount(const ModelConfig& c) {
  const size_t d = static_cast<size_t>(c.width);
  const size_t v = static_cast<size_t>(c.vocab_size);
  const size_t per_block =
      2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d);
  return d * v + d * static_cast<size_t>(c.max_len) + static_cast<size_t>(c.layers) * per_block +
         2 * d + (c.tie_embeddings ? 0 : d * v);
}

void Batch::Clear() {
  tokens.clear();
  positions.clear();
  offsets.assign(1, 0);
  loss_columns.clear();
  targets.clear();
}

void Batch::Add(const std::vector<int>& sequence, int first_target) {
  const int start = offsets.back();
  for (size_t i = 0; i < sequence.size(); ++i) {
    tokens.push_back(sequence[i]);
    positions.push_back(static_cast<int>(i));
  }
  for (int i = std::max(first_target, 1); i < static_cast<int>(sequence.size()); ++i) {
    loss_columns.push_back(start + i - 1);
    targets.push_back(sequence[static_cast<size_t>(i)]);
  }
  offsets.push_back(start + static_cast<int>(sequence.size()));
}

template <typename S>
absl::StatusOr<ModelT<S>> ModelT<S>::Create(const ModelConfig& config, uint64_t seed) {
  absl::Status valid = ValidateModelConfig(config);
  if (!valid.ok()) return valid;
  AlignedVector<S> parameters(ParameterCount(config), S(0));
  Views<S, false> p(parameters.data(), config);
  Rng rng(seed ^ 0x6d6f64656c696e69ULL);  // "modelini"
  const double stddev = 0.02;
  const double residual_stddev = stddev / std::sqrt(2.0 * config.layers);
  FillNormal(rng, stddev, p.tok_emb);
  FillNormal(rng, stddev, p.pos_emb);
  for (auto& b : p.blocks) {
    b.ln1_gain.setOnes();
    b.ln2_gain.setOnes();
    FillNormal(rng, stddev, b.w_qkv);
    FillNormal(rng, residual_stddev, b.w_out);
    FillNormal(rng, stddev, b.w_fc1);
    FillNormal(rng, residual_stddev, b.w_fc2);
  }
  p.lnf_gain.setOnes();
  if (!config.tie_embeddings) FillNormal(rng, stddev, p.out_emb);
  return ModelT(config, std::move(parameters));
}

template <typename S>
absl::StatusOr<ModelT<S>> ModelT<S>::FromParameters(const ModelConfig& config,
                                                    std::span<const S> parameters) {
  absl::Status valid = ValidateModelConfig(config);
  if (!valid.ok()) return valid;
  if (parameters.size() != ParameterCount(config)) {
    return absl::InvalidArgumentError(absl::StrCat("model: ", parameters.size(),
                                                   " parameters given, the config needs ",
                                                   ParameterCount(config)));
  }
  return ModelT(config, AlignedVector<S>(parameters.begin(), parameters.end()));
}

template <typename S>
S ModelT<S>::ForwardBackward(const Batch& batch, AlignedVector<S>* gradient,
                             Workspace<S>* ws) const {
  namespace ly = layers;
  const ModelConfig& c = config_;
  Views<S, true> p(parameters_.data(), c);
  ws->blocks.resize(static_cast<size_t>(c.layers));

  // ---- forward
  ly::EmbeddingForward<S>(p.tok_emb, p.pos_emb, batch.tokens, batch.positions, &ws->x);
  for (int l = 0; l < c.layers; ++l) {
    auto& b = p.blocks[static_cast<size_t>(l)];
    auto& a = ws->blocks[static_cast<size_t>(l)];
    a.x_in.swap(ws->x);
    ly::LayerNormForward<S>(b.ln1_gain, b.ln1_bias, a.x_in, &a.h1, &a.ln1);
    ly::LinearForward<S>(b.w_qkv, b.b_qkv, a.h1, &a.qkv);
    ly::AttentionForward<S>(a.qkv, batch.offsets, c.heads, &a.attention_out, &a.attention);
    a.x_mid = a.x_in;
    a.x_mid.noalias() += b.w_out * a.attention_out;
    a.x_mid.colwise() += b.b_out;
    ly::LayerNormForward<S>(b.ln2_gain, b.ln2_bias, a.x_mid, &a.h2, &a.ln2);
    ly::LinearForward<S>(b.w_fc1, b.b_fc1, a.h2, &a.u);
    ly::GeluForward<S>(a.u, &a.g, &a.u_tanh);
    ws->x = a.x_mid;
    ws->x.noalias() += b.w_fc2 * a.g;
    ws->x.colwise() += b.b_fc2;
  }
  // Only the scored columns go through the final LayerNorm and the output
  // projection: the loss does not depend on the others.
  const Eigen::Index d = c.width;
  const Eigen::Index m = static_cast<Eigen::Index>(batch.loss_columns.size());
  ws->final_in.resize(d, m);
  for (Eigen::Index j = 0; j < m; ++j) {
    ws->final_in.col(j) = ws->x.col(batch.loss_columns[static_cast<size_t>(j)]);
  }
  ly::LayerNormForward<S>(p.lnf_gain, p.lnf_bias, ws->final_in, &ws->final_norm, &ws->ln_final);
  ws->logits.resize(c.vocab_size, m);
  ws->logits.noalias() = p.out_emb.transpose() * ws->final_norm;
  const S loss = ly::SoftmaxCrossEntropyForward<S>(ws->logits, batch.targets, &ws->probs);
  if (gradient == nullptr) return loss;

  // ---- backward
  gradient->assign(parameters_.size(), S(0));
  Views<S, false> g(gradient->data(), c);
  ly::SoftmaxCrossEntropyBackward<S>(ws->probs, batch.targets, &ws->dlogits);
  g.out_emb.noalias() += ws->final_norm * ws->dlogits.transpose();
  ws->dfinal_norm.resize(d, m);
  ws->dfinal_norm.noalias() = p.out_emb * ws->dlogits;
  ly::LayerNormBackward<S>(p.lnf_gain, ws->ln_final, ws->dfinal_norm, g.lnf_gain, g.lnf_bias,
                           &ws->dfinal);
  ws->dx.setZero(d, static_cast<Eigen::Index>(batch.tokens.size()));
  for (Eigen::Index j = 0; j < m; ++j) {
    ws->dx.col(batch.loss_columns[static_cast<size_t>(j)]) += ws->dfinal.col(j);
  }
  for (int l = c.layers - 1; l >= 0; --l) {
    auto& b = p.blocks[static_cast<size_t>(l)];
    auto& gb = g.blocks[static_cast<size_t>(l)];
    auto& a = ws->blocks[static_cast<size_t>(l)];
    // MLP branch: x_out = x_mid + w_fc2 gelu(w_fc1 ln2(x_mid) + b_fc1) + b_fc2.
    ly::LinearBackward<S>(b.w_fc2, a.g, ws->dx, gb.w_fc2, gb.b_fc2, &ws->d_wide);
    ly::GeluBackward<S>(a.u, a.u_tanh, ws->d_wide, &ws->d_wide2);
    ly::LinearBackward<S>(b.w_fc1, a.h2, ws->d_wide2, gb.w_fc1, gb.b_fc1, &ws->d_narrow);
    ly::LayerNormBackward<S>(b.ln2_gain, a.ln2, ws->d_narrow, gb.ln2_gain, gb.ln2_bias,
                             &ws->d_narrow2);
    ws->dx += ws->d_narrow2;
    // Attention branch: x_mid = x_in + w_out attention(w_qkv ln1(x_in) + b_qkv) + b_out.
    ly::LinearBackward<S>(b.w_out, a.attention_out, ws->dx, gb.w_out, gb.b_out, &ws->d_narrow);
    ly::AttentionBackward<S>(a.qkv, batch.offsets, c.heads, a.attention, ws->d_narrow, &ws->d_qkv,
                             &ws->d_attention_scratch);
    ly::LinearBackward<S>(b.w_qkv, a.h1, ws->d_qkv, gb.w_qkv, gb.b_qkv, &ws->d_narrow);
    ly::LayerNormBackward<S>(b.ln1_gain, a.ln1, ws->d_narrow, gb.ln1_gain, gb.ln1_bias,
                             &ws->d_narrow2);
    ws->dx += ws->d_narrow2;
  }
  ly::EmbeddingBackward<S>(batch.tokens, batch.positions, ws->dx, g.tok_emb, g.pos_emb);
  return loss;
}

template <typename S>
std::vector<std::vector<int>> ModelT<S>::Generate(const std::vector<std::vector<int>>& prompts,
                                                  int max_new_tokens, int batch) const {
  std::vector<std::vector<int>> out(prompts.size());
  const size_t chunk = static_cast<size_t>(std::max(batch, 1));
  for (size_t begin = 0; begin < prompts.size(); begin += chunk) {
    GenerateChunk(prompts, begin, std::min(prompts.size(), begin + chunk), max_new_tokens, &out);
  }
  return out;
}

template <typename S>
void ModelT<S>::GenerateChunk(const std::vector<std::vector<int>>& prompts, size_t begin,
                              size_t end, int max_new_tokens,
                              std::vector<std::vector<int>>* out) const {
  namespace ly = layers;
  const ModelConfig& c = config_;
  Views<S, true> p(parameters_.data(), c);
  const Eigen::Index d = c.width;
  const Eigen::Index dh = d / c.heads;
  const Eigen::Index max_len = c.max_len;
  const S scale = S(1) / std::sqrt(static_cast<S>(dh));
  const size_t n = end - begin;

  // Key/value cache: sequence k owns columns [k max_len, (k + 1) max_len).
  std::vector<Matrix<S>> keys(static_cast<size_t>(c.layers), Matrix<S>(d, n * max_len));
  std::vector<Matrix<S>> values(static_cast<size_t>(c.layers), Matrix<S>(d, n * max_len));
  std::vector<int> length(n, 0);

  // What to feed next per sequence; empty once it is done.
  std::vector<std::vector<int>> feed(n);
  for (size_t k = 0; k < n; ++k) {
    const std::vector<int>& prompt = prompts[begin + k];
    const size_t keep = std::min(prompt.size(), static_cast<size_t>(max_len));
    feed[k].assign(prompt.end() - static_cast<std::ptrdiff_t>(keep), prompt.end());
    if (max_new_tokens <= 0) feed[k].clear();
  }

  Batch step;
  std::vector<size_t> active;
  Matrix<S> x, h, qkv, attention_out, u, u_tanh, gl, scores, last, last_norm, logits;
  ly::LayerNormCache<S> ln_cache;
  for (;;) {
    step.Clear();
    active.clear();
    for (size_t k = 0; k < n; ++k) {
      if (feed[k].empty()) continue;
      active.push_back(k);
      const int start = step.offsets.back();
      for (size_t i = 0; i < feed[k].size(); ++i) {
        step.tokens.push_back(feed[k][i]);
        step.positions.push_back(length[k] + static_cast<int>(i));
      }
      step.offsets.push_back(start + static_cast<int>(feed[k].size()));
    }
    if (active.empty()) break;

    ly::EmbeddingForward<S>(p.tok_emb, p.pos_emb, step.tokens, step.positions, &x);
    for (int l = 0; l < c.layers; ++l) {
      auto& b = p.blocks[static_cast<size_t>(l)];
      Matrix<S>& kc = keys[static_cast<size_t>(l)];
      Matrix<S>& vc = values[static_cast<size_t>(l)];
      ly::LayerNormForward<S>(b.ln1_gain, b.ln1_bias, x, &h, &ln_cache);
      ly::LinearForward<S>(b.w_qkv, b.b_qkv, h, &qkv);
      attention_out.resize(d, x.cols());
      for (size_t a = 0; a < active.size(); ++a) {
        const size_t k = active[a];
        const Eigen::Index col = step.offsets[a];
        const Eigen::Index fresh = step.offsets[a + 1] - step.offsets[a];
        const Eigen::Index past = length[k];
        const Eigen::Index total = past + fresh;
        const Eigen::Index base = static_cast<Eigen::Index>(k) * max_len;
        kc.block(0, base + past, d, fresh) = qkv.block(d, col, d, fresh);
        vc.block(0, base + past, d, fresh) = qkv.block(2 * d, col, d, fresh);
        for (int hd = 0; hd < c.heads; ++hd) {
          auto q = qkv.block(hd * dh, col, dh, fresh);
          auto kk = kc.block(hd * dh, base, dh, total);
          auto vv = vc.block(hd * dh, base, dh, total);
          scores.resize(total, fresh);
          scores.noalias() = kk.transpose() * q;
          for (Eigen::Index i = 0; i < fresh; ++i) {
            auto s = scores.col(i).head(past + i + 1);
            s *= scale;
            const S max = s.maxCoeff();
            s = (s.array() - max).exp();
            s /= s.sum();
            scores.col(i).tail(total - past - i - 1).setZero();
          }
          attention_out.block(hd * dh, col, dh, fresh).noalias() = vv * scores;
        }
      }
      x.noalias() += b.w_out * attention_out;
      x.colwise() += b.b_out;
      ly::LayerNormForward<S>(b.ln2_gain, b.ln2_bias, x, &h, &ln_cache);
      ly::LinearForward<S>(b.w_fc1, b.b_fc1, h, &u);
      ly::GeluForward<S>(u, &gl, &u_tanh);
      x.noalias() += b.w_fc2 * gl;
      x.colwise() += b.b_fc2;
    }
    last.resize(d, static_cast<Eigen::Index>(active.size()));
    for (size_t a = 0; a < active.size(); ++a) {
      last.col(static_cast<Eigen::Index>(a)) = x.col(step.offsets[a + 1] - 1);
    }
    ly::LayerNormForward<S>(p.lnf_gain, p.lnf_bias, last, &last_norm, &ln_cache);
    logits.resize(c.vocab_size, last.cols());
    logits.noalias() = p.out_emb.transpose() * last_norm;

    for (size_t a = 0; a < active.size(); ++a) {
      const size_t k = active[a];
      length[k] += static_cast<int>(feed[k].size());
      Eigen::Index next = 0;
      logits.col(static_cast<Eigen::Index>(a)).maxCoeff(&next);
      std::vector<int>& answer = (*out)[begin + k];
      feed[k].clear();
      if (next == kEosId) continue;
      answer.push_back(static_cast<int>(next));
      if (static_cast<int>(answer.size()) < max_new_tokens && length[k] < max_len) {
        feed[k].push_back(static_cast<int>(next));
      }
    }
  }
}

template class ModelT<float>;
template class ModelT<double>;

}  // namespace ftb::trainer
