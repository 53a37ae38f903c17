// The openai backend end to end against tests/fakes/fake_openai.py, a fake
// of the OpenAI REST API run as a child process: files, jobs with their
// lifecycle, checkpoints, chat completions, injected faults, and counts of
// every billable call (so "never pay twice" is checked, not assumed).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "cost/price_table.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/http.h"
#include "providers/openai_client.h"
#include "providers/provider_stats.h"
#include "tests/fake_provider.h"
#include "tests/test_process.h"
#include "workers/backend.h"
#include "workers/openai_backend.h"

namespace ftb {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using providers::Json;

constexpr char kKey[] = "sk-ftb-test-SECRET-4f1d9a";

using testing::IntentStore;
using testing::Logs;

// The fake OpenAI server (tests/fakes/fake_openai.py) as a child process.
class FakeOpenAi : public testing::FakeProviderServer {
 public:
  explicit FakeOpenAi(double epoch_seconds = 0.05)
      : FakeProviderServer("fake_openai.py", {"--api-key", kKey, "--phase-seconds", "0.05",
                                              "--epoch-seconds", absl::StrCat(epoch_seconds)}) {}
  std::string base_url() const { return origin() + "/v1"; }
};

class OpenAiBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("FTB_TEST_OPENAI_KEY", kKey, 1);
    artifacts_ = testing::MakeTempDir("openai-artifacts");
    ASSERT_GT(fake_.port(), 0) << fake_.log();
  }
  void TearDown() override { std::filesystem::remove_all(artifacts_); }

  v1::TaskAssignment Task(std::vector<uint32_t> epochs, uint32_t attempt = 1) {
    v1::TaskAssignment t;
    t.set_task_id("c-openai-test/0");
    t.set_campaign_id("c-openai-test");
    t.set_attempt(attempt);
    t.set_kind(v1::TASK_KIND_TUNE);
    t.set_backend("openai");
    v1::TuneWork* w = t.mutable_tune();
    w->mutable_dataset()->set_source(v1::DATASET_SOURCE_BUILTIN);
    w->mutable_dataset()->set_name("people");
    w->mutable_dataset()->set_size(3);
    w->mutable_dataset()->set_seed(1);
    w->mutable_dataset()->add_question_types("memorization");
    v1::ModelSpec* m = w->mutable_model();
    m->set_name("gpt-4o-mini-2024-07-18");
    m->set_backend("openai");
    auto& o = *m->mutable_options()->mutable_fields();
    o["base_url"].set_string_value(fake_.base_url());
    o["api_key_env"].set_string_value("FTB_TEST_OPENAI_KEY");
    o["poll_seconds"].set_number_value(0.02);
    o["max_poll_seconds"].set_number_value(0.1);
    o["http_backoff_ms"].set_number_value(5);
    o["artifact_dir"].set_string_value(artifacts_);
    w->set_learning_rate_multiplier(1.0);
    w->set_batch_size(4);
    w->set_seed(7);
    for (uint32_t e : epochs) {
      w->add_epochs(e);
      w->add_cell_ids(absl::StrCat("cell-e", e));
    }
    return t;
  }

  absl::StatusOr<v1::TaskResult> RunTask(const v1::TaskAssignment& task, IntentStore* intents,
                                         Logs* logs = nullptr,
                                         std::function<void(workers::TaskContext&)> during = {}) {
    return testing::RunProviderTask(backend_, task, intents, logs, std::move(during));
  }

  FakeOpenAi fake_;
  std::string artifacts_;
  workers::OpenAiBackend backend_{"off"};
};

int CountCorrect(const v1::CellAnswers& cell) {
  int n = 0;
  for (const v1::JudgeItem& item : cell.items()) n += item.answer() == item.reference();
  return n;
}

