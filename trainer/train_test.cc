#include "trainer/train.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "trainer/checkpoint.h"
#include "trainer/tokenizer.h"

namespace ftb::trainer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Twelve made-up facts: "What is the code of item <k>?" -> a number.
struct Toy {
  Tokenizer tokenizer;
  std::vector<Example> examples;
  std::vector<std::vector<int>> questions;
};

Toy MakeToy() {
  std::vector<std::string> texts;
  for (int k = 0; k < 12; ++k) {
    texts.push_back(absl::StrCat("What is the code of item ", k, "?"));
    texts.push_back(absl::StrCat((k * 37) % 50));
  }
  std::vector<std::string_view> views(texts.begin(), texts.end());
  Toy toy{Tokenizer::Build(views), {}, {}};
  for (size_t i = 0; i < texts.size(); i += 2) {
    toy.examples.push_back({toy.tokenizer.Encode(texts[i]), toy.tokenizer.Encode(texts[i + 1])});
    toy.questions.push_back(toy.examples.back().question);
  }
  return toy;
}

ModelConfig SmallConfig(int vocab_size) {
  ModelConfig config;
  config.vocab_size = vocab_size;
  config.layers = 1;
  config.width = 32;
  config.heads = 2;
  config.max_len = 16;
  return config;
}

TrainConfig SmallTrainConfig(uint64_t seed) {
  TrainConfig config;
  config.learning_rate = 3e-3;
  config.batch_size = 4;
  config.seed = seed;
  return config;
}

TEST(SequenceTest, TrainingAndPromptSequences) {
  int answer_start = -1;
  EXPECT_THAT(TrainingSequence({{7, 8, 9}, {10, 11}}, 16, &answer_start),
              ElementsAre(kBosId, 7, 8, 9, kSepId, 10, 11, kEosId));
  EXPECT_EQ(answer_start, 5);
  // Too long: the question loses tokens from the left.
  EXPECT_THAT(TrainingSequence({{5, 6, 7, 8, 9}, {10, 11}}, 7, &answer_start),
              ElementsAre(kBosId, 8, 9, kSepId, 10, 11, kEosId));
  EXPECT_EQ(answer_start, 4);
  // Even the answer does not fit: it loses its tail.
  EXPECT_THAT(TrainingSequence({{5}, {10, 11, 12, 13}}, 5, &answer_start),
              ElementsAre(kBosId, kSepId, 10, 11, kEosId));
  EXPECT_THAT(PromptSequence({5, 6, 7}, 16), ElementsAre(kBosId, 5, 6, 7, kSepId));
  EXPECT_THAT(PromptSequence({5, 6, 7}, 5), ElementsAre(kBosId, 6, 7, kSepId));
}

TEST(TrainTest, LossDecreases) {
  const Toy toy = MakeToy();
  Model model = *Model::Create(SmallConfig(toy.tokenizer.vocab_size()), 1);
  absl::StatusOr<TrainStats> stats = Train(model, toy.examples, SmallTrainConfig(1), {10});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->steps, 30);  // 3 steps per epoch
  ASSERT_EQ(stats->epoch_loss.size(), 10u);
  EXPECT_LT(stats->epoch_loss.back(), 0.5 * stats->epoch_loss.front());
  for (size_t e = 1; e < stats->epoch_loss.size(); ++e) {
    EXPECT_TRUE(std::isfinite(stats->epoch_loss[e]));
  }
  // Tokens: every sequence once per epoch.
  int64_t per_epoch = 0;
  for (const Example& example : toy.examples) {
    per_epoch += static_cast<int64_t>(example.question.size() + example.answer.size() + 3);
  }
  EXPECT_EQ(stats->tokens, 10 * per_epoch);
}

TEST(TrainTest, LearnsTheToyFacts) {
  const Toy toy = MakeToy();
  Model model = *Model::Create(SmallConfig(toy.tokenizer.vocab_size()), 2);
  ASSERT_TRUE(Train(model, toy.examples, SmallTrainConfig(2), {60}).ok());
  const std::vector<std::vector<int>> answers = Answer(model, toy.questions, 4);
  int right = 0;
  for (size_t i = 0; i < answers.size(); ++i) right += answers[i] == toy.examples[i].answer;
  EXPECT_GE(right, 11) << "of 12";
}

TEST(TrainTest, SameSeedSameWeightsOtherSeedOtherWeights) {
  const Toy toy = MakeToy();
  const ModelConfig config = SmallConfig(toy.tokenizer.vocab_size());
  const auto run = [&](uint64_t init_seed, uint64_t data_seed) {
    Model model = *Model::Create(config, init_seed);
    EXPECT_TRUE(Train(model, toy.examples, SmallTrainConfig(data_seed), {3}).ok());
    return model;
  };
  const Model a = run(1, 1);
  const Model b = run(1, 1);
  EXPECT_TRUE(a.parameters() == b.parameters());  // bit for bit
  EXPECT_EQ(Answer(a, toy.questions, 4), Answer(b, toy.questions, 4));
  EXPECT_FALSE(a.parameters() == run(1, 2).parameters());  // data order
  EXPECT_FALSE(a.parameters() == run(2, 1).parameters());  // initial weights
}

