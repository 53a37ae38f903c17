// The coordinator's gRPC front end: the Coordinator service (callback API)
// and the loop that feeds it to the scheduler with group commit.
//
// Threading. gRPC callback threads never touch the scheduler. They validate
// a request, then Post() an operation to the SchedulerLoop's thread. That
// thread runs every queued operation and hands all their state changes, as
// ONE batch, to a commit thread, which writes it (synced) and only then
// completes the RPCs (durable before acknowledged). The two are pipelined:
// while batch N is being written, the loop already runs the operations of
// batch N+1 against the in-memory state. Batches are written in order and
// an RPC is acknowledged only after its own batch (so every earlier one) is
// durable; if a write fails, no later batch is written or acknowledged and
// the scheduler refuses further work (restart to recover from the store).
// Under load one fsync serves many RPCs.
#ifndef FTB_COORDINATOR_SERVICE_H_
#define FTB_COORDINATOR_SERVICE_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/auth.h"
#include "coordinator/metrics.h"
#include "coordinator/scheduler.h"
#include "prometheus/exposer.h"
#include "ftb/v1/coordinator.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "storage/state_store.h"

namespace ftb::coordinator {

class SchedulerLoop {
 public:
  // Receives the events of one campaign; called on the loop thread.
  using EventSink = std::function<void(const v1::CampaignEvent&)>;

  // Takes ownership of the scheduler, which must have been recovered.
  // `on_tick`, if set, runs on the loop thread about every tick (e.g. to
  // refresh metric gauges).
  explicit SchedulerLoop(std::unique_ptr<Scheduler> scheduler, int64_t tick_ms = 100,
                         std::function<void(Scheduler&)> on_tick = nullptr);
  ~SchedulerLoop();  // Stop()s

  // Runs `op` on the loop thread, then — once its writes are durable —
  // `done` with the commit status (not OK: nothing it did may be
  // acknowledged). After Stop(), `done` runs at once with kUnavailable.
  void Post(std::function<void(Scheduler&)> op, std::function<void(const absl::Status&)> done);

  // Subscribes to a campaign's events; returns a handle for Unsubscribe.
  uint64_t Subscribe(const std::string& campaign_id, EventSink sink);
  void Unsubscribe(uint64_t handle);

  // Runs what is queued, writes it, and joins both threads. Idempotent.
  void Stop();

  // `handler` runs once, on the commit thread, with the first failed write's
  // status (at once, on this thread, if one has already failed). From then
  // on nothing is written and the scheduler refuses work (see the file
  // comment); the handler decides what the process does (CoordinatorServer:
  // health NOT_SERVING, then the process drains and exits). Call at most
  // once, before or while serving.
  void OnWriteFailure(std::function<void(const absl::Status&)> handler);

  // Batches committed and operations run, for tests and benchmarks.
  uint64_t batches() const;
  uint64_t operations() const;

  // Where the time went since it started (benchmarks): the loop thread
  // running operations (and ticks), and the commit thread writing batches
  // (one synced write each) and completing the RPCs (their `done`
  // callbacks). The two threads overlap; the rest was waiting.
  struct Times {
    double run_seconds = 0;
    double commit_seconds = 0;
    double done_seconds = 0;
  };
  Times times() const;

 private:
  struct Op {
    std::function<void(Scheduler&)> run;
    std::function<void(const absl::Status&)> done;
  };
  // One batch on its way to the store: the writes of `ops`, their callbacks
  // and the events to publish once it is durable.
  struct Commit {
    storage::WriteBatch batch;
    std::vector<Op> ops;
    std::vector<std::pair<std::string, v1::CampaignEvent>> events;
  };
  void Loop();
  void CommitLoop();
  // Waits until the commit thread can take another batch, then queues it.
  void Enqueue(Commit commit);

