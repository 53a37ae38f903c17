// The layers of the local trainer's transformer, each as a forward and a
// backward function over Eigen matrices. Header-only templates on the scalar
// type: the model runs in float, the gradient checks in double.
//
// Layout: activations are column-major matrices with one COLUMN PER TOKEN
// (features x tokens), so every linear layer is one GEMM over all the tokens
// of a batch. Sequences are packed back to back without padding;
// `offsets` (size sequences + 1) gives sequence s the columns
// [offsets[s], offsets[s + 1]). Only attention looks across columns.
//
// Conventions: backward functions ACCUMULATE (+=) into parameter gradients,
// so a caller zeroes them once per step, and OVERWRITE input gradients.
// Outputs passed as pointers are resized as needed. No function allocates
// per token; none keeps state. Thread-compatible (no shared state).
#ifndef FTB_TRAINER_LAYERS_H_
#define FTB_TRAINER_LAYERS_H_

#include <cmath>
#include <cstddef>
#include <vector>

#include "Eigen/Core"
#include "Eigen/StdVector"

namespace ftb::trainer {

template <typename S>
using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
template <typename S>
using Vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;
template <typename S>
using RowVector = Eigen::Matrix<S, 1, Eigen::Dynamic>;
// Views that accept matrices, maps and column blocks without copying.
template <typename S>
using MatIn = Eigen::Ref<const Matrix<S>>;
template <typename S>
using MatOut = Eigen::Ref<Matrix<S>>;
template <typename S>
using VecIn = Eigen::Ref<const Vector<S>>;
template <typename S>
using VecOut = Eigen::Ref<Vector<S>>;
// Storage viewed through Eigen maps. Aligned like Eigen's own matrices: with
// AVX-512 Eigen splits loops and reductions at 64-byte boundaries, so a
// buffer whose alignment varied from run to run would give results that vary
// in the last bit.
template <typename S>
using AlignedVector = std::vector<S, Eigen::aligned_allocator<S>>;

namespace layers {

// ------------------------------------------------------------------ linear

// y = w x + b.
template <typename S>
void LinearForward(const MatIn<S>& w, const VecIn<S>& b, const MatIn<S>& x, Matrix<S>* y) {
  y->resize(w.rows(), x.cols());
  y->noalias() = w * x;
  y->colwise() += b;
}

// dw += dy x^T, db += sum of dy's columns; *dx = w^T dy unless dx is null.
template <typename S>
void LinearBackward(const MatIn<S>& w, const MatIn<S>& x, const MatIn<S>& dy, MatOut<S> dw,
                    VecOut<S> db, Matrix<S>* dx) {
  dw.noalias() += dy * x.transpose();
  db += dy.rowwise().sum();
  if (dx != nullptr) {
    dx->resize(w.cols(), dy.cols());
    dx->noalias() = w.transpose() * dy;
  }
}

// --------------------------------------------------------------- layernorm

inline constexpr double kLayerNormEpsilon = 1e-5;

// What LayerNormBackward needs from the forward pass.
template <typename S>
struct LayerNormCache {
  Matrix<S> xhat;        // normalized input, features x tokens
  RowVector<S> inv_std;  // 1 / sqrt(var + eps) per token
};

// Per column: y = gamma * (x - mean) / sqrt(var + eps) + beta (biased var).
template <typename S>
void LayerNormForward(const VecIn<S>& gamma, const VecIn<S>& beta, const MatIn<S>& x, Matrix<S>* y,
                      LayerNormCache<S>* cache) {
  const Eigen::Index d = x.rows();
  const Eigen::Index n = x.cols();
  cache->xhat.resize(d, n);
  cache->inv_std.resize(n);
  y->resize(d, n);
  const S inv_d = S(1) / static_cast<S>(d);
  for (Eigen::Index j = 0; j < n; ++j) {
    const S mean = x.col(j).sum() * inv_d;
    auto centered = (x.col(j).array() - mean);
    const S var = centered.square().sum() * inv_d;
    const S inv = S(1) / std::sqrt(var + static_cast<S>(kLayerNormEpsilon));
    cache->inv_std(j) = inv;
    cache->xhat.col(j) = centered * inv;
    y->col(j) = cache->xhat.col(j).array() * gamma.array() + beta.array();
  }
}

template <typename S>
void LayerNormBackward(const VecIn<S>& gamma, const LayerNormCache<S>& cache, const MatIn<S>& dy,
                       VecOut<S> dgamma, VecOut<S> dbeta, Matrix<S>* dx) {
  const Eigen::Index d = dy.rows();
  const Eigen::Index n = dy.cols();
  dx->resize(d, n);
  const S inv_d = S(1) / static_cast<S>(d);
  for (Eigen::Index j = 0; j < n; ++j) {
    auto xhat = cache.xhat.col(j).array();
    auto g = dy.col(j).array();
    dgamma.array() += g * xhat;
    dbeta.array() += g;
    auto dxhat = g * gamma.array();
    const S mean_dxhat = dxhat.sum() * inv_d;
    const S mean_dxhat_xhat = (dxhat * xhat).sum() * inv_d;
    dx->col(j) = cache.inv_std(j) * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
  }
}

// -------------------------------------------------------------------- gelu

// GELU, tanh approximation: y = u/2 (1 + tanh(c (u + 0.044715 u^3))).
// `tanh_out` keeps the tanh for the backward pass.
template <typename S>
void GeluForward(const MatIn<S>& u, Matrix<S>* y, Matrix<S>* tanh_out) {
  const S c = static_cast<S>(0.7978845608028654);  // sqrt(2 / pi)
  const S a = static_cast<S>(0.044715);
  tanh_out->resize(u.rows(), u.cols());
  y->resize(u.rows(), u.cols());
  tanh_out->array() = (c * (u.array() + a * u.array().cube())).tanh();
  y->array() = S(0.5) * u.array() * (S(1) + tanh_out->array());
}

// *du = dy * gelu'(u); `du` may alias nothing else.
template <typename S>
void GeluBackward(const MatIn<S>& u, const MatIn<S>& tanh_u, const MatIn<S>& dy, Matrix<S>* du) {
  const S c = static_cast<S>(0.7978845608028654);
  const S a3 = static_cast<S>(3 * 0.044715);
  du->resize(u.rows(), u.cols());
  auto t = tanh_u.array();
  auto x = u.array();
  du->array() = dy.array() * (S(0.5) * (S(1) + t) +
                              S(0.5) * x * (S(1) - t.square()) * c * (S(1) + a3 * x.square()));
}

// --------------------------------------------------------------- embedding

// x[:, i] = tok_emb[:, tokens[i]] + pos_emb[:, positions[i]].
template <typename S>
void EmbeddingForward(const MatIn<S>& tok_emb, const MatIn<S>& pos_emb,
                      const std::vector<int>& tokens, const std::vector<int>& positions,
                      Matrix<S>* x) {
  x->resize(tok_emb.rows(), static_cast<Eigen::Index>(tokens.size()));
  for (size_t i = 0; i < tokens.size(); ++i) {
    x->col(static_cast<Eigen::Index>(i)) = tok_emb.col(tokens[i]) + pos_emb.col(positions[i]);
  }
}

template <typename S>
void EmbeddingBackward(const std::vector<int>& tokens, const std::vector<int>& positions,
                       const MatIn<S>& dx, MatOut<S> dtok_emb, MatOut<S> dpos_emb) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    dtok_emb.col(tokens[i]) += dx.col(static_cast<Eigen::Index>(i));
    dpos_emb.col(positions[i]) += dx.col(static_cast<Eigen::Index>(i));
  }
}

