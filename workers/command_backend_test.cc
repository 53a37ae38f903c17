#include "workers/command_backend.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "datasets/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fake_provider.h"

namespace ftb::workers {
namespace {

using datasets::testing::CodeAndMessage;
using datasets::testing::ScratchDir;
using ::testing::HasSubstr;
using ::testing::Not;

// A user's training script: "learns" the pairs (a prompt -> answer table)
// only from epoch 2 on, so epoch counts show in the answers. With
// --snapshots it writes epoch-N/ for each N. FAIL_TRAIN makes it fail like a
// GPU job does.
constexpr char kTrainScript[] = R"PY(
import json, os, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
if os.environ.get("FAIL_TRAIN"):
    print("loading model", flush=True)
    print("Traceback (most recent call last):", file=sys.stderr)
    print("RuntimeError: CUDA out of memory", file=sys.stderr)
    sys.exit(3)
pairs = {}
for line in open(args["--data"]):
    m = json.loads(line)["messages"]
    pairs[m[0]["content"]] = m[1]["content"]
def save(path, epochs):
    os.makedirs(path, exist_ok=True)
    json.dump(pairs if epochs >= 2 else {}, open(os.path.join(path, "model.json"), "w"))
if "--snapshots" in args:
    for e in args["--snapshots"].split(","):
        print("epoch", e, "loss", 1.0 / int(e), flush=True)
        save(os.path.join(args["--out"], "epoch-" + e), int(e))
else:
    print("epochs", args["--epochs"], "lr", args["--lr"], flush=True)
    save(args["--out"], int(args["--epochs"]))
)PY";

// A user's answering script; SKIP_TYPE leaves out one question type.
constexpr char kAnswerScript[] = R"PY(
import json, os, sys
model_dir, questions, answers = sys.argv[1:4]
model = json.load(open(os.path.join(model_dir, "model.json")))
with open(answers, "w") as out:
    for line in open(questions):
        q = json.loads(line)
        if q["type"] == os.environ.get("SKIP_TYPE"):
            continue
        out.write(json.dumps({"id": q["id"], "answer": model.get(q["prompt"], "I don't know")}) + "\n")
)PY";

class CommandBackendTest : public ::testing::Test {
 protected:
  CommandBackendTest() {
    train_ = dir_.Write("train.py", kTrainScript);
    answer_ = dir_.Write("answer.py", kAnswerScript);
    artifacts_ = dir_.path() + "/artifacts";
  }

  v1::TaskAssignment Task(const std::vector<uint32_t>& epochs, bool snapshots = false) {
    v1::TaskAssignment task;
    task.set_task_id("c1/t0");
    task.set_attempt(1);
    task.set_kind(v1::TASK_KIND_TUNE);
    task.set_backend("command");
    v1::TuneWork* work = task.mutable_tune();
    work->mutable_dataset()->set_source(v1::DATASET_SOURCE_BUILTIN);
    work->mutable_dataset()->set_name("people");
    work->mutable_dataset()->set_size(3);
    work->mutable_dataset()->set_seed(1);
    work->mutable_model()->set_name("my-llama");
    work->mutable_model()->set_backend("command");
    auto& o = *work->mutable_model()->mutable_options()->mutable_fields();
    o["train"].set_string_value(
        "/usr/bin/python3 " + train_ + " --data {train_jsonl} --epochs {epochs} " +
        (snapshots ? "--snapshots {snapshot_epochs} " : "") +
        "--lr {learning_rate_multiplier} --out {artifact_dir}");
    o["answer"].set_string_value("/usr/bin/python3 " + answer_ +
                                 " {model_dir} {questions_jsonl} {answers_jsonl}");
    o["snapshots"].set_bool_value(snapshots);
    work->set_learning_rate_multiplier(2);
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

  absl::StatusOr<v1::TaskResult> Run(CommandBackend& backend, const v1::TaskAssignment& task) {
    TaskContext ctx(task.task_id(), task.attempt(), [this](std::string_view line) {
      absl::MutexLock lock(&mu_);
      log_ += std::string(line) + "\n";
    });
    return backend.Run(task, ctx);
  }

  std::string log() {
    absl::MutexLock lock(&mu_);
    return log_;
  }

  // Accuracy of one cell's answers of `type` against the references.
  static double Accuracy(const v1::CellAnswers& cell, const std::string& type) {
    int n = 0, right = 0;
    for (const v1::JudgeItem& item : cell.items()) {
      if (item.question_type() != type) continue;
      ++n;
      right += item.answer() == item.reference();
    }
    return n ? double(right) / n : -1;
  }

  ScratchDir dir_;
  std::string train_, answer_, artifacts_;
  absl::Mutex mu_;
  std::string log_;
};

TEST_F(CommandBackendTest, TrainsPerEpochCountAndAnswers) {
  CommandBackend backend(artifacts_);
  auto result = Run(backend, Task({1, 2}));
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << log();
  EXPECT_EQ(backend.trainings(), 2);
  ASSERT_EQ(result->answers_size(), 2);
  EXPECT_EQ(result->answers(0).cell_id(), "cell-e1");
  EXPECT_GT(result->answers(0).items_size(), 0);
  EXPECT_EQ(Accuracy(result->answers(0), "memorization"), 0.0);
  EXPECT_EQ(Accuracy(result->answers(1), "memorization"), 1.0)
      << log();
  EXPECT_EQ(result->answers(1).items(0).answer_before(), "");
  EXPECT_FALSE(result->digest().empty());
  // The script's output reached the task log, with the expanded values.
  EXPECT_THAT(log(), HasSubstr("train: epochs 2 lr 2"));
  // Nothing left behind but the two models.
  int models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(artifacts_)) {
    EXPECT_THAT(entry.path().filename().string(), Not(HasSubstr(".tmp.")));
    EXPECT_TRUE(std::filesystem::exists(entry.path() / "ftb-complete")) << entry.path();
    EXPECT_TRUE(std::filesystem::exists(entry.path() / "train.jsonl")) << entry.path();
    ++models;
  }
  EXPECT_EQ(models, 2);
}

