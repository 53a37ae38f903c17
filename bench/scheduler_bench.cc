// Scheduler benchmark: the numbers behind docs/benchmarks.md, measured in one
// run and printed as a report (a plain main, not Google Benchmark: the
// sections depend on each other, e.g. the floors copy the message sizes and
// batch shape the service run produced).
//
//   scheduler_bench [--lease-batch=N] [--also-lease-batch=M] [--workers=W]
//                   [--seconds=S] [--repeats=R] [--no-optuna]
//   FTB_BENCH_DIR   where the RocksDB stores go (default /tmp; must be a real
//                   disk: fsync on tmpfs is free and the numbers would lie)
//
// Sections, in the order they run (the fork in recovery happens before any
// thread exists):
//   shape      one lease+complete round of N tasks on an in-memory scheduler:
//              the four messages' wire sizes, the keys and bytes the
//              scheduler writes per task, its CPU per task (exact, from the
//              real code);
//   planning   spec parse + Scheduler::Submit of a 1,000,000-cell campaign
//              (in-memory store), PlanCampaign alone, RSS delta per pending
//              cell (/proc/self/statm) and Scheduler::ApproximateMemoryBytes;
//   recovery   a forked child submits the same campaign to a
//              RocksDbStateStore, completes 100,000 tasks (committing every
//              1,000), leases 1,000 more, reports on a pipe and is SIGKILLed;
//              the parent times RocksDbStateStore::Open (WAL replay) and
//              Scheduler::Recover and checks the recovered counts exactly;
//   service    CoordinatorServer on 127.0.0.1 with a RocksDB state dir; W
//              worker threads, one TCP connection each, register and loop
//              LeaseTasks(max_tasks=N) -> CompleteTasks(all N): durable
//              completions/s over a steady window, latencies, RPCs and tasks
//              per committed batch, where the loop thread's time went; then
//              the same with M tasks per lease;
//   floors     (a) gRPC: the same W threads/connections making the same two
//              unary calls per round, same request and response sizes,
//              against a generic service that does nothing; (b) RocksDB: one
//              thread writing synced batches shaped like the service's
//              commits through RocksDbStateStore; (c) gRPC + RocksDB: (a)
//              where the server also group-commits the keys each call writes
//              in the service, one synced batch per loop turn, like
//              SchedulerLoop without the scheduling;
//   optuna     bench/optuna_baseline.py under /usr/bin/python3 (GridSampler
//              over 1,000 points, SQLite storage, no-op objective, <= 30 s).
// Service and floor runs are interleaved and repeated R times; the best of
// each is kept (the machine is shared; neighbours only slow runs down).
// Targets are informative: each prints PASS or MISS; the exit status is
// non-zero only when the benchmark itself could not run.

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/ids.h"
#include "coordinator/planner.h"
#include "coordinator/scheduler.h"
#include "coordinator/service.h"
#include "cost/price_table.h"
#include "datasets/dataset.h"
#include "ftb/v1/coordinator.grpc.pb.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "spec/spec.h"
#include "storage/memory_state_store.h"
#include "storage/rocksdb_state_store.h"
#include "workers/test_backend.h"

