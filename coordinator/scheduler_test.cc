#include "coordinator/scheduler.h"

#include <map>

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/memory_state_store.h"

namespace ftb::coordinator {
namespace {

using ::testing::ElementsAre;

constexpr int64_t kLeaseMs = 10'000;

v1::CampaignSpec Spec(int epochs_values = 1, int seeds = 3) {
  v1::CampaignSpec spec;
  spec.set_name("t");
  auto* d = spec.add_datasets();
  d->set_name("people");
  d->set_source(v1::DATASET_SOURCE_BUILTIN);
  auto* m = spec.add_models();
  m->set_name("fixture");
  m->set_backend("test");
  for (int e = 1; e <= epochs_values; ++e) spec.mutable_grid()->add_epochs(e);
  spec.mutable_grid()->add_learning_rate_multiplier(1);
  spec.mutable_grid()->add_batch_size(1);
  for (int s = 0; s < seeds; ++s) spec.mutable_grid()->add_seed(s);
  auto* r = spec.mutable_retry();
  r->set_max_attempts(3);
  r->set_initial_backoff_seconds(1);
  r->set_max_backoff_seconds(8);
  r->set_backoff_multiplier(2);
  r->set_jitter(0);
  r->set_lease_seconds(kLeaseMs / 1000.0);
  spec.mutable_judge()->set_batch_size(2);
  return spec;
}

std::vector<DatasetSummary> Summaries() { return {DatasetSummary{"people", "f00d", 6, 12, {}}}; }

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() { Restart(); }

  // A fresh scheduler over the same store: what a coordinator restart sees.
  void Restart() {
    scheduler_ = std::make_unique<Scheduler>(&store_, &clock_, &ids_);
    ASSERT_TRUE(scheduler_->Recover().ok());
  }

  void Register(const std::string& worker, v1::WorkerRole role = v1::WORKER_ROLE_TUNE,
                std::vector<std::string> backends = {"test"}) {
    v1::RegisterWorkerRequest r;
    r.set_worker_id(worker);
    r.set_role(role);
    for (auto& b : backends) r.add_backends(b);
    r.set_slots(1);
    scheduler_->RegisterWorker(r);
  }

  std::string Submit(const v1::CampaignSpec& spec) {
    absl::StatusOr<SubmitResult> r = scheduler_->Submit(spec, Summaries(), "", "");
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(scheduler_->Commit().ok());
    return r->campaign_id;
  }