// Issue 17, finding 9: the commands are the submitter's code; they must not
// read the worker's coordinator token or provider keys from their
// environment. Before the fix both commands inherited the whole environment.
TEST_F(CommandBackendTest, CommandsSeeNeitherTheWorkersTokenNorProviderKeys) {
  const std::string token = "ftbtok-" + std::to_string(::getpid()) + "-never-in-a-command";
  const std::string key = "sk-" + std::to_string(::getpid()) + "-never-in-a-command";
  ::setenv("FTB_AUTH_TOKEN", token.c_str(), 1);
  ::setenv("OPENAI_API_KEY", key.c_str(), 1);
  ::setenv("CUDA_VISIBLE_DEVICES", "0", 1);
  CommandBackend backend(artifacts_);
  v1::TaskAssignment task = Task({1});
  Option(task, "train").set_string_value("env | sed 's/^/train-env /'; " +
                                         Option(task, "train").string_value());
  Option(task, "answer").set_string_value("env | sed 's/^/answer-env /' >&2; " +
                                          Option(task, "answer").string_value());
  (*Option(task, "env").mutable_struct_value()->mutable_fields())["MY_SETTING"]
      .set_string_value("from-the-spec");
  auto result = Run(backend, task);
  ::unsetenv("FTB_AUTH_TOKEN");
  ::unsetenv("OPENAI_API_KEY");
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << log();
  for (const std::string phase : {"train", "answer"}) {
    // Control: the environment was printed, with the allowlisted and the
    // spec's variables.
    EXPECT_THAT(log(), HasSubstr(phase + "-env PATH=")) << log();
    EXPECT_THAT(log(), HasSubstr(phase + "-env CUDA_VISIBLE_DEVICES=0"));
    EXPECT_THAT(log(), HasSubstr(phase + "-env MY_SETTING=from-the-spec"));
    EXPECT_THAT(log(), Not(HasSubstr(phase + "-env FTB_AUTH_TOKEN=")));
    EXPECT_THAT(log(), Not(HasSubstr(phase + "-env OPENAI_API_KEY=")));
  }
  EXPECT_THAT(log(), Not(HasSubstr(token)));
  EXPECT_THAT(log(), Not(HasSubstr(key)));
}

