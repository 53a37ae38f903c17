#include "workers/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace ftb::workers {
namespace {

// Completions per CompleteTasks call.
constexpr size_t kMaxCompletionsPerCall = 64;
// Flush attempts on a hard stop before giving up on unreported results.
constexpr int kFinalFlushAttempts = 3;
// Floor for the heartbeat period (a tiny lease must not spin the thread).
constexpr absl::Duration kMinHeartbeatInterval = absl::Milliseconds(10);

// The length of a lease that ends at `deadline_ms` (the coordinator's Unix
// milliseconds), measured on this host's clock: a campaign's lease_seconds
// less the reply's transit time, if the clocks agree. A deadline already past
// here (a clock far ahead of the coordinator's) says nothing: infinite, so
// the heartbeat falls back to the registration interval.
absl::Duration LeaseFromDeadline(int64_t deadline_ms) {
  absl::Duration left = absl::FromUnixMillis(deadline_ms) - absl::Now();
  return left > absl::ZeroDuration() ? left : absl::InfiniteDuration();
}
// Re-evaluate the main loop at least this often even without events.
constexpr absl::Duration kMaxIdleWait = absl::Seconds(1);

// Coordinator unreachable or overloaded: the same request may succeed later.
bool IsTransient(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
         absl::IsResourceExhausted(status);
}

v1::TaskKind KindForRole(v1::WorkerRole role) {
  return role == v1::WORKER_ROLE_JUDGE ? v1::TASK_KIND_JUDGE : v1::TASK_KIND_TUNE;
}

void LogToStderr(std::string_view line) {
  std::string stamp = absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone());
  std::fprintf(stderr, "%s %.*s\n", stamp.c_str(), static_cast<int>(line.size()), line.data());
}

}  // namespace

// One attempt of one task as this worker holds it.
struct Worker::Execution {
  Execution(v1::TaskAssignment t, TuningBackend* b, LogSink log)
      : task(std::move(t)),
        backend(b),
        ctx(task.task_id(), task.attempt(), std::move(log)),
        attempt(task.attempt()),
        lease_token(task.lease_token()),
        lease(LeaseFromDeadline(task.lease_deadline_ms())) {}

  struct Report {
    bool success = false;
    v1::TaskResult result;  // success
    std::string error;      // failure
    bool retryable = false;
    bool handed_back = false;
    bool pause_campaign = false;  // ShouldPauseCampaign(error)
  };

  const v1::TaskAssignment task;
  TuningBackend* const backend;  // null: not runnable here, report at once
  TaskContext ctx;

  // Guarded by Worker::mu_. `attempt` is the attempt reported and
  // `lease_token` its token, sent with every report (a re-lease rebinds
  // both); `detached` means the result is no longer wanted (lease
  // lost, or handed back). `report` is set once, under mu_; after that only
  // the main loop reads it, so it may do so without the lock.
  uint32_t attempt;
  std::string lease_token;
  // Length of the lease as last granted (at lease time, by a heartbeat):
  // the heartbeat runs at a third of the shortest lease held.
  absl::Duration lease;
  bool detached = false;
  std::optional<Report> report;
};

absl::StatusOr<v1::WorkerRole> ParseWorkerRole(std::string_view role) {
  if (role == "tune") return v1::WORKER_ROLE_TUNE;
  if (role == "judge") return v1::WORKER_ROLE_JUDGE;
  return absl::InvalidArgumentError(absl::StrCat("unknown worker role \"", std::string(role),
                                                 "\": expected \"tune\" or \"judge\""));
}