  std::unique_ptr<Scheduler> scheduler_;  // loop thread only
  const int64_t tick_ms_;
  std::function<void(Scheduler&)> on_tick_;
  mutable absl::Mutex mu_;
  std::vector<Op> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t operations_ ABSL_GUARDED_BY(mu_) = 0;
  Times times_ ABSL_GUARDED_BY(mu_);
  uint64_t next_handle_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::tuple<uint64_t, std::string, EventSink>> sinks_ ABSL_GUARDED_BY(mu_);
  // The commit thread's queue (at most one batch waits while one is written)
  // and the first failed write, after which nothing more is written.
  std::deque<Commit> commits_ ABSL_GUARDED_BY(mu_);
  bool committing_ ABSL_GUARDED_BY(mu_) = false;
  bool loop_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status write_failure_ ABSL_GUARDED_BY(mu_);
  std::function<void(const absl::Status&)> on_write_failure_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  std::thread commit_thread_;
};

// Implements ftb.v1.Coordinator. Thread-safe. Malformed requests get
// INVALID_ARGUMENT with a message naming the field; nothing reaches the
// scheduler unvalidated.
class CoordinatorService final : public v1::Coordinator::CallbackService {
 public:
  // `metrics` may be null; not owned.
  // `store` (for ExportCampaign) may be null: the RPC then answers
  // UNIMPLEMENTED. Neither is owned.
  explicit CoordinatorService(SchedulerLoop* loop, CoordinatorMetrics* metrics = nullptr,
                              const storage::StateStore* store = nullptr);

  // The largest campaign SubmitCampaign accepts, checked from the spec's
  // axis sizes before its datasets are loaded; the scheduler's own
  // SchedulerOptions::max_cells_per_campaign still applies after it.
  void set_max_cells(uint64_t max_cells) { max_cells_ = max_cells; }

  grpc::ServerUnaryReactor* RegisterWorker(grpc::CallbackServerContext* ctx,
                                           const v1::RegisterWorkerRequest* request,
                                           v1::RegisterWorkerResponse* response) override;
  grpc::ServerUnaryReactor* LeaseTasks(grpc::CallbackServerContext* ctx,
                                       const v1::LeaseTasksRequest* request,
                                       v1::LeaseTasksResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* CompleteTasks(grpc::CallbackServerContext* ctx,
                                          const v1::CompleteTasksRequest* request,
                                          v1::CompleteTasksResponse* response) override;
  grpc::ServerUnaryReactor* FailTask(grpc::CallbackServerContext* ctx,
                                     const v1::FailTaskRequest* request,
                                     v1::FailTaskResponse* response) override;
  grpc::ServerUnaryReactor* RecordTaskIntent(grpc::CallbackServerContext* ctx,
                                             const v1::RecordTaskIntentRequest* request,
                                             v1::RecordTaskIntentResponse* response) override;
  grpc::ServerUnaryReactor* SubmitCampaign(grpc::CallbackServerContext* ctx,
                                           const v1::SubmitCampaignRequest* request,
                                           v1::SubmitCampaignResponse* response) override;
  grpc::ServerUnaryReactor* GetCampaign(grpc::CallbackServerContext* ctx,
                                        const v1::GetCampaignRequest* request,
                                        v1::GetCampaignResponse* response) override;
  grpc::ServerUnaryReactor* ListCampaigns(grpc::CallbackServerContext* ctx,
                                          const v1::ListCampaignsRequest* request,
                                          v1::ListCampaignsResponse* response) override;
  grpc::ServerUnaryReactor* CancelCampaign(grpc::CallbackServerContext* ctx,
                                           const v1::CancelCampaignRequest* request,
                                           v1::CancelCampaignResponse* response) override;
  grpc::ServerUnaryReactor* UpdateBudget(grpc::CallbackServerContext* ctx,
                                         const v1::UpdateBudgetRequest* request,
                                         v1::UpdateBudgetResponse* response) override;
  grpc::ServerUnaryReactor* DeleteCampaign(grpc::CallbackServerContext* ctx,
                                           const v1::DeleteCampaignRequest* request,
                                           v1::DeleteCampaignResponse* response) override;
  grpc::ServerWriteReactor<v1::CampaignEvent>* WatchCampaign(
      grpc::CallbackServerContext* ctx, const v1::WatchCampaignRequest* request) override;
  // Pages of committed records read straight from the store (not through
  // the loop), so a large export never delays scheduling.
  grpc::ServerWriteReactor<v1::ExportCampaignPage>* ExportCampaign(
      grpc::CallbackServerContext* ctx, const v1::ExportCampaignRequest* request) override;

 private:
  // Posts `op` (which fills the response and returns a status) and finishes
  // the call once it is durable.
  template <typename Fn>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, Fn op);

