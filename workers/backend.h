// Tuning backends: what runs a task on a worker. The worker runtime
// (worker.h) knows nothing about any particular backend; it looks one up by
// the name the task carries (TaskAssignment.backend) among the backends it
// created at startup through a BackendRegistry. Adding a backend means
// implementing TuningBackend and registering a factory in
// builtin_backends.cc: no `if (backend == ...)` anywhere else.
#ifndef FTB_WORKERS_BACKEND_H_
#define FTB_WORKERS_BACKEND_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "ftb/v1/coordinator.pb.h"
#include "google/protobuf/struct.pb.h"

namespace ftb::workers {

// Receives one log line (no trailing newline). Must be thread-safe.
using LogSink = std::function<void(std::string_view)>;

// Records a provider intent durably at the coordinator (RecordTaskIntent);
// returns once it is stored. Must be thread-safe.
using IntentSink =
    std::function<absl::StatusOr<v1::RecordTaskIntentResponse>(const v1::TaskIntent&)>;

// What a running task sees of the runtime: cancellation, a log and progress.
// Created by the worker for one attempt of one task and outlives the
// backend's Run() call. Thread-safe.
class TaskContext {
 public:
  // `log` may be empty (lines are dropped).
  TaskContext(std::string task_id, uint32_t attempt, LogSink log);
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;

  // True once the worker no longer wants the result: the lease was lost
  // (expired, re-leased, campaign cancelled) or the worker is handing the
  // task back on shutdown. Backends poll it between steps and then return
  // absl::CancelledError() promptly; whatever they return is discarded.
  bool cancelled() const { return cancelled_.HasBeenNotified(); }
  // Sleeps for `duration` or until cancelled, whichever comes first.
  // Returns false when cancelled.
  bool SleepFor(absl::Duration duration) const;

  // Logs a line prefixed with the task id and attempt.
  void Log(std::string_view message) const;
  // Reports progress in [0, 1] with a short note. Kept for status displays;
  // not sent to the coordinator (the API has no field for it yet).
  void SetProgress(double fraction, std::string_view note);
  double progress() const;
  std::string progress_note() const;

  const std::string& task_id() const { return task_id_; }
  uint32_t attempt() const { return attempt_; }

  // Never paying twice: a backend about to make a billable provider call
  // records it here first (see v1::TaskIntent). Errors: kUnimplemented when
  // the runtime gave no sink (unit tests); otherwise the RPC's error, after
  // which the backend must not make the call.
  absl::StatusOr<v1::RecordTaskIntentResponse> RecordIntent(const v1::TaskIntent& intent) const;
  // Called by the runtime before Run().
  void SetIntentSink(IntentSink sink) { intent_sink_ = std::move(sink); }

  // Called by the runtime. Idempotent.
  void Cancel();

 private:
  const std::string task_id_;
  const uint32_t attempt_;
  const LogSink log_;
  IntentSink intent_sink_;
  absl::Notification cancelled_;
  std::atomic<bool> cancel_requested_{false};
  mutable absl::Mutex mu_;
  double progress_ ABSL_GUARDED_BY(mu_) = 0;
  std::string progress_note_ ABSL_GUARDED_BY(mu_);
};

// Runs TUNE tasks: train per task.tune() (dataset, model, hyperparameters),
// snapshot at each requested epoch count, answer the question sets with each
// snapshot, and return the answers per cell (TaskResult.answers, parallel to
// tune.cell_ids) with tokens, cost and a digest. How a backend stages this
// (prepare / train / answer / release) is its own business; the runtime only
// needs one blocking call.
//
// One instance per worker process and backend name, shared by all slots:
// Run() is called concurrently from up to `slots` threads and must be
// thread-safe. Instances are destroyed after the last Run() returns.
class TuningBackend {
 public:
  virtual ~TuningBackend() = default;