// ---------------------------------------------------------------- attention

// Causal multi-head self-attention over packed sequences. `qkv` is
// (3 d) x tokens: rows [0, d) are the queries, [d, 2d) the keys, [2d, 3d)
// the values, head h owning rows [h dh, (h+1) dh) of each (dh = d / heads).
// *out (d x tokens) is the concatenation of the heads' outputs (before the
// output projection). *probs keeps the attention weights for the backward
// pass: per sequence s of length L and head h, an L x L block (keys x
// queries, zero above the diagonal) at probs_offset(s) + h L L.
template <typename S>
struct AttentionCache {
  AlignedVector<S> probs;
  std::vector<size_t> probs_offset;
};

template <typename S>
void AttentionForward(const MatIn<S>& qkv, const std::vector<int>& offsets, int heads,
                      Matrix<S>* out, AttentionCache<S>* cache) {
  const Eigen::Index d = qkv.rows() / 3;
  const Eigen::Index dh = d / heads;
  const S scale = S(1) / std::sqrt(static_cast<S>(dh));
  const size_t sequences = offsets.size() - 1;
  out->resize(d, qkv.cols());
  cache->probs_offset.resize(sequences);
  size_t total = 0;
  for (size_t s = 0; s < sequences; ++s) {
    const size_t len = static_cast<size_t>(offsets[s + 1] - offsets[s]);
    cache->probs_offset[s] = total;
    total += static_cast<size_t>(heads) * len * len;
  }
  cache->probs.resize(total);
  for (size_t s = 0; s < sequences; ++s) {
    const Eigen::Index start = offsets[s];
    const Eigen::Index len = offsets[s + 1] - offsets[s];
    for (int h = 0; h < heads; ++h) {
      Eigen::Map<Matrix<S>> p(
          cache->probs.data() + cache->probs_offset[s] + static_cast<size_t>(h * len * len), len,
          len);
      auto q = qkv.block(h * dh, start, dh, len);
      auto k = qkv.block(d + h * dh, start, dh, len);
      auto v = qkv.block(2 * d + h * dh, start, dh, len);
      p.noalias() = k.transpose() * q;  // p(j, i) = k_j . q_i
      for (Eigen::Index i = 0; i < len; ++i) {
        auto col = p.col(i).head(i + 1);
        col *= scale;
        const S max = col.maxCoeff();
        col = (col.array() - max).exp();
        col /= col.sum();
        p.col(i).tail(len - i - 1).setZero();
      }
      out->block(h * dh, start, dh, len).noalias() = v * p;
    }
  }
}

