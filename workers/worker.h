// The worker runtime: registers with the coordinator, then runs one blocking
// loop (lease -> run -> report) while a heartbeat thread keeps the leases of
// the tasks it holds alive. Tasks run on `slots` threads through the backend
// named by the task (backend.h); the runtime knows no backend by name.
//
// Typical use (what `ftb worker` does):
//
//   WorkerOptions options;
//   options.coordinator = "coordinator:7070";
//   options.role = v1::WORKER_ROLE_TUNE;           // ParseWorkerRole("tune")
//   options.backends = {"test"};
//   options.slots = 4;
//   FTB_ASSIGN_OR_RETURN(auto worker, Worker::Create(options));
//   FTB_ASSIGN_OR_RETURN(auto signals, InstallSignalHandlers(worker.get()));
//   return worker->Run();                          // returns once drained
//
// Guarantees:
//   - A finished result is kept in memory until the coordinator answers for
//     it; while the coordinator is unreachable (kUnavailable,
//     kDeadlineExceeded) reports are retried with exponential backoff and
//     jitter. Only a hard stop (second Stop() or the drain timeout) gives up
//     on results it still could not deliver after a few tries.
//   - A (task, attempt) runs at most once in a worker. If the coordinator
//     leases again a task this worker still runs or has not yet reported
//     (its earlier lease expired during an outage), the worker keeps the one
//     execution and reports it under the newer attempt instead of starting a
//     second run.
//   - A task whose lease is lost (heartbeat deadline 0) is cancelled
//     (TaskContext::cancelled()) and never reported. Completions answered
//     LEASE_LOST or UNKNOWN_TASK are dropped and logged.
//   - kFailedPrecondition from the coordinator (it restarted and forgot this
//     worker) makes the worker register again under the same worker_id and
//     carry on; the tasks it holds keep running.
#ifndef FTB_WORKERS_WORKER_H_
#define FTB_WORKERS_WORKER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ftb/v1/coordinator.pb.h"
#include "workers/backend.h"
#include "workers/backoff.h"
#include "common/grpc_security.h"
#include "workers/coordinator_client.h"

namespace ftb::workers {

struct WorkerOptions {
  // Coordinator address, "host:port". Unused when Create() is given a client.
  std::string coordinator;
  // TLS and bearer token for the coordinator channel (default: plaintext,
  // no token). Unused when Create() is given a client.
  ChannelSecurity security;
  // TUNE workers run TUNE tasks, JUDGE workers JUDGE tasks; a task of the
  // other kind is handed back (FailTask, retryable).
  v1::WorkerRole role = v1::WORKER_ROLE_TUNE;
  // Backend names this worker offers (sent in RegisterWorker); each is
  // created once at Create() from `registry`. At least one.
  std::vector<std::string> backends;
  // Tasks run at once (>= 1).
  int slots = 1;
  // Stable id of this process; empty = DefaultWorkerId().
  std::string worker_id;
  // Sent in RegisterWorker (e.g. {"gpu", "1"}).
  std::map<std::string, std::string> capabilities;

  // Deadline of each RPC (LeaseTasks: plus its long-poll wait).
  absl::Duration rpc_deadline = absl::Seconds(10);
  // Backoff between retries of a failing RPC: starts at backoff_initial,
  // doubles, never exceeds backoff_max (jittered within [d/2, d]).
  absl::Duration backoff_initial = absl::Milliseconds(50);
  absl::Duration backoff_max = absl::Seconds(2);
  // Long-poll wait sent with LeaseTasks while the worker is idle (nothing
  // running or unreported); 0 = plain polling. Also bounds how long an idle
  // worker takes to notice Stop().
  absl::Duration lease_wait = absl::Seconds(2);
  // Pause between empty leases when the coordinator names none
  // (retry_after_ms = 0).
  absl::Duration lease_poll = absl::Milliseconds(500);
  // 0 = a third of the shortest lease held (the deadline each assignment and
  // heartbeat reply carries, read on this host's clock, which is assumed
  // NTP-synchronised with the coordinator's), at most a third of the lease
  // the coordinator names at registration.
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  // After the first Stop(): how long running tasks may take to finish before
  // they are handed back. Infinite = wait for them (a second Stop() still
  // hands back at once).
  absl::Duration drain_timeout = absl::InfiniteDuration();
  // Stop leasing after this many tasks and return once they are reported;
  // 0 = unlimited. For tests and one-shot runs.
  uint64_t max_tasks = 0;

  // Worker-level settings passed to every backend factory.
  BackendOptions backend_options;
  // Where backends are looked up; null = BackendRegistry::Global(). Not
  // owned; must outlive the Worker.
  BackendRegistry* registry = nullptr;
  // Log lines (thread-safe); empty = stderr with a timestamp.
  LogSink log;
};

// Counters since Create(). A snapshot; see Worker::stats().
struct WorkerStats {
  uint64_t leased = 0;         // task attempts received (rebinds excluded)
  uint64_t completed = 0;      // results the coordinator recorded
  uint64_t failed = 0;         // backend errors reported with FailTask
  uint64_t cancelled = 0;      // leases lost while running: stopped, unreported
  uint64_t dropped = 0;        // reports refused (LEASE_LOST, UNKNOWN_TASK,
                               // non-retryable errors) or given up on
  uint64_t handed_back = 0;    // tasks returned unfinished on shutdown
  uint64_t rebound = 0;        // re-leased tasks kept under the new attempt
  uint64_t registrations = 0;  // successful RegisterWorker calls
  uint64_t heartbeats = 0;     // successful Heartbeat calls
  uint64_t rpc_errors = 0;     // failed RPCs of any kind
};

// Thread-safety: Run() is called once, from one thread; Stop() and stats()
// from any thread at any time (including before or after Run()).
class Worker {
 public:
  // Validates `options` and creates the backends. Errors: kInvalidArgument
  // for bad options (no backends, slots < 1, missing coordinator address);
  // kNotFound for an unknown backend name (the message lists the known
  // ones); whatever a backend factory returns.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(WorkerOptions options);
  // Same, talking through `client` (tests pass a FakeCoordinatorClient).
  static absl::StatusOr<std::unique_ptr<Worker>> Create(WorkerOptions options,
                                                        std::unique_ptr<CoordinatorClient> client);

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Run() must have returned (or never been called).
  ~Worker();