  std::vector<v1::TaskAssignment> Lease(const std::string& worker, uint32_t max = 10) {
    v1::LeaseTasksRequest r;
    r.set_worker_id(worker);
    r.set_max_tasks(max);
    absl::StatusOr<v1::LeaseTasksResponse> resp = scheduler_->Lease(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    EXPECT_TRUE(scheduler_->Commit().ok());
    for (const auto& t : resp->tasks()) holder_[{t.task_id(), t.attempt()}] = worker;
    return {resp->tasks().begin(), resp->tasks().end()};
  }

  // A JUDGE result with one "correct" verdict per item.
  static v1::TaskResult VerdictsFor(const v1::TaskAssignment& a) {
    v1::TaskResult result;
    for (const v1::JudgeItem& item : a.judge().items()) {
      v1::Verdict* v = result.add_verdicts();
      v->set_cell_id(item.cell_id());
      v->set_question_type(item.question_type());
      v->set_question_id(item.question_id());
      v->set_verdict("correct");
    }
    return result;
  }

  // The worker an assignment was leased to (reports come from it).
  std::string HolderOf(const v1::TaskAssignment& a) {
    auto it = holder_.find({a.task_id(), a.attempt()});
    return it == holder_.end() ? "w" : it->second;
  }

  v1::CompletionOutcome Complete(const v1::TaskAssignment& a, uint32_t attempt = 0,
                                 v1::TaskResult result = {}) {
    v1::CompleteTasksRequest r;
    r.set_worker_id(HolderOf(a));
    auto* c = r.add_completions();
    c->set_task_id(a.task_id());
    c->set_attempt(attempt ? attempt : a.attempt());
    c->set_lease_token(a.lease_token());
    result.set_digest("d-" + a.task_id());
    *c->mutable_result() = result;
    absl::StatusOr<v1::CompleteTasksResponse> resp = scheduler_->Complete(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    EXPECT_TRUE(scheduler_->Commit().ok());
    return resp->outcomes(0);
  }

  v1::FailTaskResponse Fail(const v1::TaskAssignment& a, bool retryable = true) {
    v1::FailTaskRequest r;
    r.set_worker_id(HolderOf(a));
    r.set_task_id(a.task_id());
    r.set_attempt(a.attempt());
    r.set_lease_token(a.lease_token());
    r.set_error("boom " + std::to_string(a.attempt()));
    r.set_retryable(retryable);
    absl::StatusOr<v1::FailTaskResponse> resp = scheduler_->Fail(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    EXPECT_TRUE(scheduler_->Commit().ok());
    return *resp;
  }

  v1::CampaignProgress Progress(const std::string& id) {
    absl::StatusOr<v1::GetCampaignResponse> r = scheduler_->Get(id);
    EXPECT_TRUE(r.ok()) << r.status();
    return r->progress();
  }

  int64_t HeartbeatDeadline(const std::string& worker, const v1::TaskAssignment& a) {
    v1::HeartbeatRequest r;
    r.set_worker_id(worker);
    auto* t = r.add_tasks();
    t->set_task_id(a.task_id());
    t->set_attempt(a.attempt());
    t->set_lease_token(a.lease_token());
    absl::StatusOr<v1::HeartbeatResponse> resp = scheduler_->Heartbeat(r);
    EXPECT_TRUE(resp.ok());
    return resp->lease_deadline_ms(0);
  }

  storage::MemoryStateStore store_;
  FakeClock clock_;
  SequentialIdSource ids_;
  std::unique_ptr<Scheduler> scheduler_;
  std::map<std::pair<std::string, uint32_t>, std::string> holder_;
};

TEST_F(SchedulerTest, LeasesCompletesAndFinishes) {
  std::string id = Submit(Spec(/*epochs_values=*/2, /*seeds=*/3));
  Register("w");
  std::vector<v1::TaskAssignment> tasks = Lease("w");
  ASSERT_EQ(tasks.size(), 3u);  // 3 training runs, each serving 2 epoch cells
  EXPECT_EQ(tasks[0].kind(), v1::TASK_KIND_TUNE);
  EXPECT_EQ(tasks[0].attempt(), 1u);
  EXPECT_THAT(tasks[0].tune().epochs(), ElementsAre(1, 2));
  EXPECT_EQ(tasks[0].tune().cell_ids_size(), 2);
  EXPECT_EQ(tasks[0].lease_deadline_ms(), clock_.NowMs() + kLeaseMs);
  EXPECT_EQ(Progress(id).tasks_leased(), 3u);
  for (const auto& t : tasks) EXPECT_EQ(Complete(t), v1::COMPLETION_OUTCOME_ACCEPTED);
  v1::CampaignProgress p = Progress(id);
  EXPECT_EQ(p.state(), v1::CAMPAIGN_STATE_SUCCEEDED);
  EXPECT_EQ(p.cells_done(), 6u);
  EXPECT_EQ(p.tasks_done(), 3u);
  EXPECT_EQ(p.attempts(), 3u);
  EXPECT_TRUE(Lease("w").empty());
}

TEST_F(SchedulerTest, DuplicateCompletionIsNotCountedTwice) {
  std::string id = Submit(Spec(1, 2));
  Register("w");
  auto tasks = Lease("w", 1);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(Complete(tasks[0]), v1::COMPLETION_OUTCOME_ACCEPTED);
  EXPECT_EQ(Complete(tasks[0]), v1::COMPLETION_OUTCOME_DUPLICATE);
  EXPECT_EQ(Progress(id).tasks_done(), 1u);
  EXPECT_EQ(Progress(id).cells_done(), 1u);
}

TEST_F(SchedulerTest, ExpiredLeaseIsRequeuedAndLateReportRefused) {
  std::string id = Submit(Spec(1, 1));
  Register("a");
  Register("b");
  auto first = Lease("a");
  ASSERT_EQ(first.size(), 1u);
  clock_.AdvanceMs(kLeaseMs + 1);  // a stops heartbeating
  // Expired: back to pending with a 1 s backoff (attempt 1, jitter 0).
  EXPECT_TRUE(Lease("b").empty());
  EXPECT_EQ(Progress(id).tasks_pending(), 1u);
  clock_.AdvanceMs(1000);
  auto second = Lease("b");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].task_id(), first[0].task_id());
  EXPECT_EQ(second[0].attempt(), 2u);
  EXPECT_EQ(HeartbeatDeadline("a", first[0]), 0);  // a lost it
  EXPECT_EQ(Complete(first[0]), v1::COMPLETION_OUTCOME_LEASE_LOST);
  EXPECT_EQ(Complete(second[0]), v1::COMPLETION_OUTCOME_ACCEPTED);
  EXPECT_EQ(Complete(first[0]), v1::COMPLETION_OUTCOME_LEASE_LOST);
  v1::CampaignProgress p = Progress(id);
  EXPECT_EQ(p.tasks_done(), 1u);
  EXPECT_EQ(p.attempts(), 2u);
  EXPECT_EQ(p.state(), v1::CAMPAIGN_STATE_SUCCEEDED);
}

TEST_F(SchedulerTest, LateReportOfExpiredLeaseIsAcceptedWhileNobodyElseHasIt) {
  std::string id = Submit(Spec(1, 1));
  Register("a");
  auto first = Lease("a");
  clock_.AdvanceMs(kLeaseMs + 1);
  scheduler_->Tick();
  EXPECT_EQ(Progress(id).tasks_pending(), 1u);
  // The work is finished; running it again would pay twice.
  EXPECT_EQ(Complete(first[0]), v1::COMPLETION_OUTCOME_ACCEPTED);
  EXPECT_EQ(Progress(id).state(), v1::CAMPAIGN_STATE_SUCCEEDED);
  clock_.AdvanceMs(5000);
  EXPECT_TRUE(Lease("a").empty());  // the stale queue entry is skipped
}

TEST_F(SchedulerTest, HeartbeatsExtendTheLease) {
  std::string id = Submit(Spec(1, 1));
  Register("a");
  auto tasks = Lease("a");
  for (int i = 0; i < 5; ++i) {
    clock_.AdvanceMs(kLeaseMs / 2);
    EXPECT_EQ(HeartbeatDeadline("a", tasks[0]), clock_.NowMs() + kLeaseMs);
    scheduler_->Tick();
  }
  EXPECT_EQ(Progress(id).tasks_leased(), 1u);
  EXPECT_EQ(HeartbeatDeadline("b", tasks[0]), 0);  // not b's lease
  clock_.AdvanceMs(kLeaseMs + 1);
  scheduler_->Tick();
  EXPECT_EQ(Progress(id).tasks_leased(), 0u);
}

TEST_F(SchedulerTest, RetriesWithExponentialBackoffThenFailsKeepingTheError) {
  std::string id = Submit(Spec(1, 1));
  Register("w");
  auto t = Lease("w");
  EXPECT_TRUE(Fail(t[0]).will_retry());
  clock_.AdvanceMs(999);
  EXPECT_TRUE(Lease("w").empty());  // backoff 1 s
  clock_.AdvanceMs(1);
  t = Lease("w");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].attempt(), 2u);
  EXPECT_TRUE(Fail(t[0]).will_retry());
  clock_.AdvanceMs(1999);
  EXPECT_TRUE(Lease("w").empty());  // backoff 2 s
  clock_.AdvanceMs(1);
  t = Lease("w");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].attempt(), 3u);
  EXPECT_FALSE(Fail(t[0]).will_retry());  // max_attempts 3
  v1::CampaignProgress p = Progress(id);
  EXPECT_EQ(p.tasks_failed(), 1u);
  EXPECT_EQ(p.cells_failed(), 1u);
  EXPECT_EQ(p.state(), v1::CAMPAIGN_STATE_FAILED);
  // The last error is kept in the task record.
  std::string raw = *store_.Get(keys::TaskRecord(id, 0));
  v1::TaskRecord record;
  ASSERT_TRUE(record.ParseFromString(raw));
  EXPECT_EQ(record.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(record.last_error(), "boom 3");
}

