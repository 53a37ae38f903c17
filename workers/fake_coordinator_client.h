// FakeCoordinatorClient: an in-memory coordinator for worker tests. It keeps
// a queue of tasks and the lease of each, answers like the real service
// (proto/ftb/v1/coordinator.proto), and lets the test decide what goes
// wrong: the coordinator being down, the next calls failing with a given
// status, a restart that forgets the registered workers, a lost lease.
//
// Lease semantics: a task is leased as attempt 1, 2, ... in order; FailTask
// with retryable=true re-queues it as the next attempt (up to
// max_attempts); RevokeLease makes Heartbeat answer 0 and completions
// LEASE_LOST; ExpireLease also re-queues the task as the next attempt.
// Leases never expire by time on their own.
//
// Thread-safe. Lease long-polls (waits up to wait_ms for a task).
#ifndef FTB_WORKERS_FAKE_COORDINATOR_CLIENT_H_
#define FTB_WORKERS_FAKE_COORDINATOR_CLIENT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "workers/coordinator_client.h"

namespace ftb::workers {

class FakeCoordinatorClient : public CoordinatorClient {
 public:
  explicit FakeCoordinatorClient(double lease_seconds = 0.15, uint32_t max_attempts = 3);

  absl::StatusOr<v1::RegisterWorkerResponse> Register(
      const v1::RegisterWorkerRequest& request) override;
  absl::StatusOr<v1::LeaseTasksResponse> Lease(const v1::LeaseTasksRequest& request) override;
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override;
  absl::StatusOr<v1::CompleteTasksResponse> Complete(
      const v1::CompleteTasksRequest& request) override;
  absl::StatusOr<v1::FailTaskResponse> Fail(const v1::FailTaskRequest& request) override;

  // --- What the test controls.

  // Queues a task; its attempt is assigned at lease time.
  void AddTask(const v1::TaskAssignment& task);
  // While down, every call fails with kUnavailable (and nothing changes).
  void SetDown(bool down);
  // The next `count` calls (of any method) fail with `status`.
  void FailNextCalls(int count, absl::Status status);
  // A restart that lost the worker registrations: calls from unregistered
  // workers fail with kFailedPrecondition until they register again.
  void ForgetWorkers();
  // The current lease of `task_id` is gone (Heartbeat answers 0).
  void RevokeLease(const std::string& task_id);
  // Like RevokeLease, and the task is queued again as the next attempt.
  void ExpireLease(const std::string& task_id);
  // Leases granted from now on (lease deadlines and heartbeat extensions)
  // last `seconds`, while Register keeps naming the constructor's
  // lease_seconds: a campaign whose retry.lease_seconds is shorter than the
  // lease the worker registered under.
  void SetTaskLeaseSeconds(double seconds);

  // --- What the test observes.

  struct Completion {
    std::string worker_id;
    std::string task_id;
    uint32_t attempt = 0;
    v1::TaskResult result;
    v1::CompletionOutcome outcome = v1::COMPLETION_OUTCOME_UNSPECIFIED;
  };
  // Every completion received while up, in order, with the outcome given.
  std::vector<Completion> completions() const;
  // Completions answered ACCEPTED.
  int accepted() const;
  // Every FailTask request received while up.
  std::vector<v1::FailTaskRequest> failures() const;
  // Every Heartbeat request received while up.
  std::vector<v1::HeartbeatRequest> heartbeats() const;
  int register_calls() const;
  int lease_calls() const;
  // Calls failed because the fake was down or told to fail.
  int failed_calls() const;
  // Tasks queued and not leased.
  int queued() const;
  // True if `task_id` is leased (attempt given) and not revoked.
  bool IsLeased(const std::string& task_id, uint32_t attempt) const;

 private:
  enum class State { kQueued, kLeased, kDone, kFailed };
  struct Task {
    v1::TaskAssignment assignment;
    State state = State::kQueued;
    uint32_t attempt = 0;  // current (or last) attempt
    std::string worker_id;
    bool revoked = false;
  };

  // Applies SetDown / FailNextCalls; counts the call.
  absl::Status InjectedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckWorkerLocked(const std::string& worker_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HoldsLocked(const Task& task, const std::string& worker_id, uint32_t attempt) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RequeueLocked(Task& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const double lease_seconds_;
  const uint32_t max_attempts_;

  mutable absl::Mutex mu_;
  double task_lease_seconds_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Task> tasks_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> workers_ ABSL_GUARDED_BY(mu_);
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_status_ ABSL_GUARDED_BY(mu_);
  std::vector<Completion> completions_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::FailTaskRequest> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::HeartbeatRequest> heartbeats_ ABSL_GUARDED_BY(mu_);
  int register_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int lease_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int failed_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ftb::workers

#endif  // FTB_WORKERS_FAKE_COORDINATOR_CLIENT_H_