  // Runs one attempt of `task`. Blocking. Per-task options are in
  // task.tune().model().options(). Return codes tell the runtime what to
  // report (see IsRetryableBackendError):
  //   OK                    the result, reported with CompleteTasks;
  //   kCancelled            after ctx.cancelled(): nothing is reported;
  //   kInvalidArgument,
  //   kFailedPrecondition,
  //   kNotFound, ...        FailTask(retryable=false): retrying cannot help;
  //   kUnavailable,
  //   kResourceExhausted,
  //   kInternal, ...        FailTask(retryable=true).
  virtual absl::StatusOr<v1::TaskResult> Run(const v1::TaskAssignment& task, TaskContext& ctx) = 0;
};

// Whether a backend error is worth another attempt (FailTask.retryable).
// False for errors in the task's input or setup (kInvalidArgument,
// kFailedPrecondition, kNotFound, kAlreadyExists, kOutOfRange,
// kUnimplemented, kPermissionDenied, kUnauthenticated); true otherwise.
bool IsRetryableBackendError(const absl::Status& status);

// Status payload marking an error only a human can fix at the provider (out
// of quota, billing): the runtime reports it with FailTask.pause_campaign.
inline constexpr char kPauseCampaignPayload[] = "type.ftb.dev/ftb.provider.PauseCampaign";
// kResourceExhausted carrying kPauseCampaignPayload.
absl::Status PauseCampaignError(std::string_view message);
bool ShouldPauseCampaign(const absl::Status& status);

// Worker-level settings for backends (e.g. from `--backend-opt k=v`), as
// opposed to the per-task options in ModelSpec.options.
struct BackendOptions {
  std::map<std::string, std::string> params;
};

using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<TuningBackend>>(const BackendOptions&)>;

// Checks a model's per-task options (ModelSpec.options) the way the
// backend's Run() would, without running anything, so that `ftb plan` and
// submit refuse a typo (`layerz: 2`) instead of every cell failing at run
// time. Errors: kInvalidArgument whose message names the option as
// `model.options.<key>` (nested keys dotted: `model.options.endpoint.model`)
// and, for an unknown key, lists the accepted ones. Must be thread-safe.
using OptionsValidator = std::function<absl::Status(const google::protobuf::Struct&)>;

// Backend names -> factories. Thread-safe.
class BackendRegistry {
 public:
  // The process-wide registry with the built-in backends (see
  // builtin_backends.cc) already registered. Never destroyed.
  static BackendRegistry& Global();

  // Errors: kAlreadyExists if `name` is taken; kInvalidArgument if it is
  // empty or `factory` is null.
  absl::Status Register(std::string name, BackendFactory factory);
  // The same, with the check of the backend's model options (see
  // OptionsValidator); `validate` may be empty (options are not checked
  // before run time).
  absl::Status Register(std::string name, BackendFactory factory, OptionsValidator validate);
  // Runs `name`'s options check on `options`. Errors: kNotFound naming the
  // known backends if `name` is not registered; the validator's error; OK
  // when the backend registered no validator.
  absl::Status ValidateOptions(std::string_view name, const google::protobuf::Struct& options) const;
  // Errors: kNotFound naming the known backends if `name` is not registered;
  // otherwise whatever the factory returns.
  absl::StatusOr<std::unique_ptr<TuningBackend>> Create(std::string_view name,
                                                        const BackendOptions& options = {}) const;
  // Sorted.
  std::vector<std::string> Names() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, BackendFactory, std::less<>> factories_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, OptionsValidator, std::less<>> validators_ ABSL_GUARDED_BY(mu_);
};

// Shorthands for BackendRegistry::Global().
absl::Status RegisterBackend(std::string name, BackendFactory factory);
absl::StatusOr<std::unique_ptr<TuningBackend>> CreateBackend(std::string_view name,
                                                             const BackendOptions& options = {});

// Adds the backends compiled into ftb_workers (currently "test") to
// `registry`. Global() calls it once; tests call it on their own registry.
// Errors: kAlreadyExists if one of the names is taken.
absl::Status RegisterBuiltinBackends(BackendRegistry& registry);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_BACKEND_H_
