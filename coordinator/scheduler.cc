#include "coordinator/scheduler.h"

#include <optional>

#include <algorithm>
#include <cmath>
#include <set>

#include <cstring>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "coordinator/cost_estimate.h"
#include "coordinator/limits.h"
#include "datasets/dataset.h"
#include "storage/keys.h"

namespace ftb::coordinator {


// --- in-memory state ----------------------------------------------------------

namespace {

// Compact per-task state: 40 bytes, so a million pending tasks cost ~40 MB.
struct TaskSlot {
  int64_t lease_deadline_ms = 0;
  int64_t not_before_ms = 0;
  int64_t leased_at_ms = 0;
  uint32_t worker = 0;  // index into worker_names_ while leased
  uint16_t attempt = 0;
  uint16_t done_attempt = 0;
  uint8_t state = v1::TASK_STATE_PENDING;
  uint8_t uncounted_attempts = 0;  // ended by a provider pause (fits the padding)
};

struct JudgeTask {
  uint32_t cell;
  v1::JudgeTaskRecord record;
};

bool IsEnded(v1::CampaignState s) {
  return s == v1::CAMPAIGN_STATE_SUCCEEDED || s == v1::CAMPAIGN_STATE_FAILED ||
         s == v1::CAMPAIGN_STATE_CANCELLED;
}

}  // namespace

struct Scheduler::Campaign {
  v1::Campaign record;  // spec, summaries, state; counters filled on output
  Plan plan;
  uint32_t runs = 0;  // TUNE tasks are [0, runs); JUDGE tasks follow
  std::vector<TaskSlot> tasks;
  absl::flat_hash_map<uint32_t, JudgeTask> judge;  // by task index
  absl::flat_hash_map<uint32_t, uint32_t> judge_outstanding;  // by cell
  std::vector<uint8_t> cell_state;  // v1::CellState per cell (0 = pending)
  // Ready queues by (kind, backend); may hold stale entries (checked on pop).
  std::map<std::pair<int, std::string>, std::deque<uint32_t>> ready;
  absl::flat_hash_map<std::string, uint32_t> leased_by_backend;
  uint64_t pending = 0, leased = 0, done = 0, failed = 0, cancelled = 0, attempts = 0;
  uint64_t cells_done = 0, cells_failed = 0;
  uint64_t next_event_seq = 1;
  double cost_usd = 0;      // reported by finished tasks
  double reserved_usd = 0;  // estimates of running TUNE tasks
  double estimated_total_usd = 0;
  std::vector<float> run_usd;           // estimate per training run
  std::vector<float> run_max_cell_usd;  // costliest cell of each run on its own
  // Provider intents recorded by the task's attempts (never paying twice).
  absl::flat_hash_map<uint32_t, v1::TaskIntents> intents;  // by task index
  // CanonicalOptionsJson of each model: part of every cell id, and costly
  // (a JSON dump) to recompute for each cell a lease or a result names.
  std::vector<std::string> options_json;
  std::optional<CellIdHasher> cell_ids;  // set with the plan
  // Position in the scheduler's list (increasing in campaigns_), for
  // ListCampaigns page tokens.
  uint64_t list_seq = 0;

