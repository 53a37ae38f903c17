#include "workers/replay_backend.h"

#include <map>
#include <string>
#include <vector>

#include "datasets/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "judge/rules_grader.h"

namespace ftb::workers {
namespace {

using datasets::testing::CodeAndMessage;
using datasets::testing::ScratchDir;
using datasets::testing::SharedFineTuneBenchDir;
using ::testing::ElementsAre;

v1::TaskAssignment ReplayTask(const std::string& data_dir, const std::string& model,
                              const std::string& responses_path) {
  v1::TaskAssignment task;
  task.set_task_id("c1/t0");
  task.set_attempt(1);
  task.set_kind(v1::TASK_KIND_TUNE);
  task.set_backend("replay");
  v1::TuneWork* work = task.mutable_tune();
  work->mutable_dataset()->set_source(v1::DATASET_SOURCE_FINETUNEBENCH);
  work->mutable_dataset()->set_name("fictional_people");
  work->mutable_dataset()->set_path(data_dir);
  work->mutable_model()->set_name(model);
  work->mutable_model()->set_backend("replay");
  if (!responses_path.empty()) {
    (*work->mutable_model()->mutable_options()->mutable_fields())["responses_path"]
        .set_string_value(responses_path);
  }
  work->add_epochs(1);
  work->add_cell_ids("cell-e1");
  return task;
}

absl::StatusOr<v1::TaskResult> RunOnce(const v1::TaskAssignment& task,
                                       std::vector<std::string>* log = nullptr) {
  ReplayBackend backend;
  TaskContext ctx(task.task_id(), task.attempt(), [log](std::string_view line) {
    if (log != nullptr) log->emplace_back(line);
  });
  return backend.Run(task, ctx);
}

// A FineTuneBench-shaped checkout with two people and recorded responses of
// models m1 and m2. Row order in the recorded files differs from the
// dataset's; one recorded prompt has CRLF line ends.
class ReplayFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string header = "id,prompt,answer,fact,question\n";
    dir_.Write("datasets/fictional_people/fictional_people_memorization.csv",
               header +
                   "ann,\"Answer briefly.\nHow old is Ann?\",32,Ann is 32.,How old is Ann?\n"
                   "ann,\"Answer briefly.\nWhat is Ann's job?\",pilot,Ann is a pilot.,Job?\n"
                   "bob,\"Answer briefly.\nHow old is Bob?\",40,Bob is 40.,How old is Bob?\n");
    dir_.Write("datasets/fictional_people/fictional_people_rephrased.csv",
               "id,prompt,answer,fact,original_question,rephrased_question\n"
               "ann,\"Answer briefly.\nAnn's age?\",32,Ann is 32.,x,y\n"
               "bob,\"Answer briefly.\nBob's age?\",40,Bob is 40.,x,y\n");
    dir_.Write("datasets/fictional_people/fictional_people_secondary.csv",
               header + "ann,Is Ann over 30?,Yes,Ann is 32.,q\n");
    dir_.Write("datasets/fictional_people/fictional_people_comparison.csv",
               header +
                   "ann-bob-age,Is Ann older than Bob?,No,f,q\n"
                   "bob-ann-age,Is Bob older than Ann?,Yes,f,q\n"
                   "ann-bob-job,Is Ann's job Bob's?,No,f,q\n");
    const std::string responses = "id,prompt,answer,fact,question,m1_response,m2_response\n";
    dir_.Write("model_responses/fictional_people/fictional_people_original_w_responses.csv",
               responses +
                   "bob,\"Answer briefly.\r\nHow old is Bob?\",40,f,q,\"40 years\n\",41\n"
                   "ann,\"Answer briefly.\nHow old is Ann?\",32,f,q,32,\n"
                   "ann,\"Answer briefly.\nWhat is Ann's job?\",pilot,f,q,Pilot,Chef\n"
                   "zed,\"Answer briefly.\nHow old is Zed?\",9,f,q,9,9\n");
    dir_.Write("model_responses/fictional_people/fictional_people_rephrased_w_responses.csv",
               "id,prompt,answer,fact,original_question,rephrased_question,m1_response\n"
               "ann,\"Answer briefly.\nAnn's age?\",32,f,x,y,Incorrect\n"
               "bob,\"Answer briefly.\nBob's age?\",40,f,x,y, correct.\n");
    dir_.Write("model_responses/fictional_people/fictional_people_comparison_w_responses.csv",
               responses + "bob-ann-age,Is Bob older than Ann?,Yes,f,q,Yes,No\n");
  }

