// Watch streams opened and cancelled at random moments while a campaign keeps
// the coordinator's write path busy (issue 18 item 1).
//
// A real coordinator (CoordinatorServer on 127.0.0.1:0, RocksDB in a temp
// directory so every batch is a synced write) runs a campaign of thousands
// of cells on the `test` backend with in-process workers, while resubmissions
// keep the loop queue long. Client threads open hundreds of WatchCampaign
// streams and cancel each one after a random delay (0 to a few ms, so many
// are cancelled before the loop has taken the snapshot), or read a few events
// and then cancel. The seed is printed; FTB_WATCH_STRESS_SEED replays a run.
//
// On the code before the fix the reactor was deleted (OnDone) while its
// snapshot operation was still queued on the loop and then subscribed to
// events: ASan reports heap-use-after-free, a plain build crashes with
// SIGSEGV or "Mutex corrupt". Here the process must survive, the coordinator
// must still answer, and a fresh watch must see the campaign to its end.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/service.h"
#include "ftb/v1/coordinator.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "workers/worker.h"

namespace ftb {
namespace {

std::string StressSpec(int runs) {
  std::string seeds;
  for (int s = 0; s < runs; ++s) absl::StrAppend(&seeds, s ? ", " : "", s);
  return absl::StrCat(R"(name: watch-stress
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - name: fixture
    backend: test
    options: {sleep_ms_min: 30, sleep_ms_max: 70}
grid:
  epochs: [1, 2]
  seed: [)", seeds, R"(]
)");
}

uint64_t Seed() {
  if (const char* s = std::getenv("FTB_WATCH_STRESS_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp ? tmp : "/tmp", "/ftb-watch-stress-XXXXXX");
    path_ = mkdtemp(pattern.data()) ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(WatchStressTest, StreamsCancelledAtRandomMomentsDuringABusyCampaign) {
  const uint64_t seed = Seed();
  std::printf("watch stress seed %llu (FTB_WATCH_STRESS_SEED=%llu replays it)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  RecordProperty("seed", std::to_string(seed));

  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  coordinator::CoordinatorOptions options;
  options.state_dir = dir.path() + "/state";
  options.tick_ms = 10;
  auto started = coordinator::CoordinatorServer::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<coordinator::CoordinatorServer> server = *std::move(started);
  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Coordinator::NewStub(channel);

  v1::SubmitCampaignRequest submit;
  submit.set_spec_yaml(StressSpec(1000));  // 2,000 cells
  submit.set_spec_filename("watch-stress.yaml");
  submit.set_request_id("stress");
  v1::SubmitCampaignResponse submitted;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = stub->SubmitCampaign(&ctx, submit, &submitted);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const std::string campaign = submitted.campaign_id();

  // The write path: tune workers completing tasks, plus a thread posting
  // idempotent resubmissions so the loop's queue is never empty.
  std::vector<std::unique_ptr<workers::Worker>> pool;
  std::vector<std::thread> worker_threads;
  for (int w = 0; w < 3; ++w) {
    workers::WorkerOptions wo;
    wo.coordinator = server->address();
    wo.worker_id = absl::StrCat("stress-", w);
    wo.backends = {"test"};
    wo.slots = 4;
    wo.rpc_deadline = absl::Seconds(10);
    wo.lease_wait = absl::Milliseconds(20);
    wo.lease_poll = absl::Milliseconds(5);
    wo.backoff_initial = absl::Milliseconds(5);
    wo.backoff_max = absl::Milliseconds(100);
    wo.log = [](std::string_view) {};
    auto worker = workers::Worker::Create(wo);
    ASSERT_TRUE(worker.ok()) << worker.status();
    pool.push_back(*std::move(worker));
  }
  for (auto& worker : pool) {
    worker_threads.emplace_back([w = worker.get()] { (void)w->Run(); });
  }
  std::atomic<bool> stop_load{false};
  std::thread resubmitter([&] {
    while (!stop_load.load()) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::SubmitCampaignResponse r;
      (void)stub->SubmitCampaign(&ctx, submit, &r);
    }
  });

  // The watchers: kThreads x kStreams streams, each cancelled at a random
  // moment. Most are cancelled within ~2 ms of opening (before or while the
  // loop takes their snapshot); some read the snapshot first.
  constexpr int kThreads = 8;
  constexpr int kStreams = 60;
  std::atomic<int> opened{0}, read_some{0};
  std::vector<std::thread> watchers;
  for (int t = 0; t < kThreads; ++t) {
    watchers.emplace_back([&, t] {
      std::mt19937_64 rng(seed + t);
      std::uniform_int_distribution<int> delay_us(0, 2000);
      std::uniform_int_distribution<int> mode(0, 9);
      for (int i = 0; i < kStreams; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::WatchCampaignRequest request;
        // Every tenth stream watches a campaign that does not exist (the
        // snapshot fails and the reactor finishes from the commit thread).
        request.set_campaign_id(mode(rng) == 0 ? "no-such-campaign" : campaign);
        auto reader = stub->WatchCampaign(&ctx, request);
        ++opened;
        if (mode(rng) < 2) {
          v1::CampaignEvent event;
          if (reader->Read(&event)) ++read_some;  // the snapshot
        } else {
          std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
        }
        ctx.TryCancel();
        (void)reader->Finish();
      }
    });
  }
  for (std::thread& t : watchers) t.join();
  stop_load = true;
  resubmitter.join();
  EXPECT_EQ(opened.load(), kThreads * kStreams);
  uint64_t done_then = 0, total = 0;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetCampaignRequest request;
    request.set_campaign_id(campaign);
    v1::GetCampaignResponse got;
    if (stub->GetCampaign(&ctx, request, &got).ok()) {
      done_then = got.progress().cells_done();
      total = got.progress().cells_total();
    }
  }
  std::printf("%d streams opened and cancelled, %d events read before cancelling; "
              "campaign at %llu/%llu cells when the last was cancelled\n",
              opened.load(), read_some.load(), static_cast<unsigned long long>(done_then),
              static_cast<unsigned long long>(total));

  // Still serving: a fresh watch follows the campaign to its end.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::WatchCampaignRequest request;
    request.set_campaign_id(campaign);
    auto reader = stub->WatchCampaign(&ctx, request);
    v1::CampaignEvent event, last;
    int events = 0;
    while (reader->Read(&event)) {
      ++events;
      last = event;
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_GE(events, 1);
    EXPECT_EQ(last.progress().state(), v1::CAMPAIGN_STATE_SUCCEEDED) << last.DebugString();
  }
  for (auto& worker : pool) worker->Stop();
  for (std::thread& t : worker_threads) t.join();
  server->Shutdown();
}

}  // namespace
}  // namespace ftb