std::string DefaultWorkerId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "localhost");
  }
  std::random_device rd;
  return absl::StrFormat("%s:%d:%08x", host, static_cast<int>(getpid()),
                         static_cast<uint32_t>(rd()));
}

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(WorkerOptions options) {
  if (options.coordinator.empty()) {
    return absl::InvalidArgumentError("worker: coordinator address is empty (expected host:port)");
  }
  GrpcCoordinatorClientOptions client_options;
  client_options.rpc_deadline = options.rpc_deadline;
  client_options.max_reconnect_backoff = options.backoff_max;
  FTB_ASSIGN_OR_RETURN(client_options.credentials, MakeChannelCredentials(options.security));
  client_options.auth_token = options.security.auth_token;
  auto client = GrpcCoordinatorClient::Create(options.coordinator, client_options);
  return Create(std::move(options), std::move(client));
}

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(WorkerOptions options,
                                                       std::unique_ptr<CoordinatorClient> client) {
  if (client == nullptr) {
    return absl::InvalidArgumentError("worker: coordinator client is null");
  }
  if (options.slots < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker: slots must be >= 1, got ", options.slots));
  }
  if (options.backends.empty()) {
    return absl::InvalidArgumentError(
        "worker: no backends given (expected at least one name, e.g. test)");
  }
  if (options.role != v1::WORKER_ROLE_TUNE && options.role != v1::WORKER_ROLE_JUDGE) {
    return absl::InvalidArgumentError("worker: role must be tune or judge");
  }
  if (options.rpc_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("worker: rpc_deadline must be positive");
  }
  BackendRegistry& registry =
      options.registry != nullptr ? *options.registry : BackendRegistry::Global();
  BackendMap backends;
  for (const std::string& name : options.backends) {
    if (backends.count(name) > 0) continue;
    FTB_ASSIGN_OR_RETURN(std::unique_ptr<TuningBackend> backend,
                         registry.Create(name, options.backend_options));
    backends.emplace(name, std::move(backend));
  }
  if (!options.log) options.log = LogToStderr;
  std::string worker_id = options.worker_id.empty() ? DefaultWorkerId() : options.worker_id;
  std::random_device rd;
  uint64_t seed = (uint64_t{rd()} << 32) ^ rd();
  return std::unique_ptr<Worker>(new Worker(std::move(options), std::move(worker_id),
                                            std::move(client), std::move(backends), seed));
}

Worker::Worker(WorkerOptions options, std::string worker_id,
               std::unique_ptr<CoordinatorClient> client, BackendMap backends, uint64_t seed)
    : options_(std::move(options)),
      worker_id_(std::move(worker_id)),
      client_(std::move(client)),
      backends_(std::move(backends)),
      seed_(seed) {}

