#include "workers/fake_coordinator_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ftb::workers {

FakeCoordinatorClient::FakeCoordinatorClient(double lease_seconds, uint32_t max_attempts)
    : lease_seconds_(lease_seconds),
      max_attempts_(max_attempts),
      task_lease_seconds_(lease_seconds) {}

void FakeCoordinatorClient::SetTaskLeaseSeconds(double seconds) {
  absl::MutexLock lock(&mu_);
  task_lease_seconds_ = seconds;
}

absl::Status FakeCoordinatorClient::InjectedLocked() {
  if (down_) {
    ++failed_calls_;
    return absl::UnavailableError("fake coordinator is down");
  }
  if (fail_next_ > 0) {
    --fail_next_;
    ++failed_calls_;
    return fail_status_;
  }
  return absl::OkStatus();
}

absl::Status FakeCoordinatorClient::CheckWorkerLocked(const std::string& worker_id) const {
  if (workers_.count(worker_id) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("unknown worker \"", worker_id, "\"; register first"));
  }
  return absl::OkStatus();
}

bool FakeCoordinatorClient::HoldsLocked(const Task& task, const std::string& worker_id,
                                        uint32_t attempt) const {
  return task.state == State::kLeased && !task.revoked && task.attempt == attempt &&
         task.worker_id == worker_id;
}

void FakeCoordinatorClient::RequeueLocked(Task& task) {
  task.state = State::kQueued;
  task.revoked = false;
  task.worker_id.clear();
  queue_.push_back(task.assignment.task_id());
}

absl::StatusOr<v1::RegisterWorkerResponse> FakeCoordinatorClient::Register(
    const v1::RegisterWorkerRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = InjectedLocked(); !s.ok()) return s;
  ++register_calls_;
  if (request.worker_id().empty()) {
    return absl::InvalidArgumentError("worker_id is empty");
  }
  workers_.insert(request.worker_id());
  v1::RegisterWorkerResponse response;
  response.set_lease_seconds(lease_seconds_);
  return response;
}

absl::StatusOr<v1::LeaseTasksResponse> FakeCoordinatorClient::Lease(
    const v1::LeaseTasksRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = InjectedLocked(); !s.ok()) return s;
  ++lease_calls_;
  if (absl::Status s = CheckWorkerLocked(request.worker_id()); !s.ok()) return s;
  if (request.wait_ms() > 0) {
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || down_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(request.wait_ms()));
    if (down_) return absl::UnavailableError("fake coordinator is down");
  }
  v1::LeaseTasksResponse response;
  int64_t deadline_ms =
      absl::ToUnixMillis(absl::Now()) + static_cast<int64_t>(task_lease_seconds_ * 1000);
  while (!queue_.empty() && response.tasks_size() < static_cast<int>(request.max_tasks())) {
    Task& task = tasks_.at(queue_.front());
    queue_.pop_front();
    task.state = State::kLeased;
    ++task.attempt;
    task.worker_id = request.worker_id();
    v1::TaskAssignment* a = response.add_tasks();
    *a = task.assignment;
    a->set_attempt(task.attempt);
    a->set_lease_deadline_ms(deadline_ms);
  }
  if (response.tasks_size() == 0) response.set_retry_after_ms(10);
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> FakeCoordinatorClient::Heartbeat(
    const v1::HeartbeatRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = InjectedLocked(); !s.ok()) return s;
  heartbeats_.push_back(request);
  if (absl::Status s = CheckWorkerLocked(request.worker_id()); !s.ok()) return s;
  v1::HeartbeatResponse response;
  int64_t deadline_ms =
      absl::ToUnixMillis(absl::Now()) + static_cast<int64_t>(task_lease_seconds_ * 1000);
  for (const v1::TaskRef& ref : request.tasks()) {
    auto it = tasks_.find(ref.task_id());
    bool held = it != tasks_.end() && HoldsLocked(it->second, request.worker_id(), ref.attempt());
    response.add_lease_deadline_ms(held ? deadline_ms : 0);
  }
  return response;
}