TEST(OpenAiJobsPlan, CheckpointsServeTheLastThreeEpochs) {
  using Plan = std::map<uint32_t, std::vector<uint32_t>>;
  EXPECT_EQ(workers::PlanOpenAiJobs({1, 2, 3}, true), (Plan{{3, {1, 2, 3}}}));
  EXPECT_EQ(workers::PlanOpenAiJobs({1, 5, 10, 30}, true),
            (Plan{{1, {1}}, {5, {5}}, {10, {10}}, {30, {30}}}));
  EXPECT_EQ(workers::PlanOpenAiJobs({1, 3, 5}, true), (Plan{{1, {1}}, {5, {3, 5}}}));
  EXPECT_EQ(workers::PlanOpenAiJobs({1, 2, 3}, false), (Plan{{1, {1}}, {2, {2}}, {3, {3}}}));
  EXPECT_EQ(workers::OpenAiTaskTag("c1", "c1/0"), workers::OpenAiTaskTag("c1", "c1/0"));
  EXPECT_NE(workers::OpenAiTaskTag("c1", "c1/0"), workers::OpenAiTaskTag("c1", "c1/1"));
}

TEST_F(OpenAiBackendTest, EndToEndOneJobServesThreeEpochsThroughCheckpoints) {
  IntentStore intents;
  Logs logs;
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({1, 2, 4}), &intents, &logs);
  ASSERT_TRUE(r.ok()) << r.status() << "\n" << logs.text;
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["files_created"], 1);
  EXPECT_EQ(stats["jobs_created"], 2);  // 4 epochs serves 2 and 4; 1 needs its own job
  ASSERT_EQ(r->answers_size(), 3);
  const int questions = r->answers(0).items_size();
  ASSERT_GT(questions, 0);
  EXPECT_EQ(stats["chat_completions"], 3 * questions);
  // The fake memorizes a quarter of the questions per epoch: more epochs, more right.
  EXPECT_LT(CountCorrect(r->answers(0)), CountCorrect(r->answers(2)));
  EXPECT_EQ(CountCorrect(r->answers(2)), questions);
  // The 2-epoch cell was answered by a checkpoint model.
  bool checkpoint_used = false;
  for (const auto& [key, n] : stats["chat_by_prompt"].items()) {
    if (absl::StrContains(key, ":ckpt-step-")) checkpoint_used = true;
  }
  EXPECT_TRUE(checkpoint_used);
  // Cost from reported usage and trained tokens at the gpt-4o-mini prices.
  EXPECT_GT(r->tokens(), 0u);
  EXPECT_GT(r->cost_usd(), 0);
  EXPECT_LT(r->cost_usd(), 0.05);
  // Intents: file and both jobs, each before (no id) and after (id).
  int with_id = 0, without = 0;
  for (const v1::TaskIntent& i : intents.intents()) (i.provider_id().empty() ? without : with_id)++;
  EXPECT_EQ(with_id, 3);
  EXPECT_EQ(without, 3);
  EXPECT_THAT(logs.text, Not(HasSubstr(kKey)));
}

