#include "workers/backend.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "workers/test_backend.h"

namespace ftb::workers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(BackendRegistryTest, UnknownNameListsKnownBackends) {
  BackendRegistry registry;
  ASSERT_TRUE(RegisterBuiltinBackends(registry).ok());
  ASSERT_TRUE(
      registry
          .Register("other",
                    [](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
                      return std::make_unique<TestBackend>();
                    })
          .ok());
  auto backend = registry.Create("nope");
  ASSERT_EQ(backend.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend.status().message(), "unknown backend \"nope\"; known backends: command, local, openai, other, replay, test, vertex");
  EXPECT_THAT(registry.Names(), ElementsAre("command", "local", "openai", "other", "replay", "test", "vertex"));
}

TEST(BackendRegistryTest, EmptyRegistrySaysNone) {
  BackendRegistry registry;
  auto backend = registry.Create("test");
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(backend.status().message(), HasSubstr("known backends: (none)"));
}

TEST(BackendRegistryTest, DuplicateAndInvalidRegistrations) {
  BackendRegistry registry;
  ASSERT_TRUE(RegisterTestBackend(registry).ok());
  absl::Status again = RegisterTestBackend(registry);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr("\"test\""));
  EXPECT_EQ(registry.Register("", nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Register("x", nullptr).code(), absl::StatusCode::kInvalidArgument);
}

TEST(BackendRegistryTest, FactoryErrorsAndNullArePropagated) {
  BackendRegistry registry;
  ASSERT_TRUE(
      registry
          .Register("broken",
                    [](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
                      return absl::FailedPreconditionError("no GPU");
                    })
          .ok());
  ASSERT_TRUE(
      registry
          .Register("null",
                    [](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
                      return std::unique_ptr<TuningBackend>();
                    })
          .ok());
  EXPECT_EQ(registry.Create("broken").status(), absl::FailedPreconditionError("no GPU"));
  EXPECT_EQ(registry.Create("null").status().code(), absl::StatusCode::kInternal);
}

TEST(BackendRegistryTest, GlobalHasBuiltins) {
  auto backend = CreateBackend("test");
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_NE(*backend, nullptr);
}

TEST(TaskContextTest, CancelEndsSleepAndIsIdempotent) {
  TaskContext ctx("t1", 2, nullptr);
  EXPECT_FALSE(ctx.cancelled());
  EXPECT_TRUE(ctx.SleepFor(absl::Milliseconds(1)));
  ctx.Cancel();
  ctx.Cancel();
  EXPECT_TRUE(ctx.cancelled());
  absl::Time start = absl::Now();
  EXPECT_FALSE(ctx.SleepFor(absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(TaskContextTest, LogAndProgress) {
  std::vector<std::string> lines;
  TaskContext ctx("t1", 2, [&](std::string_view line) { lines.emplace_back(line); });
  ctx.Log("hello");
  ctx.SetProgress(0.5, "epoch 1");
  EXPECT_THAT(lines, ElementsAre("task t1 attempt 2: hello"));
  EXPECT_DOUBLE_EQ(ctx.progress(), 0.5);
  EXPECT_EQ(ctx.progress_note(), "epoch 1");
}

TEST(IsRetryableBackendErrorTest, InputErrorsAreNotRetried) {
  EXPECT_FALSE(IsRetryableBackendError(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsRetryableBackendError(absl::FailedPreconditionError("")));
  EXPECT_FALSE(IsRetryableBackendError(absl::NotFoundError("")));
  EXPECT_TRUE(IsRetryableBackendError(absl::UnavailableError("")));
  EXPECT_TRUE(IsRetryableBackendError(absl::ResourceExhaustedError("")));
  EXPECT_TRUE(IsRetryableBackendError(absl::InternalError("")));
}

}  // namespace
}  // namespace ftb::workers
