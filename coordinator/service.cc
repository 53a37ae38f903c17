#include "coordinator/service.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "coordinator/health.h"
#include "coordinator/limits.h"
#include "datasets/dataset.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "spec/spec.h"
#include "storage/memory_state_store.h"
#include "storage/rocksdb_state_store.h"

namespace ftb::coordinator {

// --- SchedulerLoop ------------------------------------------------------------

SchedulerLoop::SchedulerLoop(std::unique_ptr<Scheduler> scheduler, int64_t tick_ms,
                             std::function<void(Scheduler&)> on_tick)
    : scheduler_(std::move(scheduler)), tick_ms_(tick_ms), on_tick_(std::move(on_tick)) {
  thread_ = std::thread([this] { Loop(); });
  commit_thread_ = std::thread([this] { CommitLoop(); });
}

SchedulerLoop::~SchedulerLoop() { Stop(); }

void SchedulerLoop::Post(std::function<void(Scheduler&)> op,
                         std::function<void(const absl::Status&)> done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(Op{std::move(op), std::move(done)});
      return;
    }
  }
  done(absl::UnavailableError("coordinator is shutting down"));
}

uint64_t SchedulerLoop::Subscribe(const std::string& campaign_id, EventSink sink) {
  absl::MutexLock lock(&mu_);
  uint64_t handle = next_handle_++;
  sinks_.emplace_back(handle, campaign_id, std::move(sink));
  return handle;
}

void SchedulerLoop::Unsubscribe(uint64_t handle) {
  absl::MutexLock lock(&mu_);
  std::erase_if(sinks_, [handle](const auto& s) { return std::get<0>(s) == handle; });
}

void SchedulerLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable() && !commit_thread_.joinable()) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();  // runs what is queued, hands it on
  if (commit_thread_.joinable()) commit_thread_.join();  // writes and completes it
}

void SchedulerLoop::OnWriteFailure(std::function<void(const absl::Status&)> handler) {
  absl::Status failed;
  {
    absl::MutexLock lock(&mu_);
    if (write_failure_.ok()) {
      on_write_failure_ = std::move(handler);
      return;
    }
    failed = write_failure_;
  }
  handler(failed);
}

uint64_t SchedulerLoop::batches() const {
  absl::MutexLock lock(&mu_);
  return batches_;
}

uint64_t SchedulerLoop::operations() const {
  absl::MutexLock lock(&mu_);
  return operations_;
}

SchedulerLoop::Times SchedulerLoop::times() const {
  absl::MutexLock lock(&mu_);
  return times_;
}

void SchedulerLoop::Loop() {
  auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  };
  auto next_tick = std::chrono::steady_clock::now();
  auto next_progress = next_tick;
  absl::flat_hash_map<uint64_t, std::string> last_progress;  // by watcher handle
  bool broken = false;
  while (true) {
    std::vector<Op> ops;
    bool stopping;
    absl::Status failure;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&has_work), absl::Milliseconds(tick_ms_));
      ops.swap(queue_);
      stopping = stopping_;
      operations_ += ops.size();
      failure = write_failure_;
    }
    if (!failure.ok() && !broken) {
      // The in-memory state is ahead of the store: refuse further work.
      scheduler_->SetBroken(failure);
      broken = true;
    }
    const auto run_start = std::chrono::steady_clock::now();
    for (Op& op : ops) op.run(*scheduler_);
    if (std::chrono::steady_clock::now() >= next_tick) {
      scheduler_->Tick();  // lease expiry even when nobody calls
      if (on_tick_) on_tick_(*scheduler_);
      next_tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(tick_ms_);
    }
    Commit commit{scheduler_->TakeBatch(), std::move(ops), scheduler_->TakeEvents()};
    {
      absl::MutexLock lock(&mu_);
      times_.run_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    }
    if (!commit.batch.empty() || !commit.ops.empty() || !commit.events.empty()) {
      Enqueue(std::move(commit));
    }
    // Progress snapshots for watchers, at most every 500 ms per campaign and
    // only when something changed (completions are not logged as events).
    if (!broken && std::chrono::steady_clock::now() >= next_progress) {
      next_progress = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
      absl::MutexLock lock(&mu_);
      for (const auto& [handle, id, sink] : sinks_) {
        absl::StatusOr<v1::GetCampaignResponse> got = scheduler_->Get(id);
        if (!got.ok()) continue;
        std::string key = got->progress().SerializeAsString();
        std::string& last = last_progress[handle];
        if (key == last) continue;
        last = key;
        v1::CampaignEvent event;
        event.set_time_ms(RealClock::Get()->NowMs());
        *event.mutable_progress() = got->progress();
        sink(event);
      }
      // Forget watchers that have gone (hundreds may come and go).
      if (last_progress.size() > 2 * sinks_.size() + 16) {
        absl::flat_hash_map<uint64_t, std::string> live;
        for (const auto& [handle, id, sink] : sinks_) {
          if (auto it = last_progress.find(handle); it != last_progress.end()) {
            live.emplace(handle, std::move(it->second));
          }
        }
        last_progress.swap(live);
      }
    }
    if (stopping) {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        loop_done_ = true;
        return;
      }
    }
  }
}

