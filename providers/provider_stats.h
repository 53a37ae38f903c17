// Process-wide counters of provider REST calls, for metrics. The worker's
// Prometheus exporter (cli/worker_command.cc) mirrors them as
//   ftb_provider_requests_total{provider,status}   every HTTP attempt; status
//                                                  is the HTTP code, or
//                                                  "error" when no reply came
//   ftb_provider_retries_total{provider}           attempts that were retries
// Labels stay bounded: providers are a handful, statuses a few dozen.
// Thread-safe.
#ifndef FTB_PROVIDERS_PROVIDER_STATS_H_
#define FTB_PROVIDERS_PROVIDER_STATS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ftb::providers {

class ProviderStats {
 public:
  // The process-wide instance. Never destroyed.
  static ProviderStats& Global();

  void CountRequest(const std::string& provider, const std::string& status);
  void CountRetry(const std::string& provider);

  struct Snapshot {
    std::map<std::pair<std::string, std::string>, uint64_t> requests;  // (provider, status)
    std::map<std::string, uint64_t> retries;                           // by provider
  };
  Snapshot Get() const;

 private:
  mutable absl::Mutex mu_;
  Snapshot counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ftb::providers

#endif  // FTB_PROVIDERS_PROVIDER_STATS_H_