Worker::~Worker() {
  // Run() joins its threads before returning; these are only joinable if
  // Run() is still active, which the contract forbids.
  for (auto& t : slot_threads_) {
    if (t.joinable()) t.join();
  }
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

WorkerStats Worker::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void Worker::Log(std::string_view message) const {
  options_.log(absl::StrCat("worker ", worker_id_, ": ", std::string(message)));
}

void Worker::Stop() {
  std::string message;
  {
    absl::MutexLock lock(&mu_);
    if (!stop_requested_) {
      stop_requested_ = true;
      drain_deadline_ = absl::Now() + options_.drain_timeout;
      message = "stop requested: draining (no new leases)";
    } else if (!hard_stop_) {
      hard_stop_ = true;
      message = "second stop: handing back running tasks";
    }
    ++events_;
  }
  if (!message.empty()) Log(message);
}

absl::Status Worker::Run() {
  {
    absl::MutexLock lock(&mu_);
    if (running_) return absl::FailedPreconditionError("Worker::Run called twice");
    running_ = true;
  }
  for (int i = 0; i < options_.slots; ++i) {
    slot_threads_.emplace_back([this] { SlotLoop(); });
  }
  absl::Status status = MainLoop();

  // Ordered shutdown: the heartbeat thread first (it reads tasks_ and calls
  // the client), then the slot threads, which finish their current backend
  // call (cancelled on a hard stop) and skip detached queued work.
  {
    absl::MutexLock lock(&mu_);
    heartbeat_exit_ = true;
    slots_exit_ = true;
    for (auto& e : queue_) {
      e->detached = true;
      e->ctx.Cancel();
    }
  }
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  for (auto& t : slot_threads_) t.join();
  slot_threads_.clear();

  WorkerStats s = stats();
  Log(
      absl::StrFormat("stopped (%s): leased %d, completed %d, failed %d, cancelled %d, "
                      "dropped %d, handed back %d",
                      status.ok() ? "ok" : status.ToString(), s.leased, s.completed, s.failed,
                      s.cancelled, s.dropped, s.handed_back));
  return status;
}

absl::Status Worker::MainLoop() {
  Backoff backoff(options_.backoff_initial, options_.backoff_max, seed_);
  bool registered = false;
  absl::Time next_lease = absl::InfinitePast();
  while (true) {
    uint64_t seen;
    bool hard_stop, stop, need_register;
    bool drain_expired = false;
    {
      absl::MutexLock lock(&mu_);
      if (stop_requested_ && !hard_stop_ && absl::Now() >= drain_deadline_) {
        hard_stop_ = true;
        drain_expired = true;
      }
      seen = events_;
      hard_stop = hard_stop_;
      stop = stop_requested_;
      need_register = need_register_;
    }
    if (drain_expired) Log("drain timeout: handing back running tasks");

    if (hard_stop) {
      HandBackAll();
      FinalFlush(backoff);
      return absl::OkStatus();
    }

    if (need_register) {
      if (stop && !registered) return absl::OkStatus();  // holds nothing
      absl::Status status = DoRegister();
      if (!status.ok()) {
        // Before the first registration a permanent error is fatal (bad
        // worker id, unsupported backend list). Afterwards we hold tasks and
        // keep trying.
        if (!registered && !IsTransient(status) && !absl::IsFailedPrecondition(status)) {
          return status;
        }
        BackoffWait(backoff);
        continue;
      }
      if (!registered) {
        registered = true;
        heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
      }
      backoff.Reset();
      continue;
    }

    switch (FlushReports()) {
      case FlushResult::kDone:
        break;
      case FlushResult::kRetryLater:
        BackoffWait(backoff);
        continue;
      case FlushResult::kNeedRegister:
        continue;
    }

    bool draining, idle;
    int free;
    {
      absl::MutexLock lock(&mu_);
      draining = stop_requested_ || (options_.max_tasks > 0 && started_ >= options_.max_tasks);
      idle = tasks_.empty() && busy_slots_ == 0;
      if (draining && idle) return absl::OkStatus();
      free = options_.slots - busy_slots_;
      if (options_.max_tasks > 0) {
        free = static_cast<int>(
            std::min<uint64_t>(free, options_.max_tasks - std::min(started_, options_.max_tasks)));
      }
    }

    absl::Time now = absl::Now();
    if (!draining && free > 0 && now >= next_lease) {
      v1::LeaseTasksRequest request;
      request.set_worker_id(worker_id_);
      request.set_max_tasks(static_cast<uint32_t>(free));
      if (idle) {
        request.set_wait_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(options_.lease_wait)));
      }
      absl::StatusOr<v1::LeaseTasksResponse> response = client_->Lease(request);
      if (!response.ok()) {
        {
          absl::MutexLock lock(&mu_);
          OnRpcErrorLocked("LeaseTasks", response.status());
        }
        if (!absl::IsFailedPrecondition(response.status())) BackoffWait(backoff);
        continue;
      }
      backoff.Reset();
      if (response->tasks_size() > 0) {
        Dispatch(*response);
        continue;
      }
      // Nothing to do. Measured from the call's start so a long poll that
      // already waited is followed by the next one at once, while a
      // coordinator that ignores wait_ms is not polled in a tight loop.
      absl::Duration pause = response->retry_after_ms() > 0
                                 ? absl::Milliseconds(response->retry_after_ms())
                                 : options_.lease_poll;
      next_lease = now + pause;
      if (absl::Now() >= next_lease) continue;
    }

    // Wait for a task to finish, a stop, a re-registration request, or the
    // next lease time.
    absl::Duration timeout = kMaxIdleWait;
    if (!draining && free > 0) {
      timeout = std::min(timeout, next_lease - absl::Now());
    }
    absl::MutexLock lock(&mu_);
    if (stop_requested_) {
      timeout = std::min(timeout, drain_deadline_ - absl::Now());
    }
    auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_ != seen; };
    mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  }
}