TEST(TrainTest, SnapshotsEqualSeparateRuns) {
  const Toy toy = MakeToy();
  const ModelConfig config = SmallConfig(toy.tokenizer.vocab_size());
  std::vector<AlignedVector<float>> snapshots;
  std::vector<int> epochs_seen;
  Model model = *Model::Create(config, 3);
  TrainCallbacks callbacks;
  callbacks.on_snapshot = [&](int epoch, const Model& m) {
    epochs_seen.push_back(epoch);
    snapshots.push_back(m.parameters());
    return absl::OkStatus();
  };
  ASSERT_TRUE(Train(model, toy.examples, SmallTrainConfig(3), {1, 2, 2, 3}, callbacks).ok());
  EXPECT_THAT(epochs_seen, ElementsAre(1, 2, 3));
  ASSERT_EQ(snapshots.size(), 3u);
  EXPECT_TRUE(snapshots[2] == model.parameters());
  for (int epochs = 1; epochs <= 3; ++epochs) {
    Model separate = *Model::Create(config, 3);
    ASSERT_TRUE(Train(separate, toy.examples, SmallTrainConfig(3), {epochs}).ok());
    EXPECT_TRUE(separate.parameters() == snapshots[static_cast<size_t>(epochs - 1)]) << epochs;
  }
}

TEST(TrainTest, CancellationAndCallbackErrorsStopTraining) {
  const Toy toy = MakeToy();
  Model model = *Model::Create(SmallConfig(toy.tokenizer.vocab_size()), 4);
  int steps = 0;
  TrainCallbacks callbacks;
  callbacks.cancelled = [&] { return steps >= 5; };
  callbacks.on_step = [&](int64_t step, int64_t total, double) {
    steps = static_cast<int>(step);
    EXPECT_EQ(total, 30);
  };
  absl::StatusOr<TrainStats> stats =
      Train(model, toy.examples, SmallTrainConfig(4), {10}, callbacks);
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(steps, 5);

  TrainCallbacks failing;
  failing.on_snapshot = [](int epoch, const Model&) {
    return absl::UnavailableError(absl::StrCat("disk full at ", epoch));
  };
  stats = Train(model, toy.examples, SmallTrainConfig(4), {1, 2}, failing);
  EXPECT_EQ(stats.status(), absl::UnavailableError("disk full at 1"));
}

TEST(TrainTest, InvalidArguments) {
  const Toy toy = MakeToy();
  Model model = *Model::Create(SmallConfig(toy.tokenizer.vocab_size()), 5);
  EXPECT_EQ(Train(model, toy.examples, SmallTrainConfig(1), {}).status().message(),
            "train: no epochs to train for");
  EXPECT_EQ(Train(model, toy.examples, SmallTrainConfig(1), {2, 1}).status().message(),
            "train: snapshot epochs must be positive and ascending; entry 1 is 1");
  EXPECT_EQ(Train(model, {}, SmallTrainConfig(1), {1}).status().message(),
            "train: no training examples");
  TrainConfig bad = SmallTrainConfig(1);
  bad.batch_size = 0;
  EXPECT_EQ(Train(model, toy.examples, bad, {1}).status().message(),
            "train config: batch_size = 0: expected >= 1");
  std::vector<Example> out_of_vocabulary = {{{5, 999}, {6}}};
  EXPECT_EQ(Train(model, out_of_vocabulary, SmallTrainConfig(1), {1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("ftb_trainer_checkpoint_test_", ::getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

TEST_F(CheckpointTest, SaveLoadRoundTripGivesIdenticalAnswers) {
  const Toy toy = MakeToy();
  ModelConfig config = SmallConfig(toy.tokenizer.vocab_size());
  config.tie_embeddings = false;
  Model model = *Model::Create(config, 6);
  ASSERT_TRUE(Train(model, toy.examples, SmallTrainConfig(6), {5}).ok());
  const std::string path = Path("weights.bin");
  ASSERT_TRUE(SaveModel(model, path).ok());
  absl::StatusOr<Model> loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config(), model.config());
  EXPECT_TRUE(loaded->parameters() == model.parameters());
  EXPECT_EQ(Answer(*loaded, toy.questions, 4), Answer(model, toy.questions, 4));
  // Only the final file is left (the temporary was renamed).
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
  // Saving again replaces the file.
  ASSERT_TRUE(SaveModel(*Model::Create(config, 7), path).ok());
  EXPECT_TRUE(LoadModel(path)->parameters() == Model::Create(config, 7)->parameters());
}

TEST_F(CheckpointTest, MissingCorruptAndTruncatedFiles) {
  EXPECT_EQ(LoadModel(Path("missing.bin")).status().code(), absl::StatusCode::kNotFound);
  const Model model = *Model::Create(SmallConfig(20), 8);
  const std::string path = Path("w.bin");
  ASSERT_TRUE(SaveModel(model, path).ok());
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto write = [&](const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  };
  std::string flipped = bytes;
  flipped[100] ^= 1;
  write(flipped);
  EXPECT_EQ(LoadModel(path).status(),
            absl::DataLossError(absl::StrCat(path, ": checksum mismatch")));
  write(bytes.substr(0, bytes.size() - 4));
  EXPECT_EQ(LoadModel(path).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(LoadModel(path).status().message(), HasSubstr("truncated"));
  write("not weights at all, just some text that is long enough to have a header..........");
  EXPECT_THAT(LoadModel(path).status().message(), HasSubstr("not a weights file"));
  EXPECT_EQ(SaveModel(model, Path("no/such/dir/w.bin")).code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace ftb::trainer