// *dqkv = gradient with respect to qkv, given dout.
template <typename S>
void AttentionBackward(const MatIn<S>& qkv, const std::vector<int>& offsets, int heads,
                       const AttentionCache<S>& cache, const MatIn<S>& dout, Matrix<S>* dqkv,
                       Matrix<S>* scratch) {
  const Eigen::Index d = qkv.rows() / 3;
  const Eigen::Index dh = d / heads;
  const S scale = S(1) / std::sqrt(static_cast<S>(dh));
  const size_t sequences = offsets.size() - 1;
  dqkv->resize(qkv.rows(), qkv.cols());
  for (size_t s = 0; s < sequences; ++s) {
    const Eigen::Index start = offsets[s];
    const Eigen::Index len = offsets[s + 1] - offsets[s];
    scratch->resize(len, len);
    for (int h = 0; h < heads; ++h) {
      Eigen::Map<const Matrix<S>> p(
          cache.probs.data() + cache.probs_offset[s] + static_cast<size_t>(h * len * len), len,
          len);
      auto q = qkv.block(h * dh, start, dh, len);
      auto k = qkv.block(d + h * dh, start, dh, len);
      auto v = qkv.block(2 * d + h * dh, start, dh, len);
      auto dout_h = dout.block(h * dh, start, dh, len);
      // dV = dO P^T; dP = V^T dO.
      dqkv->block(2 * d + h * dh, start, dh, len).noalias() = dout_h * p.transpose();
      Matrix<S>& dp = *scratch;
      dp.noalias() = v.transpose() * dout_h;
      // Softmax backward per query column, then the 1/sqrt(dh) scale:
      // da(j, i) = scale p(j, i) (dp(j, i) - sum_j' p(j', i) dp(j', i)).
      for (Eigen::Index i = 0; i < len; ++i) {
        const S dot = p.col(i).head(i + 1).dot(dp.col(i).head(i + 1));
        dp.col(i).head(i + 1) =
            scale * (p.col(i).head(i + 1).array() * (dp.col(i).head(i + 1).array() - dot));
        dp.col(i).tail(len - i - 1).setZero();
      }
      // dQ = K dA; dK = Q dA^T.
      dqkv->block(h * dh, start, dh, len).noalias() = k * dp;
      dqkv->block(d + h * dh, start, dh, len).noalias() = q * dp.transpose();
    }
  }
}

// ---------------------------------------------------- softmax cross-entropy

// Mean over columns of -log softmax(logits[:, m])[targets[m]]. Keeps the
// probabilities in *probs for the backward pass. Returns the loss.
template <typename S>
S SoftmaxCrossEntropyForward(const MatIn<S>& logits, const std::vector<int>& targets,
                             Matrix<S>* probs) {
  probs->resize(logits.rows(), logits.cols());
  S loss = 0;
  for (Eigen::Index m = 0; m < logits.cols(); ++m) {
    const S max = logits.col(m).maxCoeff();
    probs->col(m) = (logits.col(m).array() - max).exp();
    const S sum = probs->col(m).sum();
    probs->col(m) /= sum;
    loss += -(logits(targets[static_cast<size_t>(m)], m) - max - std::log(sum));
  }
  return logits.cols() == 0 ? S(0) : loss / static_cast<S>(logits.cols());
}

// *dlogits = (probs - onehot(targets)) / columns.
template <typename S>
void SoftmaxCrossEntropyBackward(const MatIn<S>& probs, const std::vector<int>& targets,
                                 Matrix<S>* dlogits) {
  *dlogits = probs;
  for (Eigen::Index m = 0; m < probs.cols(); ++m) {
    (*dlogits)(targets[static_cast<size_t>(m)], m) -= S(1);
  }
  if (probs.cols() > 0) *dlogits /= static_cast<S>(probs.cols());
}

}  // namespace layers
}  // namespace ftb::trainer

#endif  // FTB_TRAINER_LAYERS_H_