  const std::string& id() const { return record.id(); }
  // Work may still be reported (running or paused by its budget).
  bool active() const {
    return record.state() == v1::CAMPAIGN_STATE_RUNNING ||
           record.state() == v1::CAMPAIGN_STATE_PAUSED_BUDGET ||
           record.state() == v1::CAMPAIGN_STATE_PAUSED_PROVIDER;
  }
  // New tasks may be leased.
  bool leasable() const { return record.state() == v1::CAMPAIGN_STATE_RUNNING; }
  const std::string& BackendOf(uint32_t task) const {
    if (task < runs) {
      const GridPoint& p = plan.cells[plan.runs[task].first_cell];
      return record.spec().models(static_cast<int>(p.model)).backend();
    }
    return judge.at(task).record.work().grader().kind();
  }
  v1::TaskKind KindOf(uint32_t task) const {
    return task < runs ? v1::TASK_KIND_TUNE : v1::TASK_KIND_JUDGE;
  }
  int64_t LeaseMs() const {
    return static_cast<int64_t>(record.spec().retry().lease_seconds() * 1000);
  }
};

namespace {

std::string CellIdOf(const Scheduler::Campaign& c, uint64_t cell) {
  const GridPoint& p = c.plan.cells[cell];
  return c.cell_ids->Id(p);
}

}  // namespace

struct Scheduler::Worker {
  v1::WorkerRole role;
  std::vector<std::string> backends;
  int64_t last_seen_ms = 0;
};

Scheduler::Scheduler(storage::StateStore* store, const Clock* clock, IdSource* ids,
                     SchedulerOptions options)
    : store_(store), clock_(clock), ids_(ids), options_(options), jitter_(options.jitter_seed) {}

Scheduler::~Scheduler() = default;

absl::Status Scheduler::CheckUsable() const {
  if (broken_.ok()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("coordinator state could not be saved (", broken_.message(),
                   "); restart the coordinator"));
}

void Scheduler::SetBroken(const absl::Status& why) { broken_ = why; }

std::string Scheduler::TaskId(const Campaign& c, uint32_t task) const {
  return absl::StrCat(c.id(), "/", task);
}

absl::StatusOr<Scheduler::TaskRef> Scheduler::ParseTaskId(const std::string& task_id) const {
  size_t slash = task_id.rfind('/');
  uint32_t task = 0;
  if (slash == std::string::npos || !absl::SimpleAtoi(task_id.substr(slash + 1), &task)) {
    return absl::InvalidArgumentError(
        absl::StrCat("task_id: expected <campaign>/<index>, got \"", task_id, "\""));
  }
  auto it = by_id_.find(task_id.substr(0, slash));
  if (it == by_id_.end() || task >= it->second->tasks.size()) {
    return absl::NotFoundError(absl::StrCat("no task ", task_id));
  }
  return TaskRef{it->second, task};
}

uint32_t Scheduler::InternWorker(const std::string& worker_id) {
  if (auto it = worker_index_.find(worker_id); it != worker_index_.end()) return it->second;
  uint32_t index;
  if (!free_worker_slots_.empty()) {
    index = free_worker_slots_.back();
    free_worker_slots_.pop_back();
    worker_names_[index] = worker_id;
    worker_refs_[index] = 0;
  } else {
    index = static_cast<uint32_t>(worker_names_.size());
    worker_names_.push_back(worker_id);
    worker_refs_.push_back(0);
  }
  worker_index_.emplace(worker_id, index);
  return index;
}

void Scheduler::AddWorkerRef(uint32_t worker) { ++worker_refs_[worker]; }

void Scheduler::DropWorkerRef(uint32_t worker) {
  if (worker_refs_[worker] > 0) --worker_refs_[worker];
  MaybeFreeWorkerName(worker);
}

void Scheduler::MaybeFreeWorkerName(uint32_t worker) {
  if (worker_refs_[worker] != 0 || workers_.contains(worker)) return;
  auto it = worker_index_.find(worker_names_[worker]);
  if (it == worker_index_.end() || it->second != worker) return;  // already free
  worker_index_.erase(it);
  std::string().swap(worker_names_[worker]);
  free_worker_slots_.push_back(worker);
}

void Scheduler::EvictIdleWorkers() {
  const int64_t now = clock_->NowMs();
  if (now < next_evict_ms_) return;
  next_evict_ms_ = now + 1000;
  std::vector<uint32_t> idle;
  for (const auto& [index, w] : workers_) {
    if (now - w->last_seen_ms > options_.worker_evict_ms) idle.push_back(index);
  }
  for (uint32_t index : idle) {
    workers_.erase(index);
    MaybeFreeWorkerName(index);
  }
}

// --- lease tokens -------------------------------------------------------------

namespace {

constexpr size_t kLeaseSecretBytes = 32;

// HMAC-SHA256 (RFC 2104) under a key of at most one block: the hash states
// after the inner and outer key pads, computed once per key.
void HmacPads(std::string_view key, Sha256* inner, Sha256* outer) {
  std::array<char, 64> k{};
  std::memcpy(k.data(), key.data(), std::min(key.size(), k.size()));
  std::string ipad(64, '\0'), opad(64, '\0');
  for (size_t i = 0; i < 64; ++i) {
    ipad[i] = static_cast<char>(k[i] ^ 0x36);
    opad[i] = static_cast<char>(k[i] ^ 0x5c);
  }
  *inner = Sha256();
  inner->Update(ipad);
  *outer = Sha256();
  outer->Update(opad);
}

std::array<uint8_t, 32> Hmac(Sha256 inner, Sha256 outer, std::string_view message) {
  inner.Update(message);
  std::array<uint8_t, 32> inner_digest = inner.Finish();
  outer.Update(std::string_view(reinterpret_cast<const char*>(inner_digest.data()),
                                inner_digest.size()));
  return outer.Finish();
}

// No early exit: timing does not tell how much of a guess matched.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | (a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

absl::Status Scheduler::LoadLeaseSecret() {
  if (!lease_secret_.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> stored = store_->Get(keys::kLeaseSecretKey);
  if (stored.ok()) {
    if (stored->size() != kLeaseSecretBytes) {
      return absl::DataLossError(absl::StrCat("state record ", keys::kLeaseSecretKey,
                                              ": expected ", kLeaseSecretBytes,
                                              " bytes, got ", stored->size()));
    }
    lease_secret_ = *std::move(stored);
    HmacPads(lease_secret_, &hmac_inner_, &hmac_outer_);
    return absl::OkStatus();
  }
  if (!absl::IsNotFound(stored.status())) return stored.status();
  std::random_device random;  // the OS's entropy source (getrandom on Linux)
  std::string secret(kLeaseSecretBytes, '\0');
  for (size_t i = 0; i < secret.size(); i += 4) {
    uint32_t r = random();
    std::memcpy(&secret[i], &r, std::min<size_t>(4, secret.size() - i));
  }
  // Durable with the first lease that uses it (same batch or an earlier one).
  batch_.Put(keys::kLeaseSecretKey, secret);
  lease_secret_ = std::move(secret);
  HmacPads(lease_secret_, &hmac_inner_, &hmac_outer_);
  return absl::OkStatus();
}

std::string Scheduler::LeaseToken(const Campaign& c, uint32_t task, uint32_t attempt) const {
  std::array<uint8_t, 32> mac = Hmac(hmac_inner_, hmac_outer_,
                                     absl::StrCat("ftb.lease.v1\n", TaskId(c, task), "\n", attempt));
  return DigestHex(mac, 16);
}

absl::Status Scheduler::CheckLease(const Campaign& c, uint32_t task, uint32_t attempt,
                                   const std::string& worker_id, const std::string& token,
                                   const std::string& field) const {
  bool ok = !lease_secret_.empty() && ConstantTimeEquals(token, LeaseToken(c, task, attempt));
  const TaskSlot& s = c.tasks[task];
  if (ok && s.state == v1::TASK_STATE_LEASED && s.attempt == attempt) {
    auto wi = worker_index_.find(worker_id);
    ok = wi != worker_index_.end() && wi->second == s.worker;
  }
  if (ok) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      field, ": not the lease token of task ", TaskId(c, task), " attempt ", attempt,
      token.empty() ? " (none sent)" : "",
      "; only the worker holding that lease (the token came with its TaskAssignment) may "
      "report on it"));
}

// --- building campaigns -----------------------------------------------------

std::unique_ptr<Scheduler::Campaign> Scheduler::BuildCampaign(v1::Campaign record,
                                                              absl::Status* status) {
  auto c = std::make_unique<Campaign>();
  std::vector<DatasetSummary> summaries;
  for (const v1::DatasetSummary& d : record.datasets()) summaries.push_back(FromProto(d));
  // Counted from the axis sizes before anything is expanded.
  if (const uint64_t cells = CountCells(record.spec()); cells > options_.max_cells_per_campaign) {
    *status = TooManyCellsError(cells, options_.max_cells_per_campaign);
    return nullptr;
  }
  absl::StatusOr<Plan> plan = PlanCampaign(record.spec(), std::move(summaries));
  if (!plan.ok()) {
    *status = plan.status();
    return nullptr;
  }
  c->plan = *std::move(plan);
  c->runs = static_cast<uint32_t>(c->plan.runs.size());
  c->tasks.resize(c->runs);
  c->cell_state.assign(c->plan.cells.size(), v1::CELL_STATE_PENDING);
  if (options_.prices != nullptr) {
    c->run_usd.resize(c->runs);
    c->run_max_cell_usd.resize(c->runs);
    for (uint32_t r = 0; r < c->runs; ++r) {
      CostEstimate e = EstimateRun(*options_.prices, record.spec(), c->plan, r);
      c->run_usd[r] = static_cast<float>(e.total());
      c->estimated_total_usd += e.total();
      const TrainingRun& run = c->plan.runs[r];
      for (uint32_t k = 0; k < run.cell_count; ++k) {
        double cell = EstimateCell(*options_.prices, record.spec(), c->plan,
                                   c->plan.cells[run.first_cell + k])
                          .total();
        c->run_max_cell_usd[r] = std::max(c->run_max_cell_usd[r], static_cast<float>(cell));
      }
    }
  }
  c->record = std::move(record);
  c->record.set_cells_total(c->plan.cells.size());
  for (const v1::ModelSpec& m : c->record.spec().models()) {
    c->options_json.push_back(CanonicalOptionsJson(m.options()));
  }
  c->cell_ids.emplace(c->record.spec(), c->plan);
  return c;
}

absl::StatusOr<SubmitResult> Scheduler::Submit(const v1::CampaignSpec& spec,
                                               const std::vector<DatasetSummary>& datasets,
                                               const std::string& spec_yaml,
                                               const std::string& request_id) {
  FTB_RETURN_IF_ERROR(CheckUsable());
  if (!request_id.empty()) {
    auto it = by_request_id_.find(request_id);
    if (it != by_request_id_.end()) {
      Campaign& c = *it->second;
      return SubmitResult{c.id(), c.plan.cells.size(), c.tasks.size(), true};
    }
  }
  v1::Campaign record;
  record.set_id(ids_->NewId("c"));
  *record.mutable_spec() = spec;
  record.set_state(v1::CAMPAIGN_STATE_RUNNING);
  record.set_created_ms(clock_->NowMs());
  record.set_updated_ms(record.created_ms());
  record.set_spec_yaml(spec_yaml);
  record.set_request_id(request_id);
  for (const DatasetSummary& d : datasets) *record.add_datasets() = ToProto(d);
  absl::Status status;
  std::unique_ptr<Campaign> c = BuildCampaign(std::move(record), &status);
  if (c == nullptr) return status;
  c->record.set_tasks_total(c->runs);
  c->pending = c->runs;
  for (uint32_t t = 0; t < c->runs; ++t) Enqueue(*c, t);
  Campaign* raw = c.get();
  raw->list_seq = next_list_seq_++;
  by_id_[raw->id()] = raw;
  if (!request_id.empty()) by_request_id_[request_id] = raw;
  campaigns_.push_back(std::move(c));
  PutCampaignRecord(*raw);
  LogEvent(*raw, absl::StrCat("submitted: ", raw->plan.cells.size(), " cells in ", raw->runs,
                              " training runs"));
  return SubmitResult{raw->id(), raw->plan.cells.size(), raw->runs, false};
}

// --- recovery -----------------------------------------------------------------

absl::Status Scheduler::Recover() {
  FTB_RETURN_IF_ERROR(LoadLeaseSecret());
  std::vector<v1::Campaign> records;
  absl::Status scan_status;
  FTB_RETURN_IF_ERROR(store_->Scan(keys::kCampaignPrefix, {}, [&](std::string_view key,
                                                              std::string_view value) {
    absl::StatusOr<v1::Campaign> record = keys::ParseProto<v1::Campaign>(key, value);
    if (!record.ok()) {
      scan_status = record.status();
      return false;
    }
    records.push_back(*std::move(record));
    return true;
  }));
  FTB_RETURN_IF_ERROR(scan_status);
  std::sort(records.begin(), records.end(), [](const v1::Campaign& a, const v1::Campaign& b) {
    return a.created_ms() != b.created_ms() ? a.created_ms() < b.created_ms() : a.id() < b.id();
  });
  const int64_t now = clock_->NowMs();
  for (v1::Campaign& record : records) {
    std::string id = record.id();
    absl::Status status;
    std::unique_ptr<Campaign> c = BuildCampaign(std::move(record), &status);
    if (c == nullptr) {
      return absl::DataLossError(absl::StrCat("campaign ", id, " cannot be re-planned: ",
                                              status.message()));
    }
    // JUDGE tasks first: task records may refer to them.
    FTB_RETURN_IF_ERROR(keys::ScanTaskRows<v1::JudgeTaskRecord>(
        *store_, keys::JudgeTaskPrefix(id), [&](uint32_t task, v1::JudgeTaskRecord jr) {
          if (c->tasks.size() <= task) c->tasks.resize(task + 1);
          uint32_t cell = jr.cell_index();
          c->judge[task] = JudgeTask{cell, std::move(jr)};
          return absl::OkStatus();
        }));
    const auto known_task = [&](uint32_t task) {
      return task < c->tasks.size()
                 ? absl::OkStatus()
                 : absl::DataLossError(absl::StrCat("campaign ", id, ": stored task ", task,
                                                    " is not in its plan"));
    };
    FTB_RETURN_IF_ERROR(keys::ScanTaskRows<v1::TaskRecord>(
        *store_, keys::TaskRecordPrefix(id), [&](uint32_t task, const v1::TaskRecord& tr) {
          FTB_RETURN_IF_ERROR(known_task(task));
          TaskSlot& s = c->tasks[task];
          s.state = static_cast<uint8_t>(tr.state());
          s.attempt = static_cast<uint16_t>(tr.attempt());
          s.uncounted_attempts = static_cast<uint8_t>(std::min<uint32_t>(tr.uncounted_attempts(), 255));
          s.done_attempt = static_cast<uint16_t>(tr.done_attempt());
          s.not_before_ms = tr.not_before_ms();
          if (tr.state() == v1::TASK_STATE_LEASED && options_.requeue_leased_on_recovery) {
            // Its worker died with the coordinator: the attempt is over, but
            // it did not fail, so it costs no backoff.
            s.state = v1::TASK_STATE_PENDING;
            s.not_before_ms = 0;
          } else if (tr.state() == v1::TASK_STATE_LEASED) {
            s.worker = InternWorker(tr.worker_id());
            AddWorkerRef(s.worker);
            s.lease_deadline_ms = std::max(tr.lease_deadline_ms(), now + c->LeaseMs());
          }
          c->cost_usd += tr.cost_usd();
          return absl::OkStatus();
        }));
    FTB_RETURN_IF_ERROR(keys::ScanTaskRows<v1::TaskIntents>(
        *store_, keys::IntentPrefix(id), [&](uint32_t task, v1::TaskIntents intents) {
          FTB_RETURN_IF_ERROR(known_task(task));
          c->intents[task] = std::move(intents);
          return absl::OkStatus();
        }));
    FTB_RETURN_IF_ERROR(
        store_->Scan(keys::EventPrefix(id), {}, [&](std::string_view, std::string_view value) {
          v1::EventRecord e;
          if (e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
            c->next_event_seq = std::max(c->next_event_seq, e.seq() + 1);
          }
          return true;
        }));

    // Derive counters, cell states and queues.
    Campaign& cr = *c;
    const bool cancelled = cr.record.state() == v1::CAMPAIGN_STATE_CANCELLED;
    for (const auto& [task, jt] : cr.judge) {
      if (cr.tasks[task].state != v1::TASK_STATE_DONE) ++cr.judge_outstanding[jt.cell];
    }
    std::vector<uint32_t> cells;
    for (uint32_t t = 0; t < cr.tasks.size(); ++t) {
      TaskSlot& s = cr.tasks[t];
      if (t >= cr.runs && !cr.judge.contains(t)) {
        return absl::DataLossError(absl::StrCat("campaign ", id, ": task ", t,
                                                " has a record but no definition"));
      }
      cr.attempts += s.attempt;
      if (cancelled && (s.state == v1::TASK_STATE_PENDING)) s.state = v1::TASK_STATE_CANCELLED;
      switch (s.state) {
        case v1::TASK_STATE_PENDING:
          ++cr.pending;
          Enqueue(cr, t);
          break;
        case v1::TASK_STATE_LEASED:
          ++cr.leased;
          ++cr.leased_by_backend[cr.BackendOf(t)];
          if (t < cr.run_usd.size()) cr.reserved_usd += cr.run_usd[t];
          lease_heap_.push({s.lease_deadline_ms, &cr, t, s.attempt});
          break;
        case v1::TASK_STATE_DONE:
          ++cr.done;
          break;
        case v1::TASK_STATE_FAILED:
          ++cr.failed;
          break;
        default:
          ++cr.cancelled;
          break;
      }
      if (s.state == v1::TASK_STATE_FAILED) {
        CellsOfTask(cr, t, &cells);
        for (uint32_t cell : cells) MarkCellFailed(cr, cell);
      }
    }
    // A cell is done when its training run is done and every JUDGE task
    // created for it is done (a run whose answers needed no judging has none).
    absl::flat_hash_set<uint32_t> judged;
    for (const auto& [task, jt] : cr.judge) judged.insert(jt.cell);
    for (uint32_t t = 0; t < cr.runs; ++t) {
      if (cr.tasks[t].state != v1::TASK_STATE_DONE) continue;
      CellsOfTask(cr, t, &cells);
      for (uint32_t cell : cells) {
        if (!judged.contains(cell) || !cr.judge_outstanding.contains(cell)) {
          MarkCellDone(cr, cell);
        }
      }
    }
    Campaign* raw = c.get();
    raw->list_seq = next_list_seq_++;
    by_id_[id] = raw;
    if (!raw->record.request_id().empty()) by_request_id_[raw->record.request_id()] = raw;
    campaigns_.push_back(std::move(c));
    if (raw->active()) MaybeFinishCampaign(*raw);
  }
  return absl::OkStatus();
}

// --- queues -------------------------------------------------------------------

void Scheduler::Enqueue(Campaign& c, uint32_t task) {
  TaskSlot& s = c.tasks[task];
  if (s.not_before_ms > clock_->NowMs()) {
    backoff_heap_.push({s.not_before_ms, &c, task, s.attempt});
    return;
  }
  c.ready[{c.KindOf(task), c.BackendOf(task)}].push_back(task);
}

void Scheduler::Tick() {
  const int64_t now = clock_->NowMs();
  while (!backoff_heap_.empty() && backoff_heap_.top().time_ms <= now) {
    HeapEntry e = backoff_heap_.top();
    backoff_heap_.pop();
    TaskSlot& s = e.campaign->tasks[e.task];
    if (s.state == v1::TASK_STATE_PENDING && s.attempt == e.attempt) {
      e.campaign->ready[{e.campaign->KindOf(e.task), e.campaign->BackendOf(e.task)}].push_back(
          e.task);
    }
  }
  while (!lease_heap_.empty() && lease_heap_.top().time_ms <= now) {
    HeapEntry e = lease_heap_.top();
    lease_heap_.pop();
    Campaign& c = *e.campaign;
    TaskSlot& s = c.tasks[e.task];
    if (s.state != v1::TASK_STATE_LEASED || s.attempt != e.attempt ||
        s.lease_deadline_ms != e.time_ms) {
      continue;  // stale: extended, finished or re-leased since
    }
    if (observer_) observer_->LeaseExpired(c.KindOf(e.task), c.BackendOf(e.task));
    std::string error = absl::StrCat("lease expired: worker ", worker_names_[s.worker],
                                     " stopped heartbeating (attempt ", s.attempt, ")");
    FailAttempt(c, e.task, error, /*retryable=*/true);
  }
  EvictIdleWorkers();
}

// --- workers ------------------------------------------------------------------

v1::RegisterWorkerResponse Scheduler::RegisterWorker(const v1::RegisterWorkerRequest& request) {
  uint32_t index = InternWorker(request.worker_id());
  auto& w = workers_[index];
  if (!w) w = std::make_unique<Worker>();
  w->role = request.role();
  w->backends.assign(request.backends().begin(), request.backends().end());
  w->last_seen_ms = clock_->NowMs();
  v1::RegisterWorkerResponse response;
  double lease = 60;
  for (const auto& c : campaigns_) {
    if (c->active()) lease = std::min(lease, c->record.spec().retry().lease_seconds());
  }
  response.set_lease_seconds(lease);
  return response;
}

absl::StatusOr<v1::LeaseTasksResponse> Scheduler::Lease(const v1::LeaseTasksRequest& request) {
  FTB_RETURN_IF_ERROR(CheckUsable());
  FTB_RETURN_IF_ERROR(LoadLeaseSecret());
  if (request.max_tasks() < 1 || request.max_tasks() > options_.max_lease_batch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tasks: expected 1..", options_.max_lease_batch, ", got ", request.max_tasks()));
  }
  auto wi = worker_index_.find(request.worker_id());
  if (wi == worker_index_.end() || !workers_.contains(wi->second)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker ", request.worker_id(), " is not registered (coordinator restarted?): register"));
  }
  Worker& worker = *workers_[wi->second];
  worker.last_seen_ms = clock_->NowMs();
  Tick();
  v1::LeaseTasksResponse response;
  const int kind = worker.role == v1::WORKER_ROLE_JUDGE ? v1::TASK_KIND_JUDGE : v1::TASK_KIND_TUNE;
  const size_t n = campaigns_.size();
  for (size_t i = 0; i < n && static_cast<uint32_t>(response.tasks_size()) < request.max_tasks();
       ++i) {
    Campaign& c = *campaigns_[(lease_cursor_ + i) % n];
    if (!c.leasable()) continue;
    for (const std::string& backend : worker.backends) {
      auto q = c.ready.find({kind, backend});
      if (q == c.ready.end()) continue;
      uint32_t limit = 0;
      auto lim = c.record.spec().limits().find(backend);
      if (lim != c.record.spec().limits().end()) {
        limit = kind == v1::TASK_KIND_TUNE ? lim->second.max_concurrent_tune()
                                           : lim->second.max_concurrent_judge();
      }
      std::deque<uint32_t>& queue = q->second;
      while (c.leasable() && !queue.empty() &&
             static_cast<uint32_t>(response.tasks_size()) < request.max_tasks() &&
             (limit == 0 || c.leased_by_backend[backend] < limit)) {
        uint32_t task = queue.front();
        if (c.tasks[task].state != v1::TASK_STATE_PENDING) {  // stale entry
          queue.pop_front();
          continue;
        }
        if (!AdmitWithinBudget(c, task)) break;  // paused; stays queued
        queue.pop_front();
        LeaseOne(c, task, wi->second, response.add_tasks());
      }
    }
  }
  if (n > 0) lease_cursor_ = (lease_cursor_ + 1) % n;
  if (response.tasks_size() == 0) response.set_retry_after_ms(options_.idle_retry_ms);
  return response;
}

void Scheduler::LeaseOne(Campaign& c, uint32_t task, uint32_t worker, v1::TaskAssignment* out) {
  TaskSlot& s = c.tasks[task];
  s.state = v1::TASK_STATE_LEASED;
  ++s.attempt;
  s.worker = worker;
  AddWorkerRef(worker);
  s.leased_at_ms = clock_->NowMs();
  s.lease_deadline_ms = s.leased_at_ms + c.LeaseMs();
  --c.pending;
  ++c.leased;
  ++c.attempts;
  ++c.leased_by_backend[c.BackendOf(task)];
  if (task < c.run_usd.size()) c.reserved_usd += c.run_usd[task];
  lease_heap_.push({s.lease_deadline_ms, &c, task, s.attempt});
  PutTaskRecord(c, task);
  FillAssignment(c, task, out);
  if (observer_) observer_->TaskLeased(c.KindOf(task), c.BackendOf(task));
}

uint32_t Scheduler::WorkersOffering(const std::string& backend, v1::WorkerRole role) const {
  const int64_t since = clock_->NowMs() - 5 * 60 * 1000;
  uint32_t n = 0;
  for (const auto& [id, w] : workers_) {
    if (w->role == role && w->last_seen_ms >= since &&
        std::find(w->backends.begin(), w->backends.end(), backend) != w->backends.end()) {
      ++n;
    }
  }
  return n;
}

void Scheduler::FillAssignment(const Campaign& c, uint32_t task, v1::TaskAssignment* out) const {
  const TaskSlot& s = c.tasks[task];
  out->set_task_id(TaskId(c, task));
  out->set_attempt(s.attempt);
  out->set_kind(c.KindOf(task));
  out->set_backend(c.BackendOf(task));
  out->set_campaign_id(c.id());
  out->set_lease_deadline_ms(s.lease_deadline_ms);
  out->set_lease_token(LeaseToken(c, task, s.attempt));
  if (auto it = c.intents.find(task); it != c.intents.end()) {
    *out->mutable_intents() = it->second.intents();
  }
  // This worker's share of the campaign's per-minute limits for the backend.
  if (auto lim = c.record.spec().limits().find(out->backend());
      lim != c.record.spec().limits().end() &&
      (lim->second.requests_per_minute() > 0 || lim->second.tokens_per_minute() > 0)) {
    const double n = std::max<uint32_t>(
        1, WorkersOffering(out->backend(), task >= c.runs ? v1::WORKER_ROLE_JUDGE
                                                          : v1::WORKER_ROLE_TUNE));
    out->set_requests_per_minute(lim->second.requests_per_minute() / n);
    out->set_tokens_per_minute(static_cast<double>(lim->second.tokens_per_minute()) / n);
  }
  if (task >= c.runs) {
    *out->mutable_judge() = c.judge.at(task).record.work();
    return;
  }
  const TrainingRun& run = c.plan.runs[task];
  const GridPoint& first = c.plan.cells[run.first_cell];
  const v1::CampaignSpec& spec = c.record.spec();
  v1::TuneWork* work = out->mutable_tune();
  *work->mutable_dataset() = spec.datasets(static_cast<int>(first.dataset));
  *work->mutable_model() = spec.models(static_cast<int>(first.model));
  work->set_learning_rate_multiplier(first.learning_rate_multiplier);
  work->set_batch_size(first.batch_size);
  work->set_seed(first.seed);
  for (uint32_t i = 0; i < run.cell_count; ++i) {
    const GridPoint& p = c.plan.cells[run.first_cell + i];
    work->add_epochs(p.epochs);
    work->add_cell_ids(CellIdOf(c, run.first_cell + i));
  }
}

absl::StatusOr<v1::HeartbeatResponse> Scheduler::Heartbeat(
    const v1::HeartbeatRequest& request) {
  FTB_RETURN_IF_ERROR(CheckUsable());
  v1::HeartbeatResponse response;
  auto wi = worker_index_.find(request.worker_id());
  const int64_t now = clock_->NowMs();
  if (wi != worker_index_.end()) {
    auto w = workers_.find(wi->second);
    if (w != workers_.end()) w->second->last_seen_ms = now;
  }
  for (const v1::TaskRef& ref : request.tasks()) {
    int64_t deadline = 0;
    absl::StatusOr<TaskRef> t = ParseTaskId(ref.task_id());
    if (t.ok() && wi != worker_index_.end()) {
      Campaign& c = *t->campaign;
      TaskSlot& s = c.tasks[t->task];
      if (c.active() && s.state == v1::TASK_STATE_LEASED && s.attempt == ref.attempt() &&
          s.worker == wi->second &&
          CheckLease(c, t->task, ref.attempt(), request.worker_id(), ref.lease_token(), "")
              .ok()) {
        s.lease_deadline_ms = now + c.LeaseMs();
        lease_heap_.push({s.lease_deadline_ms, &c, t->task, s.attempt});
        deadline = s.lease_deadline_ms;
      }
    }
    response.add_lease_deadline_ms(deadline);
  }
  return response;
}

// --- completion and failure -------------------------------------------------

absl::StatusOr<v1::CompleteTasksResponse> Scheduler::Complete(
    const v1::CompleteTasksRequest& request) {
  FTB_RETURN_IF_ERROR(CheckUsable());
  // Validate everything before changing anything.
  std::vector<absl::StatusOr<TaskRef>> refs;
  for (const v1::TaskCompletion& done : request.completions()) {
    absl::StatusOr<TaskRef> ref = ParseTaskId(done.task_id());
    if (!ref.ok() && ref.status().code() == absl::StatusCode::kInvalidArgument) {
      return ref.status();
    }
    if (ref.ok()) {
      const Campaign& c = *ref->campaign;
      const std::string field = absl::StrCat("completions[", refs.size(), "]");
      FTB_RETURN_IF_ERROR(CheckLease(c, ref->task, done.attempt(), request.worker_id(),
                                     done.lease_token(), absl::StrCat(field, ".lease_token")));
      FTB_RETURN_IF_ERROR(
          ValidateResult(c, ref->task, done.result(), absl::StrCat(field, ".result")));
    }
    refs.push_back(std::move(ref));
  }
  v1::CompleteTasksResponse response;
  for (int i = 0; i < request.completions_size(); ++i) {
    const v1::TaskCompletion& done = request.completions(i);
    if (!refs[i].ok()) {
      response.add_outcomes(v1::COMPLETION_OUTCOME_UNKNOWN_TASK);
      continue;
    }
    Campaign& c = *refs[i]->campaign;
    uint32_t task = refs[i]->task;
    TaskSlot& s = c.tasks[task];
    v1::CompletionOutcome outcome = v1::COMPLETION_OUTCOME_LEASE_LOST;
    if (s.state == v1::TASK_STATE_DONE) {
      outcome = s.done_attempt == done.attempt() ? v1::COMPLETION_OUTCOME_DUPLICATE
                                                  : v1::COMPLETION_OUTCOME_LEASE_LOST;
    } else if (c.active() && done.attempt() == s.attempt && done.attempt() > 0 &&
               (s.state == v1::TASK_STATE_LEASED || s.state == v1::TASK_STATE_PENDING)) {
      // Leased by this attempt, or expired and not taken by anyone since.
      FinishTask(c, task, done.attempt(), done.result());
      outcome = v1::COMPLETION_OUTCOME_ACCEPTED;
    }
    response.add_outcomes(outcome);
  }
  return response;
}

namespace {

constexpr std::string_view kVerdicts[] = {"correct",   "incorrect", "stale",
                                          "abstained", "no_answer", "error"};

absl::Status TooLong(const std::string& field, size_t size, size_t limit) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": at most ", limit, " bytes, got ", size));
}

}  // namespace

