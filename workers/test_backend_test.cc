#include "workers/test_backend.h"

#include <thread>

#include "gtest/gtest.h"
#include "workers/testing_util.h"

namespace ftb::workers {
namespace {

using testing::MakeTestTask;

absl::StatusOr<v1::TaskResult> RunOnce(TestBackend& backend, const v1::TaskAssignment& task) {
  TaskContext ctx(task.task_id(), task.attempt(), nullptr);
  return backend.Run(task, ctx);
}

TEST(TestBackendTest, DigestIsDeterministicAndIgnoresAttemptAndTiming) {
  TestBackend backend;
  v1::TaskAssignment a = MakeTestTask("t1", 0, 0);
  v1::TaskAssignment b = MakeTestTask("t1", 2, 3);
  b.set_attempt(3);
  auto ra = RunOnce(backend, a);
  auto rb = RunOnce(backend, b);
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(ra->digest(), rb->digest());
  ASSERT_EQ(ra->digest().size(), 64u);
  EXPECT_EQ(ra->digest().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(ra->tokens(), rb->tokens());
  EXPECT_EQ(ra->tokens(), 1000u * (1 + 2 + 4) + 100u * 3);
  EXPECT_EQ(ra->cost_usd(), 0);
  EXPECT_EQ(ra->answers_size(), 0);
  // Pinned, computed outside ftb (Python hashlib): SHA-256 over the fields
  // "ftb.workers.test_backend.v1", "tiny-model", "3", "t1-cell-1",
  // "t1-cell-2", "t1-cell-4", "3", "1", "2", "4", each preceded by its length
  // as 8 little-endian bytes (Sha256::UpdateField). A digest that changed
  // silently would make stored results of earlier runs look different.
  EXPECT_EQ(ra->digest(), "9c8e57ef0574ae6b58cfb5334a1aa099795b6eddec830cb968fca6203c9a2958");
  EXPECT_EQ(backend.runs(), 2);
  EXPECT_EQ(backend.runs_of("t1"), 2);
}

TEST(TestBackendTest, RunReturnsTheOptionalAnswersAndPricePerCell) {
  TestBackend backend;
  v1::TaskAssignment task = MakeTestTask("t2", 0, 0);
  auto& fields = *task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields();
  fields["answers_per_cell"].set_number_value(3);
  fields["cost_usd_per_task"].set_number_value(0.25);
  auto r = RunOnce(backend, task);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cost_usd(), 0.25);
  EXPECT_EQ(r->tokens(), 1000u * (1 + 2 + 4) + 100u * 3);
  ASSERT_EQ(r->answers_size(), 3);
  const char* cells[] = {"t2-cell-1", "t2-cell-2", "t2-cell-4"};
  for (int c = 0; c < 3; ++c) {
    const v1::CellAnswers& cell = r->answers(c);
    EXPECT_EQ(cell.cell_id(), cells[c]);
    ASSERT_EQ(cell.items_size(), 3) << cells[c];
    for (int i = 0; i < 3; ++i) {
      const v1::JudgeItem& item = cell.items(i);
      EXPECT_EQ(item.cell_id(), cells[c]);
      EXPECT_EQ(item.question_id(), "q" + std::to_string(i));
      EXPECT_EQ(item.reference(), std::to_string(100 + i));
      // Even questions are answered right, odd ones wrong.
      EXPECT_EQ(item.answer() == item.reference(), i % 2 == 0) << cells[c] << " q" << i;
    }
  }
}

TEST(TestBackendTest, DigestDependsOnModelCellsAndEpochs) {
  v1::TuneWork base = MakeTestTask("t1").tune();
  std::string digest = TestBackend::ExpectedResult(base).digest();

  v1::TuneWork model = base;
  model.mutable_model()->set_name("other-model");
  v1::TuneWork epochs = base;
  epochs.set_epochs(2, 5);
  v1::TuneWork cells = base;
  cells.set_cell_ids(0, "x");
  for (const auto& w : {model, epochs, cells}) {
    EXPECT_NE(TestBackend::ExpectedResult(w).digest(), digest);
  }
}

TEST(TestBackendTest, FailFirstAttemptsIsRetryable) {
  TestBackend backend;
  v1::TaskAssignment task = MakeTestTask("t1", 0, 0);
  (*task.mutable_tune()
        ->mutable_model()
        ->mutable_options()
        ->mutable_fields())["fail_first_attempts"]
      .set_string_value("2");
  for (uint32_t attempt : {1u, 2u}) {
    task.set_attempt(attempt);
    auto result = RunOnce(backend, task);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(IsRetryableBackendError(result.status()));
  }
  task.set_attempt(3);
  EXPECT_TRUE(RunOnce(backend, task).ok());
}

TEST(TestBackendTest, BadOptionsAreInvalidArgumentNamingTheField) {
  TestBackend backend;
  v1::TaskAssignment task = MakeTestTask("t1", 5, 1);
  auto result = RunOnce(backend, task);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("sleep_ms_min"), std::string::npos);

  task = MakeTestTask("t1", 0, 0);
  (*task.mutable_tune()->mutable_model()->mutable_options()->mutable_fields())["sleep_ms_max"]
      .set_number_value(-1);
  result = RunOnce(backend, task);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("model.options.sleep_ms_max"), std::string::npos);
}

TEST(TestBackendTest, DefaultsSleepAFewMilliseconds) {
  TestBackend backend;
  v1::TaskAssignment task = MakeTestTask("t1");
  task.mutable_tune()->mutable_model()->clear_options();
  absl::Time start = absl::Now();
  ASSERT_TRUE(RunOnce(backend, task).ok());
  absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(1));
  EXPECT_LT(took, absl::Seconds(1));
}

TEST(TestBackendTest, CancellationEndsTheSleep) {
  TestBackend backend;
  v1::TaskAssignment task = MakeTestTask("t1", 10000, 10000);
  TaskContext ctx("t1", 1, nullptr);
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(20));
    ctx.Cancel();
  });
  absl::Time start = absl::Now();
  auto result = backend.Run(task, ctx);
  canceller.join();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace ftb::workers
