// The gRPC service on a real loopback server (in-memory store).
#include "coordinator/service.h"

#include <cstdlib>
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/ids.h"
#include "storage/memory_state_store.h"

#include "gtest/gtest.h"

namespace ftb::coordinator {
namespace {

constexpr char kSpec[] = R"(name: svc
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - {name: fixture, backend: test}
grid:
  epochs: [1, 3]
  seed: [0, 1]
)";

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorOptions options;
    options.tick_ms = 20;
    auto server = CoordinatorServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = v1::Coordinator::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }

  template <typename Req, typename Resp, typename Method>
  grpc::Status Call(Method method, const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (stub_.get()->*method)(&ctx, req, resp);
  }

  std::string Submit() {
    v1::SubmitCampaignRequest req;
    req.set_spec_yaml(kSpec);
    req.set_spec_filename("svc.yaml");
    v1::SubmitCampaignResponse resp;
    grpc::Status s = Call(&v1::Coordinator::Stub::SubmitCampaign, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.cells(), 4u);
    EXPECT_EQ(resp.tasks(), 2u);
    return resp.campaign_id();
  }

  void Register(const std::string& worker) {
    v1::RegisterWorkerRequest req;
    req.set_worker_id(worker);
    req.set_role(v1::WORKER_ROLE_TUNE);
    req.add_backends("test");
    v1::RegisterWorkerResponse resp;
    ASSERT_TRUE(Call(&v1::Coordinator::Stub::RegisterWorker, req, &resp).ok());
    EXPECT_EQ(resp.lease_seconds(), 60);
  }

  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(ServiceTest, MalformedRequestsGetInvalidArgumentAndChangeNothing) {
  struct Case {
    std::function<grpc::Status()> call;
    std::string message;
  };
  std::vector<Case> cases = {
      {[&] {
         v1::RegisterWorkerRequest r;
         v1::RegisterWorkerResponse out;
         return Call(&v1::Coordinator::Stub::RegisterWorker, r, &out);
       },
       "worker_id: required"},
      {[&] {
         v1::RegisterWorkerRequest r;
         r.set_worker_id("w");
         r.add_backends("test");
         v1::RegisterWorkerResponse out;
         return Call(&v1::Coordinator::Stub::RegisterWorker, r, &out);
       },
       "role: expected WORKER_ROLE_TUNE or WORKER_ROLE_JUDGE"},
      {[&] {
         v1::RegisterWorkerRequest r;
         r.set_worker_id("w");
         r.set_role(v1::WORKER_ROLE_TUNE);
         v1::RegisterWorkerResponse out;
         return Call(&v1::Coordinator::Stub::RegisterWorker, r, &out);
       },
       "backends: expected at least one"},
      {[&] {
         v1::CompleteTasksRequest r;
         r.set_worker_id("w");
         v1::CompleteTasksResponse out;
         return Call(&v1::Coordinator::Stub::CompleteTasks, r, &out);
       },
       "completions: expected at least one"},
      {[&] {
         v1::CompleteTasksRequest r;
         r.set_worker_id("w");
         r.add_completions()->set_task_id("x/1");
         v1::CompleteTasksResponse out;
         return Call(&v1::Coordinator::Stub::CompleteTasks, r, &out);
       },
       "completions[0].attempt: expected >= 1"},
      {[&] {
         v1::CompleteTasksRequest r;
         r.set_worker_id("w");
         auto* c = r.add_completions();
         c->set_task_id("garbage");
         c->set_attempt(1);
         v1::CompleteTasksResponse out;
         return Call(&v1::Coordinator::Stub::CompleteTasks, r, &out);
       },
       "task_id: expected <campaign>/<index>, got \"garbage\""},
      {[&] {
         v1::FailTaskRequest r;
         r.set_worker_id("w");
         v1::FailTaskResponse out;
         return Call(&v1::Coordinator::Stub::FailTask, r, &out);
       },
       "task_id: required"},
      {[&] {
         v1::SubmitCampaignRequest r;
         v1::SubmitCampaignResponse out;
         return Call(&v1::Coordinator::Stub::SubmitCampaign, r, &out);
       },
       "spec_yaml: required (the campaign YAML; see docs/spec.md)"},
      {[&] {
         v1::SubmitCampaignRequest r;
         r.set_spec_yaml("name: x\nbogus: 1\n");
         r.set_spec_filename("bad.yaml");
         v1::SubmitCampaignResponse out;
         return Call(&v1::Coordinator::Stub::SubmitCampaign, r, &out);
       },
       ""},  // message checked by prefix below
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    grpc::Status s = cases[i].call();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << i;
    if (!cases[i].message.empty()) {
      EXPECT_EQ(s.error_message(), cases[i].message) << i;
    }
  }
  v1::ListCampaignsResponse list;
  ASSERT_TRUE(Call(&v1::Coordinator::Stub::ListCampaigns, v1::ListCampaignsRequest(), &list).ok());
  EXPECT_EQ(list.campaigns_size(), 0);
}