TEST_F(SchedulerTest, JitterSpreadsBackoffWithinBounds) {
  v1::CampaignSpec spec = Spec(1, 40);
  spec.mutable_retry()->set_jitter(0.5);
  spec.mutable_retry()->set_initial_backoff_seconds(10);
  spec.mutable_retry()->set_max_backoff_seconds(60);
  std::string id = Submit(spec);
  Register("w");
  auto tasks = Lease("w", 40);
  ASSERT_EQ(tasks.size(), 40u);
  for (const auto& t : tasks) Fail(t);
  // Each backoff is 10 s +- 50%: nothing before 5 s, everything by 15 s, and
  // not all at once.
  clock_.AdvanceMs(4999);
  EXPECT_TRUE(Lease("w", 40).empty());
  clock_.AdvanceMs(5001);
  size_t by_10s = Lease("w", 40).size();
  EXPECT_GT(by_10s, 0u);
  EXPECT_LT(by_10s, 40u);
  clock_.AdvanceMs(5000);
  EXPECT_EQ(by_10s + Lease("w", 40).size(), 40u);
}

TEST_F(SchedulerTest, NonRetryableFailureFailsAtOnce) {
  std::string id = Submit(Spec(1, 1));
  Register("w");
  auto t = Lease("w");
  EXPECT_FALSE(Fail(t[0], /*retryable=*/false).will_retry());
  EXPECT_EQ(Progress(id).tasks_failed(), 1u);
}

TEST_F(SchedulerTest, CancellationStopsLeasingAndRefusesRunningReports) {
  std::string id = Submit(Spec(1, 4));
  Register("w");
  auto running = Lease("w", 1);
  absl::StatusOr<v1::CampaignProgress> p = scheduler_->Cancel(id);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(scheduler_->Commit().ok());
  EXPECT_EQ(p->state(), v1::CAMPAIGN_STATE_CANCELLED);
  EXPECT_EQ(p->tasks_pending(), 0u);
  EXPECT_TRUE(Lease("w").empty());
  EXPECT_EQ(HeartbeatDeadline("w", running[0]), 0);
  EXPECT_EQ(Complete(running[0]), v1::COMPLETION_OUTCOME_LEASE_LOST);
  // Survives a restart.
  Restart();
  Register("w");
  EXPECT_EQ(Progress(id).state(), v1::CAMPAIGN_STATE_CANCELLED);
  EXPECT_TRUE(Lease("w").empty());
  EXPECT_EQ(scheduler_->Cancel("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, PerBackendConcurrencyLimitIsEnforcedAtLeaseTime) {
  v1::CampaignSpec spec = Spec(1, 6);
  (*spec.mutable_limits())["test"].set_max_concurrent_tune(2);
  std::string id = Submit(spec);
  Register("a");
  Register("b");
  auto a = Lease("a", 10);
  EXPECT_EQ(a.size(), 2u);
  EXPECT_TRUE(Lease("b", 10).empty());
  Complete(a[0]);
  auto b = Lease("b", 10);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(Progress(id).tasks_leased(), 2u);
}

TEST_F(SchedulerTest, PerMinuteLimitsAreSharedAmongTheWorkersOfferingTheBackend) {
  v1::CampaignSpec spec = Spec(1, 6);
  (*spec.mutable_limits())["test"].set_requests_per_minute(600);
  (*spec.mutable_limits())["test"].set_tokens_per_minute(90000);
  Submit(spec);
  Register("a");
  Register("b");
  Register("c");
  Register("judge", v1::WORKER_ROLE_JUDGE, {"test"});  // other role: not counted
  Register("other", v1::WORKER_ROLE_TUNE, {"local"});  // other backend: not counted
  auto leased = Lease("a", 1);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_DOUBLE_EQ(leased[0].requests_per_minute(), 200);
  EXPECT_DOUBLE_EQ(leased[0].tokens_per_minute(), 30000);
  // Workers not seen for 5 minutes no longer count.
  clock_.AdvanceMs(6 * 60 * 1000);
  leased = Lease("b", 1);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_DOUBLE_EQ(leased[0].requests_per_minute(), 600);
  // Without limits in the spec, no share is sent.
  Submit(Spec(1, 1));
}

TEST_F(SchedulerTest, RejectsBadRequestsWithSpecificCodes) {
  Submit(Spec(1, 1));
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("stranger");
  lease.set_max_tasks(1);
  EXPECT_EQ(scheduler_->Lease(lease).status().code(), absl::StatusCode::kFailedPrecondition);
  Register("w");
  lease.set_worker_id("w");
  lease.set_max_tasks(0);
  EXPECT_EQ(scheduler_->Lease(lease).status().code(), absl::StatusCode::kInvalidArgument);
  v1::CompleteTasksRequest complete;
  complete.add_completions()->set_task_id("no-slash");
  absl::Status s = scheduler_->Complete(complete).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "task_id: expected <campaign>/<index>, got \"no-slash\"");
  complete.mutable_completions(0)->set_task_id("c999/0");
  absl::StatusOr<v1::CompleteTasksResponse> r = scheduler_->Complete(complete);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcomes(0), v1::COMPLETION_OUTCOME_UNKNOWN_TASK);
}