void SchedulerLoop::Enqueue(Commit commit) {
  absl::MutexLock lock(&mu_);
  // One batch waits while one is written; meanwhile new operations queue up
  // and the next batch grows.
  auto room = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return commits_.empty(); };
  mu_.Await(absl::Condition(&room));
  commits_.push_back(std::move(commit));
}

void SchedulerLoop::CommitLoop() {
  storage::StateStore* store = scheduler_->store();
  using Seconds = std::chrono::duration<double>;
  while (true) {
    Commit commit;
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !commits_.empty() || loop_done_;
      };
      mu_.Await(absl::Condition(&ready));
      if (commits_.empty()) return;  // the loop has ended and everything is written
      commit = std::move(commits_.front());
      commits_.pop_front();
      status = write_failure_;
    }
    const auto commit_start = std::chrono::steady_clock::now();
    const bool write = !commit.batch.empty() && status.ok();
    if (write) status = store->Write(commit.batch);  // one synced write for the batch
    const auto done_start = std::chrono::steady_clock::now();
    if (!status.ok()) {
      std::function<void(const absl::Status&)> handler;
      {
        absl::MutexLock lock(&mu_);
        if (write_failure_.ok()) {
          write_failure_ = status;
          handler = std::move(on_write_failure_);
        }
      }
      if (handler) handler(status);  // before any RPC of the batch is answered
    }
    for (Op& op : commit.ops) op.done(status);
    const auto done_end = std::chrono::steady_clock::now();
    absl::MutexLock lock(&mu_);
    if (write && status.ok()) ++batches_;
    times_.commit_seconds += Seconds(done_start - commit_start).count();
    times_.done_seconds += Seconds(done_end - done_start).count();
    if (status.ok()) {
      for (const auto& [campaign, event] : commit.events) {
        for (const auto& [handle, id, sink] : sinks_) {
          if (id == campaign) sink(event);
        }
      }
    }
  }
}

// --- validation -------------------------------------------------------------

namespace {

absl::Status Require(bool ok, const std::string& message) {
  return ok ? absl::OkStatus() : absl::InvalidArgumentError(message);
}

// Size limits: coordinator/limits.h (one table, also in docs/architecture.md).
absl::Status MaxBytes(const std::string& field, const std::string& value, size_t limit) {
  if (value.size() <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": at most ", limit, " bytes, got ", value.size()));
}

absl::Status MaxEntries(const std::string& field, int size, int limit) {
  if (size <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": at most ", limit, " entries, got ", size));
}

absl::Status RequiredId(const std::string& field, const std::string& value, size_t limit) {
  FTB_RETURN_IF_ERROR(Require(!value.empty(), absl::StrCat(field, ": required")));
  return MaxBytes(field, value, limit);
}

absl::Status ValidateWorkerId(const std::string& worker_id) {
  return RequiredId("worker_id", worker_id, limits::kMaxWorkerIdBytes);
}

absl::Status ValidateCampaignId(const std::string& campaign_id) {
  return RequiredId("campaign_id", campaign_id, limits::kMaxCampaignIdBytes);
}