absl::Status Worker::DoRegister() {
  v1::RegisterWorkerRequest request;
  request.set_worker_id(worker_id_);
  request.set_role(options_.role);
  for (const auto& [name, unused] : backends_) request.add_backends(name);
  request.set_slots(static_cast<uint32_t>(options_.slots));
  for (const auto& [key, value] : options_.capabilities) {
    (*request.mutable_capabilities())[key] = value;
  }
  absl::StatusOr<v1::RegisterWorkerResponse> response = client_->Register(request);
  absl::MutexLock lock(&mu_);
  if (!response.ok()) {
    ++stats_.rpc_errors;
    Log(absl::StrCat("RegisterWorker failed: ", response.status().ToString()));
    return response.status();
  }
  need_register_ = false;
  ++stats_.registrations;
  if (options_.heartbeat_interval > absl::ZeroDuration()) {
    heartbeat_interval_ = options_.heartbeat_interval;
  } else if (response->lease_seconds() > 0) {
    heartbeat_interval_ = absl::Seconds(response->lease_seconds()) / 3;
  }
  heartbeat_interval_ = std::max(heartbeat_interval_, kMinHeartbeatInterval);
  ++events_;
  Log(absl::StrCat("registered (lease ", response->lease_seconds(), " s, heartbeat every ",
                   absl::FormatDuration(heartbeat_interval_),
                   options_.heartbeat_interval > absl::ZeroDuration()
                       ? ")"
                       : " or a third of the shortest lease held)"));
  return absl::OkStatus();
}

void Worker::OnRpcErrorLocked(std::string_view what, const absl::Status& status) {
  ++stats_.rpc_errors;
  if (absl::IsFailedPrecondition(status)) {
    if (!need_register_) {
      Log(absl::StrCat(std::string(what), ": ", status.ToString(), "; registering again"));
    }
    need_register_ = true;
    ++events_;
    return;
  }
  Log(absl::StrCat(std::string(what), " failed: ", status.ToString()));
}

void Worker::EraseLocked(const std::shared_ptr<Execution>& e) {
  auto it = tasks_.find(e->task.task_id());
  if (it != tasks_.end() && it->second == e) {
    tasks_.erase(it);
    ++events_;
  }
}

void Worker::Dispatch(const v1::LeaseTasksResponse& response) {
  const v1::TaskKind expected_kind = KindForRole(options_.role);
  std::vector<std::string> messages;
  {
    absl::MutexLock lock(&mu_);
    for (const v1::TaskAssignment& task : response.tasks()) {
      auto it = tasks_.find(task.task_id());
      if (it != tasks_.end()) {
        // Still held here: its earlier lease expired while we could not
        // reach the coordinator, or the reply was delivered twice. Keep the
        // one execution; report it under the newest attempt.
        Execution& held = *it->second;
        if (task.attempt() > held.attempt) {
          messages.push_back(absl::StrCat("task ", task.task_id(), " re-leased as attempt ",
                                          task.attempt(), " while attempt ", held.attempt,
                                          " is held here: keeping it"));
          held.attempt = task.attempt();
          held.lease_token = task.lease_token();
          held.lease = LeaseFromDeadline(task.lease_deadline_ms());
          heartbeat_wake_ = true;
          ++stats_.rebound;
        }
        continue;
      }
      ++stats_.leased;
      ++started_;
      auto backend_it = backends_.find(task.backend());
      TuningBackend* backend = backend_it == backends_.end() ? nullptr : backend_it->second.get();
      auto e = std::make_shared<Execution>(task, backend, options_.log);
      // Provider intents go to the coordinator synchronously, retried while
      // it is unreachable (a backend must not pay before the intent is durable).
      // The sink belongs to e->ctx, so `exec` outlives it. It reports under
      // the attempt held now (a re-lease rebinds it).
      e->ctx.SetIntentSink([this, ctx = &e->ctx, exec = e.get(),
                            task_id = task.task_id()](const v1::TaskIntent& intent)
                               -> absl::StatusOr<v1::RecordTaskIntentResponse> {
        v1::RecordTaskIntentRequest request;
        request.set_worker_id(worker_id_);
        request.set_task_id(task_id);
        uint32_t attempt;
        {
          absl::MutexLock lock(&mu_);
          attempt = exec->attempt;
          request.set_lease_token(exec->lease_token);
        }
        request.set_attempt(attempt);
        *request.mutable_intent() = intent;
        Backoff backoff(options_.backoff_initial, options_.backoff_max, seed_ ^ attempt);
        for (int i = 0;; ++i) {
          absl::StatusOr<v1::RecordTaskIntentResponse> r = client_->RecordTaskIntent(request);
          if (r.ok() || !IsTransient(r.status()) || i >= 50) return r;
          if (ctx->cancelled()) {
            // Only the cancellation check itself is worth a few more tries.
            if (intent.kind() != "cancel" || i >= 5) return r;
            absl::SleepFor(backoff.Next());
          } else {
            ctx->SleepFor(backoff.Next());
          }
        }
      });
      tasks_[task.task_id()] = e;
      heartbeat_wake_ = true;  // its lease may be shorter than the interval
      ++events_;

      std::string refuse;
      bool handed_back = false;
      if (stop_requested_) {
        refuse = "worker is stopping; task handed back unstarted";
        handed_back = true;
      } else if (task.kind() != expected_kind) {
        refuse = absl::StrCat("worker ", worker_id_, " runs ", v1::TaskKind_Name(expected_kind),
                              " tasks, got ", v1::TaskKind_Name(task.kind()));
      } else if (backend == nullptr) {
        refuse = absl::StrCat("worker ", worker_id_, " has no backend \"", task.backend(), "\"");
      }
      if (!refuse.empty()) {
        // Not this worker's to run; another worker may be able to.
        Execution::Report report;
        report.error = refuse;
        report.retryable = true;
        report.handed_back = handed_back;
        e->report = std::move(report);
        e->detached = true;
        messages.push_back(absl::StrCat("task ", task.task_id(), ": ", refuse));
        continue;
      }
      queue_.push_back(std::move(e));
      ++busy_slots_;
    }
  }
  for (const auto& m : messages) Log(m);
}