TEST_F(SchedulerTest, AnswersForForeignCellsAreRejectedAndChangeNothing) {
  std::string id = Submit(Spec(1, 2));
  Register("w");
  auto t = Lease("w", 1);
  v1::TaskResult bad;
  bad.add_answers()->set_cell_id("not-a-cell-of-this-task");
  v1::CompleteTasksRequest r;
  r.set_worker_id("w");
  auto* c = r.add_completions();
  c->set_task_id(t[0].task_id());
  c->set_attempt(1);
  c->set_lease_token(t[0].lease_token());
  *c->mutable_result() = bad;
  EXPECT_EQ(scheduler_->Complete(r).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Progress(id).tasks_leased(), 1u);
  EXPECT_EQ(Progress(id).tasks_done(), 0u);
}

TEST_F(SchedulerTest, RecoversEverythingCommittedAndNothingElse) {
  std::string id = Submit(Spec(2, 5));  // 5 runs, 10 cells
  Register("w");
  auto tasks = Lease("w", 3);
  Complete(tasks[0]);
  Fail(tasks[1]);
  // tasks[2] stays leased. An uncommitted change is lost by the "crash":
  v1::TaskAssignment extra = [&] {
    v1::LeaseTasksRequest r;
    r.set_worker_id("w");
    r.set_max_tasks(1);
    return scheduler_->Lease(r)->tasks(0);
  }();
  (void)extra;  // never committed
  v1::CampaignProgress before = Progress(id);
  Restart();
  v1::CampaignProgress after = Progress(id);
  EXPECT_EQ(after.tasks_done(), 1u);
  EXPECT_EQ(after.cells_done(), 2u);
  EXPECT_EQ(after.tasks_leased(), 1u);
  EXPECT_EQ(after.tasks_pending(), 3u);  // 2 never leased (incl. the lost one) + 1 retrying
  EXPECT_EQ(after.attempts(), before.attempts() - 1);
  // The surviving lease still belongs to its worker, which can finish it
  // without re-registering...
  EXPECT_EQ(Complete(tasks[2]), v1::COMPLETION_OUTCOME_ACCEPTED);
  // ...but leasing needs registration again.
  v1::LeaseTasksRequest r;
  r.set_worker_id("w");
  r.set_max_tasks(10);
  EXPECT_EQ(scheduler_->Lease(r).status().code(), absl::StatusCode::kFailedPrecondition);
  Register("w");
  clock_.AdvanceMs(2000);
  auto rest = Lease("w", 10);
  EXPECT_EQ(rest.size(), 3u);
  for (const auto& t : rest) Complete(t);
  EXPECT_EQ(Progress(id).state(), v1::CAMPAIGN_STATE_SUCCEEDED);
  EXPECT_EQ(Progress(id).cells_done(), 10u);
  Restart();
  EXPECT_EQ(Progress(id).state(), v1::CAMPAIGN_STATE_SUCCEEDED);
  EXPECT_EQ(Progress(id).cells_done(), 10u);
}

TEST_F(SchedulerTest, IntentsAreDurableAndHandedToLaterAttempts) {
  std::string id = Submit(Spec(1, 1));
  Register("w");
  auto first = Lease("w");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].intents_size(), 0);
  auto record = [&](const std::string& kind, const std::string& provider_id) {
    v1::RecordTaskIntentRequest r;
    r.set_worker_id("w");
    r.set_task_id(first[0].task_id());
    r.set_attempt(first[0].attempt());
    r.set_lease_token(first[0].lease_token());
    r.mutable_intent()->set_kind(kind);
    r.mutable_intent()->set_tag("ftb-tag");
    r.mutable_intent()->set_provider_id(provider_id);
    absl::StatusOr<v1::RecordTaskIntentResponse> resp = scheduler_->RecordIntent(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    EXPECT_TRUE(scheduler_->Commit().ok());
    return resp.ok() ? *resp : v1::RecordTaskIntentResponse();
  };
  EXPECT_EQ(record("job", "").outcome(), v1::COMPLETION_OUTCOME_ACCEPTED);
  EXPECT_FALSE(record("job", "ftjob-1").campaign_cancelled());
  // The coordinator restarts; the lease expires; the next attempt gets both.
  Restart();
  Register("w");
  clock_.AdvanceMs(kLeaseMs + 1);
  scheduler_->Tick();
  clock_.AdvanceMs(2000);
  auto second = Lease("w");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempt(), 2u);
  ASSERT_EQ(second[0].intents_size(), 2);
  EXPECT_EQ(second[0].intents(1).provider_id(), "ftjob-1");
  EXPECT_EQ(second[0].intents(1).attempt(), 1u);
  // Unknown tasks and malformed intents.
  v1::RecordTaskIntentRequest bad;
  bad.set_task_id(id + "/99");
  bad.mutable_intent()->set_kind("job");
  bad.mutable_intent()->set_tag("t");
  EXPECT_EQ(scheduler_->RecordIntent(bad)->outcome(), v1::COMPLETION_OUTCOME_UNKNOWN_TASK);
  bad.mutable_intent()->clear_tag();
  EXPECT_EQ(scheduler_->RecordIntent(bad).status().code(), absl::StatusCode::kInvalidArgument);
  // A cancelled campaign says so, so the worker cancels the provider job.
  ASSERT_TRUE(scheduler_->Cancel(id).ok());
  ASSERT_TRUE(scheduler_->Commit().ok());
  first[0] = second[0];
  EXPECT_TRUE(record("cancel", "").campaign_cancelled());
}

