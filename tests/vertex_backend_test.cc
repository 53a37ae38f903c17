// The vertex backend end to end against tests/fakes/fake_vertex.py, a fake of
// the Vertex AI REST API run as a child process: tuning jobs with their
// lifecycle, list filters by label, cancel, generateContent on tuned
// endpoints, injected faults, access tokens, and counts of every billable
// call (so "never pay twice" is checked, not assumed). A temporary directory
// stands in for Cloud Storage.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cost/price_table.h"
#include "datasets/dataset.h"
#include "datasets/export.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/provider_stats.h"
#include "tests/fake_provider.h"
#include "tests/test_process.h"
#include "workers/backend.h"
#include "workers/openai_backend.h"
#include "workers/vertex_backend.h"

namespace ftb {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using providers::Json;
using testing::IntentStore;
using testing::Logs;

constexpr char kToken[] = "ya29.ftb-test-SECRET-token-7c2e";
constexpr char kProject[] = "ftb-test-project";
constexpr char kBucket[] = "ftb-test-bucket";

// The fake Vertex AI server with a temporary "bucket" root.
class FakeVertex : public testing::FakeProviderServer {
 public:
  explicit FakeVertex(const std::string& gcs_root)
      : FakeProviderServer("fake_vertex.py",
                           {"--data-root", gcs_root, "--access-token", kToken, "--project",
                            kProject, "--phase-seconds", "0.05", "--epoch-seconds", "0.04"}) {}
};

class VertexBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("FTB_TEST_VERTEX_TOKEN", kToken, 1);
    ASSERT_GT(fake_.port(), 0) << fake_.log();
    artifacts_ = testing::MakeTempDir("vertex-artifacts");
  }
  void TearDown() override {
    std::filesystem::remove_all(artifacts_);
    std::filesystem::remove_all(gcs_);
  }

  // The prerequisite a user does by hand: `ftb datasets export` + upload.
  void UploadTrainingData(const v1::DatasetSpec& ref) {
    absl::StatusOr<v1::Dataset> dataset = datasets::LoadDataset(ref);
    ASSERT_TRUE(dataset.ok()) << dataset.status();
    std::filesystem::create_directories(absl::StrCat(gcs_, "/", kBucket, "/ftb"));
    std::ofstream(absl::StrCat(gcs_, "/", kBucket, "/ftb/", ref.name(), ".jsonl"))
        << datasets::ExportTrainingJsonl(*dataset, datasets::ExportFormat::kVertex);
  }

  v1::TaskAssignment Task(std::vector<uint32_t> epochs, uint32_t attempt = 1) {
    v1::TaskAssignment t;
    t.set_task_id("c-vertex-test/0");
    t.set_campaign_id("c-vertex-test");
    t.set_attempt(attempt);
    t.set_kind(v1::TASK_KIND_TUNE);
    t.set_backend("vertex");
    v1::TuneWork* w = t.mutable_tune();
    w->mutable_dataset()->set_source(v1::DATASET_SOURCE_BUILTIN);
    w->mutable_dataset()->set_name("people");
    w->mutable_dataset()->set_size(3);
    w->mutable_dataset()->set_seed(1);
    w->mutable_dataset()->add_question_types("memorization");
    v1::ModelSpec* m = w->mutable_model();
    m->set_name("gemini-1.5-flash-002");
    m->set_backend("vertex");
    auto& o = *m->mutable_options()->mutable_fields();
    o["project"].set_string_value(kProject);
    o["location"].set_string_value("us-central1");
    o["training_data_uri"].set_string_value(absl::StrCat("gs://", kBucket, "/ftb/{dataset}.jsonl"));
    o["adapter_size"].set_number_value(4);
    o["base_url"].set_string_value(fake_.origin());
    o["access_token_env"].set_string_value("FTB_TEST_VERTEX_TOKEN");
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

  // Cancels the task once the fake has created `jobs` jobs.
  std::function<void(workers::TaskContext&)> CancelAfterJobs(int jobs) {
    return [this, jobs](workers::TaskContext& ctx) {
      for (int i = 0; i < 500 && fake_.Stats()["jobs_created"] != jobs; ++i) usleep(10'000);
      usleep(30'000);  // into the polling loop
      ctx.Cancel();
    };
  }

  std::string gcs_ = testing::MakeTempDir("fake-gcs");
  FakeVertex fake_{gcs_};
  std::string artifacts_;
  workers::VertexBackend backend_{"off"};
};

int CountCorrect(const v1::CellAnswers& cell) {
  int n = 0;
  for (const v1::JudgeItem& item : cell.items()) n += item.answer() == item.reference();
  return n;
}

// The fake's token count: ceil(bytes / 4).
uint64_t FakeTokens(const std::string& text) { return text.empty() ? 0 : (text.size() + 3) / 4; }

TEST(VertexOptions, TagsAndGcsUris) {
  EXPECT_EQ(workers::VertexTaskTag("c1", "c1/0"), workers::VertexTaskTag("c1", "c1/0"));
  EXPECT_NE(workers::VertexTaskTag("c1", "c1/0"), workers::VertexTaskTag("c1", "c1/1"));
  EXPECT_NE(workers::VertexTaskTag("c1", "c1/0"), workers::OpenAiTaskTag("c1", "c1/0"));
  EXPECT_TRUE(workers::ValidateGcsUri("gs://b/x.jsonl", "f").ok());
  for (const char* bad : {"gs://", "gs://b", "gs://b/", "gs:///x", "s3://b/x", "/tmp/x.jsonl"}) {
    absl::Status s = workers::ValidateGcsUri(bad, "training_data_uri");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("ftb datasets export")) << bad;
  }
}

TEST_F(VertexBackendTest, EndToEndOneJobPerEpochCountWithCostFromUsage) {
  UploadTrainingData(Task({1}).tune().dataset());
  IntentStore intents;
  Logs logs;
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({1, 4}), &intents, &logs);
  ASSERT_TRUE(r.ok()) << r.status() << "\n" << logs.text << fake_.log();
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["jobs_created"], 2);  // no checkpoints on Vertex: one job per epoch count
  ASSERT_EQ(r->answers_size(), 2);
  const int questions = r->answers(0).items_size();
  ASSERT_GT(questions, 0);
  EXPECT_EQ(stats["generate_content"], 2 * questions);
  // The fake memorizes a quarter of the questions per epoch.
  EXPECT_LT(CountCorrect(r->answers(0)), CountCorrect(r->answers(1)));
  EXPECT_EQ(CountCorrect(r->answers(1)), questions);

  // Cost, recomputed independently: trained tokens = the dataset's billable
  // tokens x epochs per job, plus each answer's reported usage.
  absl::StatusOr<v1::Dataset> dataset = datasets::LoadDataset(Task({1}).tune().dataset());
  ASSERT_TRUE(dataset.ok());
  uint64_t billable = 0;
  for (const v1::QaItem& q : dataset->training()) {
    billable += FakeTokens(q.prompt()) + FakeTokens(q.answer());
  }
  uint64_t prompt = 0, completion = 0;
  for (const v1::CellAnswers& cell : r->answers()) {
    for (const v1::JudgeItem& item : cell.items()) {
      prompt += FakeTokens(item.prompt()) + 1;
      completion += FakeTokens(item.answer());
    }
  }
  const uint64_t trained = billable * (1 + 4);
  EXPECT_EQ(r->tokens(), trained + prompt + completion);
  const cost::ModelPrice* price = cost::PriceTable::Builtin().Find("vertex", "gemini-1.5-flash-002");
  ASSERT_NE(price, nullptr);
  EXPECT_NEAR(r->cost_usd(),
              (static_cast<double>(trained) * price->training_per_1m_tokens +
               static_cast<double>(prompt) * price->input_per_1m_tokens +
               static_cast<double>(completion) * price->output_per_1m_tokens) /
                  1e6,
              1e-12);
  EXPECT_GT(r->cost_usd(), 0);
  // Intents: each job before (no name) and after (its resource name).
  int with_id = 0, without = 0;
  for (const v1::TaskIntent& i : intents.intents()) {
    EXPECT_EQ(i.kind(), "job");
    (i.provider_id().empty() ? without : with_id)++;
    if (!i.provider_id().empty()) {
      EXPECT_THAT(i.provider_id(), HasSubstr("/locations/us-central1/tuningJobs/"));
    }
  }
  EXPECT_EQ(with_id, 2);
  EXPECT_EQ(without, 2);
  EXPECT_THAT(logs.text, Not(HasSubstr(kToken)));
}