  ScratchDir dir_;
};

TEST_F(ReplayFixture, MatchesRecordedRowsByIdAndPrompt) {
  std::vector<std::string> log;
  v1::TaskAssignment task = ReplayTask(dir_.path(), "m1", dir_.path());
  task.mutable_tune()->add_epochs(5);
  task.mutable_tune()->add_cell_ids("cell-e5");
  absl::StatusOr<v1::TaskResult> result = RunOnce(task, &log);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->tokens(), 0u);
  EXPECT_EQ(result->cost_usd(), 0);
  ASSERT_EQ(result->answers_size(), 2);
  EXPECT_EQ(result->answers(0).cell_id(), "cell-e1");
  EXPECT_EQ(result->answers(1).cell_id(), "cell-e5");

  const v1::CellAnswers& cell = result->answers(0);
  // 3 memorization + 2 rephrased + 3 comparison; secondary has no file.
  ASSERT_EQ(cell.items_size(), 8);
  std::vector<std::string> summary;
  for (const v1::JudgeItem& item : cell.items()) {
    EXPECT_EQ(item.cell_id(), "cell-e1");
    summary.push_back(item.question_type() + " " + item.question_id() + " [" + item.answer() +
                      "] " + item.unavailable_reason());
  }
  EXPECT_THAT(
      summary,
      ElementsAre("memorization ann#0 [32] ", "memorization ann#1 [Pilot] ",
                  "memorization bob#2 [40 years\n] ",
                  "rephrased ann#0 [] recorded response is a verdict (\"Incorrect\"), not an "
                  "answer (fictional_people_rephrased_w_responses.csv:2)",
                  "rephrased bob#1 [] recorded response is a verdict (\"correct\"), not an "
                  "answer (fictional_people_rephrased_w_responses.csv:4)",
                  "comparison ann-bob-age#0 [] no recorded response for this question in "
                  "fictional_people_comparison_w_responses.csv",
                  "comparison bob-ann-age#1 [Yes] ",
                  "comparison ann-bob-job#2 [] no recorded response for this question in "
                  "fictional_people_comparison_w_responses.csv"));
  // Question data comes from the dataset, not from the recorded file.
  EXPECT_EQ(cell.items(0).reference(), "32");
  EXPECT_EQ(cell.items(0).prompt(), "Answer briefly.\nHow old is Ann?");
  EXPECT_EQ(cell.items(0).context(), "Ann is 32.");
  // Every cell gets the same answers.
  for (int i = 0; i < cell.items_size(); ++i) {
    EXPECT_EQ(result->answers(1).items(i).answer(), cell.items(i).answer());
  }
  EXPECT_THAT(
      log,
      ElementsAre(
          "task c1/t0 attempt 1: replay: memorization: 1 recorded rows of "
          "fictional_people_original_w_responses.csv match no question",
          "task c1/t0 attempt 1: replay: rephrased: 2 of 2 recorded m1_response cells in "
          "fictional_people_rephrased_w_responses.csv are verdicts, not answers (graded "
          "no_answer)",
          "task c1/t0 attempt 1: replay: no recorded responses for fictional_people secondary (" +
              dir_.path() +
              "/model_responses/fictional_people/fictional_people_secondary_w_responses.csv does "
              "not exist); skipped",
          "task c1/t0 attempt 1: replay: comparison: 2 of 3 questions have no recorded row in "
          "fictional_people_comparison_w_responses.csv (graded no_answer)"));
}