TEST_F(SchedulerTest, ProviderPauseStopsLeasingUntilResumed) {
  std::string id = Submit(Spec(1, 3));
  Register("w");
  auto t = Lease("w", 1);
  v1::FailTaskRequest r;
  r.set_worker_id("w");
  r.set_task_id(t[0].task_id());
  r.set_attempt(t[0].attempt());
  r.set_lease_token(t[0].lease_token());
  r.set_error("HTTP 429 insufficient_quota");
  r.set_retryable(true);
  r.set_pause_campaign(true);
  absl::StatusOr<v1::FailTaskResponse> resp = scheduler_->Fail(r);
  ASSERT_TRUE(resp.ok());
  ASSERT_TRUE(scheduler_->Commit().ok());
  EXPECT_TRUE(resp->will_retry());
  v1::CampaignProgress p = Progress(id);
  EXPECT_EQ(p.state(), v1::CAMPAIGN_STATE_PAUSED_PROVIDER);
  EXPECT_THAT(p.status_message(), ::testing::HasSubstr("insufficient_quota"));
  clock_.AdvanceMs(60'000);
  EXPECT_TRUE(Lease("w").empty());
  Restart();
  Register("w");
  EXPECT_EQ(Progress(id).state(), v1::CAMPAIGN_STATE_PAUSED_PROVIDER);
  v1::UpdateBudgetRequest resume;
  resume.set_campaign_id(id);
  ASSERT_TRUE(scheduler_->UpdateBudget(resume).ok());
  ASSERT_TRUE(scheduler_->Commit().ok());
  EXPECT_EQ(Progress(id).state(), v1::CAMPAIGN_STATE_RUNNING);
  auto rest = Lease("w");
  EXPECT_EQ(rest.size(), 3u);
  for (const auto& a : rest) Complete(a);
  EXPECT_EQ(Progress(id).state(), v1::CAMPAIGN_STATE_SUCCEEDED);
}

TEST_F(SchedulerTest, ProviderPausesDoNotUseUpAttempts) {
  std::string id = Submit(Spec(1, 1));  // max_attempts 3
  Register("w");
  auto fail = [&](const v1::TaskAssignment& t, bool pause) {
    v1::FailTaskRequest r;
    r.set_worker_id("w");
    r.set_task_id(t.task_id());
    r.set_attempt(t.attempt());
    r.set_lease_token(t.lease_token());
    r.set_error(pause ? "HTTP 429 insufficient_quota" : "HTTP 503");
    r.set_retryable(true);
    r.set_pause_campaign(pause);
    absl::StatusOr<v1::FailTaskResponse> resp = scheduler_->Fail(r);
    EXPECT_TRUE(resp.ok());
    EXPECT_TRUE(scheduler_->Commit().ok());
    return resp.ok() && resp->will_retry();
  };
  for (int i = 0; i < 4; ++i) {  // more pauses than max_attempts
    auto t = Lease("w", 1);
    ASSERT_EQ(t.size(), 1u) << i;
    EXPECT_TRUE(fail(t[0], /*pause=*/true)) << i;
    v1::UpdateBudgetRequest resume;
    resume.set_campaign_id(id);
    ASSERT_TRUE(scheduler_->UpdateBudget(resume).ok());
    ASSERT_TRUE(scheduler_->Commit().ok());
    clock_.AdvanceMs(60'000);  // past the backoff
  }
  Restart();  // the uncounted attempts are stored with the task
  Register("w");
  clock_.AdvanceMs(kLeaseMs * 3);
  auto t = Lease("w", 1);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].attempt(), 5u);
  EXPECT_TRUE(fail(t[0], /*pause=*/false));  // counted attempt 1 of 3
  clock_.AdvanceMs(60'000);
  t = Lease("w", 1);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_TRUE(fail(t[0], /*pause=*/false));  // 2 of 3
  clock_.AdvanceMs(60'000);
  t = Lease("w", 1);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_FALSE(fail(t[0], /*pause=*/false));  // 3 of 3: failed for good
  EXPECT_EQ(Progress(id).cells_failed(), 1u);
}

TEST_F(SchedulerTest, LeasesHeldAtACrashGetOneLeasePeriodThenExpire) {
  std::string id = Submit(Spec(1, 1));
  Register("w");
  auto t = Lease("w");
  clock_.AdvanceMs(kLeaseMs * 3);  // long outage: the stored deadline passed
  Restart();
  scheduler_->Tick();
  EXPECT_EQ(Progress(id).tasks_leased(), 1u);  // grace for the worker
  EXPECT_GT(HeartbeatDeadline("w", t[0]), 0);
  clock_.AdvanceMs(kLeaseMs + 1);
  scheduler_->Tick();
  EXPECT_EQ(Progress(id).tasks_leased(), 0u);
}

TEST_F(SchedulerTest, SubmissionWithTheSameRequestIdIsIdempotent) {
  absl::StatusOr<SubmitResult> a = scheduler_->Submit(Spec(1, 2), Summaries(), "", "req-1");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(scheduler_->Commit().ok());
  Restart();
  absl::StatusOr<SubmitResult> b = scheduler_->Submit(Spec(1, 2), Summaries(), "", "req-1");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->already_existed);
  EXPECT_EQ(b->campaign_id, a->campaign_id);
  EXPECT_EQ(scheduler_->List().campaigns_size(), 1);
}

TEST_F(SchedulerTest, AnswersBecomeJudgeTasksAndCellsFinishWhenJudged) {
  v1::CampaignSpec spec = Spec(1, 1);
  spec.mutable_judge()->add_graders()->set_kind("rules");
  std::string id = Submit(spec);
  Register("tuner");
  Register("judge", v1::WORKER_ROLE_JUDGE, {"rules"});
  auto tune = Lease("tuner");
  ASSERT_EQ(tune.size(), 1u);
  v1::TaskResult result;
  auto* answers = result.add_answers();
  answers->set_cell_id(tune[0].tune().cell_ids(0));
  for (int i = 0; i < 3; ++i) {
    auto* item = answers->add_items();
    item->set_question_type("memorization");
    item->set_question_id("q" + std::to_string(i));
    item->set_answer("a");
  }
  EXPECT_EQ(Complete(tune[0], 0, result), v1::COMPLETION_OUTCOME_ACCEPTED);
  v1::CampaignProgress p = Progress(id);
  EXPECT_EQ(p.cells_done(), 0u);  // waiting for its verdicts
  EXPECT_EQ(p.tasks_total(), 3u);  // 1 TUNE + ceil(3 / 2) JUDGE
  EXPECT_TRUE(Lease("tuner").empty());
  Restart();  // judge tasks survive a restart
  Register("judge", v1::WORKER_ROLE_JUDGE, {"rules"});
  auto judge = Lease("judge");
  ASSERT_EQ(judge.size(), 2u);
  EXPECT_EQ(judge[0].kind(), v1::TASK_KIND_JUDGE);
  EXPECT_EQ(judge[0].judge().items_size(), 2);
  EXPECT_EQ(judge[1].judge().items_size(), 1);
  EXPECT_EQ(judge[0].judge().items(0).cell_id(), tune[0].tune().cell_ids(0));
  Complete(judge[0], 0, VerdictsFor(judge[0]));
  EXPECT_EQ(Progress(id).cells_done(), 0u);
  Complete(judge[1], 0, VerdictsFor(judge[1]));
  EXPECT_EQ(Progress(id).cells_done(), 1u);
  EXPECT_EQ(Progress(id).state(), v1::CAMPAIGN_STATE_SUCCEEDED);
}

// Issue 14 (metrics): a stopped worker counted as connected for three
// minutes, and a cancelled campaign's cells as pending. Now a worker counts
// while seen within kWorkerConnectedMs or while it holds a lease (until the
// lease expires), and unfinished cells of a cancelled campaign are
// "cancelled".
TEST_F(SchedulerTest, SnapshotCountsLiveWorkersAndCancelledCells) {
  std::string id = Submit(Spec(2, 3));  // 3 runs of 2 cells
  Register("idle");
  Register("busy");
  ASSERT_EQ(Lease("busy", 1).size(), 1u);
  EXPECT_EQ(scheduler_->Snapshot().workers_by_role["tune"], 2u);
  clock_.AdvanceMs(kWorkerConnectedMs + 1);
  // Neither was heard from for a minute; "busy" still holds a lease (10 s
  // long here, not yet expired because Tick has not run).
  EXPECT_EQ(scheduler_->Snapshot().workers_by_role["tune"], 1u);
  scheduler_->Tick();  // the lease expires
  ASSERT_TRUE(scheduler_->Commit().ok());
  EXPECT_EQ(scheduler_->Snapshot().workers_by_role["tune"], 0u);

  EXPECT_EQ(scheduler_->Snapshot().cells_by_state["pending"], 6u);
  ASSERT_TRUE(scheduler_->Cancel(id).ok());
  ASSERT_TRUE(scheduler_->Commit().ok());
  SchedulerSnapshot s = scheduler_->Snapshot();
  EXPECT_EQ(s.cells_by_state["pending"], 0u);
  EXPECT_EQ(s.cells_by_state["cancelled"], 6u);
  EXPECT_EQ(s.campaigns_by_state["cancelled"], 1u);
}

// Issue 18 item 5: workers not seen for the eviction period are forgotten
// (before, every worker id ever registered stayed in memory) and register
// again as after a restart; a lease they hold still expires normally.
TEST_F(SchedulerTest, IdleWorkersAreEvictedAndReRegister) {
  std::string id = Submit(Spec(1, 2));
  Register("idle");
  Register("busy");
  auto t = Lease("busy", 1);
  ASSERT_EQ(t.size(), 1u);
  for (int i = 0; i < 132; ++i) {  // 11 minutes: "busy" heartbeats, "idle" is silent
    clock_.AdvanceMs(5'000);
    EXPECT_GT(HeartbeatDeadline("busy", t[0]), 0) << i;
    scheduler_->Tick();
  }
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("idle");
  lease.set_max_tasks(1);
  EXPECT_EQ(scheduler_->Lease(lease).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->Snapshot().workers_by_role["tune"], 1u);
  Register("idle");
  EXPECT_EQ(Lease("idle", 1).size(), 1u);
  EXPECT_EQ(Complete(t[0]), v1::COMPLETION_OUTCOME_ACCEPTED);
  (void)id;
}

// Issue 18 item 6: a cancelled campaign with a task still leased is deleted
// whole; its lease and backoff entries go with it (Tick after the lease
// deadline must not touch it), late reports are UNKNOWN_TASK, a restart
// does not bring it back, and other campaigns carry on.
TEST_F(SchedulerTest, DeleteRemovesAnEndedCampaignWithItsLeasesAndRecords) {
  std::string gone = Submit(Spec(1, 3));
  std::string kept = Submit(Spec(1, 1));
  Register("w");
  auto t = Lease("w", 2);  // both from `gone` or one of each: round-robin
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(scheduler_->Delete(gone).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->Delete("nope").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(scheduler_->Cancel(gone).ok());
  absl::StatusOr<v1::DeleteCampaignResponse> deleted = scheduler_->Delete(gone);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  ASSERT_TRUE(scheduler_->Commit().ok());
  EXPECT_EQ(scheduler_->Get(gone).status().code(), absl::StatusCode::kNotFound);
  clock_.AdvanceMs(kLeaseMs + 1);
  scheduler_->Tick();  // the deleted campaign's leases are no longer in the heap
  for (const auto& a : t) {
    if (a.campaign_id() != gone) continue;
    EXPECT_EQ(Complete(a), v1::COMPLETION_OUTCOME_UNKNOWN_TASK);
  }
  size_t left = 0;
  for (const char* table : {"c/", "a/", "r/", "j/", "i/", "e/"}) {
    ASSERT_TRUE(store_
                    .Scan(absl::StrCat(table, gone), {},
                          [&](std::string_view, std::string_view) {
                            ++left;
                            return true;
                          })
                    .ok());
  }
  EXPECT_EQ(left, 0u);
  Restart();
  EXPECT_EQ(scheduler_->Get(gone).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(scheduler_->List().campaigns_size(), 1);
  Register("w");
  clock_.AdvanceMs(60'000);
  for (const auto& a : Lease("w", 10)) Complete(a);
  EXPECT_EQ(Progress(kept).state(), v1::CAMPAIGN_STATE_SUCCEEDED);
}

TEST_F(SchedulerTest, StateIsCompactPerPendingCell) {
  v1::CampaignSpec spec = Spec(1, 100000);
  Submit(spec);
  size_t bytes = scheduler_->ApproximateMemoryBytes();
  EXPECT_LT(bytes / 100000, 120u) << bytes;
}

}  // namespace
}  // namespace ftb::coordinator

namespace ftb::coordinator {
namespace {

TEST(SchedulerRecoveryOptionTest, RequeuesLeasedTasksAtOnceWhenAsked) {
  storage::MemoryStateStore store;
  FakeClock clock;
  SequentialIdSource ids;
  std::string id;
  {
    Scheduler s(&store, &clock, &ids);
    ASSERT_TRUE(s.Recover().ok());
    id = s.Submit(Spec(1, 2), Summaries(), "", "")->campaign_id;
    v1::RegisterWorkerRequest r;
    r.set_worker_id("w");
    r.set_role(v1::WORKER_ROLE_TUNE);
    r.add_backends("test");
    s.RegisterWorker(r);
    v1::LeaseTasksRequest lease;
    lease.set_worker_id("w");
    lease.set_max_tasks(2);
    ASSERT_EQ(s.Lease(lease)->tasks_size(), 2);
    ASSERT_TRUE(s.Commit().ok());
  }
  SchedulerOptions options;
  options.requeue_leased_on_recovery = true;
  Scheduler s(&store, &clock, &ids, options);
  ASSERT_TRUE(s.Recover().ok());
  v1::CampaignProgress p = s.Get(id)->progress();
  EXPECT_EQ(p.tasks_leased(), 0u);
  EXPECT_EQ(p.tasks_pending(), 2u);
  v1::RegisterWorkerRequest r;
  r.set_worker_id("w2");
  r.set_role(v1::WORKER_ROLE_TUNE);
  r.add_backends("test");
  s.RegisterWorker(r);
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("w2");
  lease.set_max_tasks(2);
  auto again = s.Lease(lease);
  ASSERT_EQ(again->tasks_size(), 2);
  EXPECT_EQ(again->tasks(0).attempt(), 2u);
}

}  // namespace
}  // namespace ftb::coordinator

namespace ftb::coordinator {
namespace {

// A campaign whose budget covers part of the grid: the scheduler starts only
// what fits, pauses with a reason, never lets spend exceed the budget, and
// finishes after the budget is raised.
TEST(SchedulerBudgetTest, StopsAtTheBudgetAndFinishesWhenItIsRaised) {
  cost::PriceTable prices;
  ASSERT_TRUE(prices
                  .Add("version: t\nbackend: test\nmodels:\n  fixture: {training_per_1m_tokens: "
                       "1.0, input_per_1m_tokens: 0, output_per_1m_tokens: 0, source: test, "
                       "as_of: t}\n",
                       "prices.yaml")
                  .ok());
  storage::MemoryStateStore store;
  FakeClock clock;
  SequentialIdSource ids;
  SchedulerOptions options;
  options.prices = &prices;
  auto s = std::make_unique<Scheduler>(&store, &clock, &ids, options);
  ASSERT_TRUE(s->Recover().ok());
  v1::CampaignSpec spec = Spec(1, 5);  // 5 runs of 1 epoch
  spec.mutable_budget()->set_usd(2.5);
  DatasetSummary summary{"people", "f00d", 6, 12, {}};
  summary.training_tokens = 1'000'000;  // $1.00 per run
  std::string id = s->Submit(spec, {summary}, "", "")->campaign_id;
  ASSERT_TRUE(s->Commit().ok());
  EXPECT_DOUBLE_EQ(s->Get(id)->progress().estimated_total_usd(), 5.0);

  v1::RegisterWorkerRequest reg;
  reg.set_worker_id("w");
  reg.set_role(v1::WORKER_ROLE_TUNE);
  reg.add_backends("test");
  s->RegisterWorker(reg);
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("w");
  lease.set_max_tasks(10);
  auto complete = [&](const v1::TaskAssignment& t, double cost) {
    v1::CompleteTasksRequest r;
    r.set_worker_id("w");
    auto* c = r.add_completions();
    c->set_task_id(t.task_id());
    c->set_attempt(t.attempt());
    c->set_lease_token(t.lease_token());
    c->mutable_result()->set_cost_usd(cost);
    return s->Complete(r)->outcomes(0);
  };

  // $0 spent + 2 x $1 reserved fits; a third would make $3 > $2.50.
  auto first = s->Lease(lease);
  ASSERT_EQ(first->tasks_size(), 2);
  v1::CampaignProgress p = s->Get(id)->progress();
  EXPECT_EQ(p.state(), v1::CAMPAIGN_STATE_PAUSED_BUDGET);
  EXPECT_DOUBLE_EQ(p.reserved_usd(), 2.0);
  EXPECT_EQ(p.status_message(),
            "next task " + id + "/2 is estimated at $1.0000; with $0.0000 spent and $2.0000 "
            "reserved for running tasks that would exceed the budget of $2.50; raise it with "
            "`ftb budget " + id + " --usd N`");
  // Running tasks still report while paused; spend stays within the budget.
  EXPECT_EQ(complete(first->tasks(0), 0.9), v1::COMPLETION_OUTCOME_ACCEPTED);
  EXPECT_EQ(complete(first->tasks(1), 1.1), v1::COMPLETION_OUTCOME_ACCEPTED);
  EXPECT_TRUE(s->Lease(lease)->tasks().empty());
  p = s->Get(id)->progress();
  EXPECT_DOUBLE_EQ(p.cost_usd(), 2.0);
  EXPECT_LE(p.cost_usd(), 2.5);
  EXPECT_EQ(p.state(), v1::CAMPAIGN_STATE_PAUSED_BUDGET);
  ASSERT_TRUE(s->Commit().ok());

  // The pause survives a restart.
  s = std::make_unique<Scheduler>(&store, &clock, &ids, options);
  ASSERT_TRUE(s->Recover().ok());
  s->RegisterWorker(reg);
  EXPECT_EQ(s->Get(id)->progress().state(), v1::CAMPAIGN_STATE_PAUSED_BUDGET);
  EXPECT_TRUE(s->Lease(lease)->tasks().empty());

  // Raising the budget resumes it: $2 spent, 3 x $1 fit in $5.
  v1::UpdateBudgetRequest raise;
  raise.set_campaign_id(id);
  raise.set_usd(5);
  absl::StatusOr<v1::CampaignProgress> raised = s->UpdateBudget(raise);
  ASSERT_TRUE(raised.ok()) << raised.status();
  EXPECT_EQ(raised->state(), v1::CAMPAIGN_STATE_RUNNING);
  EXPECT_EQ(raised->status_message(), "");
  auto rest = s->Lease(lease);
  ASSERT_EQ(rest->tasks_size(), 3);
  for (const auto& t : rest->tasks()) complete(t, 1.0);
  p = s->Get(id)->progress();
  EXPECT_EQ(p.state(), v1::CAMPAIGN_STATE_SUCCEEDED);
  EXPECT_DOUBLE_EQ(p.cost_usd(), 5.0);
  EXPECT_EQ(p.cells_done(), 5u);
  raise.set_usd(10);
  EXPECT_EQ(s->UpdateBudget(raise).status().code(), absl::StatusCode::kFailedPrecondition);
  raise.set_campaign_id("nope");
  EXPECT_EQ(s->UpdateBudget(raise).status().code(), absl::StatusCode::kNotFound);
}

TEST(SchedulerBudgetTest, PerCellBudgetRefusesCostlyCells) {
  cost::PriceTable prices;
  ASSERT_TRUE(prices
                  .Add("version: t\nbackend: test\nmodels:\n  \"*\": {training_per_1m_tokens: "
                       "2.0, input_per_1m_tokens: 0, output_per_1m_tokens: 0, source: test, "
                       "as_of: t}\n",
                       "prices.yaml")
                  .ok());
  storage::MemoryStateStore store;
  FakeClock clock;
  SequentialIdSource ids;
  SchedulerOptions options;
  options.prices = &prices;
  Scheduler s(&store, &clock, &ids, options);
  ASSERT_TRUE(s.Recover().ok());
  v1::CampaignSpec spec = Spec(1, 1);
  spec.mutable_budget()->set_per_cell_usd(1.5);
  DatasetSummary summary{"people", "f00d", 6, 12, {}};
  summary.training_tokens = 1'000'000;  // $2.00 per cell > $1.50
  std::string id = s.Submit(spec, {summary}, "", "")->campaign_id;
  v1::RegisterWorkerRequest reg;
  reg.set_worker_id("w");
  reg.set_role(v1::WORKER_ROLE_TUNE);
  reg.add_backends("test");
  s.RegisterWorker(reg);
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("w");
  lease.set_max_tasks(10);
  EXPECT_TRUE(s.Lease(lease)->tasks().empty());
  v1::CampaignProgress p = s.Get(id)->progress();
  EXPECT_EQ(p.state(), v1::CAMPAIGN_STATE_PAUSED_BUDGET);
  EXPECT_NE(p.status_message().find("over the per-cell budget of $1.50"), std::string::npos)
      << p.status_message();
  v1::UpdateBudgetRequest raise;
  raise.set_campaign_id(id);
  raise.set_per_cell_usd(0);  // remove the limit
  ASSERT_TRUE(s.UpdateBudget(raise).ok());
  EXPECT_EQ(s.Lease(lease)->tasks_size(), 1);
}

}  // namespace
}  // namespace ftb::coordinator