namespace ftb::bench {
namespace {

using Clock = std::chrono::steady_clock;
using coordinator::DatasetSummary;
using coordinator::Scheduler;
using coordinator::SchedulerOptions;

// --- flags and small helpers --------------------------------------------------

struct Flags {
  uint32_t lease_batch = 1000;      // the headline run, which the floors copy
  uint32_t also_lease_batch = 100;  // a second service run for comparison; 0 = none
  int workers = 4;
  double seconds = 3;  // measured window of the service and echo runs
  int repeats = 2;     // throughput runs are repeated, the best is kept
  bool optuna = true;
};

// The grids: a single epoch, so one TUNE task per cell.
constexpr uint64_t kPlanSeeds = 1000, kPlanBatchSizes = 1000;       // 1,000,000 cells
constexpr uint64_t kServiceSeeds = 3000, kServiceBatchSizes = 200;  // 600,000 tasks
constexpr uint64_t kRecoveryCompleted = 100'000;
constexpr uint32_t kRecoveryLeased = 1000;
constexpr int kOptunaTrials = 1000;

[[noreturn]] void Die(const std::string& what, const absl::Status& status) {
  fprintf(stderr, "scheduler_bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  exit(1);
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what, v.status());
  return *std::move(v);
}

void OkOrDie(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Die(what, s);
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A fresh directory under $FTB_BENCH_DIR (default /tmp); removed by the
// destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    const char* base = getenv("FTB_BENCH_DIR");
    std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/ftb_", name, "_XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) {
      Die("mkdtemp " + tmpl, absl::InternalError(strerror(errno)));
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Resident set size from /proc/self/statm (second field, in pages).
int64_t RssBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// The benchmark campaign: builtin people (size 1), the `test` backend with no
// sleep, one epoch, `seeds` x `batch_sizes` cells = tasks. Leases long enough
// that none expires during a run.
std::string CampaignYaml(uint64_t seeds, uint64_t batch_sizes) {
  std::string yaml =
      "name: bench\n"
      "datasets:\n"
      "  - {source: builtin, name: people, size: 1, seed: 1}\n"
      "models:\n"
      "  - name: fixture\n"
      "    backend: test\n"
      "    options: {sleep_ms_min: 0, sleep_ms_max: 0}\n"
      "grid:\n"
      "  epochs: [1]\n"
      "  learning_rate_multiplier: [1.0]\n"
      "  batch_size: [";
  for (uint64_t b = 1; b <= batch_sizes; ++b) absl::StrAppend(&yaml, b == 1 ? "" : ", ", b);
  absl::StrAppend(&yaml, "]\n  seed: [");
  for (uint64_t s = 0; s < seeds; ++s) absl::StrAppend(&yaml, s == 0 ? "" : ", ", s);
  absl::StrAppend(&yaml, "]\nretry:\n  lease_seconds: 3600\n");
  return yaml;
}

std::vector<DatasetSummary> Summaries(const v1::CampaignSpec& spec) {
  std::vector<DatasetSummary> out;
  for (const v1::DatasetSpec& ds : spec.datasets()) {
    v1::Dataset data = OrDie(datasets::LoadDataset(ds), "load dataset " + ds.name());
    out.push_back(coordinator::Summarize(ds, data));
  }
  return out;
}

// What the coordinator binary uses (service.cc), minus the store.
SchedulerOptions BenchSchedulerOptions() {
  SchedulerOptions o;
  o.max_cells_per_campaign = 20'000'000;
  o.prices = &cost::PriceTable::Builtin();
  return o;
}

v1::RegisterWorkerRequest RegisterRequest(const std::string& worker_id) {
  v1::RegisterWorkerRequest r;
  r.set_worker_id(worker_id);
  r.set_role(v1::WORKER_ROLE_TUNE);
  r.add_backends("test");
  r.set_slots(1);
  return r;
}

// What a worker of the `test` backend reports for a lease.
v1::CompleteTasksRequest Completions(const std::string& worker_id,
                                     const v1::LeaseTasksResponse& leased) {
  v1::CompleteTasksRequest r;
  r.set_worker_id(worker_id);
  for (const v1::TaskAssignment& t : leased.tasks()) {
    v1::TaskCompletion* c = r.add_completions();
    c->set_task_id(t.task_id());
    c->set_attempt(t.attempt());
    c->set_lease_token(t.lease_token());
    *c->mutable_result() = workers::TestBackend::ExpectedResult(t.tune());
  }
  return r;
}

// --- shape -------------------------------------------------------------------

struct Shape {
  size_t lease_request_bytes = 0, lease_response_bytes = 0;
  size_t complete_request_bytes = 0, complete_response_bytes = 0;
  double keys_per_task = 0;
  uint32_t lease_keys = 0, complete_keys = 0;  // keys one call of each writes
  double key_bytes = 0, value_bytes = 0;       // averages over the written keys
  // In-process cost on the scheduler thread (memory store, no gRPC).
  double lease_us_per_task = 0, complete_us_per_task = 0, serialize_us_per_task = 0;
};

Shape MeasureShape(uint32_t n) {
  // Timed rounds after the first, in kSets sets; the fastest set is kept.
  constexpr int kRounds = 20, kSets = 3;
  v1::CampaignSpec spec = OrDie(spec::ParseCampaignSpec(CampaignYaml(n, kSets * kRounds + 2),
                                                        "bench.yaml", spec::ProcessEnv()),
                                "parse");
  storage::MemoryStateStore store;
  RandomIdSource ids;
  Scheduler s(&store, RealClock::Get(), &ids, BenchSchedulerOptions());
  OkOrDie(s.Recover(), "recover");
  OrDie(s.Submit(spec, Summaries(spec), "", ""), "submit");
  OkOrDie(s.Commit(), "commit");
  s.RegisterWorker(RegisterRequest("shape-worker"));
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("shape-worker");
  lease.set_max_tasks(n);
  v1::LeaseTasksResponse leased = OrDie(s.Lease(lease), "lease");
  storage::WriteBatch lease_writes = s.TakeBatch();
  v1::CompleteTasksRequest complete = Completions("shape-worker", leased);
  v1::CompleteTasksResponse completed = OrDie(s.Complete(complete), "complete");
  storage::WriteBatch complete_writes = s.TakeBatch();

  Shape shape;
  shape.lease_request_bytes = lease.ByteSizeLong();
  shape.lease_response_bytes = leased.ByteSizeLong();
  shape.complete_request_bytes = complete.ByteSizeLong();
  shape.complete_response_bytes = completed.ByteSizeLong();
  size_t keys = 0, key_bytes = 0, value_bytes = 0;
  for (const storage::WriteBatch* b : {&lease_writes, &complete_writes}) {
    for (const auto& op : b->ops()) {
      ++keys;
      key_bytes += op.key.size();
      value_bytes += op.value.size();
    }
  }
  shape.keys_per_task = static_cast<double>(keys) / leased.tasks_size();
  shape.lease_keys = static_cast<uint32_t>(lease_writes.size());
  shape.complete_keys = static_cast<uint32_t>(complete_writes.size());
  shape.key_bytes = static_cast<double>(key_bytes) / static_cast<double>(keys);
  shape.value_bytes = static_cast<double>(value_bytes) / static_cast<double>(keys);

  // Loop-thread CPU per task, without gRPC or RocksDB: the scheduler calls
  // and the serialization of the replies (which gRPC does on the thread that
  // finishes the call, i.e. the loop thread).
  for (int set = 0; set < kSets; ++set) {
    double lease_s = 0, complete_s = 0, serialize_s = 0;
    uint64_t tasks = 0;
    for (int round = 0; round < kRounds; ++round) {
      auto t = Clock::now();
      leased = OrDie(s.Lease(lease), "lease");
      lease_s += SecondsSince(t);
      t = Clock::now();
      std::string wire = leased.SerializeAsString();
      serialize_s += SecondsSince(t);
      s.TakeBatch();
      complete = Completions("shape-worker", leased);
      t = Clock::now();
      completed = OrDie(s.Complete(complete), "complete");
      complete_s += SecondsSince(t);
      t = Clock::now();
      wire = completed.SerializeAsString();
      serialize_s += SecondsSince(t);
      s.TakeBatch();
      tasks += static_cast<uint64_t>(leased.tasks_size());
    }
    const double us = 1e6 / static_cast<double>(tasks);
    if (set == 0 || (lease_s + complete_s + serialize_s) * us < shape.lease_us_per_task +
                                                                    shape.complete_us_per_task +
                                                                    shape.serialize_us_per_task) {
      shape.lease_us_per_task = lease_s * us;
      shape.complete_us_per_task = complete_s * us;
      shape.serialize_us_per_task = serialize_s * us;
    }
  }
  return shape;
}

// --- planning and memory -------------------------------------------------------

struct PlanningResult {
  uint64_t cells = 0;
  double parse_s = 0, plan_s = 0, submit_s = 0;
  double rss_bytes_per_cell = 0, approx_bytes_per_cell = 0;
};

PlanningResult MeasurePlanning() {
  PlanningResult r;
  const std::string yaml = CampaignYaml(kPlanSeeds, kPlanBatchSizes);
  auto t = Clock::now();
  v1::CampaignSpec spec =
      OrDie(spec::ParseCampaignSpec(yaml, "bench.yaml", spec::ProcessEnv()), "parse");
  r.parse_s = SecondsSince(t);
  std::vector<DatasetSummary> summaries = Summaries(spec);
  {
    t = Clock::now();
    coordinator::Plan plan = OrDie(coordinator::PlanCampaign(spec, summaries), "plan");
    r.plan_s = SecondsSince(t);
    r.cells = plan.cells.size();
  }
  storage::MemoryStateStore store;
  RandomIdSource ids;
  FakeClock clock;
  auto s = std::make_unique<Scheduler>(&store, &clock, &ids, BenchSchedulerOptions());
  OkOrDie(s->Recover(), "recover");
  const int64_t rss_before = RssBytes();
  t = Clock::now();
  coordinator::SubmitResult submitted = OrDie(s->Submit(spec, summaries, yaml, ""), "submit");
  r.submit_s = SecondsSince(t);
  const int64_t rss_after = RssBytes();
  OkOrDie(s->Commit(), "commit");
  r.cells = submitted.cells;
  r.rss_bytes_per_cell =
      static_cast<double>(rss_after - rss_before) / static_cast<double>(submitted.cells);
  r.approx_bytes_per_cell =
      static_cast<double>(s->ApproximateMemoryBytes()) / static_cast<double>(submitted.cells);
  return r;
}

// --- recovery after SIGKILL --------------------------------------------------------

struct RecoveryResult {
  uint64_t cells = 0;
  uint64_t completed = 0, leased = 0;
  double child_setup_s = 0;  // submit + completions in the child, for context
  double open_s = 0, recover_s = 0;
  bool counts_match = false;
  std::string mismatch;
};

// Runs in the forked child: never returns. Reports "<campaign> <done>
// <leased> <seconds>\n" on `fd` once everything is committed, then waits to
// be killed.
[[noreturn]] void RecoveryChild(const std::string& dir, int fd) {
  auto t = Clock::now();
  auto store = OrDie(storage::RocksDbStateStore::Open(dir), "child: open store");
  RandomIdSource ids;
  Scheduler s(store.get(), RealClock::Get(), &ids, BenchSchedulerOptions());
  OkOrDie(s.Recover(), "child: recover");
  const std::string yaml = CampaignYaml(kPlanSeeds, kPlanBatchSizes);
  v1::CampaignSpec spec =
      OrDie(spec::ParseCampaignSpec(yaml, "bench.yaml", spec::ProcessEnv()), "child: parse");
  coordinator::SubmitResult submitted =
      OrDie(s.Submit(spec, Summaries(spec), yaml, ""), "child: submit");
  OkOrDie(s.Commit(), "child: commit");
  s.RegisterWorker(RegisterRequest("recovery-worker"));
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("recovery-worker");
  lease.set_max_tasks(1000);
  uint64_t done = 0;
  while (done < kRecoveryCompleted) {
    v1::LeaseTasksResponse leased = OrDie(s.Lease(lease), "child: lease");
    OkOrDie(s.Commit(), "child: commit lease");
    v1::CompleteTasksResponse r =
        OrDie(s.Complete(Completions("recovery-worker", leased)), "child: complete");
    OkOrDie(s.Commit(), "child: commit completions");
    done += static_cast<uint64_t>(r.outcomes_size());
  }
  lease.set_max_tasks(kRecoveryLeased);  // in flight when the coordinator dies
  v1::LeaseTasksResponse in_flight = OrDie(s.Lease(lease), "child: lease");
  OkOrDie(s.Commit(), "child: commit lease");
  std::string marker = absl::StrCat(submitted.campaign_id, " ", done, " ", in_flight.tasks_size(),
                                    " ", SecondsSince(t), "\n");
  if (write(fd, marker.data(), marker.size()) != static_cast<ssize_t>(marker.size())) _exit(2);
  while (true) pause();
}

RecoveryResult MeasureRecovery() {
  RecoveryResult r;
  TempDir dir("recovery");
  int fds[2];
  if (pipe(fds) != 0) Die("pipe", absl::InternalError(strerror(errno)));
  fflush(stdout);
  fflush(stderr);
  pid_t child = fork();
  if (child < 0) Die("fork", absl::InternalError(strerror(errno)));
  if (child == 0) {
    close(fds[0]);
    RecoveryChild(dir.path(), fds[1]);
  }
  close(fds[1]);
  std::string marker;
  char buf[256];
  pollfd p{fds[0], POLLIN, 0};
  while (marker.find('\n') == std::string::npos) {
    if (poll(&p, 1, 300'000) <= 0) break;
    ssize_t got = read(fds[0], buf, sizeof(buf));
    if (got <= 0) break;
    marker.append(buf, static_cast<size_t>(got));
  }
  close(fds[0]);
  kill(child, SIGKILL);
  int wstatus = 0;
  waitpid(child, &wstatus, 0);
  std::vector<std::string> fields = absl::StrSplit(absl::StripAsciiWhitespace(marker), ' ');
  if (fields.size() != 4 || !absl::SimpleAtoi(fields[1], &r.completed) ||
      !absl::SimpleAtoi(fields[2], &r.leased) || !absl::SimpleAtod(fields[3], &r.child_setup_s)) {
    Die("recovery child", absl::InternalError(absl::StrCat("bad or missing marker \"", marker,
                                                           "\" (child status ", wstatus, ")")));
  }
  const std::string& campaign = fields[0];

  auto t = Clock::now();
  auto store = OrDie(storage::RocksDbStateStore::Open(dir.path()), "reopen store");
  r.open_s = SecondsSince(t);
  RandomIdSource ids;
  Scheduler s(store.get(), RealClock::Get(), &ids, BenchSchedulerOptions());
  t = Clock::now();
  OkOrDie(s.Recover(), "recover after kill");
  r.recover_s = SecondsSince(t);
  v1::CampaignProgress progress = OrDie(s.Get(campaign), "get recovered campaign").progress();
  r.cells = progress.cells_total();
  const uint64_t pending = r.cells - r.completed - r.leased;
  r.counts_match = progress.tasks_done() == r.completed && progress.cells_done() == r.completed &&
                   progress.tasks_leased() == r.leased && progress.tasks_pending() == pending;
  if (!r.counts_match) {
    r.mismatch = absl::StrFormat(
        "recovered done=%d cells_done=%d leased=%d pending=%d; expected %d/%d/%d/%d",
        progress.tasks_done(), progress.cells_done(), progress.tasks_leased(),
        progress.tasks_pending(), r.completed, r.completed, r.leased, pending);
  }
  return r;
}

// --- the service -----------------------------------------------------------------

// One TCP connection per worker: without a local subchannel pool (and a
// distinct argument set) channels to the same target share one connection.
std::shared_ptr<grpc::Channel> DedicatedChannel(const std::string& address, int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("ftb.bench.channel_id", index);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

void SetDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
}

// Counters shared by the worker threads of one run.
struct RunState {
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::atomic<uint64_t> completed{0};  // accepted completions
  std::atomic<uint64_t> rounds{0};     // lease+complete rounds (echo: call pairs)
  std::atomic<bool> ran_dry{false};    // a lease came back empty while measuring
  std::atomic<int> errors{0};
  std::string first_error;  // written by the first failing thread
  std::atomic<bool> error_claimed{false};

  void Error(const std::string& e) {
    ++errors;
    if (!error_claimed.exchange(true)) first_error = e;
    stop = true;
  }
};

struct Latencies {
  std::vector<double> lease_ms, complete_ms;
};

void ServiceWorker(const std::string& address, int index, uint32_t lease_batch, RunState* run,
                   Latencies* latencies) {
  auto channel = DedicatedChannel(address, index);
  auto stub = v1::Coordinator::NewStub(channel);
  const std::string worker_id = absl::StrCat("bench-worker-", index);
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::RegisterWorkerResponse response;
    grpc::Status s = stub->RegisterWorker(&ctx, RegisterRequest(worker_id), &response);
    if (!s.ok()) return run->Error("RegisterWorker: " + s.error_message());
  }
  v1::LeaseTasksRequest lease;
  lease.set_worker_id(worker_id);
  lease.set_max_tasks(lease_batch);
  while (!run->stop) {
    const bool measuring = run->measuring;
    v1::LeaseTasksResponse leased;
    auto t = Clock::now();
    {
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      grpc::Status s = stub->LeaseTasks(&ctx, lease, &leased);
      if (!s.ok()) return run->Error("LeaseTasks: " + s.error_message());
    }
    if (measuring) latencies->lease_ms.push_back(SecondsSince(t) * 1e3);
    if (leased.tasks_size() == 0) {
      if (measuring) run->ran_dry = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    v1::CompleteTasksRequest complete = Completions(worker_id, leased);
    v1::CompleteTasksResponse completed;
    t = Clock::now();
    {
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      grpc::Status s = stub->CompleteTasks(&ctx, complete, &completed);
      if (!s.ok()) return run->Error("CompleteTasks: " + s.error_message());
    }
    if (measuring) latencies->complete_ms.push_back(SecondsSince(t) * 1e3);
    uint64_t accepted = 0;
    for (int outcome : completed.outcomes()) {
      accepted += outcome == v1::COMPLETION_OUTCOME_ACCEPTED;
    }
    if (accepted != static_cast<uint64_t>(complete.completions_size())) {
      return run->Error(
          absl::StrCat("CompleteTasks accepted ", accepted, " of ", complete.completions_size()));
    }
    run->completed += accepted;
    ++run->rounds;
  }
}

struct ServiceResult {
  double window_s = 0;
  uint64_t tasks = 0;
  double tasks_per_s = 0;
  double lease_p50_ms = 0, lease_p99_ms = 0, complete_p50_ms = 0, complete_p99_ms = 0;
  uint64_t batches = 0, operations = 0;  // loop counters over the window
  double rpcs_per_batch = 0, tasks_per_batch = 0;
  uint64_t store_writes = 0, store_commits = 0;
  coordinator::SchedulerLoop::Times loop;  // over the window
  double submit_s = 0;
  bool ran_dry = false;
};

// Starts `workers` threads running `body(index, run, latencies)`, lets them
// warm up, measures `seconds`, stops them. `snapshot` is called at the start
// and the end of the window (to read server counters).
template <typename Body, typename Snapshot>
double RunWindow(int workers, double seconds, RunState* run, std::vector<Latencies>* latencies,
                 Body body, Snapshot snapshot) {
  latencies->assign(static_cast<size_t>(workers), {});
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] { body(i, run, &(*latencies)[static_cast<size_t>(i)]); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // connect, warm up
  snapshot(0);
  auto t = Clock::now();
  run->measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  run->measuring = false;
  snapshot(1);
  double window = SecondsSince(t);
  run->stop = true;
  for (auto& th : threads) th.join();
  return window;
}

ServiceResult MeasureService(const Flags& flags, uint32_t lease_batch) {
  ServiceResult r;
  TempDir dir("service");
  coordinator::CoordinatorOptions options;
  options.listen = "127.0.0.1:0";
  options.state_dir = dir.path();
  options.tick_ms = 100;
  options.max_cells = 20'000'000;
  auto server = OrDie(coordinator::CoordinatorServer::Start(options), "start coordinator");
  const std::string address = server->address();
  {
    auto stub = v1::Coordinator::NewStub(DedicatedChannel(address, 1000));
    v1::SubmitCampaignRequest request;
    request.set_spec_yaml(CampaignYaml(kServiceSeeds, kServiceBatchSizes));
    request.set_spec_filename("bench.yaml");
    v1::SubmitCampaignResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    auto t = Clock::now();
    grpc::Status s = stub->SubmitCampaign(&ctx, request, &response);
    r.submit_s = SecondsSince(t);
    OkOrDie(FromGrpcStatus(s), "SubmitCampaign");
  }
  const auto* store = dynamic_cast<const storage::RocksDbStateStore*>(&server->store());
  uint64_t completed[2] = {0, 0}, batches[2] = {0, 0}, ops[2] = {0, 0};
  storage::RocksDbStateStore::WriteStats stats[2];
  coordinator::SchedulerLoop::Times times[2];
  RunState run;
  std::vector<Latencies> latencies;
  r.window_s = RunWindow(
      flags.workers, flags.seconds, &run, &latencies,
      [&](int i, RunState* state, Latencies* lat) {
        ServiceWorker(address, i, lease_batch, state, lat);
      },
      [&](int k) {
        completed[k] = run.completed;
        batches[k] = server->loop()->batches();
        ops[k] = server->loop()->operations();
        times[k] = server->loop()->times();
        if (store != nullptr) stats[k] = store->write_stats();
      });
  if (run.errors > 0) Die("service run", absl::InternalError(run.first_error));
  server->Shutdown();
  r.tasks = completed[1] - completed[0];
  r.tasks_per_s = static_cast<double>(r.tasks) / r.window_s;
  r.batches = batches[1] - batches[0];
  r.operations = ops[1] - ops[0];
  r.rpcs_per_batch = r.batches ? static_cast<double>(r.operations) / r.batches : 0;
  r.tasks_per_batch = r.batches ? static_cast<double>(r.tasks) / r.batches : 0;
  r.store_writes = stats[1].writes - stats[0].writes;
  r.store_commits = stats[1].commits - stats[0].commits;
  r.loop.run_seconds = times[1].run_seconds - times[0].run_seconds;
  r.loop.commit_seconds = times[1].commit_seconds - times[0].commit_seconds;
  r.loop.done_seconds = times[1].done_seconds - times[0].done_seconds;
  std::vector<double> lease, complete;
  for (const Latencies& l : latencies) {
    lease.insert(lease.end(), l.lease_ms.begin(), l.lease_ms.end());
    complete.insert(complete.end(), l.complete_ms.begin(), l.complete_ms.end());
  }
  r.lease_p50_ms = Percentile(lease, 0.50);
  r.lease_p99_ms = Percentile(lease, 0.99);
  r.complete_p50_ms = Percentile(complete, 0.50);
  r.complete_p99_ms = Percentile(complete, 0.99);
  r.ran_dry = run.ran_dry;
  return r;
}

// --- gRPC floors: a generic echo of given sizes, with or without writes -----------

constexpr char kEchoMethod[] = "/ftb.bench.Echo/Echo";

// The request names the reply: its first 8 bytes are the response length and
// the number of keys to write (uint32 each, host order; same process).
struct EchoHeader {
  uint32_t response_bytes = 0;
  uint32_t keys = 0;
};

// Replies to each call with a message of the requested length. Without a
// store it does nothing else (the gRPC floor). With a store it mirrors
// SchedulerLoop minus the scheduling: calls queue for one thread that writes
// the keys of every queued call as ONE synced batch, then replies to them
// all (the gRPC + RocksDB floor).
class SizedEchoService final : public grpc::CallbackGenericService {
 public:
  // `store` may be null; not owned. Keys and values have the given sizes.
  SizedEchoService(storage::RocksDbStateStore* store, size_t key_bytes, size_t value_bytes)
      : store_(store), key_bytes_(std::max<size_t>(key_bytes, 8)), value_(value_bytes, 'v') {
    if (store_ != nullptr) committer_ = std::thread([this] { Commit(); });
  }
  ~SizedEchoService() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (committer_.joinable()) committer_.join();
  }
  uint64_t commits() const {
    absl::MutexLock lock(&mu_);
    return commits_;
  }

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new Reactor(this);
  }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Reactor(SizedEchoService* service) : service_(service) { StartRead(&request_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
        return;
      }
      std::vector<grpc::Slice> slices;
      if (request_.Dump(&slices).ok() && !slices.empty() && slices[0].size() >= sizeof(header_)) {
        memcpy(&header_, slices[0].begin(), sizeof(header_));
      }
      if (service_->store_ == nullptr) {
        Reply(absl::OkStatus());
      } else {
        service_->Enqueue(this);
      }
    }
    void Reply(const absl::Status& commit) {
      if (!commit.ok()) {
        Finish(ToGrpcStatus(commit));
        return;
      }
      std::string payload(header_.response_bytes, 'r');
      grpc::Slice slice(payload);
      response_ = grpc::ByteBuffer(&slice, 1);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    }
    uint32_t keys() const { return header_.keys; }
    void OnWriteDone(bool) override {}
    void OnDone() override { delete this; }

   private:
    SizedEchoService* service_;
    EchoHeader header_;
    grpc::ByteBuffer request_, response_;
  };

  void Enqueue(Reactor* r) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(r);
  }