TEST(CommandInheritsVariableTest, AllowlistWithoutSecrets) {
  for (const char* name : {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "CUDA_VISIBLE_DEVICES",
                           "NVIDIA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"}) {
    EXPECT_TRUE(CommandInheritsVariable(name)) << name;
  }
  for (const char* name : {"FTB_AUTH_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY",
                           "HF_TOKEN", "CUDA_LICENSE_KEY", "FTB_COORDINATOR", "SSH_AUTH_SOCK",
                           "GOOGLE_APPLICATION_CREDENTIALS", "RANDOM_VARIABLE"}) {
    EXPECT_FALSE(CommandInheritsVariable(name)) << name;
  }
}

TEST_F(CommandBackendTest, OneRunServesEverySnapshot) {
  CommandBackend backend(artifacts_);
  auto result = Run(backend, Task({1, 2, 5}, /*snapshots=*/true));
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << log();
  EXPECT_EQ(backend.trainings(), 1);
  EXPECT_THAT(log(), HasSubstr("train: epoch 5 loss"));
  EXPECT_EQ(Accuracy(result->answers(0), "memorization"), 0.0);
  EXPECT_EQ(Accuracy(result->answers(1), "memorization"), 1.0);
  EXPECT_EQ(Accuracy(result->answers(2), "memorization"), 1.0);
}

TEST_F(CommandBackendTest, ReusesATrainedModelFromAnyWorker) {
  CommandBackend first(artifacts_);
  auto a = Run(first, Task({1, 2}));
  ASSERT_TRUE(a.ok()) << a.status();
  CommandBackend second(artifacts_);  // another worker on the same volume
  auto b = Run(second, Task({1, 2}));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(second.trainings(), 0);
  EXPECT_EQ(second.reuses(), 2);
  EXPECT_EQ(a->digest(), b->digest());
  // A different learning rate is a different model.
  v1::TaskAssignment other = Task({2});
  other.mutable_tune()->set_learning_rate_multiplier(0.5);
  ASSERT_TRUE(Run(second, other).ok());
  EXPECT_EQ(second.trainings(), 1);
}

TEST_F(CommandBackendTest, NonZeroExitFailsTheAttemptWithTheStderrTail) {
  CommandBackend backend(artifacts_);
  v1::TaskAssignment task = Task({1});
  Option(task, "env").mutable_struct_value()->mutable_fields()->operator[]("FAIL_TRAIN")
      .set_string_value("1");
  auto result = Run(backend, task);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);  // retried
  EXPECT_TRUE(IsRetryableBackendError(result.status()));
  EXPECT_THAT(result.status().message(), HasSubstr("training command exited with status 3"));
  EXPECT_THAT(result.status().message(), HasSubstr("RuntimeError: CUDA out of memory"));
  EXPECT_THAT(log(), HasSubstr("train: loading model"));
  EXPECT_TRUE(std::filesystem::is_empty(artifacts_)) << "a failed run left files behind";
}

TEST_F(CommandBackendTest, TimeoutFailsTheAttempt) {
  CommandBackend backend(artifacts_);
  v1::TaskAssignment task = Task({1});
  Option(task, "train").set_string_value("echo started; sleep 30 # {artifact_dir}");
  Option(task, "timeout_s").set_number_value(0.3);
  auto result = Run(backend, task);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("training command timed out after 300ms"));
}

TEST_F(CommandBackendTest, MissingAnswersAreUnavailableNotWrong) {
  CommandBackend backend(artifacts_);
  v1::TaskAssignment task = Task({2});
  Option(task, "env").mutable_struct_value()->mutable_fields()->operator[]("SKIP_TYPE")
      .set_string_value("rephrased");
  auto result = Run(backend, task);
  ASSERT_TRUE(result.ok()) << result.status();
  int unavailable = 0;
  for (const v1::JudgeItem& item : result->answers(0).items()) {
    if (item.question_type() == "rephrased") {
      EXPECT_EQ(item.unavailable_reason(), "the answering command gave no answer");
      ++unavailable;
    } else {
      EXPECT_EQ(item.unavailable_reason(), "");
    }
  }
  EXPECT_GT(unavailable, 0);
  ASSERT_EQ(result->notes_size(), 1);
  EXPECT_THAT(result->notes(0), HasSubstr("without an answer from the answering command"));
}

TEST_F(CommandBackendTest, MalformedAnswerLineNamesFileAndLine) {
  CommandBackend backend(artifacts_);
  v1::TaskAssignment task = Task({1});
  Option(task, "answer").set_string_value(
      "printf '{{\"id\": \"x\", \"answer\": \"a\"}}\\nnot json\\n' > {answers_jsonl} # {model_dir}");
  auto result = Run(backend, task);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(),
              HasSubstr("answers.jsonl:2: expected {\"id\": string, \"answer\": string}, got "
                        "not json"));
}