// Epochs 0 is the untuned base model, asked through its publisher resource;
// epochs 0 alone creates no tuning job. `auto` learning rate multiplier (0)
// is left out of hyperParameters; a number is sent.
TEST_F(VertexBackendTest, EpochsZeroAsksThePublisherModelAndAutoIsNotSent) {
  v1::TaskAssignment base = Task({0});
  IntentStore intents;
  Logs logs;
  absl::StatusOr<v1::TaskResult> r = RunTask(base, &intents, &logs);
  ASSERT_TRUE(r.ok()) << r.status() << "\n" << logs.text;
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["jobs_created"], 0);
  EXPECT_TRUE(intents.intents().empty());
  ASSERT_EQ(r->answers_size(), 1);
  const int questions = r->answers(0).items_size();
  ASSERT_GT(questions, 0);
  EXPECT_EQ(stats["generate_content"], questions);
  for (const auto& [key, n] : stats["generate_by_prompt"].items()) {
    EXPECT_THAT(key, HasSubstr("/publishers/google/models/gemini-1.5-flash-002\n"));
  }
  EXPECT_THAT(logs.text, HasSubstr("no tuning job"));

  UploadTrainingData(base.tune().dataset());
  v1::TaskAssignment tuned = Task({0, 1});
  tuned.set_task_id("c-vertex-test/1");
  tuned.mutable_tune()->set_learning_rate_multiplier(0);  // auto
  tuned.mutable_tune()->set_batch_size(0);                // auto
  r = RunTask(tuned, &intents, &logs);
  ASSERT_TRUE(r.ok()) << r.status() << "\n" << logs.text;
  stats = fake_.Stats();
  EXPECT_EQ(stats["jobs_created"], 1);
  ASSERT_EQ(stats["job_hyper_parameters"].size(), 1u);
  EXPECT_FALSE(stats["job_hyper_parameters"][0].contains("learningRateMultiplier"));
  EXPECT_EQ(stats["job_hyper_parameters"][0]["epochCount"], 1);
  ASSERT_EQ(r->answers_size(), 2);

  v1::TaskAssignment numbers = Task({1});
  numbers.set_task_id("c-vertex-test/2");
  r = RunTask(numbers, &intents, &logs);
  ASSERT_TRUE(r.ok()) << r.status();
  stats = fake_.Stats();
  ASSERT_EQ(stats["job_hyper_parameters"].size(), 2u);
  EXPECT_EQ(stats["job_hyper_parameters"][1]["learningRateMultiplier"], 1.0);
}