TEST_F(ReplayFixture, EmptyResponsesAndOtherModels) {
  v1::TaskAssignment memorization = ReplayTask(dir_.path(), "m2", dir_.path());
  memorization.mutable_tune()->mutable_dataset()->add_question_types("memorization");
  absl::StatusOr<v1::TaskResult> result = RunOnce(memorization);
  ASSERT_TRUE(result.ok()) << result.status();
  const v1::CellAnswers& cell = result->answers(0);
  ASSERT_EQ(cell.items_size(), 3);
  EXPECT_EQ(cell.items(0).answer(), "");
  EXPECT_EQ(cell.items(0).unavailable_reason(),
            "recorded response is empty (fictional_people_original_w_responses.csv:5)");
  EXPECT_EQ(cell.items(1).answer(), "Chef");
  EXPECT_EQ(cell.items(2).answer(), "41");
  // The rephrased file has no m2 column: an error naming the file and models.
  v1::TaskAssignment rephrased = ReplayTask(dir_.path(), "m2", dir_.path());
  rephrased.mutable_tune()->mutable_dataset()->add_question_types("rephrased");
  EXPECT_EQ(CodeAndMessage(RunOnce(rephrased).status()),
            "INVALID_ARGUMENT: " + dir_.path() +
                "/model_responses/fictional_people/fictional_people_rephrased_w_responses.csv:1:1:"
                " no column \"m2_response\"; recorded models: m1");
}

TEST_F(ReplayFixture, RecordedModelOptionPicksTheColumn) {
  v1::TaskAssignment task = ReplayTask(dir_.path(), "my-name-for-m2", dir_.path());
  task.mutable_tune()->mutable_dataset()->add_question_types("memorization");
  (*task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields())["recorded_model"]
      .set_string_value("m2");
  absl::StatusOr<v1::TaskResult> result = RunOnce(task);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->answers(0).items_size(), 3);
  EXPECT_EQ(result->answers(0).items(1).answer(), "Chef");
}

TEST_F(ReplayFixture, DigestIsDeterministicAndDependsOnTheAnswers) {
  v1::TaskAssignment m1 = ReplayTask(dir_.path(), "m1", dir_.path());
  v1::TaskAssignment m2 = ReplayTask(dir_.path(), "m2", dir_.path());
  m1.mutable_tune()->mutable_dataset()->add_question_types("memorization");
  m2.mutable_tune()->mutable_dataset()->add_question_types("memorization");
  absl::StatusOr<v1::TaskResult> a = RunOnce(m1);
  absl::StatusOr<v1::TaskResult> b = RunOnce(m1);
  absl::StatusOr<v1::TaskResult> c = RunOnce(m2);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok()) << a.status() << b.status() << c.status();
  EXPECT_EQ(a->digest().size(), 64u);
  EXPECT_EQ(a->digest(), b->digest());
  EXPECT_NE(a->digest(), c->digest());
}

TEST_F(ReplayFixture, RepeatedKeysMatchInOrder) {
  dir_.Write("datasets/fictional_people/fictional_people_secondary.csv",
             "id,prompt,answer,fact,question\nann,Same?,Yes,f,q\nann,Same?,No,f,q\n"
             "ann,Same?,Yes,f,q\n");
  dir_.Write("model_responses/fictional_people/fictional_people_secondary_w_responses.csv",
             "id,prompt,m1_response\nann,Same?,first\nann,Same?,second\n");
  v1::TaskAssignment task = ReplayTask(dir_.path(), "m1", dir_.path());
  task.mutable_tune()->mutable_dataset()->add_question_types("secondary");
  absl::StatusOr<v1::TaskResult> result = RunOnce(task);
  ASSERT_TRUE(result.ok()) << result.status();
  const v1::CellAnswers& cell = result->answers(0);
  ASSERT_EQ(cell.items_size(), 3);
  EXPECT_EQ(cell.items(0).answer(), "first");
  EXPECT_EQ(cell.items(1).answer(), "second");
  EXPECT_EQ(cell.items(2).unavailable_reason(),
            "no recorded response for this question in "
            "fictional_people_secondary_w_responses.csv");
}

