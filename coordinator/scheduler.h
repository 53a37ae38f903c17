// The scheduler: every campaign's tasks and their state machine
//
//   PENDING --lease--> LEASED --complete--> DONE
//      ^                 |  \--fail/expire, attempts left--> PENDING (after backoff)
//      |                 \----fail/expire, none left / not retryable--> FAILED
//   (cancel: PENDING -> CANCELLED; a LEASED task's report is refused)
//
// Deterministic and single-threaded by design: no threads, no sockets; the
// clock, the store and the id source are injected, so tests drive time by
// hand. NOT thread-safe: the service serialises calls (coordinator/service.h).
//
// Durability and group commit. Mutating calls change the in-memory state at
// once and append their writes to a pending batch; the caller must not
// acknowledge anything to a client until Commit() (or TakeBatch() + its own
// synced write) has returned OK. The service runs many requests, then commits
// their writes as one synced RocksDB batch, then replies to all of them. A
// failed commit leaves memory ahead of disk: the scheduler then refuses every
// further call (kUnavailable) and the process must restart and Recover().
//
// What is stored (keys, see scheduler.cc): the campaign record (spec, dataset
// summaries, state) on submit/cancel/finish; a TaskRecord whenever a task is
// leased, fails, expires or finishes; the result of each finished task; the
// JUDGE tasks a finished TUNE task creates; an append-only event log. Cells
// and never-leased tasks are not stored: they are re-derived from the spec by
// the planner on Recover().
#ifndef FTB_COORDINATOR_SCHEDULER_H_
#define FTB_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/rng.h"
#include "coordinator/planner.h"
#include "cost/price_table.h"
#include "ftb/v1/coordinator.pb.h"
#include "ftb/v1/state.pb.h"
#include "storage/state_store.h"
#include "storage/tables.h"