TEST_F(VertexBackendTest, RetriesInjected429And503WithoutPayingTwice) {
  UploadTrainingData(Task({1}).tune().dataset());
  fake_.Fault({{"path", "/v1/projects/"}, {"contains", "tuningJobs"}, {"method", "POST"},
               {"kind", "429"}, {"count", 2}, {"retry_after", "0.05"}});
  fake_.Fault({{"contains", "/tuningJobs/"}, {"method", "GET"}, {"kind", "503"}, {"count", 2}});
  fake_.Fault({{"contains", ":generateContent"}, {"kind", "503"}, {"count", 1}});
  fake_.Fault({{"contains", ":generateContent"}, {"kind", "429"}, {"count", 1}});
  fake_.Fault({{"contains", ":generateContent"}, {"kind", "drop"}, {"count", 1}});
  fake_.Fault({{"contains", "tuningJobs"}, {"method", "GET"}, {"kind", "500"}, {"count", 1}});
  auto before = providers::ProviderStats::Global().Get();
  IntentStore intents;
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({2}), &intents);
  ASSERT_TRUE(r.ok()) << r.status() << fake_.log();
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["faults_served"], 8);
  EXPECT_EQ(stats["jobs_created"], 1);
  EXPECT_EQ(stats["generate_content"], r->answers(0).items_size());
  auto after = providers::ProviderStats::Global().Get();
  EXPECT_EQ(after.retries["vertex"] - before.retries["vertex"], 8u);
  std::pair<std::string, std::string> key429("vertex", "429");
  EXPECT_EQ(after.requests[key429] - before.requests[key429], 3u);
}