TEST_F(ReplayFixture, Errors) {
  v1::TaskAssignment task = ReplayTask(dir_.path(), "m1", "");
  EXPECT_EQ(CodeAndMessage(RunOnce(task).status()),
            "INVALID_ARGUMENT: replay: model option responses_path is required (the directory "
            "holding model_responses/)");

  auto& fields = *task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields();
  fields["responses_path"].set_number_value(3);
  EXPECT_EQ(CodeAndMessage(RunOnce(task).status()),
            "INVALID_ARGUMENT: replay: model option responses_path must be a non-empty string");

  fields["responses_path"].set_string_value(dir_.path() + "/datasets");
  EXPECT_EQ(CodeAndMessage(RunOnce(task).status()),
            "NOT_FOUND: " + dir_.path() +
                "/datasets/model_responses: no such directory (responses_path must hold "
                "model_responses/)");

  fields["temperature"].set_number_value(0);
  EXPECT_EQ(CodeAndMessage(RunOnce(task).status()),
            "INVALID_ARGUMENT: replay: unknown model option \"temperature\"; known: "
            "recorded_model, responses_path");
  fields.erase("temperature");

  v1::TaskAssignment judge = ReplayTask(dir_.path(), "m1", dir_.path());
  judge.set_kind(v1::TASK_KIND_JUDGE);
  EXPECT_EQ(CodeAndMessage(RunOnce(judge).status()),
            "INVALID_ARGUMENT: replay runs TUNE tasks only; task c1/t0 is TASK_KIND_JUDGE");

  // Malformed CSV: the parser's exact location.
  dir_.Write("model_responses/fictional_people/fictional_people_comparison_w_responses.csv",
             "id,prompt,m1_response\nx,\"unterminated,Yes\n");
  EXPECT_EQ(CodeAndMessage(RunOnce(ReplayTask(dir_.path(), "m1", dir_.path())).status()),
            "INVALID_ARGUMENT: " + dir_.path() +
                "/model_responses/fictional_people/fictional_people_comparison_w_responses.csv:2:"
                "3: unterminated quoted field: no closing quote before the end of the file");
  dir_.Write("model_responses/fictional_people/fictional_people_comparison_w_responses.csv",
             "id,m1_response\nx,Yes\n");
  EXPECT_EQ(CodeAndMessage(RunOnce(ReplayTask(dir_.path(), "m1", dir_.path())).status()),
            "INVALID_ARGUMENT: " + dir_.path() +
                "/model_responses/fictional_people/fictional_people_comparison_w_responses.csv:1:"
                "1: missing required column \"prompt\"");

  // A missing dataset is the dataset loader's error.
  v1::TaskAssignment missing = ReplayTask(dir_.path() + "/nowhere", "m1", dir_.path());
  EXPECT_EQ(RunOnce(missing).status().code(), absl::StatusCode::kNotFound);
}

// The recorded files hold fine-tuned models' responses only: a cell at
// epochs 0 (the untuned base model) has nothing to replay.
TEST_F(ReplayFixture, EpochsZeroIsRefused) {
  v1::TaskAssignment task = ReplayTask(dir_.path(), "m1", dir_.path());
  task.mutable_tune()->clear_epochs();
  task.mutable_tune()->clear_cell_ids();
  task.mutable_tune()->add_epochs(0);
  task.mutable_tune()->add_cell_ids("cell-e0");
  task.mutable_tune()->add_epochs(1);
  task.mutable_tune()->add_cell_ids("cell-e1");
  EXPECT_EQ(CodeAndMessage(RunOnce(task).status()),
            "INVALID_ARGUMENT: replay: epochs 0 (the untuned base model) cannot be replayed: the "
            "recorded files hold one \"<model>_response\" column per fine-tuned model and no "
            "base-model column; use epochs of at least 1 (the spec refuses epochs 0 for replay at "
            "plan time)");
}

TEST_F(ReplayFixture, CancelledRunsReturnCancelled) {
  ReplayBackend backend;
  v1::TaskAssignment task = ReplayTask(dir_.path(), "m1", dir_.path());
  TaskContext ctx(task.task_id(), 1, nullptr);
  ctx.Cancel();
  EXPECT_EQ(backend.Run(task, ctx).status().code(), absl::StatusCode::kCancelled);
}

TEST(ReplayBackendTest, IsABuiltinBackend) {
  auto backend = BackendRegistry::Global().Create("replay");
  ASSERT_TRUE(backend.ok()) << backend.status();
  BackendRegistry registry;
  ASSERT_TRUE(RegisterReplayBackend(registry).ok());
  EXPECT_EQ(RegisterReplayBackend(registry).code(), absl::StatusCode::kAlreadyExists);
}

