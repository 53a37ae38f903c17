// Crash safety across real processes: a coordinator child process and three
// worker processes run a 2,000-cell campaign on the `test` backend while the
// test SIGKILLs the coordinator and workers at random moments and restarts
// them. At the end every task has exactly one recorded result, every cell is
// done, and the results equal those of an uninterrupted run.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "coordinator/scheduler.h"
#include "ftb/v1/coordinator.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_state_store.h"
#include "tests/test_process.h"

namespace ftb {
namespace {

using ::ftb::testing::ChildProcess;

class Cluster {
 public:
  explicit Cluster(std::string dir) : dir_(std::move(dir)), port_(testing::FreePort()) {}

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  void StartCoordinator() {
    coordinator_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::FtbBinary(), "coordinator", "--listen", address(),
                                 "--state", dir_ + "/state"},
        dir_ + "/coordinator.log");
    coordinator_->Start();
  }

  void StartWorker(size_t i) {
    if (workers_.size() <= i) workers_.resize(i + 1);
    workers_[i] = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::FtbBinary(), "worker", "--coordinator", address(),
                                 "--backends", "test", "--slots", "2"},
        absl::StrCat(dir_, "/worker", i, ".log"));
    workers_[i]->Start();
  }

  std::unique_ptr<v1::Coordinator::Stub> Stub() {
    return v1::Coordinator::NewStub(
        grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
  }

  // Submits with a fixed request id, retrying while the coordinator starts.
  std::string Submit(const std::string& yaml) {
    for (int i = 0; i < 300; ++i) {
      v1::SubmitCampaignRequest req;
      req.set_spec_yaml(yaml);
      req.set_spec_filename("crash.yaml");
      req.set_request_id("crash-test");
      v1::SubmitCampaignResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      grpc::Status s = Stub()->SubmitCampaign(&ctx, req, &resp);
      if (s.ok()) return resp.campaign_id();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "could not submit; coordinator log:\n"
                  << testing::ReadFile(dir_ + "/coordinator.log");
    return "";
  }

  // Polls until the campaign ends (or the timeout); the last progress seen.
  v1::CampaignProgress WaitForEnd(const std::string& id, double seconds) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    v1::CampaignProgress last;
    while (std::chrono::steady_clock::now() < deadline) {
      v1::GetCampaignRequest req;
      req.set_campaign_id(id);
      v1::GetCampaignResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      if (Stub()->GetCampaign(&ctx, req, &resp).ok()) {
        last = resp.progress();
        if (last.state() != v1::CAMPAIGN_STATE_RUNNING) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return last;
  }

  void StopAll() {
    for (auto& w : workers_) {
      if (w) w->Signal(SIGTERM);
    }
    for (auto& w : workers_) {
      if (w && !w->WaitFor(20)) w->Kill();
    }
    coordinator_->Signal(SIGTERM);
    if (!coordinator_->WaitFor(20)) coordinator_->Kill();
    coordinator_->Wait();
  }

  ChildProcess& coordinator() { return *coordinator_; }
  ChildProcess& worker(size_t i) { return *workers_[i]; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int port_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

struct StoredOutcome {
  std::map<uint32_t, std::string> digests;  // task index -> result digest
  uint64_t results = 0;
  uint64_t done_records = 0;
  uint64_t attempts = 0;
  uint64_t mismatched_attempts = 0;
};

// Reads the coordinator's RocksDB directly (after it has stopped).
StoredOutcome ReadStore(const std::string& state_dir, const std::string& id) {
  StoredOutcome out;
  auto store = storage::RocksDbStateStore::Open(state_dir);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return out;
  std::map<uint32_t, uint32_t> done_attempt;
  EXPECT_TRUE((*store)
                  ->Scan(coordinator::keys::TaskRecordPrefix(id), {},
                         [&](std::string_view key, std::string_view value) {
                           uint32_t task;
                           coordinator::keys::TaskIndexFromKey(key, &task);
                           v1::TaskRecord r;
                           r.ParseFromArray(value.data(), static_cast<int>(value.size()));
                           out.attempts += r.attempt();
                           if (r.state() == v1::TASK_STATE_DONE) {
                             ++out.done_records;
                             done_attempt[task] = r.done_attempt();
                           }
                           return true;
                         })
                  .ok());
  EXPECT_TRUE((*store)
                  ->Scan(coordinator::keys::ResultPrefix(id), {},
                         [&](std::string_view key, std::string_view value) {
                           uint32_t task;
                           coordinator::keys::TaskIndexFromKey(key, &task);
                           v1::TaskCompletion c;
                           c.ParseFromArray(value.data(), static_cast<int>(value.size()));
                           ++out.results;
                           out.digests[task] = c.result().digest();
                           if (done_attempt[task] != c.attempt()) ++out.mismatched_attempts;
                           return true;
                         })
                  .ok());
  return out;
}

TEST(CrashRecoveryTest, SigkilledCoordinatorAndWorkersLoseNothingAndRepeatNothing) {
  std::mt19937 rng(std::random_device{}());
  // 1,000 training runs x 2 epoch counts = 2,000 cells.
  std::string yaml = testing::TestBackendSpec("crash", 1000, /*sleep_min=*/5, /*sleep_max=*/20);

  Cluster chaos(testing::MakeTempDir("ftb-crash-"));
  chaos.StartCoordinator();
  std::string id = chaos.Submit(yaml);
  ASSERT_FALSE(id.empty());
  for (size_t i = 0; i < 3; ++i) chaos.StartWorker(i);

  int coordinator_kills = 0, worker_kills = 0;
  for (int round = 0; round < 8; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250 + rng() % 600));
    if (round % 2 == 0) {
      chaos.coordinator().Kill();
      chaos.coordinator().Wait();
      ++coordinator_kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
      chaos.StartCoordinator();
    } else {
      size_t w = rng() % 3;
      chaos.worker(w).Kill();
      chaos.worker(w).Wait();
      ++worker_kills;
      chaos.StartWorker(w);
    }
  }
  v1::CampaignProgress end = chaos.WaitForEnd(id, 240);
  chaos.StopAll();
  ASSERT_EQ(end.state(), v1::CAMPAIGN_STATE_SUCCEEDED)
      << end.DebugString() << "\ncoordinator log:\n"
      << testing::ReadFile(chaos.dir() + "/coordinator.log");
  EXPECT_GE(coordinator_kills, 3);
  EXPECT_GE(worker_kills, 3);
  EXPECT_EQ(end.cells_total(), 2000u);
  EXPECT_EQ(end.cells_done(), 2000u);
  EXPECT_EQ(end.tasks_done(), 1000u);

  StoredOutcome chaotic = ReadStore(chaos.dir() + "/state", id);
  EXPECT_EQ(chaotic.results, 1000u);       // one result per training run...
  EXPECT_EQ(chaotic.done_records, 1000u);  // ...each task done once...
  EXPECT_EQ(chaotic.mismatched_attempts, 0u);  // ...by the attempt that reported it
  EXPECT_GE(chaotic.attempts, 1000u);
  std::cout << "crash test: " << coordinator_kills << " coordinator and " << worker_kills
            << " worker SIGKILLs; " << chaotic.attempts << " attempts for 1000 tasks\n";

  // The same campaign, uninterrupted.
  Cluster calm(testing::MakeTempDir("ftb-calm-"));
  calm.StartCoordinator();
  std::string calm_id = calm.Submit(yaml);  // same spec, same cell ids
  calm.StartWorker(0);
  ASSERT_EQ(calm.WaitForEnd(calm_id, 120).state(), v1::CAMPAIGN_STATE_SUCCEEDED);
  calm.StopAll();
  StoredOutcome reference = ReadStore(calm.dir() + "/state", calm_id);
  EXPECT_EQ(reference.results, 1000u);
  EXPECT_EQ(reference.attempts, 1000u);
  EXPECT_EQ(chaotic.digests, reference.digests);
  if (!HasFailure()) {  // keep the logs and state of a failed run for inspection
    std::filesystem::remove_all(chaos.dir());
    std::filesystem::remove_all(calm.dir());
  }
}

}  // namespace
}  // namespace ftb