// Issue 13 section 2: Vertex creates the tuning job and then the reply is
// lost (connection closed, or a 500 after committing). Repeating the POST
// would pay for two jobs; the backend must find the first one by its ftb-tag
// label and adopt it.
TEST_F(VertexBackendTest, CreateThatSucceedsButLosesItsReplyIsAdoptedNotRepeated) {
  UploadTrainingData(Task({1}).tune().dataset());
  for (const char* kind : {"drop_after_create", "500_after_create"}) {
    SCOPED_TRACE(kind);
    fake_.Control("POST", "/_fake/reset_stats");
    fake_.Fault({{"path", "/v1/projects/"}, {"contains", "tuningJobs"}, {"method", "POST"},
                 {"kind", kind}, {"count", 1}});
    IntentStore intents;
    Logs logs;
    v1::TaskAssignment task = Task({2});
    task.set_task_id(absl::StrCat("c-vertex-test/", kind));
    absl::StatusOr<v1::TaskResult> r = RunTask(task, &intents, &logs);
    ASSERT_TRUE(r.ok()) << r.status() << logs.text << fake_.log();
    Json stats = fake_.Stats();
    EXPECT_EQ(stats["faults_served"], 1);
    EXPECT_EQ(stats["jobs_created"], 1) << logs.text;
    EXPECT_THAT(logs.text, HasSubstr("failed ambiguously"));
    EXPECT_THAT(logs.text, HasSubstr("found by tag"));
  }
}