// Epochs 0 is the untuned base model: its cell is answered by the model's
// own name at the base prices, and a task of epochs 0 alone uploads no file
// and creates no job.
TEST_F(OpenAiBackendTest, EpochsZeroAloneAsksTheBaseModelAndCreatesNoJob) {
  IntentStore intents;
  Logs logs;
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({0}), &intents, &logs);
  ASSERT_TRUE(r.ok()) << r.status() << "\n" << logs.text;
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["files_created"], 0);
  EXPECT_EQ(stats["jobs_created"], 0);
  EXPECT_TRUE(intents.intents().empty());  // nothing billable to record
  ASSERT_EQ(r->answers_size(), 1);
  const int questions = r->answers(0).items_size();
  ASSERT_GT(questions, 0);
  EXPECT_EQ(stats["chat_completions"], questions);
  for (const auto& [key, n] : stats["chat_by_prompt"].items()) {
    EXPECT_TRUE(absl::StartsWith(key, "gpt-4o-mini-2024-07-18")) << key;
  }
  // The fake's base models know nothing of the trained facts.
  EXPECT_EQ(CountCorrect(r->answers(0)), 0);
  EXPECT_THAT(logs.text, HasSubstr("no training file, no job"));
  // Cost: the answers' usage at the base model's prices, no training.
  const cost::ModelPrice* price =
      cost::PriceTable::Builtin().Find("openai", "gpt-4o-mini-2024-07-18");
  ASSERT_NE(price, nullptr);
  ASSERT_LT(price->base_input_per_1m_tokens, price->input_per_1m_tokens);
  // Every answer is the fake's "I don't know." (4 completion tokens); the
  // rest of the reported usage is prompt.
  const double completion = 4.0 * questions;
  const double prompt = static_cast<double>(r->tokens()) - completion;
  EXPECT_NEAR(r->cost_usd(),
              (prompt * price->base_input_per_1m_tokens +
               completion * price->base_output_per_1m_tokens) /
                  1e6,
              1e-12);
}

// `auto` (0) sends no batch size or learning rate multiplier, so the
// provider picks ("auto"); epochs 0 next to trained epochs is the base model
// and adds no job.
TEST_F(OpenAiBackendTest, AutoHyperparametersAreNotSent) {
  v1::TaskAssignment task = Task({0, 2});
  task.mutable_tune()->set_learning_rate_multiplier(0);
  task.mutable_tune()->set_batch_size(0);
  IntentStore intents;
  Logs logs;
  absl::StatusOr<v1::TaskResult> r = RunTask(task, &intents, &logs);
  ASSERT_TRUE(r.ok()) << r.status() << "\n" << logs.text;
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["files_created"], 1);
  ASSERT_EQ(stats["jobs_created"], 1);
  ASSERT_EQ(stats["job_hyperparameters"].size(), 1u);
  EXPECT_EQ(stats["job_hyperparameters"][0], (Json{{"n_epochs", 2}}));
  ASSERT_EQ(r->answers_size(), 2);
  EXPECT_EQ(r->answers(0).cell_id(), "cell-e0");
  EXPECT_EQ(CountCorrect(r->answers(0)), 0);  // the base model
  EXPECT_GT(CountCorrect(r->answers(1)), 0);  // the tuned one
  // Numbers are sent as given.
  fake_.Control("POST", "/_fake/reset_stats");
  v1::TaskAssignment numbers = Task({1});
  numbers.set_task_id("c-openai-test/1");
  ASSERT_TRUE(RunTask(numbers, &intents).ok());
  stats = fake_.Stats();
  ASSERT_EQ(stats["job_hyperparameters"].size(), 1u);
  EXPECT_EQ(stats["job_hyperparameters"][0],
            (Json{{"n_epochs", 1}, {"batch_size", 4}, {"learning_rate_multiplier", 1.0}}));
}

TEST_F(OpenAiBackendTest, RetriesInjectedFaultsWithoutPayingTwice) {
  fake_.Fault({{"path", "/v1/files"}, {"method", "POST"}, {"kind", "503"}, {"count", 1},
               {"retry_after_ms", 30}});
  fake_.Fault({{"path", "/v1/fine_tuning/jobs"}, {"method", "POST"}, {"kind", "429"},
               {"count", 2}, {"retry_after", "0.05"}});
  fake_.Fault({{"path", "/v1/fine_tuning/jobs/"}, {"method", "GET"}, {"kind", "500"}, {"count", 2}});
  fake_.Fault({{"path", "/v1/chat/completions"}, {"kind", "drop"}, {"count", 2}});
  fake_.Fault({{"path", "/v1/chat/completions"}, {"kind", "429"}, {"count", 1}});
  auto before = providers::ProviderStats::Global().Get();
  IntentStore intents;
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({3}), &intents);
  ASSERT_TRUE(r.ok()) << r.status() << fake_.log();
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["faults_served"], 8);
  EXPECT_EQ(stats["files_created"], 1);
  EXPECT_EQ(stats["jobs_created"], 1);
  EXPECT_EQ(stats["chat_completions"], r->answers(0).items_size());
  auto after = providers::ProviderStats::Global().Get();
  // 7, not 8: the 503 on POST /v1/files is not retried by the HTTP client (an
  // upload is a create); the backend looked the file up by name, found none,
  // and uploaded again.
  EXPECT_EQ(after.retries["openai"] - before.retries["openai"], 7u);
}