absl::StatusOr<v1::TaskResult> Worker::RunBackend(Execution& e) {
  // Backends wrap third-party code; an exception must not kill the worker.
  try {
    return e.backend->Run(e.task, e.ctx);
  } catch (const std::exception& ex) {
    return absl::InternalError(absl::StrCat("backend threw: ", ex.what()));
  } catch (...) {
    return absl::InternalError("backend threw a non-standard exception");
  }
}

void Worker::SlotLoop() {
  while (true) {
    std::shared_ptr<Execution> e;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || slots_exit_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;
      e = std::move(queue_.front());
      queue_.pop_front();
      if (e->detached) {  // lost or handed back before it started
        --busy_slots_;
        ++events_;
        continue;
      }
    }
    absl::StatusOr<v1::TaskResult> result = RunBackend(*e);
    std::string message;
    {
      absl::MutexLock lock(&mu_);
      --busy_slots_;
      ++events_;
      if (e->detached) continue;  // nobody wants this result any more
      Execution::Report report;
      if (result.ok()) {
        report.success = true;
        report.result = *std::move(result);
      } else {
        report.error = result.status().ToString();
        report.retryable = IsRetryableBackendError(result.status());
        report.pause_campaign = ShouldPauseCampaign(result.status());
        message = absl::StrCat("task ", e->task.task_id(), " attempt ", e->attempt, " failed (",
                               report.retryable ? "retryable" : "permanent", "): ", report.error);
      }
      e->report = std::move(report);
    }
    if (!message.empty()) Log(message);
  }
}

absl::Duration Worker::HeartbeatIntervalLocked() const {
  absl::Duration interval = heartbeat_interval_;
  if (options_.heartbeat_interval > absl::ZeroDuration()) return interval;  // fixed by the caller
  // The registration's lease is the shortest of the campaigns active then; a
  // campaign submitted later may lease for less (retry.lease_seconds).
  for (const auto& [id, e] : tasks_) interval = std::min(interval, e->lease / 3);
  return std::max(interval, kMinHeartbeatInterval);
}