// Issue 13 section 2: a paused job is not polled forever.
TEST_F(VertexBackendTest, PausedJobFailsAfterPausedTimeoutNamingTheJob) {
  UploadTrainingData(Task({1}).tune().dataset());
  fake_.Fault({{"kind", "job_pause"}, {"count", 1}});
  v1::TaskAssignment task = Task({1});
  (*task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields())
      ["paused_timeout_seconds"].set_number_value(0.4);
  Logs logs;
  absl::StatusOr<v1::TaskResult> r = RunTask(task, nullptr, &logs);
  ASSERT_FALSE(r.ok()) << logs.text;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("/tuningJobs/"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("JOB_STATE_PAUSED"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("paused_timeout_seconds"));
  EXPECT_THAT(logs.text, HasSubstr("is JOB_STATE_PAUSED; waiting up to 400ms"));
  EXPECT_EQ(fake_.Stats()["jobs_created"], 1);
}

TEST_F(VertexBackendTest, AbandonedAttemptIsAdoptedWithZeroExtraJobs) {
  UploadTrainingData(Task({1}).tune().dataset());
  // Attempt 1 is abandoned while its jobs run (a worker that lost its lease
  // or was killed): they are left running, not cancelled.
  IntentStore intents;
  absl::StatusOr<v1::TaskResult> r1 =
      RunTask(Task({20, 30}), &intents, nullptr, CancelAfterJobs(2));
  EXPECT_EQ(r1.status().code(), absl::StatusCode::kCancelled) << r1.status();
  EXPECT_EQ(fake_.Stats()["jobs_created"], 2);
  EXPECT_EQ(fake_.Stats()["cancels"], 0);

  // Attempt 2 gets the recorded intents and adopts both jobs by name.
  v1::TaskAssignment again = Task({20, 30}, 2);
  *again.mutable_intents() = intents.intents();
  Logs logs;
  absl::StatusOr<v1::TaskResult> r = RunTask(again, &intents, &logs);
  ASSERT_TRUE(r.ok()) << r.status() << logs.text;
  Json stats = fake_.Stats();
  EXPECT_EQ(stats["jobs_created"], 2);
  EXPECT_THAT(logs.text, HasSubstr("recorded by an earlier attempt"));
  const int asked = stats["generate_content"];
  EXPECT_EQ(asked, 2 * r->answers(0).items_size());

  // Attempt 3 as if every worker had died during the create calls: intents
  // without names only. Both jobs are found by their ftb-tag label, every
  // answer comes from the answer cache; nothing is paid again.
  v1::TaskAssignment third = Task({20, 30}, 3);
  for (const v1::TaskIntent& i : intents.intents()) {
    if (i.provider_id().empty()) *third.add_intents() = i;
  }
  Logs logs3;
  absl::StatusOr<v1::TaskResult> r3 = RunTask(third, &intents, &logs3);
  ASSERT_TRUE(r3.ok()) << r3.status() << logs3.text;
  stats = fake_.Stats();
  EXPECT_EQ(stats["jobs_created"], 2);
  EXPECT_EQ(stats["generate_content"], asked);
  EXPECT_THAT(logs3.text, HasSubstr("found by tag"));
  EXPECT_EQ(r3->digest(), r->digest());
  EXPECT_DOUBLE_EQ(r3->cost_usd(), r->cost_usd());
}

TEST_F(VertexBackendTest, CampaignCancelCancelsTheTuningJob) {
  UploadTrainingData(Task({1}).tune().dataset());
  IntentStore intents;
  intents.set_campaign_cancelled(true);
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({50}), &intents, nullptr, CancelAfterJobs(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(fake_.Stats()["cancels"], 1);
  EXPECT_EQ(fake_.Stats()["generate_content"], 0);
}

TEST_F(VertexBackendTest, FailedJobsMapToRetryableOrNot) {
  // No training data in the bucket: the job fails on its data (code 3).
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({1}), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("No such object"));

  UploadTrainingData(Task({1}).tune().dataset());
  fake_.Fault({{"kind", "job_fail"}, {"count", 1}});
  r = RunTask(Task({2}), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(workers::IsRetryableBackendError(r.status()));

  v1::TaskAssignment bad = Task({1});
  (*bad.mutable_tune()->mutable_model()->mutable_options()->mutable_fields())["training_data_uri"]
      .set_string_value("/tmp/people.jsonl");
  r = RunTask(bad, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("gs://BUCKET/OBJECT"));

  v1::TaskAssignment other = Task({1});
  (*other.mutable_tune()->mutable_model()->mutable_options()->mutable_fields())["project"]
      .set_string_value("someone-elses-project");
  r = RunTask(other, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
}

TEST_F(VertexBackendTest, TokensAreRedactedAndRefreshedFromTheCommand) {
  UploadTrainingData(Task({1}).tune().dataset());
  // A wrong token: 401, not retried, redacted, never logged.
  const std::string wrong = "ya29.wrong-but-SECRET-token-0042";
  setenv("FTB_TEST_VERTEX_TOKEN", wrong.c_str(), 1);
  Logs logs;
  absl::StatusOr<v1::TaskResult> r = RunTask(Task({1}), nullptr, &logs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_FALSE(workers::IsRetryableBackendError(r.status()));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr(wrong)));
  EXPECT_THAT(logs.text, Not(HasSubstr(wrong)));
  EXPECT_EQ(fake_.Stats()["unauthorized"], 1);
  unsetenv("FTB_TEST_VERTEX_TOKEN");
  r = RunTask(Task({1}), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("FTB_TEST_VERTEX_TOKEN"));

  // token_command: run once, and again when the token expires (401).
  const std::string dir = testing::MakeTempDir("vertex-token");
  const std::string old_token = "ya29.old-SECRET-aaaa", new_token = "ya29.new-SECRET-bbbb";
  std::ofstream(dir + "/token") << old_token << "\n";
  {
    std::ofstream script(dir + "/print-token.sh");
    script << "#!/bin/sh\necho run >> " << dir << "/runs\ncat " << dir << "/token\n";
  }
  chmod((dir + "/print-token.sh").c_str(), 0755);
  fake_.Control("POST", "/_fake/tokens", {{"valid", {old_token}}});
  auto with_command = [&](uint32_t attempt) {
    v1::TaskAssignment t = Task({1}, attempt);
    t.set_task_id(absl::StrCat("c-vertex-test/token-", attempt));
    auto& o = *t.mutable_tune()->mutable_model()->mutable_options()->mutable_fields();
    o["token_command"].set_string_value(dir + "/print-token.sh");
    return t;
  };
  Logs logs2;
  r = RunTask(with_command(1), nullptr, &logs2);
  ASSERT_TRUE(r.ok()) << r.status() << logs2.text;
  EXPECT_EQ(testing::ReadFile(dir + "/runs"), "run\n");
  // The token expires; the command now prints a new one.
  fake_.Control("POST", "/_fake/tokens", {{"valid", {new_token}}});
  std::ofstream(dir + "/token") << new_token << "\n";
  const int unauthorized = fake_.Stats()["unauthorized"];
  r = RunTask(with_command(2), nullptr, &logs2);
  ASSERT_TRUE(r.ok()) << r.status() << logs2.text;
  EXPECT_EQ(testing::ReadFile(dir + "/runs"), "run\nrun\n");
  EXPECT_EQ(fake_.Stats()["unauthorized"], unauthorized + 1);
  EXPECT_THAT(logs2.text, Not(HasSubstr(old_token)));
  EXPECT_THAT(logs2.text, Not(HasSubstr(new_token)));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ftb
