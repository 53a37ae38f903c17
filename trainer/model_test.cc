#include "trainer/model.h"

#include <algorithm>
#include <vector>

#include "common/rng.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "trainer/gradient_check.h"
#include "trainer/tokenizer.h"

namespace ftb::trainer {
namespace {

using ::testing::ElementsAre;
using testing::ExpectGradientMatches;
using ::testing::SizeIs;

ModelConfig TinyConfig(bool tied) {
  ModelConfig config;
  config.vocab_size = 13;
  config.layers = 2;
  config.width = 8;
  config.heads = 2;
  config.max_len = 10;
  config.tie_embeddings = tied;
  return config;
}

// Bigger random weights than the real initialization, so every path of the
// gradient carries signal.
ModelT<double> RandomModel(const ModelConfig& config, uint64_t seed) {
  ModelT<double> model = *ModelT<double>::Create(config, seed);
  Rng rng(seed + 100);
  for (double& w : model.mutable_parameters()) w += 0.3 * (2 * rng.UniformDouble() - 1);
  return model;
}

Batch TwoSequenceBatch() {
  Batch batch;
  batch.Add({kBosId, 7, 8, 9, kSepId, 10, 11, kEosId}, 5);
  batch.Add({kBosId, 12, kSepId, 6, kEosId}, 3);
  return batch;
}

TEST(ModelConfigTest, ValidationNamesTheField) {
  ModelConfig config = TinyConfig(true);
  EXPECT_TRUE(ValidateModelConfig(config).ok());
  config.heads = 3;
  EXPECT_EQ(ValidateModelConfig(config).message(),
            "model config: heads = 3: expected a divisor of width (8)");
  config = TinyConfig(true);
  config.layers = 0;
  EXPECT_EQ(ValidateModelConfig(config).message(), "model config: layers = 0: expected [1, 64]");
  config = TinyConfig(true);
  config.vocab_size = 5;
  EXPECT_EQ(ValidateModelConfig(config).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ModelT<float>::Create(config, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelConfigTest, ParameterCountMatchesTheLayout) {
  // 2 blocks of 12 d^2 + 13 d, embeddings, final LayerNorm.
  ModelConfig config = TinyConfig(true);
  EXPECT_EQ(ParameterCount(config), 8u * 13 + 8 * 10 + 2 * (12 * 64 + 13 * 8) + 16);
  config.tie_embeddings = false;
  EXPECT_EQ(ParameterCount(config), 8u * 13 + 8 * 10 + 2 * (12 * 64 + 13 * 8) + 16 + 8 * 13);
  EXPECT_THAT(ModelT<float>::Create(config, 1)->parameters(), SizeIs(ParameterCount(config)));
  EXPECT_EQ(ModelT<float>::FromParameters(config, std::vector<float>(3)).status().message(),
            "model: 3 parameters given, the config needs 2048");
}

TEST(ModelConfigTest, CreateIsDeterministicPerSeed) {
  const ModelConfig config = TinyConfig(false);
  EXPECT_EQ(ModelT<float>::Create(config, 5)->parameters(),
            ModelT<float>::Create(config, 5)->parameters());
  EXPECT_NE(ModelT<float>::Create(config, 5)->parameters(),
            ModelT<float>::Create(config, 6)->parameters());
}

class ModelGradientTest : public ::testing::TestWithParam<bool> {};

// Every parameter of the whole model against central differences of the
// loss, with tied and untied output projections.
TEST_P(ModelGradientTest, MatchesFiniteDifferences) {
  const ModelConfig config = TinyConfig(GetParam());
  ModelT<double> model = RandomModel(config, 11);
  const Batch batch = TwoSequenceBatch();
  Workspace<double> workspace;
  AlignedVector<double> gradient;
  model.ForwardBackward(batch, &gradient, &workspace);
  ASSERT_EQ(gradient.size(), model.parameters().size());
  const auto loss = [&] { return model.ForwardBackward(batch, nullptr, &workspace); };
  ExpectGradientMatches(model.mutable_parameters().data(),
                        static_cast<Eigen::Index>(gradient.size()), gradient.data(), loss,
                        "parameter");
  // Nothing is trivially zero: every tensor gets gradient.
  const double norm =
      Eigen::Map<const Vector<double>>(gradient.data(), static_cast<Eigen::Index>(gradient.size()))
          .norm();
  EXPECT_GT(norm, 0.1);
}

INSTANTIATE_TEST_SUITE_P(TiedAndUntied, ModelGradientTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Tied" : "Untied"; });

TEST(ModelTest, FloatGradientAgreesWithDouble) {
  const ModelConfig config = TinyConfig(false);
  const ModelT<double> reference = RandomModel(config, 12);
  std::vector<float> weights(reference.parameters().begin(), reference.parameters().end());
  const ModelT<float> model = *ModelT<float>::FromParameters(config, weights);
  const Batch batch = TwoSequenceBatch();
  Workspace<double> wd;
  Workspace<float> wf;
  AlignedVector<double> gd;
  AlignedVector<float> gf;
  const double ld = reference.ForwardBackward(batch, &gd, &wd);
  const float lf = model.ForwardBackward(batch, &gf, &wf);
  EXPECT_NEAR(lf, ld, 1e-5 * std::abs(ld));
  Vector<double> a =
      Eigen::Map<Vector<float>>(gf.data(), static_cast<Eigen::Index>(gf.size())).cast<double>();
  Eigen::Map<Vector<double>> b(gd.data(), static_cast<Eigen::Index>(gd.size()));
  EXPECT_LT((a - b).norm(), 1e-4 * b.norm());
}

TEST(ModelTest, LossOnlyCountsScoredTokens) {
  const ModelConfig config = TinyConfig(true);
  const ModelT<double> model = RandomModel(config, 13);
  Workspace<double> workspace;
  Batch a;
  a.Add({kBosId, 7, 8, kSepId, 10, kEosId}, 4);
  Batch b;
  b.Add({kBosId, 7, 8, kSepId, 10, kEosId}, 4);
  b.Add({kBosId, 9, kSepId, kEosId}, 4);  // nothing scored
  EXPECT_THAT(a.loss_columns, ElementsAre(3, 4));
  EXPECT_THAT(a.targets, ElementsAre(10, kEosId));
  EXPECT_THAT(b.loss_columns, ElementsAre(3, 4));
  EXPECT_DOUBLE_EQ(model.ForwardBackward(a, nullptr, &workspace),
                   model.ForwardBackward(b, nullptr, &workspace));
}

// Greedy decoding by recomputing the whole sequence for every token (no
// cache): the reference for Generate's key/value cache.
std::vector<int> GreedyWithoutCache(const ModelT<double>& model, std::vector<int> sequence,
                                    int max_new_tokens) {
  std::vector<int> answer;
  Workspace<double> workspace;
  while (static_cast<int>(answer.size()) < max_new_tokens &&
         static_cast<int>(sequence.size()) <= model.config().max_len) {
    // A placeholder target after the last token scores exactly its column.
    std::vector<int> scored = sequence;
    scored.push_back(0);
    Batch batch;
    batch.Add(scored, static_cast<int>(sequence.size()));
    model.ForwardBackward(batch, nullptr, &workspace);
    Eigen::Index next = 0;
    workspace.logits.col(workspace.logits.cols() - 1).maxCoeff(&next);
    if (next == kEosId) break;
    answer.push_back(static_cast<int>(next));
    sequence.push_back(static_cast<int>(next));
  }
  return answer;
}

TEST(ModelTest, CachedGenerationMatchesRecomputation) {
  ModelConfig config = TinyConfig(true);
  // GreedyWithoutCache embeds a placeholder after the sequence, so it needs
  // one position of headroom: max_len stays above every prompt + answer here
  // (truncation at max_len is covered by GenerateLimits).
  config.max_len = 16;
  const ModelT<double> model = RandomModel(config, 14);
  const std::vector<std::vector<int>> prompts = {
      {kBosId, 7, 8, 9, kSepId}, {kBosId, 12, kSepId}, {kBosId, 5, 6, 7, 8, 9, 10, kSepId}};
  const std::vector<std::vector<int>> batched = model.Generate(prompts, 6);
  const std::vector<std::vector<int>> one_by_one = model.Generate(prompts, 6, /*batch=*/1);
  ASSERT_THAT(batched, SizeIs(3));
  int generated = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(batched[i], GreedyWithoutCache(model, prompts[i], 6)) << i;
    EXPECT_EQ(batched[i], one_by_one[i]) << i;
    EXPECT_LE(batched[i].size(), 6u);
    // Never past max_len: prompt + answer tokens fed back fit.
    EXPECT_LE(prompts[i].size() + batched[i].size(), 17u);
    generated += static_cast<int>(batched[i].size());
  }
  EXPECT_GT(generated, 0);
}

TEST(ModelTest, GenerateLimits) {
  ModelConfig config = TinyConfig(true);
  const ModelT<double> model = RandomModel(config, 15);
  const std::vector<std::vector<int>> none = model.Generate({{kBosId, 7, kSepId}}, 0);
  EXPECT_THAT(none, ElementsAre(::testing::IsEmpty()));
  EXPECT_THAT(model.Generate({{}}, 4), ElementsAre(::testing::IsEmpty()));
  // A prompt longer than max_len (10) keeps its last 10 tokens.
  std::vector<int> long_prompt = {kBosId, 5, 6, 7, 8, 9, 10, 11, 12, 5, 6, 7, kSepId};
  std::vector<int> tail(long_prompt.end() - 10, long_prompt.end());
  EXPECT_EQ(model.Generate({long_prompt}, 4), model.Generate({tail}, 4));
  EXPECT_LE(model.Generate({tail}, 4)[0].size(), 1u);
}

}  // namespace
}  // namespace ftb::trainer