absl::Status Scheduler::ValidateResult(const Campaign& c, uint32_t task,
                                       const v1::TaskResult& result,
                                       const std::string& field) const {
  if (!std::isfinite(result.cost_usd()) || result.cost_usd() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".cost_usd: expected a finite number >= 0, got ", result.cost_usd()));
  }
  if (result.tokens() > limits::kMaxTokens) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".tokens: at most ", limits::kMaxTokens,
                                                   ", got ", result.tokens()));
  }
  if (result.digest().size() > limits::kMaxDigestBytes) {
    return TooLong(field + ".digest", result.digest().size(), limits::kMaxDigestBytes);
  }
  if (result.notes_size() > limits::kMaxNotes) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".notes: at most ", limits::kMaxNotes,
                                                   " entries, got ", result.notes_size()));
  }
  for (int i = 0; i < result.notes_size(); ++i) {
    if (result.notes(i).size() > limits::kMaxNoteBytes) {
      return TooLong(absl::StrCat(field, ".notes[", i, "]"), result.notes(i).size(),
                     limits::kMaxNoteBytes);
    }
  }
  if (size_t bytes = result.ByteSizeLong(); bytes > limits::kMaxResultBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", bytes, " bytes serialized; one task's result may have at most ",
        limits::kMaxResultBytes, " (what clients can read back)"));
  }
  const std::string task_id = TaskId(c, task);
  if (task >= c.runs) {  // JUDGE: one verdict per item of the task
    if (result.answers_size() > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".answers: task ", task_id, " is a JUDGE task: it returns verdicts"));
    }
    const v1::JudgeWork& work = c.judge.at(task).record.work();
    if (result.verdicts_size() != work.items_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".verdicts: expected one verdict per answer of task ", task_id, " (",
          work.items_size(), "), got ", result.verdicts_size()));
    }
    absl::flat_hash_map<std::tuple<absl::string_view, absl::string_view, absl::string_view>, bool>
        items;  // (cell, question type, question id) -> has a verdict
    for (const v1::JudgeItem& item : work.items()) {
      items.emplace(std::make_tuple(absl::string_view(item.cell_id()),
                                    absl::string_view(item.question_type()),
                                    absl::string_view(item.question_id())),
                    false);
    }
    for (int i = 0; i < result.verdicts_size(); ++i) {
      const v1::Verdict& v = result.verdicts(i);
      const std::string vf = absl::StrCat(field, ".verdicts[", i, "]");
      auto it = items.find(std::make_tuple(absl::string_view(v.cell_id()),
                                           absl::string_view(v.question_type()),
                                           absl::string_view(v.question_id())));
      if (it == items.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            vf, ": no answer of task ", task_id, " has cell_id \"", absl::CHexEscape(v.cell_id()),
            "\", question_type \"", absl::CHexEscape(v.question_type().substr(0, 64)),
            "\" and question_id \"", absl::CHexEscape(v.question_id().substr(0, 64)), "\""));
      }
      if (it->second) {
        return absl::InvalidArgumentError(absl::StrCat(
            vf, ": a second verdict for question ", absl::CHexEscape(v.question_type()), "/",
            absl::CHexEscape(v.question_id()), " of cell ", v.cell_id()));
      }
      it->second = true;
      if (std::find(std::begin(kVerdicts), std::end(kVerdicts), v.verdict()) ==
          std::end(kVerdicts)) {
        return absl::InvalidArgumentError(absl::StrCat(
            vf, ".verdict: expected one of correct, incorrect, stale, abstained, no_answer, "
                "error; got \"", absl::CHexEscape(v.verdict().substr(0, 64)), "\""));
      }
      if (v.reason().size() > limits::kMaxVerdictReasonBytes) {
        return TooLong(vf + ".reason", v.reason().size(), limits::kMaxVerdictReasonBytes);
      }
      if (v.grader().size() > limits::kMaxQuestionFieldBytes) {
        return TooLong(vf + ".grader", v.grader().size(), limits::kMaxQuestionFieldBytes);
      }
    }
    return absl::OkStatus();
  }
  // TUNE: answers for the run's own cells, each cell once.
  if (result.verdicts_size() > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".verdicts: task ", task_id, " is a TUNE task: it returns answers"));
  }
  if (result.answers_size() == 0) return absl::OkStatus();
  std::vector<uint32_t> cells;
  CellsOfTask(c, task, &cells);
  absl::flat_hash_map<std::string, bool> served;  // cell id -> answered
  for (uint32_t cell : cells) served.emplace(CellIdOf(c, cell), false);
  const GridPoint& first = c.plan.cells[c.plan.runs[task].first_cell];
  const v1::DatasetSpec& dataset = c.record.spec().datasets(static_cast<int>(first.dataset));
  for (int a = 0; a < result.answers_size(); ++a) {
    const v1::CellAnswers& answers = result.answers(a);
    const std::string af = absl::StrCat(field, ".answers[", a, "]");
    auto it = served.find(answers.cell_id());
    if (it == served.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          af, ".cell_id: task ", task_id, " does not serve cell \"",
          absl::CHexEscape(answers.cell_id().substr(0, 64)), "\""));
    }
    if (it->second) {
      return absl::InvalidArgumentError(
          absl::StrCat(af, ".cell_id: cell ", answers.cell_id(), " answered twice"));
    }
    it->second = true;
    if (answers.items_size() > limits::kMaxAnswersPerCell) {
      return absl::InvalidArgumentError(absl::StrCat(af, ".items: at most ",
                                                     limits::kMaxAnswersPerCell,
                                                     " entries, got ", answers.items_size()));
    }
    absl::flat_hash_set<std::pair<absl::string_view, absl::string_view>> seen;
    for (int i = 0; i < answers.items_size(); ++i) {
      const v1::JudgeItem& item = answers.items(i);
      const std::string itf = absl::StrCat(af, ".items[", i, "]");
      if (!item.cell_id().empty() && item.cell_id() != answers.cell_id()) {
        return absl::InvalidArgumentError(absl::StrCat(
            itf, ".cell_id: expected empty or ", answers.cell_id(), ", got \"",
            absl::CHexEscape(item.cell_id().substr(0, 64)), "\""));
      }
      const std::optional<v1::QuestionType> type =
          datasets::ParseQuestionType(item.question_type());
      const bool asked =
          type.has_value() &&
          (dataset.question_types().empty() ||
           std::find(dataset.question_types().begin(), dataset.question_types().end(),
                     item.question_type()) != dataset.question_types().end());
      if (!asked) {
        return absl::InvalidArgumentError(absl::StrCat(
            itf, ".question_type: \"", absl::CHexEscape(item.question_type().substr(0, 64)),
            "\" is not a question type dataset ", dataset.label(), " asks"));
      }
      if (item.question_id().empty() ||
          item.question_id().size() > limits::kMaxQuestionFieldBytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            itf, ".question_id: expected 1..", limits::kMaxQuestionFieldBytes, " bytes, got ",
            item.question_id().size()));
      }
      if (!seen.emplace(item.question_type(), item.question_id()).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            itf, ": question ", item.question_type(), "/",
            absl::CHexEscape(item.question_id()), " answered twice for cell ",
            answers.cell_id()));
      }
    }
  }
  return absl::OkStatus();
}

