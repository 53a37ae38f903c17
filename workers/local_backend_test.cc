#include "workers/local_backend.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "datasets/builtin.h"
#include "datasets/dataset.h"
#include "datasets/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "trainer/tokenizer.h"

namespace ftb::workers {
namespace {

using datasets::testing::CodeAndMessage;
using datasets::testing::ScratchDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// A tiny local task: builtin `dataset` of `size`, a 1-layer width-32 model,
// one cell per epoch count.
v1::TaskAssignment LocalTask(const std::string& dataset, uint32_t size,
                             const std::vector<uint32_t>& epochs) {
  v1::TaskAssignment task;
  task.set_task_id("c1/t0");
  task.set_attempt(1);
  task.set_kind(v1::TASK_KIND_TUNE);
  task.set_backend("local");
  v1::TuneWork* work = task.mutable_tune();
  work->mutable_dataset()->set_source(v1::DATASET_SOURCE_BUILTIN);
  work->mutable_dataset()->set_name(dataset);
  work->mutable_dataset()->set_size(size);
  work->mutable_dataset()->set_seed(1);
  work->mutable_model()->set_name("tiny-transformer");
  work->mutable_model()->set_backend("local");
  auto& options = *work->mutable_model()->mutable_options()->mutable_fields();
  options["layers"].set_number_value(1);
  options["width"].set_number_value(32);
  options["heads"].set_number_value(2);
  options["max_new_tokens"].set_number_value(6);
  options["learning_rate"].set_number_value(3e-3);
  work->set_learning_rate_multiplier(1.0);
  work->set_batch_size(4);
  work->set_seed(7);
  for (uint32_t e : epochs) {
    work->add_epochs(e);
    work->add_cell_ids("cell-e" + std::to_string(e));
  }
  return task;
}

google::protobuf::Value& Option(v1::TaskAssignment& task, const std::string& name) {
  return (*task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields())[name];
}

// Collects log lines.
class Log {
 public:
  LogSink sink() {
    return [this](std::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    };
  }
  bool Contains(std::string_view text) const {
    absl::MutexLock lock(&mu_);
    for (const std::string& line : lines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_;
};

// Tokens a training pass over `items` feeds: <bos> prompt <sep> answer <eos>.
uint64_t SequenceTokens(const google::protobuf::RepeatedPtrField<v1::QaItem>& items) {
  uint64_t tokens = 0;
  for (const v1::QaItem& item : items) {
    tokens += trainer::Tokenizer::Split(item.prompt()).size() +
              trainer::Tokenizer::Split(item.answer()).size() + 3;
  }
  return tokens;
}

absl::StatusOr<v1::TaskResult> RunTask(LocalBackend& backend, const v1::TaskAssignment& task,
                                       Log* log = nullptr) {
  TaskContext ctx(task.task_id(), task.attempt(), log != nullptr ? log->sink() : LogSink());
  return backend.Run(task, ctx);
}

TEST(LocalBackendTest, AnswersEveryQuestionSetForEveryCell) {
  ScratchDir dir;
  LocalBackend backend(dir.path());
  const v1::TaskAssignment task = LocalTask("people", 3, {1, 3});
  absl::StatusOr<v1::TaskResult> result = RunTask(backend, task);
  ASSERT_TRUE(result.ok()) << result.status();
  const v1::Dataset dataset = *datasets::LoadDataset(task.tune().dataset());
  ASSERT_THAT(result->answers(), SizeIs(2));
  for (int c = 0; c < 2; ++c) {
    const v1::CellAnswers& cell = result->answers(c);
    EXPECT_EQ(cell.cell_id(), task.tune().cell_ids(c));
    ASSERT_EQ(cell.items_size(), datasets::TestQuestionCount(dataset));
    int index = 0;
    std::set<std::string> types;
    for (const v1::QuestionSet& set : dataset.tests()) {
      for (const v1::QaItem& question : set.items()) {
        const v1::JudgeItem& item = cell.items(index++);
        EXPECT_EQ(item.cell_id(), cell.cell_id());
        EXPECT_EQ(item.question_type(), datasets::QuestionTypeName(set.type()));
        EXPECT_EQ(item.question_id(), question.id());
        EXPECT_EQ(item.prompt(), question.prompt());
        EXPECT_EQ(item.reference(), question.answer());
        EXPECT_EQ(item.context(), question.context());
        EXPECT_EQ(item.answer(), std::string(absl::StripAsciiWhitespace(item.answer())));
        types.insert(item.question_type());
      }
    }
    EXPECT_THAT(types, ElementsAre("comparison", "memorization", "rephrased", "secondary"));
  }
  // Three epochs over the 18 training pairs, nothing else.
  EXPECT_EQ(result->tokens(), 3 * SequenceTokens(dataset.training()));
  EXPECT_EQ(result->cost_usd(), 0);
  EXPECT_THAT(result->digest(), SizeIs(64));
  EXPECT_EQ(backend.trainings(), 1);
  EXPECT_EQ(backend.reuses(), 0);

  // Training on 18 facts for 60 epochs memorizes them.
  LocalBackend no_artifacts("off");
  v1::TaskAssignment longer = LocalTask("people", 3, {60});
  result = RunTask(no_artifacts, longer);
  ASSERT_TRUE(result.ok()) << result.status();
  int right = 0;
  int memorization = 0;
  for (const v1::JudgeItem& item : result->answers(0).items()) {
    if (item.question_type() != "memorization") continue;
    ++memorization;
    right += item.answer() == item.reference();
  }
  EXPECT_EQ(memorization, 18);
  EXPECT_GE(right, 17);
}

TEST(LocalBackendTest, SameTaskSameAnswers) {
  LocalBackend backend("off");
  const v1::TaskAssignment task = LocalTask("people", 2, {2});
  absl::StatusOr<v1::TaskResult> a = RunTask(backend, task);
  absl::StatusOr<v1::TaskResult> b = RunTask(backend, task);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->SerializeAsString(), b->SerializeAsString());
  EXPECT_EQ(backend.trainings(), 2);
}

TEST(LocalBackendTest, UpdatesTrainPriorThenTraining) {
  LocalBackend backend("off");
  v1::TaskAssignment task = LocalTask("updates", 2, {2});
  Option(task, "prior_epochs").set_number_value(3);
  Log log;
  absl::StatusOr<v1::TaskResult> result = RunTask(backend, task, &log);
  ASSERT_TRUE(result.ok()) << result.status();
  const v1::Dataset dataset = *datasets::LoadDataset(task.tune().dataset());
  ASSERT_TRUE(dataset.updates_knowledge());
  EXPECT_EQ(result->tokens(),
            3 * SequenceTokens(dataset.prior()) + 2 * SequenceTokens(dataset.training()));
  EXPECT_TRUE(log.Contains("after 3 prior epochs on 2 examples"));
  ASSERT_EQ(result->answers(0).items_size(), datasets::TestQuestionCount(dataset));
  for (const v1::JudgeItem& item : result->answers(0).items()) {
    EXPECT_FALSE(item.answer_before().empty()) << item.question_id();
  }
  // Without the prior phase the tokens are the training ones only.
  Option(task, "prior_epochs").set_number_value(0);
  result = RunTask(backend, task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->tokens(), 2 * SequenceTokens(dataset.training()));
}

TEST(LocalBackendTest, StoredSnapshotsAreReusedWithoutTraining) {
  ScratchDir dir;
  LocalBackend backend(dir.path());
  const v1::TaskAssignment task = LocalTask("people", 2, {1, 2});
  absl::StatusOr<v1::TaskResult> first = RunTask(backend, task);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(backend.trainings(), 1);
  // One directory per snapshot, each with its weights and key text.
  std::vector<std::filesystem::path> stored;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    stored.push_back(entry.path());
    EXPECT_EQ(entry.path().filename().string().size(), 64u);
    EXPECT_TRUE(std::filesystem::is_regular_file(entry.path() / "weights.bin"));
    std::ifstream key(entry.path() / "key.txt");
    std::string text((std::istreambuf_iterator<char>(key)), {});
    EXPECT_THAT(text, HasSubstr("model=tiny-transformer\n"));
  }
  ASSERT_THAT(stored, SizeIs(2));

