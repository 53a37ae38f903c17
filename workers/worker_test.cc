#include "workers/worker.h"

#include <signal.h>

#include <memory>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "workers/fake_coordinator_client.h"
#include "workers/test_backend.h"
#include "workers/testing_util.h"

namespace ftb::workers {
namespace {

using ::testing::HasSubstr;
using testing::MakeTestTask;
using testing::WaitUntil;

// A worker on its own thread against a FakeCoordinatorClient, with the
// "test" backend from a private registry so the test can watch it.
class WorkerHarness {
 public:
  explicit WorkerHarness(double lease_seconds = 0.15) {
    auto fake = std::make_unique<FakeCoordinatorClient>(lease_seconds);
    fake_ = fake.get();
    fake_owned_ = std::move(fake);
    absl::Status s = registry_.Register(
        "test", [this](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
          auto backend = std::make_unique<TestBackend>();
          backend_ = backend.get();
          return backend;
        });
    EXPECT_TRUE(s.ok()) << s;
    options_.worker_id = "w1";
    options_.backends = {"test"};
    options_.slots = 1;
    options_.registry = &registry_;
    options_.lease_wait = absl::Milliseconds(20);
    options_.lease_poll = absl::Milliseconds(10);
    options_.backoff_initial = absl::Milliseconds(5);
    options_.backoff_max = absl::Milliseconds(40);
    options_.rpc_deadline = absl::Seconds(1);
    options_.log = [this](std::string_view line) {
      absl::MutexLock lock(&log_mu_);
      log_.emplace_back(line);
    };
  }

  ~WorkerHarness() {
    if (thread_.joinable()) {
      worker_->Stop();
      worker_->Stop();
      thread_.join();
    }
  }

  WorkerOptions& options() { return options_; }
  FakeCoordinatorClient& fake() { return *fake_; }
  TestBackend& backend() { return *backend_; }
  Worker& worker() { return *worker_; }

  void Start() {
    auto worker = Worker::Create(options_, std::move(fake_owned_));
    ASSERT_TRUE(worker.ok()) << worker.status();
    worker_ = *std::move(worker);
    thread_ = std::thread([this] {
      status_ = worker_->Run();
      absl::MutexLock lock(&log_mu_);
      run_returned_ = true;
    });
  }

  // Waits for Run() to return; false after `timeout`.
  bool Join(absl::Duration timeout = absl::Seconds(5)) {
    bool done = WaitUntil([this] { return finished(); }, timeout);
    if (done) thread_.join();
    return done;
  }
  bool finished() {
    absl::MutexLock lock(&log_mu_);
    return run_returned_;
  }
  absl::Status status() const { return status_; }

