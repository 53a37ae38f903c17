// Finite-difference checks of every layer's backward pass, in double.
#include "trainer/layers.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/rng.h"
#include "gtest/gtest.h"
#include "trainer/gradient_check.h"

namespace ftb::trainer {
namespace {

using Mat = Matrix<double>;
using Vec = Vector<double>;
using testing::ExpectGradientMatches;
using testing::RandomMatrix;

TEST(LayersGradientTest, Linear) {
  Rng rng(1);
  Mat w = RandomMatrix(rng, 5, 4);
  Vec b = RandomMatrix(rng, 5, 1);
  Mat x = RandomMatrix(rng, 4, 3);
  const Mat r = RandomMatrix(rng, 5, 3);  // loss = sum(r .* y)
  const auto loss = [&] {
    Mat y;
    layers::LinearForward<double>(w, b, x, &y);
    return (r.array() * y.array()).sum();
  };
  Mat dw = Mat::Zero(5, 4);
  Vec db = Vec::Zero(5);
  Mat dx;
  layers::LinearBackward<double>(w, x, r, dw, db, &dx);
  ExpectGradientMatches(w.data(), w.size(), dw.data(), loss, "w");
  ExpectGradientMatches(b.data(), b.size(), db.data(), loss, "b");
  ExpectGradientMatches(x.data(), x.size(), dx.data(), loss, "x");
}

TEST(LayersGradientTest, LinearAccumulatesParameterGradients) {
  Rng rng(2);
  const Mat w = RandomMatrix(rng, 3, 2);
  const Mat x = RandomMatrix(rng, 2, 4);
  const Mat dy = RandomMatrix(rng, 3, 4);
  Mat dw = Mat::Constant(3, 2, 1.0);
  Vec db = Vec::Constant(3, 2.0);
  layers::LinearBackward<double>(w, x, dy, dw, db, nullptr);
  const Mat expected_dw = (dy * x.transpose()).array() + 1.0;
  const Vec expected_db = dy.rowwise().sum().array() + 2.0;
  EXPECT_TRUE(dw.isApprox(expected_dw, 1e-14));
  EXPECT_TRUE(db.isApprox(expected_db, 1e-14));
}

TEST(LayersGradientTest, LayerNorm) {
  Rng rng(3);
  Vec gamma = RandomMatrix(rng, 6, 1);
  Vec beta = RandomMatrix(rng, 6, 1);
  Mat x = RandomMatrix(rng, 6, 4, 2.0);
  const Mat r = RandomMatrix(rng, 6, 4);
  const auto loss = [&] {
    Mat y;
    layers::LayerNormCache<double> cache;
    layers::LayerNormForward<double>(gamma, beta, x, &y, &cache);
    return (r.array() * y.array()).sum();
  };
  Mat y;
  layers::LayerNormCache<double> cache;
  layers::LayerNormForward<double>(gamma, beta, x, &y, &cache);
  // Each column is normalized: mean 0, variance 1 before the affine part.
  for (Eigen::Index j = 0; j < 4; ++j) {
    EXPECT_NEAR(cache.xhat.col(j).mean(), 0.0, 1e-12);
    EXPECT_NEAR(cache.xhat.col(j).squaredNorm() / 6, 1.0, 1e-4);
  }
  Vec dgamma = Vec::Zero(6);
  Vec dbeta = Vec::Zero(6);
  Mat dx;
  layers::LayerNormBackward<double>(gamma, cache, r, dgamma, dbeta, &dx);
  ExpectGradientMatches(gamma.data(), gamma.size(), dgamma.data(), loss, "gamma");
  ExpectGradientMatches(beta.data(), beta.size(), dbeta.data(), loss, "beta");
  ExpectGradientMatches(x.data(), x.size(), dx.data(), loss, "x");
}

TEST(LayersGradientTest, Gelu) {
  Rng rng(4);
  Mat u = RandomMatrix(rng, 5, 3, 3.0);
  const Mat r = RandomMatrix(rng, 5, 3);
  const auto loss = [&] {
    Mat y, t;
    layers::GeluForward<double>(u, &y, &t);
    return (r.array() * y.array()).sum();
  };
  Mat y, t, du;
  layers::GeluForward<double>(u, &y, &t);
  layers::GeluBackward<double>(u, t, r, &du);
  ExpectGradientMatches(u.data(), u.size(), du.data(), loss, "u");
  // Spot values of the tanh approximation.
  Mat probe(1, 3);
  probe << 0.0, 1.0, -1.0;
  layers::GeluForward<double>(probe, &y, &t);
  EXPECT_EQ(y(0, 0), 0.0);
  EXPECT_NEAR(y(0, 1), 0.841192, 1e-6);
  EXPECT_NEAR(y(0, 2), -0.158808, 1e-6);
}

TEST(LayersGradientTest, EmbeddingWithRepeatedTokens) {
  Rng rng(5);
  Mat tok = RandomMatrix(rng, 3, 5);
  Mat pos = RandomMatrix(rng, 3, 4);
  const std::vector<int> tokens = {2, 4, 2, 0, 2};
  const std::vector<int> positions = {0, 1, 2, 0, 1};
  const Mat r = RandomMatrix(rng, 3, 5);
  const auto loss = [&] {
    Mat x;
    layers::EmbeddingForward<double>(tok, pos, tokens, positions, &x);
    return (r.array() * x.array()).sum();
  };
  Mat dtok = Mat::Zero(3, 5);
  Mat dpos = Mat::Zero(3, 4);
  layers::EmbeddingBackward<double>(tokens, positions, r, dtok, dpos);
  ExpectGradientMatches(tok.data(), tok.size(), dtok.data(), loss, "token embedding");
  ExpectGradientMatches(pos.data(), pos.size(), dpos.data(), loss, "position embedding");
  EXPECT_EQ(dtok.col(1), Vec::Zero(3));  // token 1 unused
  EXPECT_EQ(dpos.col(3), Vec::Zero(3));  // position 3 unused
}

TEST(LayersGradientTest, CausalAttentionOverPackedSequences) {
  Rng rng(6);
  const int heads = 2;
  const int d = 6;
  // Three sequences of lengths 3, 1 and 4 packed into 8 columns.
  const std::vector<int> offsets = {0, 3, 4, 8};
  Mat qkv = RandomMatrix(rng, 3 * d, 8, 1.5);
  const Mat r = RandomMatrix(rng, d, 8);
  const auto loss = [&] {
    Mat out;
    layers::AttentionCache<double> cache;
    layers::AttentionForward<double>(qkv, offsets, heads, &out, &cache);
    return (r.array() * out.array()).sum();
  };
  Mat out, dqkv, scratch;
  layers::AttentionCache<double> cache;
  layers::AttentionForward<double>(qkv, offsets, heads, &out, &cache);
  layers::AttentionBackward<double>(qkv, offsets, heads, cache, r, &dqkv, &scratch);
  ExpectGradientMatches(qkv.data(), qkv.size(), dqkv.data(), loss, "qkv");

  // Causality and packing: the first token of every sequence attends only to
  // itself, so its output is its own value vector.
  for (int start : {0, 3, 4}) {
    EXPECT_TRUE(out.col(start).isApprox(qkv.block(2 * d, start, d, 1), 1e-12)) << start;
  }
  // Changing a later token or another sequence leaves earlier outputs alone.
  Mat changed = qkv;
  changed.col(2).setConstant(9.0);
  changed.col(5).setConstant(-9.0);
  Mat out2;
  layers::AttentionForward<double>(changed, offsets, heads, &out2, &cache);
  EXPECT_EQ(out2.col(0), out.col(0));
  EXPECT_EQ(out2.col(1), out.col(1));
  EXPECT_EQ(out2.col(3), out.col(3));
  EXPECT_EQ(out2.col(4), out.col(4));
}

TEST(LayersGradientTest, SoftmaxCrossEntropy) {
  Rng rng(7);
  Mat logits = RandomMatrix(rng, 7, 3, 2.0);
  const std::vector<int> targets = {6, 0, 3};
  const auto loss = [&] {
    Mat probs;
    return layers::SoftmaxCrossEntropyForward<double>(logits, targets, &probs);
  };
  Mat probs, dlogits;
  const double value = layers::SoftmaxCrossEntropyForward<double>(logits, targets, &probs);
  layers::SoftmaxCrossEntropyBackward<double>(probs, targets, &dlogits);
  ExpectGradientMatches(logits.data(), logits.size(), dlogits.data(), loss, "logits");
  // Direct evaluation of the mean negative log-likelihood.
  double expected = 0;
  for (int m = 0; m < 3; ++m) {
    const double log_z = std::log(logits.col(m).array().exp().sum());
    expected += log_z - logits(targets[static_cast<size_t>(m)], m);
  }
  EXPECT_NEAR(value, expected / 3, 1e-12);
  for (int m = 0; m < 3; ++m) EXPECT_NEAR(probs.col(m).sum(), 1.0, 1e-12);
}

TEST(LayersGradientTest, SoftmaxCrossEntropyIsStableForLargeLogits) {
  Mat logits(3, 1);
  logits << 1000.0, 0.0, -1000.0;
  Mat probs;
  const double loss = layers::SoftmaxCrossEntropyForward<double>(logits, {0}, &probs);
  EXPECT_EQ(loss, 0.0);
  EXPECT_EQ(probs(0, 0), 1.0);
  EXPECT_TRUE(std::isfinite(layers::SoftmaxCrossEntropyForward<double>(logits, {2}, &probs)));
}

}  // namespace
}  // namespace ftb::trainer