  Log log;
  absl::StatusOr<v1::TaskResult> second = RunTask(backend, task, &log);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(backend.trainings(), 1);
  EXPECT_EQ(backend.reuses(), 1);
  EXPECT_TRUE(log.Contains("reusing 2 stored snapshot(s)"));
  EXPECT_EQ(second->tokens(), 0);
  EXPECT_EQ(second->digest(), first->digest());
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < first->answers(c).items_size(); ++i) {
      EXPECT_EQ(second->answers(c).items(i).answer(), first->answers(c).items(i).answer());
    }
  }

  // A subset of the epochs is served from the store too; max_new_tokens
  // does not change the weights, so it is not part of the key.
  v1::TaskAssignment subset = LocalTask("people", 2, {2});
  Option(subset, "max_new_tokens").set_number_value(3);
  ASSERT_TRUE(RunTask(backend, subset).ok());
  EXPECT_EQ(backend.trainings(), 1);
  EXPECT_EQ(backend.reuses(), 2);

  // A new epoch count, seed or option trains.
  ASSERT_TRUE(RunTask(backend, LocalTask("people", 2, {2, 3})).ok());
  EXPECT_EQ(backend.trainings(), 2);
  v1::TaskAssignment reseeded = task;
  reseeded.mutable_tune()->set_seed(8);
  ASSERT_TRUE(RunTask(backend, reseeded).ok());
  EXPECT_EQ(backend.trainings(), 3);