  // Registers, then leases, runs and reports until stopped (Stop(), or
  // max_tasks reached) and drained. Returns OK after a stop, including a hard
  // one; an error only if registration fails for a reason retrying cannot
  // fix (e.g. kInvalidArgument from the coordinator). kFailedPrecondition if
  // called twice.
  absl::Status Run();

  // First call: drain (stop leasing; let running tasks finish and report;
  // Run() returns when nothing is held). Second call, or drain_timeout
  // passing: hard stop (cancel running tasks, hand them back with
  // FailTask(retryable=true), try briefly to deliver finished results, and
  // return). Thread-safe, non-blocking; not async-signal-safe (see
  // InstallSignalHandlers).
  void Stop();

  const std::string& worker_id() const { return worker_id_; }
  WorkerStats stats() const;

 private:
  struct Execution;
  enum class FlushResult { kDone, kRetryLater, kNeedRegister };

  using BackendMap = std::map<std::string, std::unique_ptr<TuningBackend>, std::less<>>;

  Worker(WorkerOptions options, std::string worker_id, std::unique_ptr<CoordinatorClient> client,
         BackendMap backends, uint64_t seed);

  absl::Status MainLoop();
  absl::Status DoRegister();
  // Sends every pending report once.
  FlushResult FlushReports();
  FlushResult SendCompletions(const std::vector<std::shared_ptr<Execution>>& batch,
                              bool* split_batches);
  FlushResult SendFailure(const std::shared_ptr<Execution>& e);
  void Dispatch(const v1::LeaseTasksResponse& response);
  void HandBackAll();
  void FinalFlush(Backoff& backoff);
  // Sleeps the next backoff delay, or less on a hard stop.
  void BackoffWait(Backoff& backoff);
  void SlotLoop();
  void HeartbeatLoop();
  // The heartbeat period now: a third of the shortest lease held, at most
  // the registration's interval (WorkerOptions::heartbeat_interval, when set,
  // is used as is).
  absl::Duration HeartbeatIntervalLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::TaskResult> RunBackend(Execution& e);

  // Removes `e` from tasks_ if it is still the execution held for its task.
  void EraseLocked(const std::shared_ptr<Execution>& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Notes an RPC error; on kFailedPrecondition asks for re-registration.
  void OnRpcErrorLocked(std::string_view what, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Log(std::string_view message) const;

  const WorkerOptions options_;
  const std::string worker_id_;
  const std::unique_ptr<CoordinatorClient> client_;
  // Created in Create(), immutable afterwards: read without the lock.
  const BackendMap backends_;
  const uint64_t seed_;

  mutable absl::Mutex mu_;
  // Tasks whose lease this worker holds: queued, running, or finished with
  // a report pending. Keyed by task id.
  std::map<std::string, std::shared_ptr<Execution>> tasks_ ABSL_GUARDED_BY(mu_);
  // Executions waiting for a slot thread.
  std::deque<std::shared_ptr<Execution>> queue_ ABSL_GUARDED_BY(mu_);
  // Executions queued or running on a slot thread (lost ones included until
  // their backend call returns).
  int busy_slots_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped on every change the main loop may act on; it waits for a change.
  uint64_t events_ ABSL_GUARDED_BY(mu_) = 0;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool hard_stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool need_register_ ABSL_GUARDED_BY(mu_) = true;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(10);
  bool heartbeat_exit_ ABSL_GUARDED_BY(mu_) = false;
  // Set when a lease is taken or rebound: the heartbeat loop recomputes its
  // period (the new lease may be shorter).
  bool heartbeat_wake_ ABSL_GUARDED_BY(mu_) = false;
  bool slots_exit_ ABSL_GUARDED_BY(mu_) = false;
  WorkerStats stats_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> slot_threads_;
  std::thread heartbeat_thread_;
};

// "tune" or "judge". Errors: kInvalidArgument naming the accepted values.
absl::StatusOr<v1::WorkerRole> ParseWorkerRole(std::string_view role);

// "<hostname>:<pid>:<8 random hex digits>".
std::string DefaultWorkerId();

// Makes SIGTERM and SIGINT call worker->Stop() (the second signal hard-stops)
// until the returned object is destroyed, which restores the previous
// handlers. The handler only writes a byte to a pipe (async-signal-safe); a
// watcher thread calls Stop(). One installation at a time per process. The
// returned object must be destroyed before `worker` (declare it after).
// Errors: kFailedPrecondition if already installed; kInternal if the pipe or
// sigaction fails.
class SignalHandlers {
 public:
  virtual ~SignalHandlers() = default;
};
absl::StatusOr<std::unique_ptr<SignalHandlers>> InstallSignalHandlers(Worker* worker);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_WORKER_H_
