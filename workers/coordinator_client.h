// CoordinatorClient: how a worker talks to the coordinator (service
// ftb.v1.Coordinator, worker methods only). An interface so the worker
// runtime can be tested against FakeCoordinatorClient
// (fake_coordinator_client.h); GrpcCoordinatorClient is the real one.
//
// Thread-safety: implementations must allow concurrent calls (the worker's
// main loop and its heartbeat thread call at the same time).
//
// Every method returns the reply, or a status whose code is the retry signal:
//   kUnavailable, kDeadlineExceeded  coordinator unreachable or slow: retry
//                                    the same request with backoff;
//   kFailedPrecondition              the coordinator does not know this
//                                    worker (it restarted): RegisterWorker
//                                    again, then retry;
//   anything else                    not fixed by retrying the same request.
#ifndef FTB_WORKERS_COORDINATOR_CLIENT_H_
#define FTB_WORKERS_COORDINATOR_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ftb/v1/coordinator.grpc.pb.h"
#include "grpcpp/security/credentials.h"
#include "ftb/v1/coordinator.pb.h"

namespace ftb::workers {

class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;

  virtual absl::StatusOr<v1::RegisterWorkerResponse> Register(
      const v1::RegisterWorkerRequest& request) = 0;
  // May block up to request.wait_ms() (long poll) plus the RPC deadline.
  virtual absl::StatusOr<v1::LeaseTasksResponse> Lease(const v1::LeaseTasksRequest& request) = 0;
  virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) = 0;
  // Outcomes are per completion (parallel to request.completions()).
  virtual absl::StatusOr<v1::CompleteTasksResponse> Complete(
      const v1::CompleteTasksRequest& request) = 0;
  virtual absl::StatusOr<v1::FailTaskResponse> Fail(const v1::FailTaskRequest& request) = 0;
  // Durable provider intents (never paying twice). Default: kUnimplemented,
  // for test clients that do not model it.
  virtual absl::StatusOr<v1::RecordTaskIntentResponse> RecordTaskIntent(
      const v1::RecordTaskIntentRequest& request);
};

struct GrpcCoordinatorClientOptions {
  // Deadline of every call. LeaseTasks gets this plus its long-poll wait.
  absl::Duration rpc_deadline = absl::Seconds(10);
  // Cap on gRPC's reconnect backoff. gRPC's own default (120 s) would keep
  // calls failing fast with kUnavailable for up to two minutes after the
  // coordinator comes back; workers want to notice within seconds.
  absl::Duration max_reconnect_backoff = absl::Seconds(2);
  // Largest reply accepted (assignments and results carry question sets).
  int max_message_bytes = 64 << 20;
  // TLS credentials (null = plaintext) and the bearer token sent with every
  // call (empty = none); see common/grpc_security.h.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string auth_token;
};

// Sync-stub implementation over one channel (TLS and token per options).
// Creating it does not connect; calls fail with kUnavailable while the
// coordinator is unreachable. Thread-safe.
class GrpcCoordinatorClient : public CoordinatorClient {
 public:
  // `target` is "host:port" (any gRPC target string works).
  static std::unique_ptr<GrpcCoordinatorClient> Create(
      const std::string& target, const GrpcCoordinatorClientOptions& options = {});

  GrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel,
                        const GrpcCoordinatorClientOptions& options);

  absl::StatusOr<v1::RegisterWorkerResponse> Register(
      const v1::RegisterWorkerRequest& request) override;
  absl::StatusOr<v1::LeaseTasksResponse> Lease(const v1::LeaseTasksRequest& request) override;
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override;
  absl::StatusOr<v1::CompleteTasksResponse> Complete(
      const v1::CompleteTasksRequest& request) override;
  absl::StatusOr<v1::FailTaskResponse> Fail(const v1::FailTaskRequest& request) override;
  absl::StatusOr<v1::RecordTaskIntentResponse> RecordTaskIntent(
      const v1::RecordTaskIntentRequest& request) override;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  GrpcCoordinatorClientOptions options_;
};

}  // namespace ftb::workers

#endif  // FTB_WORKERS_COORDINATOR_CLIENT_H_