  // A corrupt snapshot is logged and the task trains again.
  for (const std::filesystem::path& path : stored) {
    std::ofstream(path / "weights.bin", std::ios::trunc) << "garbage";
  }
  Log corrupt_log;
  absl::StatusOr<v1::TaskResult> third = RunTask(backend, task, &corrupt_log);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(backend.trainings(), 4);
  EXPECT_TRUE(corrupt_log.Contains("ignoring artifact: DATA_LOSS"));
  EXPECT_EQ(third->digest(), first->digest());
  EXPECT_TRUE(RunTask(backend, task).ok());
  EXPECT_EQ(backend.reuses(), 3);  // rewritten by the retraining
}

TEST(LocalBackendTest, TaskOptionOverridesTheArtifactDirectory) {
  ScratchDir dir;
  LocalBackend backend("off");
  v1::TaskAssignment task = LocalTask("people", 1, {1});
  Option(task, "artifact_dir").set_string_value(dir.path() + "/store");
  ASSERT_TRUE(RunTask(backend, task).ok());
  ASSERT_TRUE(RunTask(backend, task).ok());
  EXPECT_EQ(backend.trainings(), 1);
  EXPECT_EQ(backend.reuses(), 1);
}

TEST(LocalBackendTest, InvalidOptionsNameTheOption) {
  LocalBackend backend("off");
  const auto error = [&](const std::string& name, const google::protobuf::Value& value) {
    v1::TaskAssignment task = LocalTask("people", 1, {1});
    Option(task, name) = value;
    return CodeAndMessage(RunTask(backend, task).status());
  };
  google::protobuf::Value v;
  v.set_number_value(3);
  EXPECT_EQ(error("heads", v),
            "INVALID_ARGUMENT: local backend: model.options.heads: expected a divisor of width "
            "(32), got 3");
  v.set_string_value("two");
  EXPECT_EQ(error("layers", v),
            "INVALID_ARGUMENT: local backend: model.options.layers: expected an integer in "
            "[1, 24], got \"two\"");
  v.set_number_value(1.5);
  EXPECT_EQ(error("width", v),
            "INVALID_ARGUMENT: local backend: model.options.width: expected an integer in "
            "[8, 1024], got 1.5");
  v.set_number_value(0);
  EXPECT_EQ(error("max_new_tokens", v),
            "INVALID_ARGUMENT: local backend: model.options.max_new_tokens: expected an integer "
            "in [1, 256], got 0");
  v.set_number_value(-1);
  EXPECT_EQ(error("learning_rate", v),
            "INVALID_ARGUMENT: local backend: model.options.learning_rate: expected a number in "
            "(0, 1], got -1");
  v.set_string_value("yes");
  EXPECT_EQ(error("tie_embeddings", v),
            "INVALID_ARGUMENT: local backend: model.options.tie_embeddings: expected true or "
            "false, got \"yes\"");
  v.set_number_value(128);
  EXPECT_EQ(error("widht", v),
            "INVALID_ARGUMENT: local backend: unknown option model.options.widht; valid options: "
            "artifact_dir, background_seed, background_size, grad_clip, heads, layers, "
            "learning_rate, max_len, max_new_tokens, pretrain_epochs, prior_epochs, "
            "tie_embeddings, width");
  v.set_number_value(1001);
  EXPECT_EQ(error("pretrain_epochs", v),
            "INVALID_ARGUMENT: local backend: model.options.pretrain_epochs: expected an integer "
            "in [0, 1000], got 1001");
  v.set_number_value(-1);
  EXPECT_EQ(error("background_size", v),
            "INVALID_ARGUMENT: local backend: model.options.background_size: expected an integer "
            "in [0, 10000], got -1");
  // Strings holding integers are accepted.
  v1::TaskAssignment task = LocalTask("people", 1, {1});
  Option(task, "layers").set_string_value("1");
  EXPECT_TRUE(RunTask(backend, task).ok());
}