void Scheduler::FinishTask(Campaign& c, uint32_t task, uint32_t attempt,
                           const v1::TaskResult& result) {
  TaskSlot& s = c.tasks[task];
  if (s.state == v1::TASK_STATE_LEASED) {
    --c.leased;
    --c.leased_by_backend[c.BackendOf(task)];
    ReleaseReservation(c, task);
    DropWorkerRef(s.worker);
  } else {
    --c.pending;  // expired, still queued: the queue entry is now stale
  }
  if (observer_) {
    const std::string& model =
        task < c.runs
            ? c.record.spec()
                  .models(static_cast<int>(c.plan.cells[c.plan.runs[task].first_cell].model))
                  .name()
            : c.judge.at(task).record.work().grader().name();
    observer_->TaskCompleted(c.id(), c.KindOf(task), c.BackendOf(task), model,
                             clock_->NowMs() - s.leased_at_ms, result);
  }
  s.state = v1::TASK_STATE_DONE;
  s.done_attempt = static_cast<uint16_t>(attempt);
  ++c.done;
  c.cost_usd += result.cost_usd();
  v1::TaskCompletion stored;
  stored.set_task_id(TaskId(c, task));
  stored.set_attempt(attempt);
  *stored.mutable_result() = result;
  keys::PutProto(batch_, keys::Result(c.id(), task), stored);

  std::vector<uint32_t> cells;
  CellsOfTask(c, task, &cells);
  if (task >= c.runs) {
    uint32_t cell = c.judge.at(task).cell;
    auto it = c.judge_outstanding.find(cell);
    if (it != c.judge_outstanding.end() && --it->second == 0) {
      c.judge_outstanding.erase(it);
      MarkCellDone(c, cell);
    }
  } else {
    // JUDGE tasks: one batch of at most judge.batch_size answers of one
    // cell per grader.
    const v1::JudgeSpec& judge = c.record.spec().judge();
    const uint32_t batch = std::max<uint32_t>(1, judge.batch_size());
    absl::flat_hash_map<std::string, uint32_t> cell_by_id;  // only needed for answers
    if (result.answers_size() > 0) {
      for (uint32_t cell : cells) cell_by_id[CellIdOf(c, cell)] = cell;
    }
    for (const v1::CellAnswers& answers : result.answers()) {
      uint32_t cell = cell_by_id.at(answers.cell_id());
      for (const v1::GraderSpec& grader : judge.graders()) {
        for (int from = 0; from < answers.items_size(); from += static_cast<int>(batch)) {
          uint32_t jt = static_cast<uint32_t>(c.tasks.size());
          c.tasks.emplace_back();
          JudgeTask j{cell, {}};
          j.record.set_source_task(task);
          j.record.set_cell_index(cell);
          *j.record.mutable_work()->mutable_grader() = grader;
          int to = std::min(answers.items_size(), from + static_cast<int>(batch));
          for (int k = from; k < to; ++k) {
            v1::JudgeItem* item = j.record.mutable_work()->add_items();
            *item = answers.items(k);
            item->set_cell_id(answers.cell_id());
          }
          keys::PutProto(batch_, keys::JudgeTask(c.id(), jt), j.record);
          c.judge.emplace(jt, std::move(j));
          ++c.judge_outstanding[cell];
          ++c.pending;
          c.record.set_tasks_total(c.tasks.size());
          Enqueue(c, jt);
        }
      }
    }
    for (uint32_t cell : cells) {
      if (!c.judge_outstanding.contains(cell)) MarkCellDone(c, cell);
    }
  }
  // The spend is stored with the attempt that incurred it, in the same batch
  // as the result: a restart neither loses nor double-counts it.
  PutTaskRecord(c, task, "", result.cost_usd());
  MaybeFinishCampaign(c);
}

