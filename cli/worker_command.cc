// ftb worker.
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "common/grpc_security.h"
#include "common/status_macros.h"
#include "coordinator/health.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "providers/provider_stats.h"
#include "workers/worker.h"

namespace ftb::cli {
namespace {

// Mirrors WorkerStats and providers::ProviderStats into Prometheus counters
// once a second.
class WorkerMetrics {
 public:
  WorkerMetrics(const std::string& listen, const std::string& role, workers::Worker* worker)
      : registry_(std::make_shared<prometheus::Registry>()),
        exposer_(listen),
        family_(prometheus::BuildCounter()
                    .Name("ftb_worker_events_total")
                    .Help("Worker runtime events by kind (see workers/worker.h WorkerStats)")
                    .Register(*registry_)),
        provider_requests_(prometheus::BuildCounter()
                               .Name("ftb_provider_requests_total")
                               .Help("Provider REST attempts by provider and HTTP status "
                                     "(\"error\" = no reply)")
                               .Register(*registry_)),
        provider_retries_(prometheus::BuildCounter()
                              .Name("ftb_provider_retries_total")
                              .Help("Provider REST attempts that were retries (429, 5xx, "
                                    "connection errors)")
                              .Register(*registry_)),
        role_(role),
        worker_(worker) {
    exposer_.RegisterCollectable(registry_);
    ServeHealthz(exposer_);
    thread_ = std::thread([this] {
      while (!stop_) {
        Update();
        for (int i = 0; i < 10 && !stop_; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
      Update();
    });
  }
  ~WorkerMetrics() {
    stop_ = true;
    thread_.join();
  }

 private:
  void Update() {
    workers::WorkerStats s = worker_->stats();
    Set("leased", s.leased);
    Set("completed", s.completed);
    Set("failed", s.failed);
    Set("cancelled", s.cancelled);
    Set("dropped", s.dropped);
    Set("handed_back", s.handed_back);
    Set("registrations", s.registrations);
    Set("heartbeats", s.heartbeats);
    Set("rpc_errors", s.rpc_errors);
    providers::ProviderStats::Snapshot p = providers::ProviderStats::Global().Get();
    for (const auto& [key, total] : p.requests) {
      Mirror(provider_requests_.Add({{"provider", key.first}, {"status", key.second}}), total);
    }
    for (const auto& [provider, total] : p.retries) {
      Mirror(provider_retries_.Add({{"provider", provider}}), total);
    }
  }
  static void Mirror(prometheus::Counter& c, uint64_t total) {
    double delta = static_cast<double>(total) - c.Value();
    if (delta > 0) c.Increment(delta);
  }
  void Set(const std::string& event, uint64_t total) {
    prometheus::Counter& c = family_.Add({{"role", role_}, {"event", event}});
    double delta = static_cast<double>(total) - c.Value();
    if (delta > 0) c.Increment(delta);
  }

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Exposer exposer_;
  prometheus::Family<prometheus::Counter>& family_;
  prometheus::Family<prometheus::Counter>& provider_requests_;
  prometheus::Family<prometheus::Counter>& provider_retries_;
  std::string role_;
  workers::Worker* worker_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

absl::Status RunWorker(const WorkerCommandOptions& options) {
  workers::WorkerOptions o;
  o.coordinator = options.coordinator;
  o.security.tls_ca_file = options.tls_ca_file;
  o.security.tls_cert_file = options.tls_cert_file;
  o.security.tls_key_file = options.tls_key_file;
  FTB_ASSIGN_OR_RETURN(o.security.auth_token, ResolveAuthToken(options.auth_token_file));
  FTB_ASSIGN_OR_RETURN(o.role, workers::ParseWorkerRole(options.role));
  o.backends = options.backends;
  if (o.backends.empty()) {
    if (o.role == v1::WORKER_ROLE_JUDGE) {
      o.backends = {"rules"};
    } else {
      return absl::InvalidArgumentError("--backends: name at least one backend (e.g. local)");
    }
  }
  o.slots = options.slots;
  o.worker_id = options.worker_id;
  o.max_tasks = options.max_tasks;
  for (const std::string& kv : options.backend_opts) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--backend-opt: expected KEY=VALUE, got \"", kv, "\""));
    }
    o.backend_options.params[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  FTB_ASSIGN_OR_RETURN(auto worker, workers::Worker::Create(std::move(o)));
  std::unique_ptr<WorkerMetrics> metrics;
  if (!options.metrics_listen.empty()) {
    try {
      metrics = std::make_unique<WorkerMetrics>(options.metrics_listen, options.role, worker.get());
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("--metrics-listen ", options.metrics_listen,
                       ": cannot listen (address already in use, or not bindable): ", e.what()));
    }
  }
  FTB_ASSIGN_OR_RETURN(auto signals, workers::InstallSignalHandlers(worker.get()));
  absl::Status status = worker->Run();
  signals.reset();
  metrics.reset();
  return status;
}

}  // namespace ftb::cli