namespace ftb::coordinator {

struct SchedulerOptions {
  // Upper bound on cells per campaign (refused with kInvalidArgument above).
  uint64_t max_cells_per_campaign = 20'000'000;
  // Tasks one LeaseTasks call may take.
  uint32_t max_lease_batch = 1000;
  // Suggested wait for a worker that found nothing to do.
  uint32_t idle_retry_ms = 200;
  // Seed of the backoff jitter.
  uint64_t jitter_seed = 1;
  // Recover() puts tasks that were leased back in the queue at once instead
  // of granting their workers one more lease period. For deployments where
  // no worker outlives the coordinator (`ftb run`'s in-process workers).
  bool requeue_leased_on_recovery = false;
  // Prices for budget admission control; null = every task is free (no
  // campaign is ever paused by its budget). Not owned.
  const cost::PriceTable* prices = nullptr;
  // Workers not seen (register, lease, heartbeat) for this long are
  // forgotten by Tick(); a returning one gets kFailedPrecondition and
  // registers again. Leases they hold run out as usual.
  int64_t worker_evict_ms = 10 * 60 * 1000;
};

// Receives what the scheduler does, for metrics. Called synchronously from
// scheduler methods (so on the scheduler's thread), before the changes are
// committed; implementations must be cheap and must not call back.
class SchedulerObserver {
 public:
  virtual ~SchedulerObserver() = default;
  virtual void TaskLeased(v1::TaskKind kind, const std::string& backend) = 0;
  // `model` is the model (TUNE) or grader name (JUDGE).
  virtual void TaskCompleted(const std::string& campaign, v1::TaskKind kind,
                             const std::string& backend, const std::string& model,
                             int64_t lease_to_done_ms, const v1::TaskResult& result) = 0;
  virtual void TaskFailed(v1::TaskKind kind, const std::string& backend, bool will_retry) = 0;
  virtual void LeaseExpired(v1::TaskKind kind, const std::string& backend) = 0;
  // A cell left the pending state (done or failed) while the coordinator
  // ran; not called for cells recovered as finished.
  virtual void CellFinished(bool /*failed*/) {}
};

// How recently a worker without a lease must have been seen to count as
// connected (SchedulerSnapshot::workers_by_role): an idle worker polls far
// more often than this.
inline constexpr int64_t kWorkerConnectedMs = 60'000;

// Point-in-time counts for gauges.
struct SchedulerSnapshot {
  std::map<std::string, uint64_t> tasks_by_state;      // pending, leased, done, ...
  std::map<std::string, uint64_t> cells_by_state;      // pending, done, failed, cancelled
  std::map<std::string, uint64_t> campaigns_by_state;  // running, succeeded, ...
  std::map<std::string, uint64_t> queue_by_backend;    // ready tasks
  // Workers seen within kWorkerConnectedMs, or holding an unexpired lease.
  std::map<std::string, uint64_t> workers_by_role;
  // Active campaigns with a budget: dollars left after spend and reservations.
  std::map<std::string, double> budget_remaining_usd;
};

struct SubmitResult {
  std::string campaign_id;
  uint64_t cells = 0;
  uint64_t tasks = 0;
  bool already_existed = false;
};

class Scheduler {
 public:
  // `store`, `clock` and `ids` must outlive the scheduler.
  Scheduler(storage::StateStore* store, const Clock* clock, IdSource* ids,
            SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Loads every campaign from the store. Call once, before anything else.
  // Leased tasks keep their lease for one more lease period from now (their
  // workers may still be running them and will heartbeat); then they expire.
  absl::Status Recover();

  // Adds a campaign. `datasets` parallel to spec.datasets. A non-empty
  // `request_id` seen before returns that campaign (already_existed).
  // kInvalidArgument for a spec the planner rejects or a grid too large.
  absl::StatusOr<SubmitResult> Submit(const v1::CampaignSpec& spec,
                                      const std::vector<DatasetSummary>& datasets,
                                      const std::string& spec_yaml,
                                      const std::string& request_id);

  v1::RegisterWorkerResponse RegisterWorker(const v1::RegisterWorkerRequest& request);

  // Lease tokens. Every assignment carries lease_token, a keyed hash
  // (HMAC-SHA256, 128 bits shown) of the task id and attempt under a secret
  // kept in the store (keys::kLeaseSecretKey, created by Recover() or the
  // first lease), so tokens survive a restart and cannot be guessed from
  // the (guessable) task id and attempt. Heartbeat, Complete, Fail and
  // RecordIntent accept a report about an attempt only with its token, and
  // only from the worker id it was leased to: a Complete/Fail/RecordIntent
  // without the right token is kPermissionDenied (nothing changes), a
  // heartbeat for it gets deadline 0.

  // Leases up to max_tasks ready tasks the worker can run, within per-backend
  // concurrency limits. Campaigns are visited round-robin: each Lease starts
  // one campaign further on (lease_cursor_) than the last, so campaigns take
  // turns being served first (not oldest campaign first). kFailedPrecondition for an
  // unregistered worker (it must register again, e.g. after a restart);
  // kInvalidArgument for max_tasks outside [1, max_lease_batch].
  absl::StatusOr<v1::LeaseTasksResponse> Lease(const v1::LeaseTasksRequest& request);

  // Extends the leases the worker still holds (with their lease tokens); 0
  // for the others. Extensions are kept in memory only (see Recover()).
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);

  // Records results. Idempotent per (task, attempt): a repeat is DUPLICATE;
  // a report whose attempt lost the task is LEASE_LOST; a report from an
  // expired attempt that nobody else has taken since is still ACCEPTED (the
  // work is done; running it again would pay twice). kPermissionDenied for
  // a completion without its attempt's lease token (see above). Every
  // result is checked against its task before anything changes, and
  // kInvalidArgument names the first bad field: cost_usd finite and >= 0,
  // tokens <= limits::kMaxTokens; TUNE answers only for the task's cells,
  // once per cell, items with a known question type (one the dataset asks)
  // and a question id unique per type, cell_id empty or the cell's; JUDGE
  // verdicts exactly one per item of the task (cell, question type and id
  // of an item), with a known verdict; no answers from JUDGE tasks nor
  // verdicts from TUNE tasks; size limits of coordinator/limits.h.
  absl::StatusOr<v1::CompleteTasksResponse> Complete(const v1::CompleteTasksRequest& request);

  // A failure with pause_campaign (the provider needs a human, e.g. out of
  // quota) is retried like any retryable failure, and the campaign goes to
  // CAMPAIGN_STATE_PAUSED_PROVIDER with the error as its status message
  // until UpdateBudget resumes it. Only the holder of the attempt's lease
  // (its token) may fail it, pausing included: kPermissionDenied otherwise.
  absl::StatusOr<v1::FailTaskResponse> Fail(const v1::FailTaskRequest& request);