  void Commit() {
    auto has_work = [this]()
                        ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
    while (true) {
      std::vector<Reactor*> calls;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(&has_work));
        if (queue_.empty()) return;  // stopping
        calls.swap(queue_);
      }
      storage::WriteBatch batch;
      for (Reactor* r : calls) {
        for (uint32_t k = 0; k < r->keys(); ++k) {
          std::string key(key_bytes_ - 8, 'k');
          const uint64_t id = next_key_++;
          for (int b = 7; b >= 0; --b) key.push_back(static_cast<char>(id >> (8 * b)));
          batch.Put(key, value_);
        }
      }
      absl::Status status = store_->Write(batch);
      {
        absl::MutexLock lock(&mu_);
        ++commits_;
      }
      for (Reactor* r : calls) r->Reply(status);
    }
  }

  storage::RocksDbStateStore* const store_;
  const size_t key_bytes_;
  const std::string value_;
  uint64_t next_key_ = 0;  // committer thread only
  mutable absl::Mutex mu_;
  std::vector<Reactor*> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread committer_;
};

grpc::ByteBuffer EchoRequest(size_t request_bytes, EchoHeader header) {
  std::string payload(std::max(request_bytes, sizeof(header)), 'q');
  memcpy(payload.data(), &header, sizeof(header));
  grpc::Slice slice(payload);
  return grpc::ByteBuffer(&slice, 1);
}