// Issue 13 section 2: the provider creates the file / job and then the reply
// is lost (connection closed, or a 500 after committing). Blindly repeating
// the POST would upload twice and pay for two jobs; the backend must find
// what the first request created by its name / ftb_tag metadata and adopt it.
TEST_F(OpenAiBackendTest, CreateThatSucceedsButLosesItsReplyIsAdoptedNotRepeated) {
  for (const char* kind : {"drop_after_create", "500_after_create"}) {
    SCOPED_TRACE(kind);
    fake_.Control("POST", "/_fake/reset_stats");
    fake_.Fault({{"path", "/v1/files"}, {"method", "POST"}, {"kind", kind}, {"count", 1}});
    fake_.Fault({{"path", "/v1/fine_tuning/jobs"}, {"method", "POST"}, {"kind", kind},
                 {"count", 1}});
    IntentStore intents;
    Logs logs;
    v1::TaskAssignment task = Task({2});
    // A distinct task (so its tag differs) per fault kind.
    task.set_task_id(absl::StrCat("c-openai-test/", kind));
    absl::StatusOr<v1::TaskResult> r = RunTask(task, &intents, &logs);
    ASSERT_TRUE(r.ok()) << r.status() << logs.text << fake_.log();
    Json stats = fake_.Stats();
    EXPECT_EQ(stats["faults_served"], 2);
    EXPECT_EQ(stats["files_created"], 1) << logs.text;
    EXPECT_EQ(stats["jobs_created"], 1) << logs.text;
    EXPECT_EQ(stats["requests"]["POST /v1/fine_tuning/jobs"], 1) << logs.text;
    EXPECT_THAT(logs.text, HasSubstr("failed ambiguously"));
    EXPECT_THAT(logs.text, HasSubstr("found by tag"));
    EXPECT_THAT(logs.text, HasSubstr("found by name"));
    EXPECT_EQ(r->answers(0).items_size(), stats["chat_completions"].get<int>());
  }
}

// Issue 13 section 2: a paused job is not polled forever.
TEST_F(OpenAiBackendTest, PausedJobFailsAfterPausedTimeoutNamingTheJob) {
  fake_.Fault({{"kind", "job_pause"}, {"count", 1}});
  v1::TaskAssignment task = Task({1});
  (*task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields())
      ["paused_timeout_seconds"].set_number_value(0.4);
  Logs logs;
  absl::Time start = absl::Now();
  absl::StatusOr<v1::TaskResult> r = RunTask(task, nullptr, &logs);
  ASSERT_FALSE(r.ok()) << logs.text;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_FALSE(workers::IsRetryableBackendError(r.status()));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("openai: job ftjob-"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("\"paused\""));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("paused_timeout_seconds"));
  EXPECT_THAT(logs.text, HasSubstr("is paused; waiting up to 400ms"));
  EXPECT_EQ(fake_.Stats()["jobs_created"], 1);
}