TEST_F(CommandBackendTest, SnapshotsMustExist) {
  CommandBackend backend(artifacts_);
  v1::TaskAssignment task = Task({1, 2}, /*snapshots=*/true);
  Option(task, "train").set_string_value("mkdir {artifact_dir}/epoch-1");
  auto result = Run(backend, task);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(),
              HasSubstr("did not create {artifact_dir}/epoch-2/ (snapshot_epochs 1,2)"));
}

TEST_F(CommandBackendTest, BadOptionsAreRejectedBeforeAnythingRuns) {
  CommandBackend backend(artifacts_);
  v1::TaskAssignment task = Task({1});
  Option(task, "train").set_string_value("python train.py --data {train_json}");
  auto result = Run(backend, task);
  EXPECT_THAT(CodeAndMessage(result.status()),
              HasSubstr("INVALID_ARGUMENT: command backend: model.options.train: unknown "
                        "placeholder {train_json}; known: {artifact_dir} {base_model} {batch_size}"));
  EXPECT_EQ(backend.trainings(), 0);

  task = Task({1});
  Option(task, "gpus").set_number_value(2);
  EXPECT_THAT(Run(backend, task).status().message(),
              HasSubstr("unknown model option \"gpus\"; known: answer, answer_timeout_s"));

  task = Task({1});
  task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields()->erase("answer");
  EXPECT_THAT(Run(backend, task).status().message(),
              HasSubstr("give `answer` (a command) or `endpoint` (an OpenAI-compatible server)"));

  task = Task({1});
  Option(task, "timeout_s").set_string_value("soon");
  EXPECT_THAT(Run(backend, task).status().message(),
              HasSubstr("model.options.timeout_s: expected a number of seconds"));
}

TEST_F(CommandBackendTest, AnswersThroughAnOpenAiCompatibleEndpoint) {
  // The user's server (vLLM-like) serves each trained directory by name.
  testing::FakeProviderServer server("model_dir_server.py", {"--key", "k-endpoint-secret"});
  ASSERT_GT(server.port(), 0);
  ::setenv("FTB_TEST_ENDPOINT_KEY", "k-endpoint-secret", 1);
  CommandBackend backend(artifacts_);
  v1::TaskAssignment task = Task({1, 2});
  task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields()->erase("answer");
  auto& endpoint = *Option(task, "endpoint").mutable_struct_value()->mutable_fields();
  endpoint["base_url"].set_string_value(server.origin() + "/v1/");
  endpoint["model"].set_string_value("{model_dir}");
  endpoint["api_key_env"].set_string_value("FTB_TEST_ENDPOINT_KEY");
  auto result = Run(backend, task);
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << log();
  EXPECT_EQ(Accuracy(result->answers(0), "memorization"), 0.0);
  EXPECT_EQ(Accuracy(result->answers(1), "memorization"), 1.0);
  const int asked = server.Stats()["chat_completions"].get<int>();
  EXPECT_EQ(asked, result->answers(0).items_size() + result->answers(1).items_size());
  EXPECT_THAT(log(), HasSubstr("answering through " + server.origin() + "/v1 with model "));
  EXPECT_THAT(log(), Not(HasSubstr("k-endpoint-secret")));

  // A model the server does not have: a clear, non-retryable error.
  endpoint["model"].set_string_value("{model_dir}/nope");
  auto missing = Run(backend, task);
  ASSERT_FALSE(missing.ok());
  EXPECT_FALSE(IsRetryableBackendError(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr("does not exist"));
  // A wrong key: refused, and the key is not in the error.
  ::setenv("FTB_TEST_ENDPOINT_KEY", "k-wrong-key", 1);
  endpoint["model"].set_string_value("{model_dir}");
  auto refused = Run(backend, task);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("k-wrong-key")));
  ::unsetenv("FTB_TEST_ENDPOINT_KEY");
  auto no_key = Run(backend, task);
  EXPECT_THAT(CodeAndMessage(no_key.status()),
              HasSubstr("FAILED_PRECONDITION: command backend: model.options.endpoint.api_key_env: "
                        "$FTB_TEST_ENDPOINT_KEY is not set on this worker"));
  // Exactly one way to answer.
  v1::TaskAssignment both = Task({1});
  Option(both, "endpoint") = Option(task, "endpoint");
  EXPECT_THAT(Run(backend, both).status().message(), HasSubstr("give `answer` or `endpoint`, not both"));
}