struct EchoResult {
  double window_s = 0;
  double calls_per_s = 0;
  double rounds_per_s = 0;  // pairs of calls shaped like lease + complete
  double p50_ms = 0;        // of the lease-shaped call
  double calls_per_commit = 0;
};

// W threads, one connection each, looping {lease-shaped call, complete-shaped
// call}. `durable`: each call also writes the keys its RPC writes in the
// service (see SizedEchoService).
EchoResult MeasureEcho(const Flags& flags, const Shape& shape, bool durable) {
  std::optional<TempDir> dir;
  std::unique_ptr<storage::RocksDbStateStore> store;
  if (durable) {
    dir.emplace("echo_floor");
    store = OrDie(storage::RocksDbStateStore::Open(dir->path()), "open echo store");
  }
  SizedEchoService service(store.get(), static_cast<size_t>(shape.key_bytes + 0.5),
                           static_cast<size_t>(shape.value_bytes + 0.5));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(&service);
  builder.SetMaxReceiveMessageSize(64 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) Die("echo server", absl::UnavailableError("cannot listen"));
  const std::string address = absl::StrCat("127.0.0.1:", port);

  auto body = [&](int i, RunState* run, Latencies* lat) {
    auto channel = DedicatedChannel(address, i);
    grpc::internal::RpcMethod method(kEchoMethod, grpc::internal::RpcMethod::NORMAL_RPC, channel);
    const grpc::ByteBuffer lease =
        EchoRequest(shape.lease_request_bytes,
                    {static_cast<uint32_t>(shape.lease_response_bytes), shape.lease_keys});
    const grpc::ByteBuffer complete =
        EchoRequest(shape.complete_request_bytes,
                    {static_cast<uint32_t>(shape.complete_response_bytes), shape.complete_keys});
    while (!run->stop) {
      const bool measuring = run->measuring;
      for (const grpc::ByteBuffer* request : {&lease, &complete}) {
        grpc::ClientContext ctx;
        SetDeadline(&ctx);
        grpc::ByteBuffer response;
        auto t = Clock::now();
        grpc::Status s = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
            channel.get(), method, &ctx, *request, &response);
        if (!s.ok()) return run->Error("echo: " + s.error_message());
        if (measuring && request == &lease) lat->lease_ms.push_back(SecondsSince(t) * 1e3);
      }
      ++run->rounds;
    }
  };
  RunState run;
  std::vector<Latencies> latencies;
  uint64_t rounds[2] = {0, 0}, commits[2] = {0, 0};
  EchoResult r;
  r.window_s = RunWindow(flags.workers, flags.seconds, &run, &latencies, body, [&](int k) {
    rounds[k] = run.rounds;
    commits[k] = service.commits();
  });
  if (run.errors > 0) Die("echo run", absl::InternalError(run.first_error));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  r.rounds_per_s = static_cast<double>(rounds[1] - rounds[0]) / r.window_s;
  r.calls_per_s = 2 * r.rounds_per_s;
  if (commits[1] > commits[0]) {
    r.calls_per_commit = 2 * static_cast<double>(rounds[1] - rounds[0]) /
                         static_cast<double>(commits[1] - commits[0]);
  }
  std::vector<double> lease;
  for (const Latencies& l : latencies)
    lease.insert(lease.end(), l.lease_ms.begin(), l.lease_ms.end());
  r.p50_ms = Percentile(lease, 0.5);
  return r;
}

