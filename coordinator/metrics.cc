#include "coordinator/metrics.h"

#include <string>

#include "absl/strings/ascii.h"
#include "ftb/v1/state.pb.h"
#include "google/protobuf/descriptor.h"
#include "prometheus/counter.h"

namespace ftb::coordinator {
namespace {

std::string KindLabel(v1::TaskKind kind) { return kind == v1::TASK_KIND_JUDGE ? "judge" : "tune"; }

prometheus::Histogram::BucketBoundaries DurationBuckets() {
  return {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400};
}

}  // namespace

CoordinatorMetrics::CoordinatorMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      leases_(prometheus::BuildCounter()
                  .Name("ftb_task_leases_total")
                  .Help("Task attempts handed to workers")
                  .Register(*registry_)),
      completions_(prometheus::BuildCounter()
                       .Name("ftb_task_completions_total")
                       .Help("Task results accepted (durably recorded)")
                       .Register(*registry_)),
      failures_(prometheus::BuildCounter()
                    .Name("ftb_task_failures_total")
                    .Help("Failed attempts; final=\"false\" ones are retried")
                    .Register(*registry_)),
      expiries_(prometheus::BuildCounter()
                    .Name("ftb_task_lease_expiries_total")
                    .Help("Leases that expired without a heartbeat")
                    .Register(*registry_)),
      duration_(prometheus::BuildHistogram()
                    .Name("ftb_task_duration_seconds")
                    .Help("Time from lease to accepted result")
                    .Register(*registry_)),
      lease_latency_(prometheus::BuildHistogram()
                         .Name("ftb_lease_latency_seconds")
                         .Help("LeaseTasks RPC latency, including the durable commit")
                         .Register(*registry_)
                         .Add({}, prometheus::Histogram::BucketBoundaries{
                                      0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1, 0.25, 0.5, 1})),
      tokens_(prometheus::BuildCounter()
                  .Name("ftb_tokens_total")
                  .Help("Tokens reported by finished tasks")
                  .Register(*registry_)),
      cost_(prometheus::BuildCounter()
                .Name("ftb_cost_usd_total")
                .Help("Dollars reported by finished tasks")
                .Register(*registry_)),
      tasks_(prometheus::BuildGauge().Name("ftb_tasks").Help("Tasks by state").Register(*registry_)),
      cells_(prometheus::BuildGauge().Name("ftb_cells").Help("Cells by state").Register(*registry_)),
      cells_finished_(prometheus::BuildCounter()
                          .Name("ftb_cells_finished_total")
                          .Help("Cells that finished (done or failed) while this coordinator ran")
                          .Register(*registry_)),
      campaigns_(prometheus::BuildGauge()
                     .Name("ftb_campaigns")
                     .Help("Campaigns by state")
                     .Register(*registry_)),
      queue_(prometheus::BuildGauge()
                 .Name("ftb_queue_depth")
                 .Help("Tasks ready to lease, by backend")
                 .Register(*registry_)),
      workers_(prometheus::BuildGauge()
                   .Name("ftb_workers_connected")
                   .Help("Workers seen in the last minute or holding a lease, by role")
                   .Register(*registry_)),
      budget_(prometheus::BuildGauge()
                  .Name("ftb_budget_remaining_usd")
                  .Help("Budget left after spend and reservations, for campaigns with a budget")
                  .Register(*registry_)) {}

void CoordinatorMetrics::TaskLeased(v1::TaskKind kind, const std::string& backend) {
  leases_.Add({{"kind", KindLabel(kind)}, {"backend", backend}}).Increment();
}

void CoordinatorMetrics::TaskCompleted(const std::string& campaign, v1::TaskKind kind,
                                       const std::string& backend, const std::string& model,
                                       int64_t lease_to_done_ms, const v1::TaskResult& result) {
  prometheus::Labels labels{{"kind", KindLabel(kind)}, {"backend", backend}};
  completions_.Add(labels).Increment();
  duration_.Add(labels, DurationBuckets()).Observe(lease_to_done_ms / 1000.0);
  tokens_.Add(labels).Increment(static_cast<double>(result.tokens()));
  cost_.Add({{"campaign", campaign},
             {"backend", backend},
             {"model", model},
             {"kind", kind == v1::TASK_KIND_JUDGE ? "judge" : "train"}})
      .Increment(result.cost_usd());
}

void CoordinatorMetrics::TaskFailed(v1::TaskKind kind, const std::string& backend,
                                    bool will_retry) {
  failures_
      .Add({{"kind", KindLabel(kind)}, {"backend", backend}, {"final", will_retry ? "false" : "true"}})
      .Increment();
}

void CoordinatorMetrics::LeaseExpired(v1::TaskKind kind, const std::string& backend) {
  expiries_.Add({{"kind", KindLabel(kind)}, {"backend", backend}}).Increment();
}

void CoordinatorMetrics::CellFinished(bool failed) {
  cells_finished_.Add({{"state", failed ? "failed" : "done"}}).Increment();
}

void CoordinatorMetrics::Refresh(const SchedulerSnapshot& s) {
  for (const auto& [state, n] : s.tasks_by_state) tasks_.Add({{"state", state}}).Set(double(n));
  for (const char* state : {"pending", "done", "failed", "cancelled"}) {
    auto it = s.cells_by_state.find(state);
    cells_.Add({{"state", state}}).Set(it == s.cells_by_state.end() ? 0.0 : double(it->second));
  }
  // Every state of the enum, so that no campaign drops out of the gauge
  // (one paused by its provider did: the list was written by hand).
  const google::protobuf::EnumDescriptor* states = v1::CampaignState_descriptor();
  for (int i = 0; i < states->value_count(); ++i) {
    if (states->value(i)->number() == v1::CAMPAIGN_STATE_UNSPECIFIED) continue;
    std::string state = absl::AsciiStrToLower(states->value(i)->name());
    state = state.substr(std::string("campaign_state_").size());
    auto it = s.campaigns_by_state.find(state);
    campaigns_.Add({{"state", state}})
        .Set(it == s.campaigns_by_state.end() ? 0.0 : double(it->second));
  }
  for (const auto& [backend, n] : s.queue_by_backend) queue_backends_.insert(backend);
  for (const std::string& backend : queue_backends_) {
    auto it = s.queue_by_backend.find(backend);
    queue_.Add({{"backend", backend}}).Set(it == s.queue_by_backend.end() ? 0.0 : double(it->second));
  }
  for (const char* role : {"tune", "judge"}) {
    auto it = s.workers_by_role.find(role);
    workers_.Add({{"role", role}}).Set(it == s.workers_by_role.end() ? 0.0 : double(it->second));
  }
  RefreshBudgets(s);
}

void CoordinatorMetrics::RefreshBudgets(const SchedulerSnapshot& s) {
  for (const auto& [campaign, usd] : s.budget_remaining_usd) {
    budget_.Add({{"campaign", campaign}}).Set(usd);
  }
}

void CoordinatorMetrics::ObserveLeaseLatency(double seconds) { lease_latency_.Observe(seconds); }

}  // namespace ftb::coordinator