TEST_F(OpenAiBackendTest, ResumedAttemptAdoptsFileAndJobAndCachedAnswers) {
  // Attempt 1 is abandoned while its job runs (as a worker that lost its
  // lease or was killed): the job is left running.
  IntentStore intents;
  v1::TaskAssignment task = Task({2, 3});
  {
    FakeOpenAi* fake = &fake_;
    absl::StatusOr<v1::TaskResult> r =
        RunTask(task, &intents, nullptr, [fake](workers::TaskContext& ctx) {
          for (int i = 0; i < 400 && fake->Stats()["jobs_created"] != 1; ++i) usleep(10'000);
          ctx.Cancel();
        });
    EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  }
  EXPECT_EQ(fake_.Stats()["jobs_created"], 1);
  EXPECT_EQ(fake_.Stats()["cancels"], 0);

  // Attempt 2 gets the recorded intents and adopts.
  v1::TaskAssignment again = Task({2, 3}, 2);
  *again.mutable_intents() = intents.intents();
  Logs logs;
  absl::StatusOr<v1::TaskResult> r = RunTask(again, &intents, &logs);
  ASSERT_TRUE(r.ok()) << r.status() << logs.text;
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["files_created"], 1);
  EXPECT_EQ(stats["jobs_created"], 1);
  EXPECT_THAT(logs.text, HasSubstr("adopted job"));
  const int asked = stats["chat_completions"];
  EXPECT_EQ(asked, 2 * r->answers(0).items_size());

  // Attempt 3 without intents (the coordinator's record lost): the job is
  // found by its tag, and every answer comes from the answer cache. Nothing
  // is paid again, and the result is the same.
  absl::StatusOr<v1::TaskResult> r3 = RunTask(Task({2, 3}, 3), &intents, &logs);
  ASSERT_TRUE(r3.ok()) << r3.status() << logs.text;
  stats = fake_.Stats();
  EXPECT_EQ(stats["files_created"], 1);
  EXPECT_EQ(stats["jobs_created"], 1);
  EXPECT_EQ(stats["chat_completions"], asked);
  EXPECT_THAT(logs.text, HasSubstr("found by tag"));
  EXPECT_EQ(r3->digest(), r->digest());
  EXPECT_DOUBLE_EQ(r3->cost_usd(), r->cost_usd());
}

TEST_F(OpenAiBackendTest, CampaignCancelCancelsTheProviderJob) {
  IntentStore intents;
  intents.set_campaign_cancelled(true);
  FakeOpenAi* fake = &fake_;
  absl::StatusOr<v1::TaskResult> r =
      RunTask(Task({20}), &intents, nullptr, [fake](workers::TaskContext& ctx) {
        for (int i = 0; i < 400 && fake->Stats()["jobs_created"] != 1; ++i) usleep(10'000);
        ctx.Cancel();
      });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(fake_.Stats()["cancels"], 1);
}

TEST_F(OpenAiBackendTest, InsufficientQuotaPausesInsteadOfRetrying) {
  fake_.Fault({{"path", "/v1/fine_tuning/jobs"}, {"method", "POST"},
               {"kind", "insufficient_quota"}, {"count", 5}});
  IntentStore intents;
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({1}), &intents);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(workers::ShouldPauseCampaign(r.status()));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("insufficient_quota"));
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["faults_served"], 1);  // asked once, not retried
  EXPECT_EQ(stats["jobs_created"], 0);
}

TEST_F(OpenAiBackendTest, FailedJobIsRetryableAndBadKeyIsRedacted) {
  fake_.Fault({{"kind", "job_fail"}, {"count", 1}});
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({2}), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(workers::IsRetryableBackendError(r.status()));

  const std::string wrong = "sk-wrong-but-secret-key-0042";
  setenv("FTB_TEST_OPENAI_KEY", wrong.c_str(), 1);
  Logs logs;
  r = RunTask(Task({1}), nullptr, &logs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(workers::IsRetryableBackendError(r.status()));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr(wrong)));
  EXPECT_THAT(logs.text, Not(HasSubstr(wrong)));
  EXPECT_EQ(fake_.Stats()["unauthorized"], 1);  // 401 is not retried

  unsetenv("FTB_TEST_OPENAI_KEY");
  r = RunTask(Task({1}), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("FTB_TEST_OPENAI_KEY"));
}

}  // namespace
}  // namespace ftb
