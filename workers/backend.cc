#include "workers/backend.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ftb::workers {

TaskContext::TaskContext(std::string task_id, uint32_t attempt, LogSink log)
    : task_id_(std::move(task_id)), attempt_(attempt), log_(std::move(log)) {}

bool TaskContext::SleepFor(absl::Duration duration) const {
  return !cancelled_.WaitForNotificationWithTimeout(duration);
}

void TaskContext::Log(std::string_view message) const {
  if (!log_) return;
  log_(absl::StrCat("task ", task_id_, " attempt ", attempt_, ": ", std::string(message)));
}

void TaskContext::SetProgress(double fraction, std::string_view note) {
  absl::MutexLock lock(&mu_);
  progress_ = fraction;
  progress_note_ = std::string(note);
}

double TaskContext::progress() const {
  absl::MutexLock lock(&mu_);
  return progress_;
}

std::string TaskContext::progress_note() const {
  absl::MutexLock lock(&mu_);
  return progress_note_;
}

void TaskContext::Cancel() {
  // absl::Notification may be notified only once.
  if (!cancel_requested_.exchange(true)) cancelled_.Notify();
}

absl::StatusOr<v1::RecordTaskIntentResponse> TaskContext::RecordIntent(
    const v1::TaskIntent& intent) const {
  if (!intent_sink_) return absl::UnimplementedError("no intent sink (not run by a worker)");
  return intent_sink_(intent);
}

absl::Status PauseCampaignError(std::string_view message) {
  absl::Status status = absl::ResourceExhaustedError(std::string(message));
  status.SetPayload(kPauseCampaignPayload, absl::Cord("pause"));
  return status;
}

bool ShouldPauseCampaign(const absl::Status& status) {
  return status.GetPayload(kPauseCampaignPayload).has_value();
}

bool IsRetryableBackendError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return false;
    default:
      return true;
  }
}

absl::Status BackendRegistry::Register(std::string name, BackendFactory factory) {
  return Register(std::move(name), std::move(factory), OptionsValidator());
}

absl::Status BackendRegistry::Register(std::string name, BackendFactory factory,
                                       OptionsValidator validate) {
  if (name.empty()) {
    return absl::InvalidArgumentError("backend name must not be empty");
  }
  if (!factory) {
    return absl::InvalidArgumentError(absl::StrCat("backend \"", name, "\": factory is null"));
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = factories_.emplace(name, std::move(factory));
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("backend \"", it->first, "\" is already registered"));
  }
  if (validate) validators_.emplace(std::move(name), std::move(validate));
  return absl::OkStatus();
}

absl::Status BackendRegistry::ValidateOptions(std::string_view name,
                                              const google::protobuf::Struct& options) const {
  OptionsValidator validate;
  {
    absl::MutexLock lock(&mu_);
    if (!factories_.contains(name)) {
      std::vector<std::string> names;
      for (const auto& [known, unused] : factories_) names.push_back(known);
      return absl::NotFoundError(absl::StrCat(
          "unknown backend \"", std::string(name),
          "\"; known backends: ", names.empty() ? "(none)" : absl::StrJoin(names, ", ")));
    }
    if (auto it = validators_.find(name); it != validators_.end()) validate = it->second;
  }
  return validate ? validate(options) : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TuningBackend>> BackendRegistry::Create(
    std::string_view name, const BackendOptions& options) const {
  BackendFactory factory;
  {
    absl::MutexLock lock(&mu_);
    auto it = factories_.find(name);
    if (it == factories_.end()) {
      std::vector<std::string> names;
      for (const auto& [known, unused] : factories_) names.push_back(known);
      return absl::NotFoundError(absl::StrCat(
          "unknown backend \"", std::string(name),
          "\"; known backends: ", names.empty() ? "(none)" : absl::StrJoin(names, ", ")));
    }
    factory = it->second;
  }
  // Outside the lock: a factory may take a while (loading a model).
  auto backend = factory(options);
  if (backend.ok() && *backend == nullptr) {
    return absl::InternalError(
        absl::StrCat("backend \"", std::string(name), "\": factory returned null"));
  }
  return backend;
}

std::vector<std::string> BackendRegistry::Names() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, unused] : factories_) names.push_back(name);
  return names;
}

BackendRegistry& BackendRegistry::Global() {
  static BackendRegistry* registry = [] {
    auto* r = new BackendRegistry;
    absl::Status status = RegisterBuiltinBackends(*r);
    if (!status.ok()) {  // Two built-ins share a name: a bug in this module.
      std::fprintf(stderr, "ftb: built-in backends: %s\n", status.ToString().c_str());
      std::abort();
    }
    return r;
  }();
  return *registry;
}

absl::Status RegisterBackend(std::string name, BackendFactory factory) {
  return BackendRegistry::Global().Register(std::move(name), std::move(factory));
}

absl::StatusOr<std::unique_ptr<TuningBackend>> CreateBackend(std::string_view name,
                                                             const BackendOptions& options) {
  return BackendRegistry::Global().Create(name, options);
}

}  // namespace ftb::workers