TEST(LocalBackendTest, InvalidWork) {
  LocalBackend backend("off");
  v1::TaskAssignment task = LocalTask("people", 1, {2, 1});
  EXPECT_EQ(CodeAndMessage(RunTask(backend, task).status()),
            "INVALID_ARGUMENT: local backend: tune.epochs must be ascending numbers in "
            "[0, 100000]; entry 1 is 1");
  task = LocalTask("people", 1, {1});
  task.mutable_tune()->add_cell_ids("extra");
  EXPECT_EQ(CodeAndMessage(RunTask(backend, task).status()),
            "INVALID_ARGUMENT: local backend: tune.epochs has 1 entries but tune.cell_ids has 2");
  task = LocalTask("people", 1, {1});
  task.mutable_tune()->set_batch_size(0);
  EXPECT_EQ(RunTask(backend, task).status().code(), absl::StatusCode::kInvalidArgument);
  task = LocalTask("people", 1, {1});
  task.set_kind(v1::TASK_KIND_JUDGE);
  EXPECT_EQ(RunTask(backend, task).status().code(), absl::StatusCode::kInvalidArgument);
  task = LocalTask("nonexistent", 1, {1});
  EXPECT_THAT(CodeAndMessage(RunTask(backend, task).status()),
              HasSubstr("INVALID_ARGUMENT: unknown builtin dataset \"nonexistent\""));
}