absl::StatusOr<v1::FailTaskResponse> Scheduler::Fail(const v1::FailTaskRequest& request) {
  FTB_RETURN_IF_ERROR(CheckUsable());
  v1::FailTaskResponse response;
  absl::StatusOr<TaskRef> ref = ParseTaskId(request.task_id());
  if (!ref.ok()) {
    if (ref.status().code() == absl::StatusCode::kInvalidArgument) return ref.status();
    response.set_outcome(v1::COMPLETION_OUTCOME_UNKNOWN_TASK);
    return response;
  }
  Campaign& c = *ref->campaign;
  TaskSlot& s = c.tasks[ref->task];
  FTB_RETURN_IF_ERROR(CheckLease(c, ref->task, request.attempt(), request.worker_id(),
                                 request.lease_token(), "lease_token"));
  if (s.state != v1::TASK_STATE_LEASED || s.attempt != request.attempt() || !c.active()) {
    response.set_outcome(s.state == v1::TASK_STATE_DONE && s.done_attempt == request.attempt()
                             ? v1::COMPLETION_OUTCOME_DUPLICATE
                             : v1::COMPLETION_OUTCOME_LEASE_LOST);
    return response;
  }
  std::string error = request.error().empty() ? "worker reported failure" : request.error();
  const bool pause = request.pause_campaign();
  response.set_will_retry(
      FailAttempt(c, ref->task, error, request.retryable() || pause, /*counted=*/!pause));
  response.set_outcome(v1::COMPLETION_OUTCOME_ACCEPTED);
  if (pause && c.record.state() == v1::CAMPAIGN_STATE_RUNNING) {
    std::string why = absl::StrCat("provider refused task ", request.task_id(), ": ", error,
                                   "; fix the account, then resume with `ftb budget ", c.id(),
                                   "`");
    c.record.set_state(v1::CAMPAIGN_STATE_PAUSED_PROVIDER);
    c.record.set_status_message(why);
    PutCampaignRecord(c);
    LogEvent(c, absl::StrCat("paused: ", why));
  }
  return response;
}