  // Never paying twice: stores a provider intent with the task (key
  // "i/<campaign>/<task>", in the pending batch like every change) and hands
  // the task's intents to every later attempt (TaskAssignment.intents).
  // Only the lease holder of the task's live attempt may record (its token:
  // kPermissionDenied otherwise): the attempt still leased (also in a
  // cancelled campaign, so a "cancel" intent can be recorded), or expired
  // and not re-leased since (as for Complete); any other state is
  // LEASE_LOST. UNKNOWN_TASK for an unknown task; kInvalidArgument for a
  // malformed task id, an empty kind or tag, or a task that already has
  // limits::kMaxIntentsPerTask intents. The stored list is rewritten on
  // every record, which the per-field and per-task limits keep small.
  absl::StatusOr<v1::RecordTaskIntentResponse> RecordIntent(
      const v1::RecordTaskIntentRequest& request);

  // Budget admission control: before leasing a TUNE task the scheduler adds
  // its estimate (coordinator/cost_estimate.h) to the dollars already
  // reported by finished tasks and the estimates of running ones; if that
  // exceeds budget.usd, or the estimate of one of its cells exceeds
  // budget.per_cell_usd, the task is not started and the campaign goes to
  // CAMPAIGN_STATE_PAUSED_BUDGET with a status message saying why. Running
  // tasks still finish and report. UpdateBudget changes the limits (a value
  // <= 0 removes one) and resumes a paused campaign; kNotFound for an
  // unknown id, kFailedPrecondition for an ended campaign.
  absl::StatusOr<v1::CampaignProgress> UpdateBudget(const v1::UpdateBudgetRequest& request);

  // kNotFound for an unknown id. Cancelling an ended campaign changes nothing.
  absl::StatusOr<v1::CampaignProgress> Cancel(const std::string& campaign_id);

  absl::StatusOr<v1::GetCampaignResponse> Get(const std::string& campaign_id) const;
  // Every campaign, in submission order.
  v1::ListCampaignsResponse List() const;
  // One page of campaigns in submission order: request.page_size of them
  // (0 = limits::kDefaultPageSize; kInvalidArgument above
  // limits::kMaxPageSize), after the campaign named by page_token
  // (kInvalidArgument for a token this coordinator did not hand out).
  // next_page_token is empty on the last page.
  absl::StatusOr<v1::ListCampaignsResponse> List(const v1::ListCampaignsRequest& request) const;

  // Removes an ended campaign (succeeded, failed, cancelled) from memory
  // and deletes all its records (campaign, task records, results, judge
  // tasks, intents, events) in the pending batch. Reports still in flight
  // for it become UNKNOWN_TASK. kNotFound for an unknown id;
  // kFailedPrecondition for a campaign still running or paused.
  absl::StatusOr<v1::DeleteCampaignResponse> Delete(const std::string& campaign_id);

  // Expires overdue leases, releases tasks whose backoff has passed and
  // forgets workers not seen for worker_evict_ms. Lease() calls it; the
  // service also calls it periodically.
  void Tick();

  // Writes the pending batch (synced). See the header comment.
  absl::Status Commit();
  bool HasPendingWrites() const { return !batch_.empty(); }
  // The pending batch, for a caller that writes it itself; resets it.
  storage::WriteBatch TakeBatch();
  // Marks the scheduler unusable after its batch failed to commit.
  void SetBroken(const absl::Status& why);
  // The store batches are written to (for a caller that writes them itself).
  storage::StateStore* store() const { return store_; }

  // Events logged since the last call, with their campaign ids.
  std::vector<std::pair<std::string, v1::CampaignEvent>> TakeEvents();

  // Not owned; null = none.
  void SetObserver(SchedulerObserver* observer) { observer_ = observer; }
  SchedulerSnapshot Snapshot() const;

  // Whether any campaign is still running (has work left).
  bool HasActiveCampaigns() const;

  // Approximate bytes of scheduling state (tasks, plan, queues), for the
  // memory benchmark.
  size_t ApproximateMemoryBytes() const;

  struct Campaign;

 private:
  struct Worker;
  struct TaskRef {
    Campaign* campaign;
    uint32_t task;
  };
  struct HeapEntry {
    int64_t time_ms;
    Campaign* campaign;
    uint32_t task;
    uint32_t attempt;
    bool operator>(const HeapEntry& o) const { return time_ms > o.time_ms; }
  };
  using MinHeap = std::priority_queue<HeapEntry, std::vector<HeapEntry>, std::greater<>>;