absl::Status Validate(const v1::RegisterWorkerRequest& r) {
  FTB_RETURN_IF_ERROR(ValidateWorkerId(r.worker_id()));
  FTB_RETURN_IF_ERROR(Require(r.role() == v1::WORKER_ROLE_TUNE || r.role() == v1::WORKER_ROLE_JUDGE,
                              "role: expected WORKER_ROLE_TUNE or WORKER_ROLE_JUDGE"));
  FTB_RETURN_IF_ERROR(Require(r.backends_size() > 0, "backends: expected at least one"));
  FTB_RETURN_IF_ERROR(MaxEntries("backends", r.backends_size(), limits::kMaxBackends));
  for (int i = 0; i < r.backends_size(); ++i) {
    FTB_RETURN_IF_ERROR(Require(!r.backends(i).empty(), "backends: empty name"));
    FTB_RETURN_IF_ERROR(MaxBytes(absl::StrCat("backends[", i, "]"), r.backends(i),
                                 limits::kMaxBackendNameBytes));
  }
  FTB_RETURN_IF_ERROR(Require(r.slots() <= limits::kMaxSlots,
                              absl::StrCat("slots: at most ", limits::kMaxSlots, ", got ",
                                           r.slots())));
  FTB_RETURN_IF_ERROR(
      MaxEntries("capabilities", static_cast<int>(r.capabilities_size()), limits::kMaxCapabilities));
  for (const auto& [key, value] : r.capabilities()) {
    FTB_RETURN_IF_ERROR(MaxBytes("capabilities (key)", key, limits::kMaxCapabilityKeyBytes));
    FTB_RETURN_IF_ERROR(MaxBytes(absl::StrCat("capabilities[", key, "]"), value,
                                 limits::kMaxCapabilityValueBytes));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::LeaseTasksRequest& r) {
  return ValidateWorkerId(r.worker_id());
}

absl::Status Validate(const v1::HeartbeatRequest& r) {
  FTB_RETURN_IF_ERROR(ValidateWorkerId(r.worker_id()));
  FTB_RETURN_IF_ERROR(MaxEntries("tasks", r.tasks_size(), limits::kMaxHeartbeatTasks));
  for (int i = 0; i < r.tasks_size(); ++i) {
    FTB_RETURN_IF_ERROR(MaxBytes(absl::StrCat("tasks[", i, "].task_id"), r.tasks(i).task_id(),
                                 limits::kMaxTaskIdBytes));
    FTB_RETURN_IF_ERROR(MaxBytes(absl::StrCat("tasks[", i, "].lease_token"),
                                 r.tasks(i).lease_token(), limits::kMaxLeaseTokenBytes));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::CompleteTasksRequest& r) {
  FTB_RETURN_IF_ERROR(ValidateWorkerId(r.worker_id()));
  FTB_RETURN_IF_ERROR(Require(r.completions_size() > 0, "completions: expected at least one"));
  FTB_RETURN_IF_ERROR(MaxEntries("completions", r.completions_size(), limits::kMaxCompletions));
  for (int i = 0; i < r.completions_size(); ++i) {
    const v1::TaskCompletion& c = r.completions(i);
    FTB_RETURN_IF_ERROR(Require(c.attempt() > 0,
                                absl::StrCat("completions[", i, "].attempt: expected >= 1")));
    FTB_RETURN_IF_ERROR(RequiredId(absl::StrCat("completions[", i, "].task_id"), c.task_id(),
                                   limits::kMaxTaskIdBytes));
    FTB_RETURN_IF_ERROR(MaxBytes(absl::StrCat("completions[", i, "].lease_token"),
                                 c.lease_token(), limits::kMaxLeaseTokenBytes));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::FailTaskRequest& r) {
  FTB_RETURN_IF_ERROR(ValidateWorkerId(r.worker_id()));
  FTB_RETURN_IF_ERROR(RequiredId("task_id", r.task_id(), limits::kMaxTaskIdBytes));
  FTB_RETURN_IF_ERROR(Require(r.attempt() > 0, "attempt: expected >= 1"));
  FTB_RETURN_IF_ERROR(MaxBytes("error", r.error(), limits::kMaxErrorBytes));
  return MaxBytes("lease_token", r.lease_token(), limits::kMaxLeaseTokenBytes);
}

absl::Status Validate(const v1::RecordTaskIntentRequest& r) {
  FTB_RETURN_IF_ERROR(ValidateWorkerId(r.worker_id()));
  FTB_RETURN_IF_ERROR(RequiredId("task_id", r.task_id(), limits::kMaxTaskIdBytes));
  FTB_RETURN_IF_ERROR(Require(r.attempt() > 0, "attempt: expected >= 1"));
  FTB_RETURN_IF_ERROR(MaxBytes("lease_token", r.lease_token(), limits::kMaxLeaseTokenBytes));
  FTB_RETURN_IF_ERROR(RequiredId("intent.kind", r.intent().kind(), limits::kMaxIntentKindBytes));
  FTB_RETURN_IF_ERROR(RequiredId("intent.tag", r.intent().tag(), limits::kMaxIntentTagBytes));
  return MaxBytes("intent.provider_id", r.intent().provider_id(),
                  limits::kMaxIntentProviderIdBytes);
}

absl::Status Validate(const v1::SubmitCampaignRequest& r) {
  FTB_RETURN_IF_ERROR(MaxBytes("spec_yaml", r.spec_yaml(), limits::kMaxSpecYamlBytes));
  FTB_RETURN_IF_ERROR(MaxBytes("spec_filename", r.spec_filename(), limits::kMaxSpecFilenameBytes));
  FTB_RETURN_IF_ERROR(MaxBytes("request_id", r.request_id(), limits::kMaxRequestIdBytes));
  FTB_RETURN_IF_ERROR(MaxEntries("env", static_cast<int>(r.env_size()), limits::kMaxEnvEntries));
  for (const auto& [name, value] : r.env()) {
    FTB_RETURN_IF_ERROR(MaxBytes("env (name)", name, limits::kMaxEnvNameBytes));
    FTB_RETURN_IF_ERROR(
        MaxBytes(absl::StrCat("env[", name, "]"), value, limits::kMaxEnvValueBytes));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::GetCampaignRequest& r) { return ValidateCampaignId(r.campaign_id()); }
absl::Status Validate(const v1::CancelCampaignRequest& r) {
  return ValidateCampaignId(r.campaign_id());
}
absl::Status Validate(const v1::DeleteCampaignRequest& r) {
  return ValidateCampaignId(r.campaign_id());
}

absl::Status Validate(const v1::UpdateBudgetRequest& r) {
  FTB_RETURN_IF_ERROR(ValidateCampaignId(r.campaign_id()));
  FTB_RETURN_IF_ERROR(Require(!r.has_usd() || std::isfinite(r.usd()),
                              absl::StrCat("usd: expected a finite number, got ", r.usd())));
  return Require(!r.has_per_cell_usd() || std::isfinite(r.per_cell_usd()),
                 absl::StrCat("per_cell_usd: expected a finite number, got ", r.per_cell_usd()));
}

absl::Status Validate(const v1::ListCampaignsRequest& r) {
  FTB_RETURN_IF_ERROR(Require(r.page_size() <= limits::kMaxPageSize,
                              absl::StrCat("page_size: at most ", limits::kMaxPageSize, ", got ",
                                           r.page_size())));
  return MaxBytes("page_token", r.page_token(), 64);
}

// Parses the submitted spec and summarises its datasets (file I/O: runs on
// the calling gRPC thread, not on the scheduler loop).
absl::StatusOr<std::pair<v1::CampaignSpec, std::vector<DatasetSummary>>> PrepareSubmission(
    const v1::SubmitCampaignRequest& r, uint64_t max_cells) {
  if (r.spec_yaml().empty()) {
    return absl::InvalidArgumentError(
        "spec_yaml: required (the campaign YAML; see docs/spec.md)");
  }
  std::string filename = r.spec_filename().empty() ? "<submitted>" : r.spec_filename();
  FTB_ASSIGN_OR_RETURN(v1::CampaignSpec spec,
                       spec::ParseCampaignSpec(r.spec_yaml(), filename,
                                               spec::MapEnv({r.env().begin(), r.env().end()})));
  // Refused here, on the RPC thread, from the axis sizes: an oversized grid
  // never reaches dataset loading or the scheduler loop.
  if (const uint64_t cells = CountCells(spec); cells > max_cells) {
    return TooManyCellsError(cells, max_cells);
  }
  std::vector<DatasetSummary> summaries;
  for (const v1::DatasetSpec& ds : spec.datasets()) {
    absl::StatusOr<v1::Dataset> data = datasets::LoadDataset(ds);
    if (!data.ok()) {
      return absl::Status(data.status().code(),
                          absl::StrCat("dataset ", ds.label().empty() ? ds.name() : ds.label(),
                                       ": ", data.status().message()));
    }
    summaries.push_back(Summarize(ds, *data));
  }
  // Datasets with nothing to train on (planner.h); not checked on recovery.
  FTB_RETURN_IF_ERROR(ValidateDatasets(spec, summaries));
  return std::make_pair(std::move(spec), std::move(summaries));
}

}  // namespace

// --- service ------------------------------------------------------------------

CoordinatorService::CoordinatorService(SchedulerLoop* loop, CoordinatorMetrics* metrics,
                                       const storage::StateStore* store)
    : loop_(loop), metrics_(metrics), store_(store) {}

template <typename Fn>
grpc::ServerUnaryReactor* CoordinatorService::Run(grpc::CallbackServerContext* ctx, Fn op) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto result = std::make_shared<absl::Status>();
  loop_->Post([op = std::move(op), result](Scheduler& s) { *result = op(s); },
              [reactor, result](const absl::Status& commit) {
                reactor->Finish(ToGrpcStatus(commit.ok() ? *result : commit));
              });
  return reactor;
}

#define FTB_REJECT_INVALID(ctx, request)                 \
  if (absl::Status v = Validate(*request); !v.ok()) {    \
    auto* reactor = ctx->DefaultReactor();               \
    reactor->Finish(ToGrpcStatus(v));                    \
    return reactor;                                      \
  }

grpc::ServerUnaryReactor* CoordinatorService::RegisterWorker(
    grpc::CallbackServerContext* ctx, const v1::RegisterWorkerRequest* request,
    v1::RegisterWorkerResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    *response = s.RegisterWorker(*request);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::LeaseTasks(grpc::CallbackServerContext* ctx,
                                                         const v1::LeaseTasksRequest* request,
                                                         v1::LeaseTasksResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto result = std::make_shared<absl::Status>();
  auto started = std::chrono::steady_clock::now();
  loop_->Post(
      [request, response, result](Scheduler& s) {
        absl::StatusOr<v1::LeaseTasksResponse> r = s.Lease(*request);
        if (!r.ok()) {
          *result = r.status();
          return;
        }
        *response = *std::move(r);
      },
      [reactor, result, started, metrics = metrics_](const absl::Status& commit) {
        if (metrics) {
          metrics->ObserveLeaseLatency(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        }
        reactor->Finish(ToGrpcStatus(commit.ok() ? *result : commit));
      });
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::Heartbeat(grpc::CallbackServerContext* ctx,
                                                        const v1::HeartbeatRequest* request,
                                                        v1::HeartbeatResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    absl::StatusOr<v1::HeartbeatResponse> r = s.Heartbeat(*request);
    if (!r.ok()) return r.status();
    *response = *std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::CompleteTasks(
    grpc::CallbackServerContext* ctx, const v1::CompleteTasksRequest* request,
    v1::CompleteTasksResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    absl::StatusOr<v1::CompleteTasksResponse> r = s.Complete(*request);
    if (!r.ok()) return r.status();
    *response = *std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::FailTask(grpc::CallbackServerContext* ctx,
                                                       const v1::FailTaskRequest* request,
                                                       v1::FailTaskResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    absl::StatusOr<v1::FailTaskResponse> r = s.Fail(*request);
    if (!r.ok()) return r.status();
    *response = *std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::RecordTaskIntent(
    grpc::CallbackServerContext* ctx, const v1::RecordTaskIntentRequest* request,
    v1::RecordTaskIntentResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    absl::StatusOr<v1::RecordTaskIntentResponse> r = s.RecordIntent(*request);
    if (!r.ok()) return r.status();
    *response = *std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::SubmitCampaign(
    grpc::CallbackServerContext* ctx, const v1::SubmitCampaignRequest* request,
    v1::SubmitCampaignResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  auto prepared = PrepareSubmission(*request, max_cells_);
  if (!prepared.ok()) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpcStatus(prepared.status()));
    return reactor;
  }
  auto shared = std::make_shared<std::pair<v1::CampaignSpec, std::vector<DatasetSummary>>>(
      *std::move(prepared));
  return Run(ctx, [request, response, shared](Scheduler& s) -> absl::Status {
    FTB_ASSIGN_OR_RETURN(SubmitResult r, s.Submit(shared->first, shared->second,
                                                  request->spec_yaml(), request->request_id()));
    response->set_campaign_id(r.campaign_id);
    response->set_cells(r.cells);
    response->set_tasks(r.tasks);
    response->set_already_existed(r.already_existed);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::GetCampaign(grpc::CallbackServerContext* ctx,
                                                          const v1::GetCampaignRequest* request,
                                                          v1::GetCampaignResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    absl::StatusOr<v1::GetCampaignResponse> r = s.Get(request->campaign_id());
    if (!r.ok()) return r.status();
    *response = *std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::ListCampaigns(
    grpc::CallbackServerContext* ctx, const v1::ListCampaignsRequest* request,
    v1::ListCampaignsResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    absl::StatusOr<v1::ListCampaignsResponse> r = s.List(*request);
    if (!r.ok()) return r.status();
    *response = *std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::DeleteCampaign(
    grpc::CallbackServerContext* ctx, const v1::DeleteCampaignRequest* request,
    v1::DeleteCampaignResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    absl::StatusOr<v1::DeleteCampaignResponse> r = s.Delete(request->campaign_id());
    if (!r.ok()) return r.status();
    *response = *std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::CancelCampaign(
    grpc::CallbackServerContext* ctx, const v1::CancelCampaignRequest* request,
    v1::CancelCampaignResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    absl::StatusOr<v1::CampaignProgress> r = s.Cancel(request->campaign_id());
    if (!r.ok()) return r.status();
    *response->mutable_progress() = *std::move(r);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CoordinatorService::UpdateBudget(
    grpc::CallbackServerContext* ctx, const v1::UpdateBudgetRequest* request,
    v1::UpdateBudgetResponse* response) {
  FTB_REJECT_INVALID(ctx, request);
  return Run(ctx, [request, response](Scheduler& s) {
    absl::StatusOr<v1::CampaignProgress> r = s.UpdateBudget(*request);
    if (!r.ok()) return r.status();
    *response->mutable_progress() = *std::move(r);
    return absl::OkStatus();
  });
}

namespace {

// Streams a snapshot, then every event, until the campaign ends or the
// client cancels. One write in flight at a time (gRPC's rule); later events
// queue, and only the newest progress matters, so the queue is bounded.
//
// Lifetime. Two parties hold the reactor: gRPC, until OnDone, and the
// snapshot operation posted to the loop, until its `done` callback (which
// Post always runs, after the commit or at once when stopping). The reactor
// deletes itself when both have let go (Release), and unsubscribes first:
// sinks run under the loop's mutex and Unsubscribe takes it, so once it
// returns no event is being delivered or can be. A client may cancel at any
// moment, even before the loop has taken the snapshot; the operation then
// finds `done_` set and does not subscribe, and every Push after Finish is
// dropped (`finished_`). All gRPC calls (StartWrite, Finish) happen under
// mu_ and only while !finished_, so there is exactly one Finish.
class WatchReactor : public grpc::ServerWriteReactor<v1::CampaignEvent> {
 public:
  WatchReactor(SchedulerLoop* loop, std::string campaign_id)
      : loop_(loop), campaign_id_(std::move(campaign_id)) {
    auto snapshot = std::make_shared<absl::StatusOr<v1::GetCampaignResponse>>(
        absl::UnavailableError("coordinator is shutting down"));
    loop_->Post(
        [this, snapshot](Scheduler& s) {
          *snapshot = s.Get(campaign_id_);
          // Subscribe on the loop thread so no event falls between the
          // snapshot and the subscription; not once gRPC is done with us.
          if (!snapshot->ok() || done_.load(std::memory_order_acquire)) return;
          uint64_t handle =
              loop_->Subscribe(campaign_id_, [this](const v1::CampaignEvent& e) { Push(e); });
          absl::MutexLock lock(&mu_);
          handle_ = handle;
        },
        [this, snapshot](const absl::Status& commit) {
          if (!commit.ok() || !snapshot->ok()) {
            absl::MutexLock lock(&mu_);
            FinishLocked(ToGrpcStatus(!commit.ok() ? commit : snapshot->status()));
          } else {
            v1::CampaignEvent first;
            first.set_time_ms(0);
            *first.mutable_progress() = (*snapshot)->progress();
            Push(first);
          }
          Release();
        });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    done_.store(true, std::memory_order_release);
    Release();
  }

 private:
  // Drops one of the two holds (class comment); the last one deletes.
  void Release() {
    if (holds_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    uint64_t handle;
    {
      absl::MutexLock lock(&mu_);
      handle = handle_;
    }
    if (handle != 0) loop_->Unsubscribe(handle);
    delete this;
  }

  void Push(const v1::CampaignEvent& e) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (pending_.size() >= 64) pending_.pop_front();  // slow client: drop oldest
    pending_.push_back(e);
    if (!writing_) WriteNextLocked();
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    if (pending_.empty()) {
      if (ended_) FinishLocked(grpc::Status::OK);
      return;
    }
    current_ = std::move(pending_.front());
    pending_.pop_front();
    v1::CampaignState s = current_.progress().state();
    ended_ = s == v1::CAMPAIGN_STATE_SUCCEEDED || s == v1::CAMPAIGN_STATE_FAILED ||
             s == v1::CAMPAIGN_STATE_CANCELLED;
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  SchedulerLoop* loop_;
  const std::string campaign_id_;
  std::atomic<int> holds_{2};     // gRPC (until OnDone) + the snapshot operation
  std::atomic<bool> done_{false};  // OnDone has run
  absl::Mutex mu_;
  uint64_t handle_ ABSL_GUARDED_BY(mu_) = 0;  // 0 = not subscribed
  std::deque<v1::CampaignEvent> pending_ ABSL_GUARDED_BY(mu_);
  v1::CampaignEvent current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<v1::CampaignEvent>* CoordinatorService::WatchCampaign(
    grpc::CallbackServerContext*, const v1::WatchCampaignRequest* request) {
  return new WatchReactor(loop_, request->campaign_id());
}

namespace {

// Writes the campaign record, then each table's records under the campaign,
// a page at a time: the next page is read when the previous one is written,
// so memory stays at one page however large the campaign.
class ExportReactor : public grpc::ServerWriteReactor<v1::ExportCampaignPage> {
 public:
  static constexpr size_t kPageRecords = 2048;
  static constexpr size_t kPageBytes = 2 << 20;

  ExportReactor(const storage::StateStore* store, std::string campaign_id)
      : store_(store), campaign_id_(std::move(campaign_id)) {
    if (store_ == nullptr) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this coordinator has no store"));
      return;
    }
    if (campaign_id_.empty()) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "campaign_id: required"));
      return;
    }
    absl::StatusOr<std::string> campaign = store_->Get(keys::Campaign(campaign_id_));
    if (!campaign.ok()) {
      Finish(campaign.status().code() == absl::StatusCode::kNotFound
                 ? grpc::Status(grpc::StatusCode::NOT_FOUND,
                                absl::StrCat("no campaign ", campaign_id_))
                 : ToGrpcStatus(campaign.status()));
      return;
    }
    prefixes_ = {keys::TaskRecordPrefix(campaign_id_), keys::ResultPrefix(campaign_id_),
                 keys::JudgeTaskPrefix(campaign_id_)};
    page_.set_schema_version(static_cast<uint32_t>(storage::kSchemaVersion));
    v1::StateRecord* r = page_.add_records();
    r->set_key(keys::Campaign(campaign_id_));
    r->set_value(*std::move(campaign));
    StartWrite(&page_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    page_.clear_records();
    size_t bytes = 0;
    absl::Status status;
    while (next_prefix_ < prefixes_.size() && page_.records_size() < int(kPageRecords) &&
           bytes < kPageBytes) {
      storage::ScanOptions options;
      options.start_after = last_key_;
      options.limit = kPageRecords - page_.records_size();
      size_t seen = 0;
      status = store_->Scan(prefixes_[next_prefix_], options,
                            [&](std::string_view key, std::string_view value) {
                              v1::StateRecord* r = page_.add_records();
                              r->set_key(std::string(key));
                              r->set_value(std::string(value));
                              last_key_ = std::string(key);
                              bytes += key.size() + value.size();
                              ++seen;
                              return bytes < kPageBytes;
                            });
      if (!status.ok()) break;
      if (seen < options.limit && bytes < kPageBytes) {  // this table is done
        ++next_prefix_;
        last_key_.reset();
      }
    }
    if (!status.ok()) {
      Finish(ToGrpcStatus(status));
    } else if (page_.records_size() == 0) {
      Finish(grpc::Status::OK);
    } else {
      StartWrite(&page_);
    }
  }

  void OnDone() override { delete this; }

 private:
  const storage::StateStore* store_;
  const std::string campaign_id_;
  std::vector<std::string> prefixes_;
  size_t next_prefix_ = 0;
  std::optional<std::string> last_key_;
  v1::ExportCampaignPage page_;
};

}  // namespace

grpc::ServerWriteReactor<v1::ExportCampaignPage>* CoordinatorService::ExportCampaign(
    grpc::CallbackServerContext* ctx, const v1::ExportCampaignRequest* request) {
  (void)ctx;
  return new ExportReactor(store_, request->campaign_id());
}

// --- server ---------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const CoordinatorOptions& options) {
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer);
  if (options.state_dir.empty()) {
    server->store_ = std::make_unique<storage::MemoryStateStore>();
  } else {
    FTB_ASSIGN_OR_RETURN(server->store_, storage::RocksDbStateStore::Open(options.state_dir));
  }
  server->ids_ = std::make_unique<RandomIdSource>();
  SchedulerOptions scheduler_options;
  scheduler_options.max_cells_per_campaign = options.max_cells;
  scheduler_options.requeue_leased_on_recovery = options.requeue_leased_on_recovery;
  scheduler_options.prices = options.prices ? options.prices : &cost::PriceTable::Builtin();
  auto scheduler = std::make_unique<Scheduler>(server->store_.get(), RealClock::Get(),
                                               server->ids_.get(), scheduler_options);
  auto started = std::chrono::steady_clock::now();
  FTB_RETURN_IF_ERROR(scheduler->Recover());
  server->recovery_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::function<void(Scheduler&)> on_tick;
  if (!options.metrics_listen.empty()) {
    auto registry = std::make_shared<prometheus::Registry>();
    server->metrics_ = std::make_unique<CoordinatorMetrics>(registry);
    try {
      server->exposer_ = std::make_unique<prometheus::Exposer>(options.metrics_listen);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("--metrics-listen ", options.metrics_listen,
                       ": cannot listen (address already in use, or not bindable): ", e.what()));
    }
    if (options.metrics_require_token) {
      // HTTP Basic auth (prometheus-cpp's Exposer::RegisterAuth, civetweb):
      // any user name, the user token as the password (Prometheus:
      // basic_auth.password_file). /healthz stays open for probes.
      if (options.security.auth_token.empty()) {
        return absl::InvalidArgumentError(
            "--metrics-require-token needs a token (--auth-token-file or $FTB_AUTH_TOKEN)");
      }
      server->exposer_->RegisterAuth(
          [token = options.security.auth_token](const std::string&, const std::string& password) {
            return password.size() == token.size() &&
                   Sha256Hex(password) == Sha256Hex(token);  // no early exit on the secret
          },
          "ftb coordinator metrics", "/metrics");
    }
    server->exposer_->RegisterCollectable(registry);
    scheduler->SetObserver(server->metrics_.get());
    CoordinatorMetrics* metrics = server->metrics_.get();
    on_tick = [metrics, last = std::chrono::steady_clock::time_point()](Scheduler& s) mutable {
      auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::seconds(1)) return;
      last = now;
      metrics->Refresh(s.Snapshot());
    };
  }
  server->loop_ =
      std::make_unique<SchedulerLoop>(std::move(scheduler), options.tick_ms, std::move(on_tick));
  server->service_ =
      std::make_unique<CoordinatorService>(server->loop_.get(), server->metrics_.get(),
                                           server->store_.get());
  server->service_->set_max_cells(options.max_cells);

  // TLS, token and submission rate are enforced by the credentials' auth
  // metadata processor before any handler runs (coordinator/auth.h).
  FTB_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                       MakeServerCredentials(options.security));
  if (server->exposer_) ServeHealthz(*server->exposer_);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second coordinator on a busy port
  // would then start and share the connections (and the campaigns) with the
  // first. One coordinator per port: a bound port is a startup error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.listen, credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "--listen ", options.listen,
        ": cannot listen (address already in use by another process, e.g. another "
        "coordinator, or not bindable)"));
  }
  // State is recovered: ready. Shutdown() turns this to NOT_SERVING first.
  if (auto* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus("ftb.v1.Coordinator", true);
  }
  server->host_ = options.listen.substr(0, options.listen.rfind(':'));
  // Health goes NOT_SERVING the moment a write fails (class comment). The
  // loop's commit thread calls this; it is joined before server_ goes.
  CoordinatorServer* raw = server.get();
  server->loop_->OnWriteFailure([raw](const absl::Status& failure) {
    {
      absl::MutexLock lock(&raw->failure_mu_);
      if (!raw->store_failure_.ok()) return;
      raw->store_failure_ = failure;
    }
    if (auto* health = raw->server_->GetHealthCheckService()) {
      health->SetServingStatus("ftb.v1.Coordinator", false);
      health->SetServingStatus(false);
    }
  });
  return server;
}

absl::Status CoordinatorServer::WaitForStoreFailure(absl::Duration timeout) {
  absl::MutexLock lock(&failure_mu_);
  auto failed = [this]() ABSL_SHARED_LOCKS_REQUIRED(failure_mu_) {
    return !store_failure_.ok();
  };
  failure_mu_.AwaitWithTimeout(absl::Condition(&failed), timeout);
  return store_failure_;
}

std::string CoordinatorServer::address() const { return absl::StrCat(host_, ":", port_); }

int CoordinatorServer::metrics_port() const {
  if (!exposer_) return 0;
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void CoordinatorServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (server_) {
    if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  if (loop_) loop_->Stop();
  exposer_.reset();  // blocks ~2 s (civetweb shutdown)
  service_.reset();
  server_.reset();
  loop_.reset();
  store_.reset();
}

void CoordinatorServer::Wait() {
  if (server_) server_->Wait();
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

}  // namespace ftb::coordinator