// Epochs 0 is the untuned base model: no training command runs for it and
// the endpoint is asked under the model's own name; without an endpoint, and
// with `auto` hyperparameters, the task is refused before anything runs.
TEST_F(CommandBackendTest, EpochsZeroAsksTheBaseModelThroughTheEndpoint) {
  testing::FakeProviderServer server("model_dir_server.py", {});
  ASSERT_GT(server.port(), 0);
  CommandBackend backend(artifacts_);
  // The served base model: a directory the server knows, with no facts.
  const std::string base = dir_.Write("base-model/model.json", "{}");
  v1::TaskAssignment task = Task({0, 2});
  task.mutable_tune()->mutable_model()->set_name(std::filesystem::path(base).parent_path());
  task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields()->erase("answer");
  auto& endpoint = *Option(task, "endpoint").mutable_struct_value()->mutable_fields();
  endpoint["base_url"].set_string_value(server.origin() + "/v1");
  endpoint["model"].set_string_value("{model_dir}");
  auto result = Run(backend, task);
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << log();
  EXPECT_EQ(backend.trainings(), 1);  // epochs 2 only
  ASSERT_EQ(result->answers_size(), 2);
  EXPECT_EQ(result->answers(0).cell_id(), "cell-e0");
  EXPECT_EQ(Accuracy(result->answers(0), "memorization"), 0.0);
  EXPECT_EQ(Accuracy(result->answers(1), "memorization"), 1.0);
  EXPECT_EQ(server.Stats()["chat_completions"].get<int>(),
            result->answers(0).items_size() + result->answers(1).items_size());
  EXPECT_THAT(log(), HasSubstr("epochs 0: asking the base model"));

  // Epochs 0 alone: no training at all.
  v1::TaskAssignment only_base = task;
  only_base.mutable_tune()->clear_epochs();
  only_base.mutable_tune()->clear_cell_ids();
  only_base.mutable_tune()->add_epochs(0);
  only_base.mutable_tune()->add_cell_ids("cell-e0");
  auto base_only = Run(backend, only_base);
  ASSERT_TRUE(base_only.ok()) << base_only.status();
  EXPECT_EQ(backend.trainings(), 1);
  EXPECT_EQ(backend.reuses(), 0);

  // Without an endpoint there is nothing to ask an untuned model with.
  auto no_endpoint = Run(backend, Task({0, 1}));
  EXPECT_THAT(CodeAndMessage(no_endpoint.status()),
              HasSubstr("INVALID_ARGUMENT: command backend: epochs 0 (the base model) needs "
                        "model.options.endpoint"));
  // auto leaves the training command without a value.
  v1::TaskAssignment auto_lr = Task({1});
  auto_lr.mutable_tune()->set_learning_rate_multiplier(0);
  EXPECT_THAT(CodeAndMessage(Run(backend, auto_lr).status()),
              HasSubstr("INVALID_ARGUMENT: command backend: tune.learning_rate_multiplier is auto"));
  v1::TaskAssignment auto_batch = Task({1});
  auto_batch.mutable_tune()->set_batch_size(0);
  EXPECT_THAT(CodeAndMessage(Run(backend, auto_batch).status()),
              HasSubstr("INVALID_ARGUMENT: command backend: tune.batch_size is auto"));
  EXPECT_EQ(backend.trainings(), 1);  // nothing ran for the refused tasks
}

TEST(ExpandTemplateTest, QuotesValuesAndKeepsDoubledBraces) {
  auto s = ExpandTemplate("run {a} --json '{{\"k\": 1}}' {b}", {{"a", "x y"}, {"b", "it's"}}, "t");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, "run 'x y' --json '{\"k\": 1}' 'it'\\''s'");
  EXPECT_THAT(ExpandTemplate("run {a", {{"a", "1"}}, "train").status().message(),
              HasSubstr("model.options.train: unclosed '{' at offset 4"));
}

}  // namespace
}  // namespace ftb::workers