void Worker::HeartbeatLoop() {
  bool failing = false;
  absl::Time last_beat = absl::Now();
  while (true) {
    std::vector<std::pair<std::shared_ptr<Execution>, uint32_t>> held;
    v1::HeartbeatRequest request;
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return heartbeat_exit_ || heartbeat_wake_;
      };
      // Sleep until a third of the shortest lease held (or the registration
      // interval) has passed since the last beat; a newly held lease wakes
      // the loop to recompute, as it may be due already.
      while (!heartbeat_exit_) {
        absl::Time next = last_beat + HeartbeatIntervalLocked();
        absl::Time now = absl::Now();
        if (now >= next) break;
        heartbeat_wake_ = false;
        mu_.AwaitWithTimeout(absl::Condition(&woken), next - now);
      }
      if (heartbeat_exit_) return;
      heartbeat_wake_ = false;
      last_beat = absl::Now();
      for (const auto& [id, e] : tasks_) {
        held.emplace_back(e, e->attempt);
        v1::TaskRef* ref = request.add_tasks();
        ref->set_task_id(e->task.task_id());
        ref->set_attempt(e->attempt);
        ref->set_lease_token(e->lease_token);
      }
    }
    if (held.empty()) continue;
    request.set_worker_id(worker_id_);
    absl::StatusOr<v1::HeartbeatResponse> response = client_->Heartbeat(request);
    absl::MutexLock lock(&mu_);
    if (!response.ok()) {
      // Log the first failure of a streak only; the leases may run out, which
      // the coordinator tells us once it is reachable again.
      if (!failing || absl::IsFailedPrecondition(response.status())) {
        OnRpcErrorLocked("Heartbeat", response.status());
      } else {
        ++stats_.rpc_errors;
      }
      failing = true;
      continue;
    }
    failing = false;
    ++stats_.heartbeats;
    if (response->lease_deadline_ms_size() != static_cast<int>(held.size())) {
      Log(absl::StrCat("Heartbeat: expected ", held.size(), " deadlines, got ",
                       response->lease_deadline_ms_size(), "; ignoring the reply"));
      continue;
    }
    for (size_t i = 0; i < held.size(); ++i) {
      if (const int64_t deadline = response->lease_deadline_ms(static_cast<int>(i));
          deadline != 0) {
        const auto& [e, attempt] = held[i];
        if (e->attempt == attempt) e->lease = LeaseFromDeadline(deadline);
        continue;
      }
      const auto& [e, attempt] = held[i];
      auto it = tasks_.find(e->task.task_id());
      // A rebind since the snapshot means the lease we asked about is stale.
      if (it == tasks_.end() || it->second != e || e->attempt != attempt) {
        continue;
      }
      Log(absl::StrCat("task ", e->task.task_id(), " attempt ", attempt, ": lease lost; ",
                       e->report ? "dropping its unreported result" : "cancelling it"));
      if (e->report) {
        ++stats_.dropped;
      } else {
        ++stats_.cancelled;
      }
      e->detached = true;
      e->ctx.Cancel();
      EraseLocked(e);
    }
  }
}

Worker::FlushResult Worker::FlushReports() {
  std::vector<std::shared_ptr<Execution>> completions;
  std::vector<std::shared_ptr<Execution>> failures;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, e] : tasks_) {
      if (!e->report) continue;
      (e->report->success ? completions : failures).push_back(e);
    }
  }
  // After an RPC-level kAborted for a batch, send one completion per call so
  // one lost lease cannot take the others' results with it.
  bool split = false;
  for (size_t begin = 0; begin < completions.size();) {
    size_t size = split ? 1 : kMaxCompletionsPerCall;
    size_t end = std::min(completions.size(), begin + size);
    std::vector<std::shared_ptr<Execution>> batch(completions.begin() + begin,
                                                  completions.begin() + end);
    bool split_before = split;
    FlushResult result = SendCompletions(batch, &split);
    if (result != FlushResult::kDone) return result;
    if (split && !split_before) continue;  // resend this batch one by one
    begin = end;
  }
  for (const auto& e : failures) {
    FlushResult result = SendFailure(e);
    if (result != FlushResult::kDone) return result;
  }
  return FlushResult::kDone;
}