// --- RocksDB floor: synced batches shaped like the service's commits -----------------

struct RocksFloorResult {
  size_t keys_per_batch = 0, key_bytes = 0, value_bytes = 0;
  double writes_per_s = 0, keys_per_s = 0;
};

RocksFloorResult MeasureRocksFloor(size_t keys_per_batch, size_t key_bytes, size_t value_bytes,
                                   double seconds) {
  RocksFloorResult r;
  r.keys_per_batch = std::max<size_t>(1, keys_per_batch);
  r.key_bytes = std::max<size_t>(key_bytes, 8);
  r.value_bytes = value_bytes;
  TempDir dir("rocks_floor");
  auto store = OrDie(storage::RocksDbStateStore::Open(dir.path()), "open floor store");
  const std::string value(r.value_bytes, 'v');
  std::string key(r.key_bytes - 8, 'k');
  uint64_t next = 0, writes = 0;
  auto run = [&](double for_seconds) {
    uint64_t n = 0;
    auto t = Clock::now();
    while (SecondsSince(t) < for_seconds) {
      storage::WriteBatch batch;
      for (size_t k = 0; k < r.keys_per_batch; ++k) {
        std::string full = key;
        uint64_t id = next++;
        for (int b = 7; b >= 0; --b) full.push_back(static_cast<char>(id >> (8 * b)));
        batch.Put(full, value);
      }
      OkOrDie(store->Write(batch), "floor write");
      ++n;
    }
    return std::make_pair(n, SecondsSince(t));
  };
  run(0.3);  // warm up
  auto [n, elapsed] = run(seconds);
  writes = n;
  r.writes_per_s = static_cast<double>(writes) / elapsed;
  r.keys_per_s = r.writes_per_s * static_cast<double>(r.keys_per_batch);
  return r;
}