TEST_F(ServiceTest, LeaseCompleteAndWatchToTheEnd) {
  std::string id = Submit();
  Register("w1");

  // Watch from another thread until the campaign ends.
  std::vector<v1::CampaignEvent> events;
  grpc::Status watch_status;
  std::thread watcher([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::WatchCampaignRequest req;
    req.set_campaign_id(id);
    auto reader = stub_->WatchCampaign(&ctx, req);
    v1::CampaignEvent e;
    while (reader->Read(&e)) events.push_back(e);
    watch_status = reader->Finish();
  });

  v1::LeaseTasksRequest lease;
  lease.set_worker_id("w1");
  lease.set_max_tasks(10);
  v1::LeaseTasksResponse leased;
  ASSERT_TRUE(Call(&v1::Coordinator::Stub::LeaseTasks, lease, &leased).ok());
  ASSERT_EQ(leased.tasks_size(), 2);
  v1::CompleteTasksRequest done;
  done.set_worker_id("w1");
  for (const auto& t : leased.tasks()) {
    auto* c = done.add_completions();
    c->set_task_id(t.task_id());
    c->set_attempt(t.attempt());
  }
  v1::CompleteTasksResponse outcomes;
  ASSERT_TRUE(Call(&v1::Coordinator::Stub::CompleteTasks, done, &outcomes).ok());
  ASSERT_EQ(outcomes.outcomes_size(), 2);
  EXPECT_EQ(outcomes.outcomes(0), v1::COMPLETION_OUTCOME_ACCEPTED);
  // Reporting again is a harmless duplicate.
  ASSERT_TRUE(Call(&v1::Coordinator::Stub::CompleteTasks, done, &outcomes).ok());
  EXPECT_EQ(outcomes.outcomes(1), v1::COMPLETION_OUTCOME_DUPLICATE);

  watcher.join();
  EXPECT_TRUE(watch_status.ok()) << watch_status.error_message();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().progress().state(), v1::CAMPAIGN_STATE_SUCCEEDED);
  EXPECT_EQ(events.back().progress().cells_done(), 4u);

  v1::GetCampaignRequest get;
  get.set_campaign_id(id);
  v1::GetCampaignResponse status;
  ASSERT_TRUE(Call(&v1::Coordinator::Stub::GetCampaign, get, &status).ok());
  EXPECT_EQ(status.progress().tasks_done(), 2u);
  EXPECT_GE(server_->loop()->operations(), server_->loop()->batches());
}