Worker::FlushResult Worker::SendCompletions(const std::vector<std::shared_ptr<Execution>>& batch,
                                            bool* split_batches) {
  v1::CompleteTasksRequest request;
  request.set_worker_id(worker_id_);
  {
    absl::MutexLock lock(&mu_);
    for (const auto& e : batch) {
      v1::TaskCompletion* c = request.add_completions();
      c->set_task_id(e->task.task_id());
      c->set_attempt(e->attempt);
      c->set_lease_token(e->lease_token);
      *c->mutable_result() = e->report->result;
    }
  }
  absl::StatusOr<v1::CompleteTasksResponse> response = client_->Complete(request);
  std::vector<std::string> messages;
  {
    absl::MutexLock lock(&mu_);
    if (!response.ok()) {
      OnRpcErrorLocked("CompleteTasks", response.status());
      const absl::Status& status = response.status();
      if (absl::IsFailedPrecondition(status)) return FlushResult::kNeedRegister;
      if (IsTransient(status)) return FlushResult::kRetryLater;
      // kResourceExhausted: the batch exceeds the coordinator's message size
      // limit; one by one, only a single oversized result is lost.
      if ((absl::IsAborted(status) || absl::IsResourceExhausted(status)) && batch.size() > 1 &&
          !*split_batches) {
        *split_batches = true;
        return FlushResult::kDone;
      }
      if (absl::IsAlreadyExists(status)) {
        // A duplicate report of an idempotent operation: recorded before.
        for (const auto& e : batch) {
          ++stats_.completed;
          EraseLocked(e);
        }
        return FlushResult::kDone;
      }
      // Retrying the same request cannot help: drop the results.
      for (const auto& e : batch) {
        if (!e->detached) ++stats_.dropped;
        EraseLocked(e);
        messages.push_back(
            absl::StrCat("task ", e->task.task_id(), ": result dropped: ", status.ToString()));
      }
    } else {
      for (size_t i = 0; i < batch.size(); ++i) {
        const auto& e = batch[i];
        v1::CompletionOutcome outcome = static_cast<int>(i) < response->outcomes_size()
                                            ? response->outcomes(static_cast<int>(i))
                                            : v1::COMPLETION_OUTCOME_UNSPECIFIED;
        const auto& c = request.completions(static_cast<int>(i));
        if (outcome == v1::COMPLETION_OUTCOME_ACCEPTED ||
            outcome == v1::COMPLETION_OUTCOME_DUPLICATE) {
          ++stats_.completed;
        } else if (!e->detached) {  // a heartbeat that saw the lease lost counted it already
          ++stats_.dropped;
          messages.push_back(
              absl::StrCat("task ", c.task_id(), " attempt ", c.attempt(),
                           ": result dropped: ", v1::CompletionOutcome_Name(outcome)));
        }
        EraseLocked(e);
      }
    }
  }
  for (const auto& m : messages) Log(m);
  return FlushResult::kDone;
}

Worker::FlushResult Worker::SendFailure(const std::shared_ptr<Execution>& e) {
  v1::FailTaskRequest request;
  bool handed_back;
  {
    absl::MutexLock lock(&mu_);
    request.set_worker_id(worker_id_);
    request.set_task_id(e->task.task_id());
    request.set_attempt(e->attempt);
    request.set_lease_token(e->lease_token);
    request.set_error(e->report->error);
    request.set_retryable(e->report->retryable);
    request.set_pause_campaign(e->report->pause_campaign);
    handed_back = e->report->handed_back;
  }
  absl::StatusOr<v1::FailTaskResponse> response = client_->Fail(request);
  std::string message;
  {
    absl::MutexLock lock(&mu_);
    if (!response.ok()) {
      OnRpcErrorLocked("FailTask", response.status());
      if (absl::IsFailedPrecondition(response.status())) {
        return FlushResult::kNeedRegister;
      }
      if (IsTransient(response.status())) return FlushResult::kRetryLater;
      ++stats_.dropped;
      message = absl::StrCat("task ", request.task_id(),
                             ": failure report dropped: ", response.status().ToString());
    } else if (response->outcome() == v1::COMPLETION_OUTCOME_ACCEPTED ||
               response->outcome() == v1::COMPLETION_OUTCOME_DUPLICATE) {
      ++(handed_back ? stats_.handed_back : stats_.failed);
    } else {
      ++stats_.dropped;
      message = absl::StrCat(
          "task ", request.task_id(), " attempt ", request.attempt(),
          ": failure report dropped: ", v1::CompletionOutcome_Name(response->outcome()));
    }
    EraseLocked(e);
  }
  if (!message.empty()) Log(message);
  return FlushResult::kDone;
}

void Worker::HandBackAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, e] : tasks_) {
    if (e->report) continue;  // finished: deliver the result instead
    e->detached = true;
    e->ctx.Cancel();
    Execution::Report report;
    report.error = "worker stopping; task handed back unfinished";
    report.retryable = true;
    report.handed_back = true;
    e->report = std::move(report);
  }
  ++events_;
}

