// Prometheus metrics of the coordinator. Names follow Prometheus conventions
// (units in names, `_total` on counters); labels are bounded (kind, backend,
// state, role, campaign, model) — never per cell, task or question.
//
//   ftb_task_leases_total{kind,backend}
//   ftb_task_completions_total{kind,backend}
//   ftb_task_failures_total{kind,backend,final="true|false"}   (false = retried)
//   ftb_task_lease_expiries_total{kind,backend}
//   ftb_task_duration_seconds{kind,backend}          lease to accepted result
//   ftb_lease_latency_seconds                        LeaseTasks RPC, incl. commit
//   ftb_tokens_total{kind,backend}                   tokens reported by tasks
//   ftb_cost_usd_total{campaign,backend,model,kind}  dollars reported by tasks
//   ftb_tasks{state}, ftb_cells{state}, ftb_campaigns{state}
//   ftb_cells_finished_total{state="done|failed"}   cells finished since start
//                                    (the pace of the Grafana ETA panel)
//   ftb_queue_depth{backend}
//   ftb_workers_connected{role}     seen in the last minute, or holding a lease
//   ftb_budget_remaining_usd{campaign}               budget - spent - reserved
//
// Thread-safety: the observer methods and Refresh() run on the scheduler
// thread; ObserveLeaseLatency() from any thread (prometheus-cpp metrics are
// thread-safe).
#ifndef FTB_COORDINATOR_METRICS_H_
#define FTB_COORDINATOR_METRICS_H_

#include <memory>
#include <set>
#include <string>

#include "coordinator/scheduler.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace ftb::coordinator {

class CoordinatorMetrics : public SchedulerObserver {
 public:
  explicit CoordinatorMetrics(std::shared_ptr<prometheus::Registry> registry);

  void TaskLeased(v1::TaskKind kind, const std::string& backend) override;
  void TaskCompleted(const std::string& campaign, v1::TaskKind kind, const std::string& backend,
                     const std::string& model, int64_t lease_to_done_ms,
                     const v1::TaskResult& result) override;
  void TaskFailed(v1::TaskKind kind, const std::string& backend, bool will_retry) override;
  void LeaseExpired(v1::TaskKind kind, const std::string& backend) override;
  void CellFinished(bool failed) override;

  // Sets the gauges from a snapshot.
  void Refresh(const SchedulerSnapshot& snapshot);
  void ObserveLeaseLatency(double seconds);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  void RefreshBudgets(const SchedulerSnapshot& snapshot);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& leases_;
  prometheus::Family<prometheus::Counter>& completions_;
  prometheus::Family<prometheus::Counter>& failures_;
  prometheus::Family<prometheus::Counter>& expiries_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Histogram& lease_latency_;
  prometheus::Family<prometheus::Counter>& tokens_;
  prometheus::Family<prometheus::Counter>& cost_;
  prometheus::Family<prometheus::Gauge>& tasks_;
  prometheus::Family<prometheus::Gauge>& cells_;
  prometheus::Family<prometheus::Counter>& cells_finished_;
  prometheus::Family<prometheus::Gauge>& campaigns_;
  prometheus::Family<prometheus::Gauge>& queue_;
  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Family<prometheus::Gauge>& budget_;
  std::set<std::string> queue_backends_;  // seen so far, so drained queues read 0
};

}  // namespace ftb::coordinator

#endif  // FTB_COORDINATOR_METRICS_H_