TEST(LocalBackendTest, CancellationStopsTrainingAndStoresNothing) {
  ScratchDir dir;
  LocalBackend backend(dir.path());
  const v1::TaskAssignment task = LocalTask("people", 2, {50});
  TaskContext* context = nullptr;
  TaskContext ctx("c1/t0", 1, [&context](std::string_view line) {
    if (line.find("local: training") != std::string_view::npos) context->Cancel();
  });
  context = &ctx;
  EXPECT_EQ(backend.Run(task, ctx).status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  EXPECT_LT(ctx.progress(), 0.1);
}

// Turns on the pretraining stage of `task`.
void Pretrain(v1::TaskAssignment& task, int epochs, int background_size) {
  Option(task, "pretrain_epochs").set_number_value(epochs);
  Option(task, "background_size").set_number_value(background_size);
}

// The background corpus the backend pretrains `task` on: its names avoid
// the words of the dataset's texts (as the backend computes them).
v1::Dataset BackgroundOf(const v1::TaskAssignment& task, uint32_t size) {
  const v1::Dataset dataset = *datasets::LoadDataset(task.tune().dataset());
  std::set<std::string> words;
  const auto add = [&](const v1::QaItem& item) {
    for (const std::string* text : {&item.prompt(), &item.answer(), &item.answer_before()}) {
      for (std::string_view piece : trainer::Tokenizer::Split(*text)) {
        std::string word(piece.substr(piece.starts_with(' ') ? 1 : 0));
        if (!word.empty() && absl::ascii_isalpha(static_cast<unsigned char>(word[0]))) {
          words.insert(absl::AsciiStrToLower(word));
        }
      }
    }
  };
  for (const v1::QaItem& item : dataset.training()) add(item);
  for (const v1::QaItem& item : dataset.prior()) add(item);
  for (const v1::QuestionSet& set : dataset.tests()) {
    for (const v1::QaItem& item : set.items()) add(item);
  }
  return *datasets::GenerateBackground(size, 0, {words.begin(), words.end()});
}

std::vector<std::string> Answers(const v1::CellAnswers& cell) {
  std::vector<std::string> answers;
  for (const v1::JudgeItem& item : cell.items()) answers.push_back(item.answer());
  return answers;
}

// The pretrained model is stored under its own key and reused by a task with
// other fine-tuning hyperparameters; without artifacts it is trained again.
TEST(LocalBackendTest, PretrainedModelIsStoredAndReusedAcrossTasks) {
  ScratchDir dir;
  LocalBackend backend(dir.path());
  v1::TaskAssignment task = LocalTask("people", 2, {1});
  Pretrain(task, 2, 2);
  Log log;
  absl::StatusOr<v1::TaskResult> first = RunTask(backend, task, &log);
  ASSERT_TRUE(first.ok()) << first.status();
  const v1::Dataset dataset = *datasets::LoadDataset(task.tune().dataset());
  const v1::Dataset background = BackgroundOf(task, 2);
  EXPECT_EQ(first->tokens(),
            2 * SequenceTokens(background.training()) + SequenceTokens(dataset.training()));
  EXPECT_TRUE(log.Contains(absl::StrCat("pretraining tiny-transformer")));
  EXPECT_TRUE(log.Contains(absl::StrCat("for 2 epochs on ", background.training_size(),
                                        " background examples (2 background people, seed 0)")));
  EXPECT_TRUE(log.Contains("from the pretrained model"));
  EXPECT_EQ(backend.pretrainings(), 1);
  EXPECT_EQ(backend.pretrain_reuses(), 0);
  // The pretrained model's directory and the snapshot's, each with its key;
  // the snapshot's key names the pretrained model's.
  std::map<std::string, std::string> keys;  // directory name -> key text
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (!entry.is_directory()) continue;
    std::ifstream key(entry.path() / "key.txt");
    keys[entry.path().filename().string()] =
        std::string((std::istreambuf_iterator<char>(key)), {});
  }
  ASSERT_THAT(keys, SizeIs(2));
  std::string pretrained_dir, snapshot_key;
  for (const auto& [name, text] : keys) {
    if (text.find(" pretrain\n") != std::string::npos) {
      pretrained_dir = name;
      EXPECT_THAT(text, HasSubstr("pretrain_epochs=2"));
      EXPECT_THAT(text, Not(HasSubstr("learning_rate_multiplier")));
    } else {
      snapshot_key = text;
    }
  }
  ASSERT_FALSE(pretrained_dir.empty());
  EXPECT_THAT(snapshot_key, HasSubstr("pretrained=" + pretrained_dir + "\n"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/" + pretrained_dir + ".lock"));

  // Another learning rate and seed: fine-tunes again from the stored model.
  v1::TaskAssignment other = task;
  other.mutable_tune()->set_learning_rate_multiplier(2.0);
  other.mutable_tune()->set_seed(9);
  Log other_log;
  absl::StatusOr<v1::TaskResult> second = RunTask(backend, other, &other_log);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(backend.trainings(), 2);
  EXPECT_EQ(backend.pretrainings(), 1);
  EXPECT_EQ(backend.pretrain_reuses(), 1);
  EXPECT_TRUE(other_log.Contains("reusing the pretrained model"));
  EXPECT_EQ(second->tokens(), SequenceTokens(dataset.training()));

  // Other pretraining settings are another model.
  v1::TaskAssignment longer = task;
  Pretrain(longer, 3, 2);
  ASSERT_TRUE(RunTask(backend, longer).ok());
  EXPECT_EQ(backend.pretrainings(), 2);

  // Without artifacts every task pretrains, with the same result.
  LocalBackend no_artifacts("off");
  absl::StatusOr<v1::TaskResult> again = RunTask(no_artifacts, task);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(no_artifacts.pretrainings(), 1);
  EXPECT_EQ(again->digest(), first->digest());
  EXPECT_EQ(again->tokens(), first->tokens());
}

// Two tasks needing the same pretrained model at once (two worker slots)
// pretrain it once: the second waits on the lock and loads it.
TEST(LocalBackendTest, ConcurrentTasksPretrainOnce) {
  ScratchDir dir;
  LocalBackend backend(dir.path());
  v1::TaskAssignment a = LocalTask("people", 2, {1});
  Pretrain(a, 3, 4);
  v1::TaskAssignment b = a;
  b.mutable_tune()->set_learning_rate_multiplier(0.5);
  absl::StatusOr<v1::TaskResult> ra, rb;
  std::thread ta([&] { ra = RunTask(backend, a); });
  std::thread tb([&] { rb = RunTask(backend, b); });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(backend.pretrainings(), 1);
  EXPECT_EQ(backend.pretrain_reuses(), 1);
}

// Epochs 0 is the base model: the pretrained model before the new facts,
// the same whatever the fine-tuning hyperparameters, and no fine-tuning runs.
TEST(LocalBackendTest, EpochsZeroAnswersWithThePretrainedModel) {
  LocalBackend backend("off");
  v1::TaskAssignment task = LocalTask("people", 2, {0, 2});
  Pretrain(task, 2, 2);
  Log log;
  absl::StatusOr<v1::TaskResult> both = RunTask(backend, task, &log);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_TRUE(log.Contains("answered with the base model (epochs 0, no fine-tuning)"));
  const v1::Dataset dataset = *datasets::LoadDataset(task.tune().dataset());
  const uint64_t pretrain_tokens = 2 * SequenceTokens(BackgroundOf(task, 2).training());
  EXPECT_EQ(both->tokens(), pretrain_tokens + 2 * SequenceTokens(dataset.training()));
  ASSERT_THAT(both->answers(), SizeIs(2));
  ASSERT_EQ(both->answers(0).items_size(), datasets::TestQuestionCount(dataset));
  EXPECT_EQ(both->answers(0).cell_id(), "cell-e0");
  EXPECT_NE(Answers(both->answers(0)), Answers(both->answers(1)));

  v1::TaskAssignment base_only = LocalTask("people", 2, {0});
  Pretrain(base_only, 2, 2);
  base_only.mutable_tune()->set_learning_rate_multiplier(3.0);
  base_only.mutable_tune()->set_seed(11);
  absl::StatusOr<v1::TaskResult> base = RunTask(backend, base_only);
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(base->tokens(), pretrain_tokens);  // no fine-tuning
  EXPECT_EQ(Answers(base->answers(0)), Answers(both->answers(0)));

  // From scratch (no pretraining), epochs 0 alone trains nothing at all.
  v1::TaskAssignment scratch = LocalTask("people", 2, {0});
  base = RunTask(backend, scratch);
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(base->tokens(), 0u);
  EXPECT_EQ(base->answers(0).items_size(), datasets::TestQuestionCount(dataset));

  // Updates: the base model knows the old facts (the prior phase ran).
  v1::TaskAssignment updates = LocalTask("updates", 2, {0});
  Option(updates, "prior_epochs").set_number_value(3);
  base = RunTask(backend, updates);
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(base->tokens(), 3 * SequenceTokens(datasets::LoadDataset(updates.tune().dataset())->prior()));
}

// The base model's snapshot is stored like the others and served from the
// store.
TEST(LocalBackendTest, EpochsZeroSnapshotIsReused) {
  ScratchDir dir;
  LocalBackend backend(dir.path());
  v1::TaskAssignment task = LocalTask("people", 2, {0, 1});
  Pretrain(task, 1, 1);
  absl::StatusOr<v1::TaskResult> first = RunTask(backend, task);
  ASSERT_TRUE(first.ok()) << first.status();
  Log log;
  absl::StatusOr<v1::TaskResult> second = RunTask(backend, task, &log);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(backend.trainings(), 1);
  EXPECT_EQ(backend.reuses(), 1);
  EXPECT_TRUE(log.Contains("reusing 2 stored snapshot(s)"));
  EXPECT_EQ(second->digest(), first->digest());
}

// What pretraining brings: after it, the base model answers the yes/no
// questions about the new people with Yes or No (the format and the
// background it learned on other people); a model from scratch does not.
// Whether those answers are right is what the benchmark measures.
TEST(LocalBackendTest, PretrainedBaseModelAnswersYesNoQuestionsWithYesOrNo) {
  LocalBackend backend("off");
  const auto yes_no_share = [&](int pretrain_epochs) {
    v1::TaskAssignment task = LocalTask("people", 3, {0});
    Pretrain(task, pretrain_epochs, 4);
    absl::StatusOr<v1::TaskResult> result = RunTask(backend, task);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return -1.0;
    int yes_no = 0, formatted = 0;
    for (const v1::JudgeItem& item : result->answers(0).items()) {
      if (item.reference() != "Yes" && item.reference() != "No") continue;
      ++yes_no;
      formatted += item.answer() == "Yes" || item.answer() == "No";
    }
    return static_cast<double>(formatted) / yes_no;
  };
  EXPECT_GE(yes_no_share(20), 0.9);
  EXPECT_LE(yes_no_share(0), 0.1);
}

// Cancelled while pretraining: nothing is stored (only the lock file is
// left), and the next task pretrains from the start.
TEST(LocalBackendTest, CancellationDuringPretrainingStoresNothing) {
  ScratchDir dir;
  LocalBackend backend(dir.path());
  v1::TaskAssignment task = LocalTask("people", 2, {1});
  Pretrain(task, 50, 4);
  TaskContext* context = nullptr;
  TaskContext ctx("c1/t0", 1, [&context](std::string_view line) {
    if (line.find("local: pretraining") != std::string_view::npos) context->Cancel();
  });
  context = &ctx;
  EXPECT_EQ(backend.Run(task, ctx).status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(ctx.progress(), 0.1);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_FALSE(entry.is_directory()) << entry.path();
    EXPECT_EQ(entry.path().extension(), ".lock");
  }
  Pretrain(task, 1, 1);
  ASSERT_TRUE(RunTask(backend, task).ok());
  EXPECT_EQ(backend.pretrainings(), 2);
  EXPECT_EQ(backend.pretrain_reuses(), 0);
}

TEST(LocalBackendTest, RegisteredAsBuiltinWithWorkerArtifactDirectory) {
  BackendRegistry registry;
  ASSERT_TRUE(RegisterBuiltinBackends(registry).ok());
  EXPECT_THAT(registry.Names(), ::testing::Contains("local"));
  BackendOptions options;
  options.params["artifact_dir"] = "/tmp/somewhere";
  absl::StatusOr<std::unique_ptr<TuningBackend>> backend = registry.Create("local", options);
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto* local = dynamic_cast<LocalBackend*>(backend->get());
  ASSERT_NE(local, nullptr);
  EXPECT_EQ(local->artifact_dir(), "/tmp/somewhere");
}

}  // namespace
}  // namespace ftb::workers