  absl::Status CheckUsable() const;
  absl::StatusOr<TaskRef> ParseTaskId(const std::string& task_id) const;
  std::unique_ptr<Campaign> BuildCampaign(v1::Campaign record, absl::Status* status);
  void Enqueue(Campaign& c, uint32_t task);
  void LeaseOne(Campaign& c, uint32_t task, uint32_t worker, v1::TaskAssignment* out);
  // Workers seen in the last 5 minutes with `role` that offer `backend`.
  uint32_t WorkersOffering(const std::string& backend, v1::WorkerRole role) const;
  void FillAssignment(const Campaign& c, uint32_t task, v1::TaskAssignment* out) const;
  // A failed attempt (reported or expired): retry after backoff or fail.
  // `counted` false: the attempt does not count toward max_attempts (the
  // provider paused the campaign; the task waits for the resume).
  bool FailAttempt(Campaign& c, uint32_t task, const std::string& error, bool retryable,
                   bool counted = true);
  void FinishTask(Campaign& c, uint32_t task, uint32_t attempt, const v1::TaskResult& result);
  void CellsOfTask(const Campaign& c, uint32_t task, std::vector<uint32_t>* cells) const;
  void MarkCellDone(Campaign& c, uint32_t cell);
  void MarkCellFailed(Campaign& c, uint32_t cell);
  void MaybeFinishCampaign(Campaign& c);
  // Whether leasing TUNE task `task` keeps the campaign within its budget;
  // if not, pauses the campaign.
  bool AdmitWithinBudget(Campaign& c, uint32_t task);
  void ReleaseReservation(Campaign& c, uint32_t task);
  void PutTaskRecord(const Campaign& c, uint32_t task, const std::string& error = "",
                     double cost_usd = 0);
  void PutCampaignRecord(Campaign& c);
  void LogEvent(Campaign& c, const std::string& message);
  int64_t BackoffMs(const v1::RetryPolicy& retry, uint32_t attempt);
  uint32_t InternWorker(const std::string& worker_id);
  // Lease references of interned worker names (a name is freed only when
  // no leased task refers to it and the worker is not registered).
  void AddWorkerRef(uint32_t worker);
  void DropWorkerRef(uint32_t worker);
  void MaybeFreeWorkerName(uint32_t worker);
  void EvictIdleWorkers();
  // The lease secret, loaded or created (in the pending batch) on first use.
  absl::Status LoadLeaseSecret();
  std::string LeaseToken(const Campaign& c, uint32_t task, uint32_t attempt) const;
  // OK when `token` is the lease token of (task, attempt) and, while that
  // attempt holds the task, `worker_id` is its holder; else
  // kPermissionDenied naming `field`.
  absl::Status CheckLease(const Campaign& c, uint32_t task, uint32_t attempt,
                          const std::string& worker_id, const std::string& token,
                          const std::string& field) const;
  absl::Status ValidateResult(const Campaign& c, uint32_t task, const v1::TaskResult& result,
                              const std::string& field) const;
  v1::CampaignProgress Progress(const Campaign& c) const;
  std::string TaskId(const Campaign& c, uint32_t task) const;

  storage::StateStore* store_;
  const Clock* clock_;
  IdSource* ids_;
  SchedulerOptions options_;
  Rng jitter_;
  absl::Status broken_;

  std::vector<std::unique_ptr<Campaign>> campaigns_;  // submission order
  absl::flat_hash_map<std::string, Campaign*> by_id_;
  absl::flat_hash_map<std::string, Campaign*> by_request_id_;
  std::vector<std::string> worker_names_;
  std::vector<uint32_t> worker_refs_;  // leased tasks naming each worker
  std::vector<uint32_t> free_worker_slots_;
  absl::flat_hash_map<std::string, uint32_t> worker_index_;
  std::string lease_secret_;  // empty until LoadLeaseSecret()
  Sha256 hmac_inner_, hmac_outer_;  // HMAC pads of lease_secret_
  int64_t next_evict_ms_ = 0;
  uint64_t next_list_seq_ = 1;
  absl::flat_hash_map<uint32_t, std::unique_ptr<Worker>> workers_;  // registered
  MinHeap lease_heap_;    // lease deadlines
  MinHeap backoff_heap_;  // retry not-before times
  size_t lease_cursor_ = 0;  // round-robin start over campaigns

  storage::WriteBatch batch_;
  std::vector<std::pair<std::string, v1::CampaignEvent>> events_;
  SchedulerObserver* observer_ = nullptr;
};

// Key layout of the coordinator's tables (exposed for tests and tools).
// Key layout of the coordinator's tables (storage/tables.h), under the name
// the coordinator's code uses.
namespace keys = ::ftb::storage::tables;

}  // namespace ftb::coordinator

#endif  // FTB_COORDINATOR_SCHEDULER_H_