absl::StatusOr<v1::CompleteTasksResponse> FakeCoordinatorClient::Complete(
    const v1::CompleteTasksRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = InjectedLocked(); !s.ok()) return s;
  if (absl::Status s = CheckWorkerLocked(request.worker_id()); !s.ok()) return s;
  v1::CompleteTasksResponse response;
  for (const v1::TaskCompletion& c : request.completions()) {
    v1::CompletionOutcome outcome;
    auto it = tasks_.find(c.task_id());
    if (it == tasks_.end()) {
      outcome = v1::COMPLETION_OUTCOME_UNKNOWN_TASK;
    } else if (it->second.state == State::kDone && it->second.attempt == c.attempt()) {
      outcome = v1::COMPLETION_OUTCOME_DUPLICATE;
    } else if (HoldsLocked(it->second, request.worker_id(), c.attempt())) {
      outcome = v1::COMPLETION_OUTCOME_ACCEPTED;
      it->second.state = State::kDone;
    } else {
      outcome = v1::COMPLETION_OUTCOME_LEASE_LOST;
    }
    response.add_outcomes(outcome);
    completions_.push_back({request.worker_id(), c.task_id(), c.attempt(), c.result(), outcome});
  }
  return response;
}

absl::StatusOr<v1::FailTaskResponse> FakeCoordinatorClient::Fail(
    const v1::FailTaskRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = InjectedLocked(); !s.ok()) return s;
  if (absl::Status s = CheckWorkerLocked(request.worker_id()); !s.ok()) return s;
  failures_.push_back(request);
  v1::FailTaskResponse response;
  auto it = tasks_.find(request.task_id());
  if (it == tasks_.end()) {
    response.set_outcome(v1::COMPLETION_OUTCOME_UNKNOWN_TASK);
    return response;
  }
  Task& task = it->second;
  if (!HoldsLocked(task, request.worker_id(), request.attempt())) {
    response.set_outcome(v1::COMPLETION_OUTCOME_LEASE_LOST);
    return response;
  }
  response.set_outcome(v1::COMPLETION_OUTCOME_ACCEPTED);
  if (request.retryable() && task.attempt < max_attempts_) {
    RequeueLocked(task);
    response.set_will_retry(true);
  } else {
    task.state = State::kFailed;
  }
  return response;
}

void FakeCoordinatorClient::AddTask(const v1::TaskAssignment& task) {
  absl::MutexLock lock(&mu_);
  Task& t = tasks_[task.task_id()];
  t.assignment = task;
  t.assignment.set_attempt(0);
  t.attempt = 0;
  RequeueLocked(t);
}

void FakeCoordinatorClient::SetDown(bool down) {
  absl::MutexLock lock(&mu_);
  down_ = down;
}

void FakeCoordinatorClient::FailNextCalls(int count, absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_next_ = count;
  fail_status_ = std::move(status);
}

void FakeCoordinatorClient::ForgetWorkers() {
  absl::MutexLock lock(&mu_);
  workers_.clear();
}

void FakeCoordinatorClient::RevokeLease(const std::string& task_id) {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(task_id);
  if (it != tasks_.end() && it->second.state == State::kLeased) {
    it->second.revoked = true;
  }
}

void FakeCoordinatorClient::ExpireLease(const std::string& task_id) {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(task_id);
  if (it != tasks_.end() && it->second.state == State::kLeased) {
    RequeueLocked(it->second);
  }
}

std::vector<FakeCoordinatorClient::Completion> FakeCoordinatorClient::completions() const {
  absl::MutexLock lock(&mu_);
  return completions_;
}

int FakeCoordinatorClient::accepted() const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& c : completions_) {
    if (c.outcome == v1::COMPLETION_OUTCOME_ACCEPTED) ++n;
  }
  return n;
}

std::vector<v1::FailTaskRequest> FakeCoordinatorClient::failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

std::vector<v1::HeartbeatRequest> FakeCoordinatorClient::heartbeats() const {
  absl::MutexLock lock(&mu_);
  return heartbeats_;
}

int FakeCoordinatorClient::register_calls() const {
  absl::MutexLock lock(&mu_);
  return register_calls_;
}

int FakeCoordinatorClient::lease_calls() const {
  absl::MutexLock lock(&mu_);
  return lease_calls_;
}

int FakeCoordinatorClient::failed_calls() const {
  absl::MutexLock lock(&mu_);
  return failed_calls_;
}

int FakeCoordinatorClient::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size());
}

bool FakeCoordinatorClient::IsLeased(const std::string& task_id, uint32_t attempt) const {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(task_id);
  return it != tasks_.end() && it->second.state == State::kLeased && !it->second.revoked &&
         it->second.attempt == attempt;
}

}  // namespace ftb::workers