  bool Logged(std::string_view needle) {
    absl::MutexLock lock(&log_mu_);
    for (const auto& line : log_) {
      if (line.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  FakeCoordinatorClient* fake_;
  std::unique_ptr<FakeCoordinatorClient> fake_owned_;
  BackendRegistry registry_;
  TestBackend* backend_ = nullptr;
  WorkerOptions options_;
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
  absl::Status status_;
  absl::Mutex log_mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(log_mu_);
  bool run_returned_ ABSL_GUARDED_BY(log_mu_) = false;
};

TEST(WorkerTest, LeasesRunsAndCompletesTasks) {
  WorkerHarness h;
  h.options().slots = 3;
  h.options().max_tasks = 10;
  for (int i = 0; i < 10; ++i) h.fake().AddTask(MakeTestTask(absl::StrCat("t", i)));
  h.Start();
  ASSERT_TRUE(h.Join());
  EXPECT_TRUE(h.status().ok()) << h.status();

  auto completions = h.fake().completions();
  ASSERT_EQ(completions.size(), 10u);
  for (const auto& c : completions) {
    EXPECT_EQ(c.outcome, v1::COMPLETION_OUTCOME_ACCEPTED);
    EXPECT_EQ(c.worker_id, "w1");
    EXPECT_EQ(c.attempt, 1u);
    EXPECT_EQ(c.result.digest(),
              TestBackend::ExpectedResult(MakeTestTask(c.task_id).tune()).digest());
  }
  EXPECT_EQ(h.backend().runs(), 10);
  WorkerStats stats = h.worker().stats();
  EXPECT_EQ(stats.leased, 10u);
  EXPECT_EQ(stats.completed, 10u);
  EXPECT_EQ(stats.registrations, 1u);
  EXPECT_EQ(stats.dropped, 0u);
}

TEST(WorkerTest, HeartbeatsWhileASlowTaskRuns) {
  WorkerHarness h(/*lease_seconds=*/0.06);  // heartbeat every 20 ms
  h.options().max_tasks = 1;
  h.fake().AddTask(MakeTestTask("slow", 300, 300));
  h.Start();
  ASSERT_TRUE(h.Join());
  ASSERT_EQ(h.fake().accepted(), 1);

  int beats = 0;
  for (const auto& hb : h.fake().heartbeats()) {
    ASSERT_EQ(hb.worker_id(), "w1");
    ASSERT_EQ(hb.tasks_size(), 1);
    EXPECT_EQ(hb.tasks(0).task_id(), "slow");
    EXPECT_EQ(hb.tasks(0).attempt(), 1u);
    ++beats;
  }
  EXPECT_GE(beats, 5);  // ~15 expected in 300 ms
  EXPECT_GE(h.worker().stats().heartbeats, 5u);
}

// Issue 17, finding 12: the worker registered while the coordinator named a
// 30 s lease (heartbeat every 10 s), then leases a task of a campaign with
// retry.lease_seconds 0.3. It must heartbeat within that lease, not every
// 10 s: before the fix no heartbeat at all was sent during the 1.2 s task, so
// a real coordinator would have expired the lease three times over.
TEST(WorkerTest, HeartbeatFollowsTheShortestLeaseHeld) {
  WorkerHarness h(/*lease_seconds=*/30);
  h.fake().SetTaskLeaseSeconds(0.3);
  h.options().max_tasks = 1;
  h.fake().AddTask(MakeTestTask("short-lease", 1200, 1200));
  const absl::Time start = absl::Now();
  h.Start();
  ASSERT_TRUE(h.Join());
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(h.fake().accepted(), 1);
  // A third of 0.3 s: ~12 beats in 1.2 s. At least one beat per lease
  // (0.3 s) is what keeps the lease; ask for that many.
  const int needed = static_cast<int>(took / absl::Milliseconds(300));
  EXPECT_GE(static_cast<int>(h.fake().heartbeats().size()), needed)
      << "task ran " << absl::FormatDuration(took) << " under a 0.3 s lease";
  EXPECT_GE(needed, 3);
}

TEST(WorkerTest, LostLeaseCancelsTheTaskAndItIsNotReported) {
  WorkerHarness h(/*lease_seconds=*/0.06);
  h.options().max_tasks = 1;
  h.fake().AddTask(MakeTestTask("t1", 10000, 10000));
  h.Start();
  ASSERT_TRUE(WaitUntil([&] { return h.backend().runs() == 1; }));
  h.fake().RevokeLease("t1");
  ASSERT_TRUE(h.Join(absl::Seconds(3)));  // far less than the 10 s sleep
  EXPECT_TRUE(h.fake().completions().empty());
  EXPECT_TRUE(h.fake().failures().empty());
  WorkerStats stats = h.worker().stats();
  EXPECT_EQ(stats.cancelled, 1u);
  EXPECT_EQ(stats.completed, 0u);
  EXPECT_TRUE(h.Logged("task t1 attempt 1: lease lost; cancelling it"));
}

TEST(WorkerTest, ResultIsKeptWhileCoordinatorIsDownAndReportedOnce) {
  WorkerHarness h;
  h.options().max_tasks = 1;
  h.fake().AddTask(MakeTestTask("t1", 50, 50));
  h.Start();
  ASSERT_TRUE(WaitUntil([&] { return h.fake().IsLeased("t1", 1); }));
  h.fake().SetDown(true);
  // The task finishes (50 ms) and its report fails for a while.
  ASSERT_TRUE(WaitUntil([&] { return h.fake().failed_calls() >= 4; }));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(h.finished());
  EXPECT_TRUE(h.fake().completions().empty());
  h.fake().SetDown(false);
  ASSERT_TRUE(h.Join());

  auto completions = h.fake().completions();
  ASSERT_EQ(completions.size(), 1u);  // exactly once
  EXPECT_EQ(completions[0].task_id, "t1");
  EXPECT_EQ(completions[0].outcome, v1::COMPLETION_OUTCOME_ACCEPTED);
  EXPECT_EQ(h.backend().runs(), 1);
  WorkerStats stats = h.worker().stats();
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_GE(stats.rpc_errors, 1u);
}

TEST(WorkerTest, RegistersAgainAfterFailedPreconditionFromLease) {
  WorkerHarness h;
  h.options().max_tasks = 1;
  h.Start();
  ASSERT_TRUE(WaitUntil([&] { return h.fake().lease_calls() >= 1; }));
  h.fake().ForgetWorkers();  // the coordinator restarted
  h.fake().AddTask(MakeTestTask("t1"));
  ASSERT_TRUE(h.Join());
  EXPECT_EQ(h.fake().register_calls(), 2);
  EXPECT_EQ(h.fake().accepted(), 1);
  EXPECT_EQ(h.worker().stats().registrations, 2u);
}

TEST(WorkerTest, RegistersAgainAfterFailedPreconditionFromHeartbeat) {
  // One slot, busy: the main loop does not lease, so only the heartbeat
  // thread can notice the restart.
  WorkerHarness h(/*lease_seconds=*/0.06);
  h.options().max_tasks = 1;
  h.fake().AddTask(MakeTestTask("t1", 300, 300));
  h.Start();
  ASSERT_TRUE(WaitUntil([&] { return h.backend().runs() == 1; }));
  h.fake().ForgetWorkers();
  ASSERT_TRUE(WaitUntil([&] { return h.fake().register_calls() == 2; }, absl::Milliseconds(250)));
  ASSERT_TRUE(h.Join());
  EXPECT_EQ(h.fake().accepted(), 1);
}

TEST(WorkerTest, RegistrationRetriesWhileCoordinatorIsUnavailable) {
  WorkerHarness h;
  h.options().max_tasks = 1;
  h.fake().FailNextCalls(3, absl::UnavailableError("starting"));
  h.fake().AddTask(MakeTestTask("t1"));
  h.Start();
  ASSERT_TRUE(h.Join());
  EXPECT_EQ(h.fake().accepted(), 1);
  EXPECT_EQ(h.worker().stats().rpc_errors, 3u);
}

TEST(WorkerTest, PermanentRegistrationErrorIsReturned) {
  WorkerHarness h;
  h.fake().FailNextCalls(1, absl::InvalidArgumentError("bad worker"));
  h.Start();
  ASSERT_TRUE(h.Join());
  EXPECT_EQ(h.status(), absl::InvalidArgumentError("bad worker"));
}

TEST(WorkerTest, StopDrainsRunningTasksAndLeasesNoMore) {
  WorkerHarness h;
  h.options().slots = 2;
  for (int i = 0; i < 4; ++i) {
    h.fake().AddTask(MakeTestTask(absl::StrCat("t", i), 200, 200));
  }
  h.Start();
  ASSERT_TRUE(WaitUntil([&] { return h.backend().runs() == 2; }));
  h.worker().Stop();
  ASSERT_TRUE(h.Join());
  EXPECT_TRUE(h.status().ok());
  EXPECT_EQ(h.fake().accepted(), 2);
  EXPECT_EQ(h.fake().queued(), 2);
  EXPECT_TRUE(h.fake().failures().empty());
  EXPECT_EQ(h.backend().runs(), 2);
}

TEST(WorkerTest, SecondStopHandsRunningTasksBack) {
  WorkerHarness h;
  h.fake().AddTask(MakeTestTask("t1", 10000, 10000));
  h.Start();
  ASSERT_TRUE(WaitUntil([&] { return h.backend().runs() == 1; }));
  h.worker().Stop();
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_FALSE(h.finished());  // draining: waits for the task
  h.worker().Stop();
  ASSERT_TRUE(h.Join(absl::Seconds(3)));
  auto failures = h.fake().failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].task_id(), "t1");
  EXPECT_EQ(failures[0].attempt(), 1u);
  EXPECT_TRUE(failures[0].retryable());
  EXPECT_THAT(failures[0].error(), HasSubstr("handed back"));
  EXPECT_TRUE(h.fake().completions().empty());
  EXPECT_EQ(h.worker().stats().handed_back, 1u);
}

TEST(WorkerTest, DrainTimeoutHandsRunningTasksBack) {
  WorkerHarness h;
  h.options().drain_timeout = absl::Milliseconds(50);
  h.fake().AddTask(MakeTestTask("t1", 10000, 10000));
  h.Start();
  ASSERT_TRUE(WaitUntil([&] { return h.backend().runs() == 1; }));
  h.worker().Stop();
  ASSERT_TRUE(h.Join(absl::Seconds(3)));
  ASSERT_EQ(h.fake().failures().size(), 1u);
  EXPECT_TRUE(h.fake().failures()[0].retryable());
  EXPECT_TRUE(h.Logged("drain timeout"));
}

TEST(WorkerTest, StopBeforeRunReturnsWithoutRegistering) {
  WorkerHarness h;
  auto worker = Worker::Create(h.options(), std::make_unique<FakeCoordinatorClient>());
  ASSERT_TRUE(worker.ok());
  (*worker)->Stop();
  EXPECT_TRUE((*worker)->Run().ok());
  EXPECT_EQ((*worker)->stats().registrations, 0u);
  EXPECT_EQ((*worker)->Run().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(WorkerTest, RetryableBackendErrorIsReportedAndRetried) {
  WorkerHarness h;
  h.options().max_tasks = 2;  // attempt 1 and attempt 2
  v1::TaskAssignment task = MakeTestTask("t1");
  (*task.mutable_tune()
        ->mutable_model()
        ->mutable_options()
        ->mutable_fields())["fail_first_attempts"]
      .set_number_value(1);
  h.fake().AddTask(task);
  h.Start();
  ASSERT_TRUE(h.Join());
  auto failures = h.fake().failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].attempt(), 1u);
  EXPECT_TRUE(failures[0].retryable());
  EXPECT_THAT(failures[0].error(), HasSubstr("injected failure of attempt 1"));
  auto completions = h.fake().completions();
  ASSERT_EQ(completions.size(), 1u);
  EXPECT_EQ(completions[0].attempt, 2u);
  EXPECT_EQ(completions[0].outcome, v1::COMPLETION_OUTCOME_ACCEPTED);
  WorkerStats stats = h.worker().stats();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.completed, 1u);
}

TEST(WorkerTest, InvalidTaskOptionsFailWithoutRetry) {
  WorkerHarness h;
  h.options().max_tasks = 1;
  h.fake().AddTask(MakeTestTask("t1", 9, 1));
  h.Start();
  ASSERT_TRUE(h.Join());
  auto failures = h.fake().failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_FALSE(failures[0].retryable());
  EXPECT_THAT(failures[0].error(), HasSubstr("INVALID_ARGUMENT"));
}

TEST(WorkerTest, TaskForAnUnknownBackendIsHandedBack) {
  WorkerHarness h;
  h.options().max_tasks = 1;
  v1::TaskAssignment task = MakeTestTask("t1");
  task.set_backend("vertex");
  h.fake().AddTask(task);
  h.Start();
  ASSERT_TRUE(h.Join());
  auto failures = h.fake().failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(failures[0].retryable());
  EXPECT_EQ(failures[0].error(), "worker w1 has no backend \"vertex\"");
}

TEST(WorkerTest, ReLeasedTaskIsNotRunTwice) {
  // The coordinator lost track of the lease (e.g. it expired during an
  // outage) and leases the task to this worker again while it still runs.
  WorkerHarness h;
  h.options().slots = 2;
  h.options().heartbeat_interval = absl::Seconds(30);  // no heartbeats
  h.fake().AddTask(MakeTestTask("t1", 300, 300));
  h.Start();
  ASSERT_TRUE(WaitUntil([&] { return h.backend().runs() == 1; }));
  h.fake().ExpireLease("t1");  // queued again as attempt 2
  ASSERT_TRUE(WaitUntil([&] { return h.fake().accepted() == 1; }));
  h.worker().Stop();
  ASSERT_TRUE(h.Join());
  auto completions = h.fake().completions();
  ASSERT_EQ(completions.size(), 1u);
  EXPECT_EQ(completions[0].attempt, 2u);
  EXPECT_EQ(h.backend().runs_of("t1"), 1);
  EXPECT_EQ(h.worker().stats().rebound, 1u);
}

TEST(WorkerTest, LeaseLostCompletionIsDropped) {
  // No heartbeats, so the worker learns of the lost lease only from the
  // completion outcome.
  WorkerHarness h;
  h.options().max_tasks = 1;
  h.options().heartbeat_interval = absl::Seconds(30);
  h.fake().AddTask(MakeTestTask("t1", 100, 100));
  h.Start();
  ASSERT_TRUE(WaitUntil([&] { return h.fake().IsLeased("t1", 1); }));
  h.fake().RevokeLease("t1");
  ASSERT_TRUE(h.Join());
  auto completions = h.fake().completions();
  ASSERT_EQ(completions.size(), 1u);
  EXPECT_EQ(completions[0].outcome, v1::COMPLETION_OUTCOME_LEASE_LOST);
  EXPECT_EQ(h.worker().stats().dropped, 1u);
  EXPECT_TRUE(h.Logged("result dropped: COMPLETION_OUTCOME_LEASE_LOST"));
}

TEST(WorkerTest, SigtermDrains) {
  WorkerHarness h;
  h.fake().AddTask(MakeTestTask("t1", 100, 100));
  h.Start();
  auto handlers = InstallSignalHandlers(&h.worker());
  ASSERT_TRUE(handlers.ok()) << handlers.status();
  EXPECT_EQ(InstallSignalHandlers(&h.worker()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(WaitUntil([&] { return h.backend().runs() == 1; }));
  ASSERT_EQ(raise(SIGTERM), 0);
  ASSERT_TRUE(h.Join());
  EXPECT_EQ(h.fake().accepted(), 1);  // drained, not handed back
  handlers->reset();
  // Handlers are gone: installing again works.
  auto again = InstallSignalHandlers(&h.worker());
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(WorkerCreateTest, ValidatesOptions) {
  WorkerOptions options;
  options.backends = {"test"};
  auto fake = [] { return std::make_unique<FakeCoordinatorClient>(); };

  auto no_address = Worker::Create(options);
  EXPECT_EQ(no_address.status().code(), absl::StatusCode::kInvalidArgument);

  options.slots = 0;
  EXPECT_EQ(Worker::Create(options, fake()).status().code(), absl::StatusCode::kInvalidArgument);
  options.slots = 1;

  options.backends = {"test", "nope"};
  auto unknown = Worker::Create(options, fake());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown backend \"nope\"; known backends: "));
  EXPECT_THAT(unknown.status().message(), HasSubstr("test"));

  options.backends = {"test"};
  auto ok = Worker::Create(options, fake());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT((*ok)->worker_id(), ::testing::MatchesRegex(".+:[0-9]+:[0-9a-f]{8}"));
}

TEST(ParseWorkerRoleTest, Names) {
  EXPECT_EQ(*ParseWorkerRole("tune"), v1::WORKER_ROLE_TUNE);
  EXPECT_EQ(*ParseWorkerRole("judge"), v1::WORKER_ROLE_JUDGE);
  EXPECT_EQ(ParseWorkerRole("train").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ftb::workers