// --- Optuna ------------------------------------------------------------------------

struct OptunaResult {
  bool ran = false;
  std::string note;  // why it was skipped
  double trials_per_s = 0;
  int trials = 0;
  std::string version;
};

OptunaResult MeasureOptuna() {
  OptunaResult r;
  std::string command =
      absl::StrCat("/usr/bin/python3 ", FTB_SOURCE_DIR, "/bench/optuna_baseline.py --trials ",
                   kOptunaTrials, " --timeout 30 2>&1");
  fflush(stdout);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    r.note = "could not start /usr/bin/python3";
    return r;
  }
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) out += buf;
  int status = pclose(pipe);
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<std::string> kv = absl::StrSplit(line, absl::MaxSplits(": ", 1));
    if (kv.size() != 2) continue;
    if (kv[0] == "trials_per_second") r.ran = absl::SimpleAtod(kv[1], &r.trials_per_s);
    if (kv[0] == "trials") (void)absl::SimpleAtoi(kv[1], &r.trials);
    if (kv[0] == "optuna_version") r.version = kv[1];
  }
  if (!r.ran) {
    r.note = out.find("not installed") != std::string::npos
                 ? "not installed, skipped"
                 : absl::StrCat("failed (status ", status,
                                "): ", std::string(absl::StripAsciiWhitespace(out)).substr(0, 300));
  }
  return r;
}