void Worker::FinalFlush(Backoff& backoff) {
  backoff.Reset();
  for (int attempt = 0; attempt < kFinalFlushAttempts; ++attempt) {
    FlushResult result = FlushReports();
    if (result == FlushResult::kDone) break;
    if (result == FlushResult::kNeedRegister) {
      if (!DoRegister().ok()) BackoffWait(backoff);
      continue;
    }
    if (attempt + 1 < kFinalFlushAttempts) BackoffWait(backoff);
  }
  size_t left;
  {
    absl::MutexLock lock(&mu_);
    left = tasks_.size();
    stats_.dropped += left;
    tasks_.clear();
  }
  if (left > 0) {
    Log(absl::StrCat("gave up on ", left, " unreported task(s); their leases will expire"));
  }
}

void Worker::BackoffWait(Backoff& backoff) {
  absl::Duration delay = backoff.Next();
  absl::MutexLock lock(&mu_);
  // Only a hard stop cuts the wait short: task completions must not turn the
  // backoff into a busy retry loop.
  if (stop_requested_ && !hard_stop_) {
    delay = std::min(delay, drain_deadline_ - absl::Now());
  }
  mu_.AwaitWithTimeout(absl::Condition(&hard_stop_), delay);
}

// ---------------------------------------------------------------------------
// Signals.

namespace {

// Write end of the self-pipe; -1 when no handlers are installed. Lock-free,
// so reading it in a signal handler is safe.
std::atomic<int> g_signal_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free);

constexpr char kStopByte = 1;
constexpr char kExitByte = 0;

extern "C" void StopSignalHandler(int) {
  int saved_errno = errno;
  int fd = g_signal_fd.load();
  if (fd >= 0) {
    char byte = kStopByte;
    // Non-blocking: if the pipe is full, a stop is already pending.
    [[maybe_unused]] ssize_t n = write(fd, &byte, 1);
  }
  errno = saved_errno;
}

class PipeSignalHandlers : public SignalHandlers {
 public:
  PipeSignalHandlers(Worker* worker, int read_fd, int write_fd, struct sigaction old_term,
                     struct sigaction old_int)
      : read_fd_(read_fd),
        write_fd_(write_fd),
        old_term_(old_term),
        old_int_(old_int),
        watcher_([this, worker] { Watch(worker); }) {}

  ~PipeSignalHandlers() override {
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    g_signal_fd.store(-1);
    char byte = kExitByte;
    while (write(write_fd_, &byte, 1) < 0 && errno == EINTR) {
    }
    watcher_.join();
    close(read_fd_);
    close(write_fd_);
  }

 private:
  void Watch(Worker* worker) {
    while (true) {
      char byte;
      ssize_t n = read(read_fd_, &byte, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || byte == kExitByte) return;
      worker->Stop();
    }
  }

  const int read_fd_;
  const int write_fd_;
  const struct sigaction old_term_;
  const struct sigaction old_int_;
  std::thread watcher_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SignalHandlers>> InstallSignalHandlers(Worker* worker) {
  if (worker == nullptr) {
    return absl::InvalidArgumentError("InstallSignalHandlers: worker is null");
  }
  if (g_signal_fd.load() >= 0) {
    return absl::FailedPreconditionError("InstallSignalHandlers: handlers are already installed");
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(
        absl::StrCat("InstallSignalHandlers: pipe2: ", std::strerror(errno)));
  }
  // Only the handler's end is non-blocking; the watcher blocks in read().
  fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  g_signal_fd.store(fds[1]);

  struct sigaction action = {};
  action.sa_handler = StopSignalHandler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  struct sigaction old_term = {}, old_int = {};
  if (sigaction(SIGTERM, &action, &old_term) != 0 || sigaction(SIGINT, &action, &old_int) != 0) {
    int err = errno;
    sigaction(SIGTERM, &old_term, nullptr);
    g_signal_fd.store(-1);
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(
        absl::StrCat("InstallSignalHandlers: sigaction: ", std::strerror(err)));
  }
  return std::make_unique<PipeSignalHandlers>(worker, fds[0], fds[1], old_term, old_int);
}

}  // namespace ftb::workers