absl::StatusOr<v1::RecordTaskIntentResponse> Scheduler::RecordIntent(
    const v1::RecordTaskIntentRequest& request) {
  FTB_RETURN_IF_ERROR(CheckUsable());
  if (request.intent().kind().empty() || request.intent().tag().empty()) {
    return absl::InvalidArgumentError("intent: kind and tag are required");
  }
  v1::RecordTaskIntentResponse response;
  absl::StatusOr<TaskRef> ref = ParseTaskId(request.task_id());
  if (!ref.ok()) {
    if (ref.status().code() == absl::StatusCode::kInvalidArgument) return ref.status();
    response.set_outcome(v1::COMPLETION_OUTCOME_UNKNOWN_TASK);
    return response;
  }
  Campaign& c = *ref->campaign;
  FTB_RETURN_IF_ERROR(CheckLease(c, ref->task, request.attempt(), request.worker_id(),
                                 request.lease_token(), "lease_token"));
  const TaskSlot& s = c.tasks[ref->task];
  // The live attempt: still leased (also when the campaign was cancelled
  // meanwhile: its "cancel" intent matters most), or expired and not taken
  // by anyone since (it may still complete, so it may still pay).
  const bool live = s.attempt == request.attempt() &&
                    (s.state == v1::TASK_STATE_LEASED ||
                     (s.state == v1::TASK_STATE_PENDING && c.active()));
  if (!live) {
    response.set_outcome(v1::COMPLETION_OUTCOME_LEASE_LOST);
    response.set_campaign_cancelled(c.record.state() == v1::CAMPAIGN_STATE_CANCELLED);
    return response;
  }
  auto existing = c.intents.find(ref->task);
  if (existing != c.intents.end() &&
      existing->second.intents_size() >= limits::kMaxIntentsPerTask) {
    return absl::InvalidArgumentError(absl::StrCat("task_id: task ", request.task_id(),
                                                   " already has ", limits::kMaxIntentsPerTask,
                                                   " intents (the limit per task)"));
  }
  v1::TaskIntents& intents = c.intents[ref->task];
  v1::TaskIntent* intent = intents.add_intents();
  *intent = request.intent();
  intent->set_attempt(request.attempt());
  intent->set_time_ms(clock_->NowMs());
  keys::PutProto(batch_, keys::Intent(c.id(), ref->task), intents);
  response.set_outcome(v1::COMPLETION_OUTCOME_ACCEPTED);
  response.set_campaign_cancelled(c.record.state() == v1::CAMPAIGN_STATE_CANCELLED);
  return response;
}

bool Scheduler::FailAttempt(Campaign& c, uint32_t task, const std::string& error,
                            bool retryable, bool counted) {
  TaskSlot& s = c.tasks[task];
  --c.leased;
  --c.leased_by_backend[c.BackendOf(task)];
  ReleaseReservation(c, task);
  DropWorkerRef(s.worker);
  if (!c.active()) {  // cancelled while it ran: nothing to retry
    s.state = v1::TASK_STATE_CANCELLED;
    ++c.cancelled;
    PutTaskRecord(c, task, error);
    return false;
  }
  const v1::RetryPolicy& retry = c.record.spec().retry();
  std::string id = TaskId(c, task);
  if (!counted && s.uncounted_attempts < 255) ++s.uncounted_attempts;
  if (retryable && s.attempt - s.uncounted_attempts < static_cast<int>(retry.max_attempts())) {
    s.state = v1::TASK_STATE_PENDING;
    s.not_before_ms = clock_->NowMs() + BackoffMs(retry, s.attempt);
    ++c.pending;
    Enqueue(c, task);
    PutTaskRecord(c, task, error);
    if (observer_) observer_->TaskFailed(c.KindOf(task), c.BackendOf(task), true);
    LogEvent(c, absl::StrCat("task ", id, " attempt ", s.attempt, " failed, retrying in ",
                             s.not_before_ms - clock_->NowMs(), " ms: ", error));
    return true;
  }
  s.state = v1::TASK_STATE_FAILED;
  ++c.failed;
  if (observer_) observer_->TaskFailed(c.KindOf(task), c.BackendOf(task), false);
  PutTaskRecord(c, task, error);
  std::vector<uint32_t> cells;
  CellsOfTask(c, task, &cells);
  for (uint32_t cell : cells) MarkCellFailed(c, cell);
  LogEvent(c, absl::StrCat("task ", id, " failed after ", s.attempt, " attempt(s)",
                           retryable ? "" : " (not retryable)", ": ", error));
  MaybeFinishCampaign(c);
  return false;
}

int64_t Scheduler::BackoffMs(const v1::RetryPolicy& retry, uint32_t attempt) {
  double delay = retry.initial_backoff_seconds() *
                 std::pow(std::max(1.0, retry.backoff_multiplier()),
                          static_cast<double>(attempt > 0 ? attempt - 1 : 0));
  delay = std::min(delay, retry.max_backoff_seconds());
  double spread = retry.jitter() * (2 * jitter_.UniformDouble() - 1);
  return std::max<int64_t>(0, static_cast<int64_t>(delay * (1 + spread) * 1000));
}

// --- cells and campaigns ------------------------------------------------------

void Scheduler::CellsOfTask(const Campaign& c, uint32_t task, std::vector<uint32_t>* cells) const {
  cells->clear();
  if (task >= c.runs) {
    cells->push_back(c.judge.at(task).cell);
    return;
  }
  const TrainingRun& run = c.plan.runs[task];
  for (uint32_t i = 0; i < run.cell_count; ++i) {
    cells->push_back(static_cast<uint32_t>(run.first_cell + i));
  }
}

void Scheduler::MarkCellDone(Campaign& c, uint32_t cell) {
  if (c.cell_state[cell] != v1::CELL_STATE_PENDING) return;
  c.cell_state[cell] = v1::CELL_STATE_DONE;
  ++c.cells_done;
  if (observer_) observer_->CellFinished(/*failed=*/false);
}