TEST_F(ServiceTest, SubmittedSpecsExpandOnlyTheVariablesTheClientSent) {
  // The coordinator's own environment may hold secrets: a submitted spec
  // must not be able to read them back through ${NAME}.
  ::setenv("FTB_SERVICE_TEST_SECRET", "s3cr3t-value", 1);
  std::string yaml = kSpec;
  yaml.replace(yaml.find("name: fixture"), 13, "name: \"${FTB_SERVICE_TEST_SECRET}\"");
  v1::SubmitCampaignRequest req;
  req.set_spec_yaml(yaml);
  req.set_spec_filename("svc.yaml");
  v1::SubmitCampaignResponse resp;
  grpc::Status s = Call(&v1::Coordinator::Stub::SubmitCampaign, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("environment variable FTB_SERVICE_TEST_SECRET is not set"),
            std::string::npos)
      << s.error_message();
  EXPECT_EQ(s.error_message().find("s3cr3t"), std::string::npos);
  // Sent by the client, the value is used.
  (*req.mutable_env())["FTB_SERVICE_TEST_SECRET"] = "model-from-client";
  s = Call(&v1::Coordinator::Stub::SubmitCampaign, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::GetCampaignRequest get;
  get.set_campaign_id(resp.campaign_id());
  v1::GetCampaignResponse got;
  ASSERT_TRUE(Call(&v1::Coordinator::Stub::GetCampaign, get, &got).ok());
  EXPECT_EQ(got.spec().models(0).name(), "model-from-client");
  ::unsetenv("FTB_SERVICE_TEST_SECRET");
}

TEST_F(ServiceTest, CancelAndUnknownIds) {
  std::string id = Submit();
  v1::CancelCampaignRequest cancel;
  cancel.set_campaign_id(id);
  v1::CancelCampaignResponse cancelled;
  ASSERT_TRUE(Call(&v1::Coordinator::Stub::CancelCampaign, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.progress().state(), v1::CAMPAIGN_STATE_CANCELLED);
  cancel.set_campaign_id("nope");
  EXPECT_EQ(Call(&v1::Coordinator::Stub::CancelCampaign, cancel, &cancelled).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Watching an unknown campaign fails cleanly.
  grpc::ClientContext ctx;
  v1::WatchCampaignRequest req;
  req.set_campaign_id("nope");
  auto reader = stub_->WatchCampaign(&ctx, req);
  v1::CampaignEvent e;
  EXPECT_FALSE(reader->Read(&e));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  // A lease from a worker that never registered.
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("ghost");
  lease.set_max_tasks(1);
  v1::LeaseTasksResponse out;
  EXPECT_EQ(Call(&v1::Coordinator::Stub::LeaseTasks, lease, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}


// --- SchedulerLoop: pipelined group commit ---------------------------------------

// A store whose writes fail once `fail` is set (a full disk, a dead volume).
class FailingStore : public storage::MemoryStateStore {
 public:
  absl::Status Write(const storage::WriteBatch& batch) override {
    if (fail) return absl::UnavailableError("disk on fire");
    writes.fetch_add(1);
    return MemoryStateStore::Write(batch);
  }
  std::atomic<bool> fail{false};
  std::atomic<int> writes{0};
};

v1::CampaignSpec LoopSpec(const std::string& name) {
  v1::CampaignSpec spec;
  spec.set_name(name);
  auto* d = spec.add_datasets();
  d->set_name("people");
  d->set_source(v1::DATASET_SOURCE_BUILTIN);
  auto* m = spec.add_models();
  m->set_name("fixture");
  m->set_backend("test");
  spec.mutable_grid()->add_epochs(1);
  spec.mutable_grid()->add_learning_rate_multiplier(1);
  spec.mutable_grid()->add_batch_size(1);
  spec.mutable_grid()->add_seed(0);
  return spec;
}

// Posts a Submit and waits for its acknowledgement.
absl::Status SubmitThrough(SchedulerLoop& loop, const std::string& name) {
  absl::Notification done;
  absl::Status result;
  loop.Post(
      [&](Scheduler& s) {
        auto r = s.Submit(LoopSpec(name), {DatasetSummary{"people", "f00d", 6, 12, {}}}, "", "");
        if (!r.ok()) result = r.status();
      },
      [&](const absl::Status& status) {
        if (result.ok()) result = status;
        done.Notify();
      });
  done.WaitForNotification();
  return result;
}

TEST(SchedulerLoopTest, AcknowledgesOnlyDurableWorkAndStopsAfterAFailedWrite) {
  FailingStore store;
  SequentialIdSource ids;
  auto scheduler = std::make_unique<Scheduler>(&store, RealClock::Get(), &ids);
  ASSERT_TRUE(scheduler->Recover().ok());
  SchedulerLoop loop(std::move(scheduler), /*tick_ms=*/10);
  ASSERT_TRUE(SubmitThrough(loop, "first").ok());
  ASSERT_EQ(store.ScanAll(keys::kCampaignPrefix)->size(), 1u);

  store.fail = true;
  absl::Status failed = SubmitThrough(loop, "second");
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  // The in-memory state is now ahead of the store: everything after the
  // failed write is refused, reads included, even once the disk is back.
  store.fail = false;
  EXPECT_FALSE(SubmitThrough(loop, "third").ok());
  absl::Notification read_done;
  absl::Status read_status;
  loop.Post([](Scheduler& s) { (void)s.List(); },
            [&](const absl::Status& status) {
              read_status = status;
              read_done.Notify();
            });
  read_done.WaitForNotification();
  EXPECT_FALSE(read_status.ok());
  loop.Stop();
  EXPECT_EQ(store.ScanAll(keys::kCampaignPrefix)->size(), 1u);
}

TEST(SchedulerLoopTest, ConcurrentPostsShareBatchesAndAllComplete) {
  FailingStore store;
  SequentialIdSource ids;
  auto scheduler = std::make_unique<Scheduler>(&store, RealClock::Get(), &ids);
  ASSERT_TRUE(scheduler->Recover().ok());
  SchedulerLoop loop(std::move(scheduler), /*tick_ms=*/10);
  constexpr int kThreads = 4, kEach = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (SubmitThrough(loop, absl::StrCat("c", t, "-", i)).ok()) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  loop.Stop();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(store.ScanAll(keys::kCampaignPrefix)->size(), size_t{kThreads * kEach});
  EXPECT_EQ(loop.batches(), uint64_t(store.writes.load()));
  EXPECT_LE(loop.batches(), loop.operations());
}

TEST(SchedulerLoopTest, StopWritesWhatWasQueued) {
  FailingStore store;
  SequentialIdSource ids;
  auto scheduler = std::make_unique<Scheduler>(&store, RealClock::Get(), &ids);
  ASSERT_TRUE(scheduler->Recover().ok());
  SchedulerLoop loop(std::move(scheduler), /*tick_ms=*/1000);
  std::atomic<int> acknowledged{0};
  for (int i = 0; i < 20; ++i) {
    loop.Post(
        [i](Scheduler& s) {
          (void)s.Submit(LoopSpec(absl::StrCat("q", i)),
                         {DatasetSummary{"people", "f00d", 6, 12, {}}}, "", "");
        },
        [&](const absl::Status& status) {
          if (status.ok()) acknowledged.fetch_add(1);
        });
  }
  loop.Stop();
  EXPECT_EQ(acknowledged.load(), 20);
  EXPECT_EQ(store.ScanAll(keys::kCampaignPrefix)->size(), 20u);
}

}  // namespace
}  // namespace ftb::coordinator