// --- report ----------------------------------------------------------------------------

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      return std::string(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
    }
  }
  return "unknown";
}

const char* Mark(bool pass) { return pass ? "PASS" : "MISS"; }

void Row(const std::string& metric, const std::string& value, const std::string& target = "",
         std::optional<bool> pass = std::nullopt) {
  printf("  %-44s %18s   %-12s %s\n", metric.c_str(), value.c_str(), target.c_str(),
         pass.has_value() ? Mark(*pass) : "");
}

std::string Num(double v, int decimals = 0) { return absl::StrFormat("%.*f", decimals, v); }

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto value = [&](absl::string_view name) -> std::optional<absl::string_view> {
      if (a.substr(0, name.size()) == name) return a.substr(name.size());
      return std::nullopt;
    };
    bool ok = true;
    if (auto v = value("--lease-batch=")) {
      ok = absl::SimpleAtoi(*v, &f.lease_batch) && f.lease_batch >= 1 && f.lease_batch <= 1000;
    } else if (auto v = value("--also-lease-batch=")) {
      ok = absl::SimpleAtoi(*v, &f.also_lease_batch) && f.also_lease_batch <= 1000;
    } else if (auto v = value("--workers=")) {
      ok = absl::SimpleAtoi(*v, &f.workers) && f.workers >= 1 && f.workers <= 64;
    } else if (auto v = value("--repeats=")) {
      ok = absl::SimpleAtoi(*v, &f.repeats) && f.repeats >= 1 && f.repeats <= 10;
    } else if (auto v = value("--seconds=")) {
      ok = absl::SimpleAtod(*v, &f.seconds) && f.seconds > 0 && f.seconds <= 60;
    } else if (a == "--no-optuna") {
      f.optuna = false;
    } else {
      ok = false;
    }
    if (!ok) {
      fprintf(stderr,
              "usage: scheduler_bench [--lease-batch=1..1000] [--also-lease-batch=0..1000] "
              "[--workers=1..64] [--seconds=S] [--repeats=1..10] [--no-optuna]\n"
              "(bad argument: %s)\n",
              argv[i]);
      exit(2);
    }
  }
  return f;
}