void Scheduler::MarkCellFailed(Campaign& c, uint32_t cell) {
  if (c.cell_state[cell] == v1::CELL_STATE_FAILED) return;
  const bool was_pending = c.cell_state[cell] == v1::CELL_STATE_PENDING;
  if (c.cell_state[cell] == v1::CELL_STATE_DONE) --c.cells_done;
  c.cell_state[cell] = v1::CELL_STATE_FAILED;
  ++c.cells_failed;
  if (observer_ && was_pending) observer_->CellFinished(/*failed=*/true);
}

bool Scheduler::AdmitWithinBudget(Campaign& c, uint32_t task) {
  if (task >= c.run_usd.size()) return true;  // JUDGE tasks, or no prices
  const v1::BudgetSpec& budget = c.record.spec().budget();
  const double estimate = c.run_usd[task];
  std::string why;
  if (budget.has_per_cell_usd() && c.run_max_cell_usd[task] > budget.per_cell_usd() + 1e-9) {
    why = absl::StrFormat(
        "task %s has a cell estimated at $%.4f, over the per-cell budget of $%.2f; raise it "
        "with `ftb budget %s --per-cell-usd N`",
        TaskId(c, task), c.run_max_cell_usd[task], budget.per_cell_usd(), c.id());
  } else if (budget.has_usd() &&
             c.cost_usd + c.reserved_usd + estimate > budget.usd() + 1e-9) {
    why = absl::StrFormat(
        "next task %s is estimated at $%.4f; with $%.4f spent and $%.4f reserved for running "
        "tasks that would exceed the budget of $%.2f; raise it with `ftb budget %s --usd N`",
        TaskId(c, task), estimate, c.cost_usd, c.reserved_usd, budget.usd(), c.id());
  }
  if (why.empty()) return true;
  c.record.set_state(v1::CAMPAIGN_STATE_PAUSED_BUDGET);
  c.record.set_status_message(why);
  PutCampaignRecord(c);
  LogEvent(c, absl::StrCat("paused: ", why));
  return false;
}

void Scheduler::ReleaseReservation(Campaign& c, uint32_t task) {
  if (task < c.run_usd.size()) c.reserved_usd = std::max(0.0, c.reserved_usd - c.run_usd[task]);
}

absl::StatusOr<v1::CampaignProgress> Scheduler::UpdateBudget(
    const v1::UpdateBudgetRequest& request) {
  FTB_RETURN_IF_ERROR(CheckUsable());
  auto it = by_id_.find(request.campaign_id());
  if (it == by_id_.end()) {
    return absl::NotFoundError(absl::StrCat("no campaign ", request.campaign_id()));
  }
  Campaign& c = *it->second;
  if (!c.active()) {
    return absl::FailedPreconditionError(
        absl::StrCat("campaign ", c.id(), " has ended; its budget no longer matters"));
  }
  v1::BudgetSpec* budget = c.record.mutable_spec()->mutable_budget();
  if (request.has_usd()) {
    if (request.usd() > 0) {
      budget->set_usd(request.usd());
    } else {
      budget->clear_usd();
    }
  }
  if (request.has_per_cell_usd()) {
    if (request.per_cell_usd() > 0) {
      budget->set_per_cell_usd(request.per_cell_usd());
    } else {
      budget->clear_per_cell_usd();
    }
  }
  bool resumed = c.record.state() == v1::CAMPAIGN_STATE_PAUSED_BUDGET ||
                 c.record.state() == v1::CAMPAIGN_STATE_PAUSED_PROVIDER;
  if (resumed) {
    c.record.set_state(v1::CAMPAIGN_STATE_RUNNING);
    c.record.clear_status_message();
  }
  PutCampaignRecord(c);
  LogEvent(c, absl::StrCat("budget set to ",
                           budget->has_usd() ? absl::StrFormat("$%.2f", budget->usd()) : "none",
                           budget->has_per_cell_usd()
                               ? absl::StrFormat(" ($%.2f per cell)", budget->per_cell_usd())
                               : "",
                           resumed ? "; resumed" : ""));
  MaybeFinishCampaign(c);
  return Progress(c);
}

void Scheduler::MaybeFinishCampaign(Campaign& c) {
  if (!c.active() || c.pending > 0 || c.leased > 0) return;
  c.record.set_state(c.failed > 0 ? v1::CAMPAIGN_STATE_FAILED : v1::CAMPAIGN_STATE_SUCCEEDED);
  PutCampaignRecord(c);
  LogEvent(c, absl::StrCat("finished: ", c.cells_done, " cells done, ", c.cells_failed,
                           " failed"));
}

absl::StatusOr<v1::CampaignProgress> Scheduler::Cancel(const std::string& campaign_id) {
  FTB_RETURN_IF_ERROR(CheckUsable());
  auto it = by_id_.find(campaign_id);
  if (it == by_id_.end()) return absl::NotFoundError(absl::StrCat("no campaign ", campaign_id));
  Campaign& c = *it->second;
  if (IsEnded(c.record.state())) return Progress(c);
  c.record.set_state(v1::CAMPAIGN_STATE_CANCELLED);
  for (TaskSlot& s : c.tasks) {
    if (s.state == v1::TASK_STATE_PENDING) {
      s.state = v1::TASK_STATE_CANCELLED;
      --c.pending;
      ++c.cancelled;
    }
  }
  c.ready.clear();
  PutCampaignRecord(c);
  LogEvent(c, absl::StrCat("cancelled; ", c.leased, " task(s) still running will be refused"));
  return Progress(c);
}

// --- records and events -------------------------------------------------------

void Scheduler::PutTaskRecord(const Campaign& c, uint32_t task, const std::string& error,
                              double cost_usd) {
  const TaskSlot& s = c.tasks[task];
  v1::TaskRecord r;
  r.set_state(static_cast<v1::TaskState>(s.state));
  r.set_attempt(s.attempt);
  r.set_uncounted_attempts(s.uncounted_attempts);
  if (s.state == v1::TASK_STATE_LEASED) {
    r.set_worker_id(worker_names_[s.worker]);
    r.set_lease_deadline_ms(s.lease_deadline_ms);
  }
  r.set_not_before_ms(s.not_before_ms);
  r.set_last_error(error);
  r.set_done_attempt(s.done_attempt);
  r.set_cost_usd(cost_usd);
  keys::PutProto(batch_, keys::TaskRecord(c.id(), task), r);
}

void Scheduler::PutCampaignRecord(Campaign& c) {
  c.record.set_updated_ms(clock_->NowMs());
  c.record.set_tasks_total(c.tasks.size());
  keys::PutProto(batch_, keys::Campaign(c.id()), c.record);
}

void Scheduler::LogEvent(Campaign& c, const std::string& message) {
  v1::EventRecord e;
  e.set_seq(c.next_event_seq++);
  e.set_time_ms(clock_->NowMs());
  e.set_message(message);
  keys::PutProto(batch_, keys::Event(c.id(), e.seq()), e);
  v1::CampaignEvent event;
  event.set_time_ms(e.time_ms());
  event.set_message(message);
  *event.mutable_progress() = Progress(c);
  events_.emplace_back(c.id(), std::move(event));
}

std::vector<std::pair<std::string, v1::CampaignEvent>> Scheduler::TakeEvents() {
  return std::exchange(events_, {});
}

absl::Status Scheduler::Commit() {
  if (batch_.empty()) return absl::OkStatus();
  storage::WriteBatch batch = TakeBatch();
  absl::Status s = store_->Write(batch);
  if (!s.ok()) SetBroken(s);
  return s;
}

storage::WriteBatch Scheduler::TakeBatch() { return std::exchange(batch_, {}); }

// --- queries ------------------------------------------------------------------

v1::CampaignProgress Scheduler::Progress(const Campaign& c) const {
  v1::CampaignProgress p;
  p.set_campaign_id(c.id());
  p.set_name(c.record.spec().name());
  p.set_state(c.record.state());
  p.set_cells_total(c.plan.cells.size());
  p.set_cells_done(c.cells_done);
  p.set_cells_failed(c.cells_failed);
  p.set_tasks_total(c.tasks.size());
  p.set_tasks_pending(c.pending);
  p.set_tasks_leased(c.leased);
  p.set_tasks_done(c.done);
  p.set_tasks_failed(c.failed);
  p.set_attempts(c.attempts);
  p.set_cost_usd(c.cost_usd);
  p.set_status_message(c.record.status_message());
  // A running campaign with work ready and nothing leased that no registered
  // worker can take says why (issue 14), instead of sitting at "pending".
  if (c.record.state() == v1::CAMPAIGN_STATE_RUNNING && c.leased == 0 && c.pending > 0 &&
      p.status_message().empty()) {
    std::vector<std::string> why;
    for (const auto& [key, queue] : c.ready) {
      if (queue.empty()) continue;
      const bool judge = key.first == v1::TASK_KIND_JUDGE;
      if (WorkersOffering(key.second, judge ? v1::WORKER_ROLE_JUDGE : v1::WORKER_ROLE_TUNE) > 0) {
        continue;
      }
      bool any_judge = false;
      const int64_t since = clock_->NowMs() - 5 * 60 * 1000;
      for (const auto& [id, w] : workers_) {
        any_judge = any_judge || (w->role == v1::WORKER_ROLE_JUDGE && w->last_seen_ms >= since);
      }
      why.push_back(judge ? (any_judge ? absl::StrCat("no connected judge worker offers grader `",
                                                      key.second, "`")
                                       : std::string("no judge worker connected"))
                          : absl::StrCat("no connected worker offers backend `", key.second, "`"));
    }
    std::sort(why.begin(), why.end());
    why.erase(std::unique(why.begin(), why.end()), why.end());
    if (!why.empty()) p.set_status_message(absl::StrCat("waiting: ", absl::StrJoin(why, "; ")));
  }
  p.set_created_ms(c.record.created_ms());
  p.set_updated_ms(c.record.updated_ms());
  p.set_reserved_usd(c.reserved_usd);
  p.set_estimated_total_usd(c.estimated_total_usd);
  *p.mutable_budget() = c.record.spec().budget();
  return p;
}

