#include "workers/backend.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/testing/status_matchers.h"
#include "workers/command_backend.h"
#include "workers/local_backend.h"
#include "workers/openai_backend.h"
#include "workers/replay_backend.h"
#include "workers/test_backend.h"
#include "workers/vertex_backend.h"

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

// Each built-in name, in the process-wide registry, creates that backend and
// not another one (a missing registration or two names swapped fails here).
template <typename Backend>
void ExpectGlobalCreates(const char* name) {
  SCOPED_TRACE(name);
  auto backend = BackendRegistry::Global().Create(name);
  ASSERT_TRUE(backend.ok()) << backend.status();
  ASSERT_NE(*backend, nullptr);
  EXPECT_NE(dynamic_cast<Backend*>(backend->get()), nullptr)
      << "\"" << name << "\" created some other backend";
}

TEST(BackendRegistryTest, GlobalCreatesEachBuiltinByName) {
  ExpectGlobalCreates<CommandBackend>("command");
  ExpectGlobalCreates<LocalBackend>("local");
  ExpectGlobalCreates<OpenAiBackend>("openai");
  ExpectGlobalCreates<ReplayBackend>("replay");
  ExpectGlobalCreates<TestBackend>("test");
  ExpectGlobalCreates<VertexBackend>("vertex");
  EXPECT_THAT(BackendRegistry::Global().Names(),
              ElementsAre("command", "local", "openai", "replay", "test", "vertex"));
  EXPECT_THAT(BackendRegistry::Global().Create("nope"),
              ::ftb::testing::StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"nope\"")));
}

// Every built-in backend checks its model options before run time (what
// `ftb plan` consults): an unknown key is refused, a valid set passes.
TEST(BackendRegistryTest, EachBuiltinValidatesItsModelOptions) {
  auto options = [](std::initializer_list<std::pair<const char*, const char*>> kv) {
    google::protobuf::Struct s;
    for (const auto& [k, v] : kv) (*s.mutable_fields())[k].set_string_value(v);
    return s;
  };
  const BackendRegistry& r = BackendRegistry::Global();
  for (const char* name : {"command", "local", "openai", "replay", "test", "vertex"}) {
    EXPECT_THAT(r.ValidateOptions(name, options({{"no_such_option", "1"}})),
                ::ftb::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("no_such_option")))
        << name;
  }
  EXPECT_TRUE(r.ValidateOptions("local", options({{"layers", "2"}})).ok());
  EXPECT_TRUE(r.ValidateOptions("command", options({{"train", "t"}, {"answer", "a"}})).ok());
  EXPECT_TRUE(r.ValidateOptions("replay", options({{"responses_path", "/x"}})).ok());
  EXPECT_TRUE(r.ValidateOptions("test", options({{"sleep_ms_min", "1"}})).ok());
  EXPECT_THAT(r.ValidateOptions("nope", {}),
              ::ftb::testing::StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"nope\"")));
}

TEST(BackendRegistryTest, ValidatorIsOptional) {
  BackendRegistry r;
  auto factory = [](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
    return std::make_unique<TestBackend>();
  };
  ASSERT_TRUE(r.Register("plain", factory).ok());
  ASSERT_TRUE(r.Register("checked", factory, [](const google::protobuf::Struct& s) {
                 return s.fields().empty() ? absl::OkStatus()
                                           : absl::InvalidArgumentError("no options");
               }).ok());
  google::protobuf::Struct one;
  (*one.mutable_fields())["k"].set_bool_value(true);
  EXPECT_TRUE(r.ValidateOptions("plain", one).ok());
  EXPECT_TRUE(r.ValidateOptions("checked", {}).ok());
  EXPECT_EQ(r.ValidateOptions("checked", one).code(), absl::StatusCode::kInvalidArgument);
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