void ServiceRows(const ServiceResult& r) {
  Row("task completions/s", Num(r.tasks_per_s), ">= 50000", r.tasks_per_s >= 50'000);
  Row("tasks completed in window", absl::StrCat(r.tasks, " in ", Num(r.window_s, 2), " s"));
  Row("LeaseTasks p50 / p99 (ms)",
      absl::StrCat(Num(r.lease_p50_ms, 2), " / ", Num(r.lease_p99_ms, 2)));
  Row("CompleteTasks p50 / p99 (ms)",
      absl::StrCat(Num(r.complete_p50_ms, 2), " / ", Num(r.complete_p99_ms, 2)));
  Row("committed batches/s", Num(static_cast<double>(r.batches) / r.window_s));
  Row("RPCs (ops) per committed batch", Num(r.rpcs_per_batch, 2));
  Row("tasks per committed batch", Num(r.tasks_per_batch, 1));
  Row("store writes / synced commits", absl::StrCat(r.store_writes, " / ", r.store_commits));
  Row("SubmitCampaign of 600,000 tasks (s)", Num(r.submit_s, 2));
  if (r.batches > 0) {
    const double per_batch = 1e3 / static_cast<double>(r.batches);
    const double run = r.loop.run_seconds * per_batch, commit = r.loop.commit_seconds * per_batch,
                 done = r.loop.done_seconds * per_batch;
    const double period = r.window_s * per_batch;
    Row("loop thread per batch (ms): period", Num(period, 2));
    Row("  run ops / commit / reply / wait",
        absl::StrFormat("%.2f / %.2f / %.2f / %.2f", run, commit, done,
                        period - run - commit - done));
  }
  if (r.ran_dry) printf("  WARNING: the campaign ran out of tasks inside the window\n");
}

int Main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  const auto started = Clock::now();
  printf("scheduler_bench: %u CPU(s), %s; stores under %s\n", std::thread::hardware_concurrency(),
         CpuModel().c_str(), getenv("FTB_BENCH_DIR") != nullptr ? getenv("FTB_BENCH_DIR") : "/tmp");
  printf("  %d workers, lease batch %u (also %u), measured windows %.1f s, best of %d\n\n",
         flags.workers, flags.lease_batch, flags.also_lease_batch, flags.seconds, flags.repeats);
  fflush(stdout);

  // No thread may exist before the fork in MeasureRecovery().
  const Shape shape = MeasureShape(flags.lease_batch);
  const PlanningResult planning = MeasurePlanning();
  const RecoveryResult recovery = MeasureRecovery();
  // Throughput runs, interleaved and repeated; the best of each is kept (the
  // disk and the CPUs are shared, and neighbours only ever slow a run down).
  // The RocksDB floor copies the batch shape of the best service run so far.
  ServiceResult service;
  std::optional<ServiceResult> also;
  EchoResult echo, durable_echo;
  RocksFloorResult rocks;
  for (int round = 0; round < flags.repeats; ++round) {
    ServiceResult s = MeasureService(flags, flags.lease_batch);
    if (s.tasks_per_s > service.tasks_per_s) service = s;
    if (flags.also_lease_batch > 0 && flags.also_lease_batch != flags.lease_batch) {
      ServiceResult a = MeasureService(flags, flags.also_lease_batch);
      if (!also.has_value() || a.tasks_per_s > also->tasks_per_s) also = a;
    }
    EchoResult e = MeasureEcho(flags, shape, /*durable=*/false);
    if (e.rounds_per_s > echo.rounds_per_s) echo = e;
    EchoResult d = MeasureEcho(flags, shape, /*durable=*/true);
    if (d.rounds_per_s > durable_echo.rounds_per_s) durable_echo = d;
    const double keys_per_batch =
        service.batches ? service.tasks_per_batch * shape.keys_per_task : shape.keys_per_task;
    RocksFloorResult b = MeasureRocksFloor(static_cast<size_t>(keys_per_batch + 0.5),
                                           static_cast<size_t>(shape.key_bytes + 0.5),
                                           static_cast<size_t>(shape.value_bytes + 0.5), 2.0);
    if (b.keys_per_s > rocks.keys_per_s) rocks = b;
  }
  OptunaResult optuna;
  optuna.note = "skipped (--no-optuna)";
  if (flags.optuna) optuna = MeasureOptuna();

  const double n = flags.lease_batch;
  const double grpc_floor = echo.rounds_per_s * n;
  const double rocks_floor = rocks.keys_per_s / shape.keys_per_task;
  const double min_floor = std::min(grpc_floor, rocks_floor);
  const double combined_floor = durable_echo.rounds_per_s * n;
  const double of_min_floor = service.tasks_per_s / min_floor;
  const double of_combined_floor = service.tasks_per_s / combined_floor;

  printf("Shape of one lease+complete round of %u tasks (from the real code):\n",
         flags.lease_batch);
  printf("  LeaseTasks %zu B -> %zu B, CompleteTasks %zu B -> %zu B\n", shape.lease_request_bytes,
         shape.lease_response_bytes, shape.complete_request_bytes, shape.complete_response_bytes);
  printf("  writes %u + %u keys (%.2f per task), key %.0f B, value %.0f B on average\n",
         shape.lease_keys, shape.complete_keys, shape.keys_per_task, shape.key_bytes,
         shape.value_bytes);
  const double cpu_us =
      shape.lease_us_per_task + shape.complete_us_per_task + shape.serialize_us_per_task;
  printf(
      "  scheduler-thread CPU per task, in-process: Lease %.2f us + Complete %.2f us + "
      "serializing replies %.2f us = %.2f us\n\n",
      shape.lease_us_per_task, shape.complete_us_per_task, shape.serialize_us_per_task, cpu_us);

  printf("  %-44s %18s   %-12s %s\n", "metric", "measured", "target", "status");
  printf("1. durable completions, %d workers over gRPC + RocksDB, lease batch %u\n", flags.workers,
         flags.lease_batch);
  ServiceRows(service);
  if (service.batches > 0) {
    Row("  synced write of a batch, floor (b) (ms)", Num(1e3 / rocks.writes_per_s, 2));
  }
  if (also.has_value()) {
    printf("1b. the same with lease batch %u\n", flags.also_lease_batch);
    ServiceRows(*also);
  }

  printf("2. floors (same message sizes, same %d threads and connections)\n", flags.workers);
  Row("(a) gRPC echo calls/s", Num(echo.calls_per_s));
  Row("    -> tasks/s = call pairs/s x lease batch", Num(grpc_floor));
  Row(absl::StrFormat("(b) RocksDB synced batches/s, %zu keys", rocks.keys_per_batch),
      Num(rocks.writes_per_s));
  Row("    -> tasks/s = keys/s / keys per task", Num(rocks_floor));
  Row("(c) gRPC echo + group-committed writes, calls/s", Num(durable_echo.calls_per_s));
  Row("    calls per synced commit", Num(durable_echo.calls_per_commit, 2));
  Row("    -> tasks/s = call pairs/s x lease batch", Num(combined_floor));
  Row("ours / (c) gRPC+RocksDB floor", Num(of_combined_floor, 3), ">= 0.333",
      of_combined_floor >= 1.0 / 3);
  Row("ours / min((a), (b))", Num(of_min_floor, 3), ">= 0.333", of_min_floor >= 1.0 / 3);

  printf("3. planning %llu cells (in-memory store)\n",
         static_cast<unsigned long long>(planning.cells));
  Row("spec parse (s)", Num(planning.parse_s, 3));
  Row("PlanCampaign alone (s)", Num(planning.plan_s, 3));
  Row("Scheduler::Submit (plan+build+queue) (s)", Num(planning.submit_s, 3));
  Row("parse + Submit (s)", Num(planning.parse_s + planning.submit_s, 3), "< 5",
      planning.parse_s + planning.submit_s < 5);
  Row("RSS delta per pending cell (B)", Num(planning.rss_bytes_per_cell, 1), "< 300",
      planning.rss_bytes_per_cell < 300);
  Row("ApproximateMemoryBytes per cell (B)", Num(planning.approx_bytes_per_cell, 1));

  printf("4. recovery after SIGKILL, %llu cells stored\n",
         static_cast<unsigned long long>(recovery.cells));
  Row("child: submit + complete + lease (s)", Num(recovery.child_setup_s, 2));
  Row("tasks done / leased at kill", absl::StrCat(recovery.completed, " / ", recovery.leased));
  Row("RocksDbStateStore::Open (WAL replay) (s)", Num(recovery.open_s, 3));
  Row("Scheduler::Recover (s)", Num(recovery.recover_s, 3));
  Row("Open + Recover (s)", Num(recovery.open_s + recovery.recover_s, 3), "< 3",
      recovery.open_s + recovery.recover_s < 3);
  Row("recovered counts match", recovery.counts_match ? "yes" : "NO", "exact",
      recovery.counts_match);
  if (!recovery.counts_match) printf("  %s\n", recovery.mismatch.c_str());

  printf("5. Optuna baseline\n");
  if (optuna.ran) {
    Row(absl::StrCat("optuna ", optuna.version, " trials/s (", optuna.trials, " trials)"),
        Num(optuna.trials_per_s, 1));
    const double ratio = service.tasks_per_s / optuna.trials_per_s;
    Row("ours / optuna", Num(ratio, 0) + "x", ">= 1000x", ratio >= 1000);
  } else {
    printf("  optuna: %s\n", optuna.note.c_str());
  }
  printf("\ntotal bench time %.1f s\n", SecondsSince(started));
  return 0;
}

}  // namespace
}  // namespace ftb::bench

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);  // as the ftb binary
  return ftb::bench::Main(argc, argv);
}