absl::StatusOr<v1::GetCampaignResponse> Scheduler::Get(const std::string& campaign_id) const {
  auto it = by_id_.find(campaign_id);
  if (it == by_id_.end()) return absl::NotFoundError(absl::StrCat("no campaign ", campaign_id));
  v1::GetCampaignResponse response;
  *response.mutable_progress() = Progress(*it->second);
  *response.mutable_spec() = it->second->record.spec();
  return response;
}

v1::ListCampaignsResponse Scheduler::List() const {
  v1::ListCampaignsResponse response;
  for (const auto& c : campaigns_) *response.add_campaigns() = Progress(*c);
  return response;
}

absl::StatusOr<v1::ListCampaignsResponse> Scheduler::List(
    const v1::ListCampaignsRequest& request) const {
  if (request.page_size() > limits::kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: at most ", limits::kMaxPageSize,
                                                   ", got ", request.page_size()));
  }
  const size_t page = request.page_size() == 0 ? limits::kDefaultPageSize : request.page_size();
  // The token is the list position (Campaign::list_seq, increasing along
  // campaigns_) of the last campaign of the previous page, so a campaign
  // deleted meanwhile shifts nothing.
  size_t start = 0;
  if (!request.page_token().empty()) {
    uint64_t after = 0;
    if (!absl::SimpleAtoi(request.page_token(), &after)) {
      return absl::InvalidArgumentError(
          "page_token: not a token this coordinator handed out (pass next_page_token)");
    }
    start = static_cast<size_t>(
        std::partition_point(campaigns_.begin(), campaigns_.end(),
                             [after](const std::unique_ptr<Campaign>& c) {
                               return c->list_seq <= after;
                             }) -
        campaigns_.begin());
  }
  v1::ListCampaignsResponse response;
  for (size_t i = start; i < campaigns_.size() && static_cast<size_t>(response.campaigns_size()) < page; ++i) {
    *response.add_campaigns() = Progress(*campaigns_[i]);
  }
  const size_t end = start + response.campaigns_size();
  if (end < campaigns_.size() && response.campaigns_size() > 0) {
    const Campaign& last = *campaigns_[end - 1];
    response.set_next_page_token(absl::StrCat(last.list_seq));
  }
  return response;
}

absl::StatusOr<v1::DeleteCampaignResponse> Scheduler::Delete(const std::string& campaign_id) {
  FTB_RETURN_IF_ERROR(CheckUsable());
  auto it = by_id_.find(campaign_id);
  if (it == by_id_.end()) return absl::NotFoundError(absl::StrCat("no campaign ", campaign_id));
  Campaign* c = it->second;
  if (!IsEnded(c->record.state())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "campaign ", campaign_id, " is ", absl::AsciiStrToLower(v1::CampaignState_Name(
                                             c->record.state()).substr(15)),
        "; only a succeeded, failed or cancelled campaign can be deleted (cancel it first: "
        "`ftb cancel ", campaign_id, "`)"));
  }
  // Every record the campaign has, known from memory (so also those of
  // batches not yet durable): the campaign, a task record for every task
  // that was ever leased, a result per finished task, the judge tasks, the
  // intents and the events.
  uint64_t deleted = 0;
  const auto del = [&](const std::string& key) {
    batch_.Delete(key);
    ++deleted;
  };
  del(keys::Campaign(c->id()));
  for (uint32_t t = 0; t < c->tasks.size(); ++t) {
    const TaskSlot& s = c->tasks[t];
    if (s.attempt > 0 || s.state != v1::TASK_STATE_PENDING) del(keys::TaskRecord(c->id(), t));
    if (s.state == v1::TASK_STATE_DONE) del(keys::Result(c->id(), t));
    if (t >= c->runs) del(keys::JudgeTask(c->id(), t));
    if (s.state == v1::TASK_STATE_LEASED) DropWorkerRef(s.worker);
  }
  for (const auto& [t, intents] : c->intents) del(keys::Intent(c->id(), t));
  for (uint64_t seq = 1; seq < c->next_event_seq; ++seq) del(keys::Event(c->id(), seq));
  // Heap entries point at the campaign: drop them before it goes.
  const auto purge = [c](MinHeap& heap) {
    std::vector<HeapEntry> kept;
    while (!heap.empty()) {
      if (heap.top().campaign != c) kept.push_back(heap.top());
      heap.pop();
    }
    heap = MinHeap(std::greater<>(), std::move(kept));
  };
  purge(lease_heap_);
  purge(backoff_heap_);
  if (!c->record.request_id().empty()) by_request_id_.erase(c->record.request_id());
  by_id_.erase(it);
  std::erase_if(campaigns_, [c](const std::unique_ptr<Campaign>& p) { return p.get() == c; });
  if (!campaigns_.empty()) lease_cursor_ %= campaigns_.size();
  v1::DeleteCampaignResponse response;
  response.set_records_deleted(deleted);
  return response;
}

SchedulerSnapshot Scheduler::Snapshot() const {
  SchedulerSnapshot s;
  for (const auto& c : campaigns_) {
    s.tasks_by_state["pending"] += c->pending;
    s.tasks_by_state["leased"] += c->leased;
    s.tasks_by_state["done"] += c->done;
    s.tasks_by_state["failed"] += c->failed;
    s.tasks_by_state["cancelled"] += c->cancelled;
    s.cells_by_state["done"] += c->cells_done;
    s.cells_by_state["failed"] += c->cells_failed;
    // Cells that will never run are not waiting: a cancelled campaign's
    // unfinished cells are "cancelled", not "pending" (the ETA divides by
    // the pending ones).
    s.cells_by_state[c->record.state() == v1::CAMPAIGN_STATE_CANCELLED ? "cancelled" : "pending"] +=
        c->plan.cells.size() - c->cells_done - c->cells_failed;
    std::string state = v1::CampaignState_Name(c->record.state());
    for (char& ch : state) ch = static_cast<char>(std::tolower(ch));
    ++s.campaigns_by_state[state.substr(std::string("campaign_state_").size())];
    for (const auto& [key, queue] : c->ready) s.queue_by_backend[key.second] += queue.size();
    if (c->active() && c->record.spec().budget().has_usd()) {
      s.budget_remaining_usd[c->id()] =
          c->record.spec().budget().usd() - c->cost_usd - c->reserved_usd;
    }
  }
  const int64_t now = clock_->NowMs();
  for (const auto& [index, w] : workers_) {
    // An idle worker polls every idle_retry_ms and a busy one heartbeats
    // within a third of its shortest lease; one that holds a lease counts
    // until that lease expires (it may be working, or dead: only the lease
    // tells).
    const bool holds_lease = index < worker_refs_.size() && worker_refs_[index] > 0;
    if (now - w->last_seen_ms > kWorkerConnectedMs && !holds_lease) continue;
    ++s.workers_by_role[w->role == v1::WORKER_ROLE_JUDGE ? "judge" : "tune"];
  }
  return s;
}

bool Scheduler::HasActiveCampaigns() const {
  for (const auto& c : campaigns_) {
    if (c->active()) return true;
  }
  return false;
}

size_t Scheduler::ApproximateMemoryBytes() const {
  size_t total = 0;
  for (const auto& c : campaigns_) {
    total += sizeof(Campaign) + c->record.SpaceUsedLong();
    total += c->plan.cells.capacity() * sizeof(GridPoint);
    total += c->plan.runs.capacity() * sizeof(TrainingRun);
    total += c->tasks.capacity() * sizeof(TaskSlot);
    total += c->cell_state.capacity();
    for (const auto& [k, q] : c->ready) total += q.size() * sizeof(uint32_t) + k.second.size();
    for (const auto& [t, j] : c->judge) total += sizeof(JudgeTask) + j.record.SpaceUsedLong();
  }
  total += (lease_heap_.size() + backoff_heap_.size()) * sizeof(HeapEntry);
  return total;
}

}  // namespace ftb::coordinator