  SchedulerLoop* loop_;
  CoordinatorMetrics* metrics_;
  const storage::StateStore* store_;
  uint64_t max_cells_ = SchedulerOptions().max_cells_per_campaign;
};

// A coordinator listening on a port: store + scheduler + loop + gRPC server
// with reflection. Used by `ftb coordinator`, tests and benchmarks.
struct CoordinatorOptions {
  std::string listen = "127.0.0.1:0";
  std::string state_dir;  // empty = in-memory store (tests, benchmarks)
  int64_t tick_ms = 100;
  // Largest campaign accepted (cells); larger ones get INVALID_ARGUMENT.
  uint64_t max_cells = 5'000'000;
  // Largest request accepted (bytes); larger ones get RESOURCE_EXHAUSTED.
  // As large as workers send (GrpcCoordinatorClientOptions): a batch of
  // finished results with their answers can be tens of MiB.
  int max_receive_message_bytes = 64 << 20;
  // TLS, token and submission rate (coordinator/auth.h). The health
  // service (grpc.health.v1.Health) is always served, without a token.
  ServerSecurityOptions security;
  // HOST:PORT for Prometheus' /metrics; empty = no metrics endpoint. The
  // metrics name campaign ids and model names: bind it to a private address
  // (e.g. 127.0.0.1:9090) or set metrics_require_token.
  std::string metrics_listen;
  // /metrics answers only requests with HTTP Basic auth whose password is
  // security.auth_token (any user name); /healthz stays open. Needs a token.
  bool metrics_require_token = false;
  // Price tables for budgets and estimates; null = PriceTable::Builtin().
  const cost::PriceTable* prices = nullptr;
  // See SchedulerOptions::requeue_leased_on_recovery.
  bool requeue_leased_on_recovery = false;
  // After a state store write fails: how long `ftb coordinator` keeps
  // exporting committed state (health already NOT_SERVING) before it shuts
  // down and exits non-zero. See docs/storage-faults.md.
  double store_failure_drain_seconds = 3;
};

class CoordinatorServer {
 public:
  // Opens the store, recovers, starts serving. kFailedPrecondition when the
  // state directory was written by a newer ftb; kUnavailable when the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      const CoordinatorOptions& options);
  ~CoordinatorServer();  // Shutdown()s

  int port() const { return port_; }
  std::string address() const;
  // Stops accepting calls, finishes in-flight ones (up to a deadline),
  // commits, closes the store. Idempotent.
  void Shutdown();
  void Wait();
  SchedulerLoop* loop() { return loop_.get(); }
  // The state store, for readers (reports) while the server runs. Scans are
  // thread-safe and see committed state only.
  const storage::StateStore& store() const { return *store_; }
  // Bound metrics port (0 when disabled).
  int metrics_port() const;
  // Wall time Recover() took at start.
  double recovery_seconds() const { return recovery_seconds_; }

  // The failed-store behaviour (docs/storage-faults.md). When a write to the
  // state store fails, the server at once turns gRPC health to NOT_SERVING
  // (overall and "ftb.v1.Coordinator"); every RPC served by the scheduler
  // loop answers UNAVAILABLE naming the store error (reads too: memory may
  // hold changes that never reached the disk), while ExportCampaign (`ftb
  // report --coordinator`) keeps serving the committed records until
  // Shutdown.
  // The owner of the process then drains and exits non-zero so a supervisor
  // restarts it, and the restart recovers from what was committed.
  // Returns the store error once one has happened (OK until then), waiting
  // up to `timeout` for it. Thread-safe.
  absl::Status WaitForStoreFailure(absl::Duration timeout);

 private:
  CoordinatorServer() = default;
  std::unique_ptr<storage::StateStore> store_;
  std::unique_ptr<IdSource> ids_;
  std::unique_ptr<CoordinatorMetrics> metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<SchedulerLoop> loop_;
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string host_;
  double recovery_seconds_ = 0;
  bool shut_down_ = false;
  absl::Mutex failure_mu_;
  absl::Status store_failure_ ABSL_GUARDED_BY(failure_mu_);
};

}  // namespace ftb::coordinator

#endif  // FTB_COORDINATOR_SERVICE_H_
