// The default campaign's model on the built-in `people` dataset: after 30
// epochs it must answer the training questions (nearly) perfectly. The
// generalization accuracies are printed, not asserted: a small model trained
// from scratch is not expected to generalize, which is what the benchmark
// measures.
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "datasets/builtin.h"
#include "datasets/dataset.h"
#include "gtest/gtest.h"
#include "trainer/tokenizer.h"
#include "trainer/train.h"

namespace ftb::trainer {
namespace {

std::string Normalize(const std::string& text) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
}

TEST(MemorizationTest, PeopleDatasetIsMemorizedIn30Epochs) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<v1::Dataset> dataset = datasets::GeneratePeople(25, 1);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  ASSERT_EQ(dataset->training_size(), 150);

  std::vector<std::string_view> texts;
  for (const v1::QaItem& item : dataset->training()) {
    texts.push_back(item.prompt());
    texts.push_back(item.answer());
  }
  for (const v1::QuestionSet& set : dataset->tests()) {
    for (const v1::QaItem& item : set.items()) {
      texts.push_back(item.prompt());
      texts.push_back(item.answer());
    }
  }
  const Tokenizer tokenizer = Tokenizer::Build(texts);
  std::vector<Example> examples;
  int longest = 0;
  for (const v1::QaItem& item : dataset->training()) {
    examples.push_back({tokenizer.Encode(item.prompt()), tokenizer.Encode(item.answer())});
    longest = std::max(longest, static_cast<int>(examples.back().question.size() +
                                                 examples.back().answer.size() + 3));
  }

  // The default campaign: layers 2, width 128, heads 4, batch 8, lr x1
  // (the default TrainConfig rate), untied output projection.
  ModelConfig config;
  config.vocab_size = tokenizer.vocab_size();
  config.layers = 2;
  config.width = 128;
  config.heads = 4;
  config.max_len = 64;
  ASSERT_LE(longest, config.max_len);
  TrainConfig train;
  train.batch_size = 8;
  train.seed = 0;
  Model model = *Model::Create(config, 0);
  absl::StatusOr<TrainStats> stats = Train(model, examples, train, {30});
  ASSERT_TRUE(stats.ok()) << stats.status();

  std::printf("vocab %d, %zu parameters, %lld steps, %lld tokens, loss %.4f -> %.4f\n",
              tokenizer.vocab_size(), model.parameters().size(),
              static_cast<long long>(stats->steps), static_cast<long long>(stats->tokens),
              stats->epoch_loss.front(), stats->epoch_loss.back());
  std::printf("loss per epoch:");
  for (double loss : stats->epoch_loss) std::printf(" %.3f", loss);
  std::printf("\n");
  double memorization = -1;
  for (const v1::QuestionSet& set : dataset->tests()) {
    std::vector<std::vector<int>> questions;
    for (const v1::QaItem& item : set.items()) questions.push_back(tokenizer.Encode(item.prompt()));
    const std::vector<std::vector<int>> answers = Answer(model, questions, 8);
    int right = 0;
    for (int i = 0; i < set.items_size(); ++i) {
      right += Normalize(tokenizer.Decode(answers[static_cast<size_t>(i)])) ==
               Normalize(set.items(i).answer());
    }
    const double accuracy = static_cast<double>(right) / set.items_size();
    std::printf("%-13s %3d/%3d = %.3f\n", datasets::QuestionTypeName(set.type()).c_str(), right,
                set.items_size(), accuracy);
    if (set.type() == v1::QUESTION_TYPE_MEMORIZATION) memorization = accuracy;
  }
  EXPECT_GE(memorization, 0.95);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.1f s\n", seconds);
}

}  // namespace
}  // namespace ftb::trainer