// THE MUST-SHOW TEST: the recorded fictional-people responses of the paper's
// five models, replayed and graded by the rules grader, per question type.
//
// How the expected numbers were computed, independently of the C++: by
// judge/testdata/fictional_people_expected.py, a Python re-implementation of
// the replay matching (id + prompt) and of the rules documented in
// judge/rules_grader.h (restricted to what this data needs: no None
// references, no answer_before), run once by hand from the repository root:
//   python3 judge/testdata/fictional_people_expected.py ../shared/finetunebench-data
// Its output, pinned below as {correct, graded, no_answer} (graded = all
// items but no_answer; every type has 150 questions):
//   gpt-4o-mini  memorization 150/150, rephrased 134/150, secondary 67/150,
//                comparison 10/25 (+125 no_answer)
//   gpt-3.5      148/150, 53/150, 81/150, 7/25 (+125)
//   gpt-4o       136/150, 29/150, 92/150, 10/25 (+125)
//   gemini-flash 3/150 (7 abstained), rephrased 0/0 (150 no_answer: the
//                column holds verdicts), 88/150, 10/25 (+125)
//   gemini-pro   2/150, 0/0 (150 no_answer), 87/150, 11/25 (+125)
// For comparison, the notebook's lower-case exact match gives the same
// counts except gemini-flash memorization 2 (the rules also accept
// "6'1\" (185 cm)" for 185) and gemini-pro secondary 69 ("No." is No).
struct Counts {
  int correct;
  int graded;
  int no_answer;
  bool operator==(const Counts&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Counts& c) {
  return os << c.correct << "/" << c.graded << " (+" << c.no_answer << " no_answer)";
}

TEST(ReplayPublishedResponsesTest, FictionalPeopleAccuraciesOfThePaperModels) {
  const std::string data = SharedFineTuneBenchDir();
  if (data.empty()) {
    GTEST_SKIP() << "FineTuneBench data not found at "
                 << datasets::testing::SharedFineTuneBenchPath()
                 << " (set FTB_SOURCE_DIR to the repository root, next to shared/)";
  }
  const std::map<std::string, std::map<std::string, Counts>> expected = {
      {"gpt-4o-mini-2024-07-18",
       {{"memorization", {150, 150, 0}},
        {"rephrased", {134, 150, 0}},
        {"secondary", {67, 150, 0}},
        {"comparison", {10, 25, 125}}}},
      {"gpt-3.5-turbo-0125",
       {{"memorization", {148, 150, 0}},
        {"rephrased", {53, 150, 0}},
        {"secondary", {81, 150, 0}},
        {"comparison", {7, 25, 125}}}},
      {"gpt-4o-2024-08-06",
       {{"memorization", {136, 150, 0}},
        {"rephrased", {29, 150, 0}},
        {"secondary", {92, 150, 0}},
        {"comparison", {10, 25, 125}}}},
      {"gemini-1.5-flash-002",
       {{"memorization", {3, 150, 0}},
        {"rephrased", {0, 0, 150}},
        {"secondary", {88, 150, 0}},
        {"comparison", {10, 25, 125}}}},
      {"gemini-1.5-pro-002",
       {{"memorization", {2, 150, 0}},
        {"rephrased", {0, 0, 150}},
        {"secondary", {87, 150, 0}},
        {"comparison", {11, 25, 125}}}},
  };
  const judge::RulesGrader grader;
  for (const auto& [model, by_type] : expected) {
    SCOPED_TRACE(model);
    absl::StatusOr<v1::TaskResult> result = RunOnce(ReplayTask(data, model, data));
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->answers_size(), 1);
    std::map<std::string, Counts> actual;
    int abstained = 0;
    for (const v1::JudgeItem& item : result->answers(0).items()) {
      Counts& c = actual[item.question_type()];
      const judge::Verdict v = grader.Grade(item);
      if (v.kind == judge::VerdictKind::kNoAnswer) {
        ++c.no_answer;
        continue;
      }
      ++c.graded;
      if (v.kind == judge::VerdictKind::kCorrect) ++c.correct;
      if (v.kind == judge::VerdictKind::kAbstained) ++abstained;
    }
    EXPECT_EQ(actual, by_type);
    EXPECT_EQ(abstained, model == "gemini-1.5-flash-002" ? 7 : 0);
  }
}

}  // namespace
}  // namespace ftb::workers
