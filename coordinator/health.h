// HTTP liveness on the metrics port: `GET /healthz` answers 200 with an
// empty body (text/plain) for as long as the process serves /metrics.
//
// prometheus-cpp's Exposer (1.0) only serves collectables, so /healthz is an
// empty registry registered at that URI: a 200 means the process is up and
// its HTTP server answers; it says nothing about readiness. Readiness of the
// coordinator is the gRPC health service (grpc.health.v1.Health: SERVING
// once state is recovered, NOT_SERVING while shutting down).
#ifndef FTB_COORDINATOR_HEALTH_H_
#define FTB_COORDINATOR_HEALTH_H_

#include <memory>

#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace ftb {

inline constexpr char kHealthzPath[] = "/healthz";

// Registers /healthz on `exposer`. Thread-compatible (call before serving).
inline void ServeHealthz(prometheus::Exposer& exposer) {
  // The Exposer keeps a weak_ptr; this registry lives for the process.
  static const auto* registry = new std::shared_ptr<prometheus::Registry>(
      std::make_shared<prometheus::Registry>());
  exposer.RegisterCollectable(*registry, kHealthzPath);
}

}  // namespace ftb

#endif  // FTB_COORDINATOR_HEALTH_H_
