#include "workers/coordinator_client.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <chrono>
#include <utility>

#include "common/grpc_security.h"
#include "common/grpc_status.h"

namespace ftb::workers {
namespace {

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

// Calls `method` on `stub` with a fresh context and the given deadline.
template <typename Response, typename Request, typename Method>
absl::StatusOr<Response> Call(v1::Coordinator::Stub* stub, Method method, const Request& request,
                              absl::Duration timeout) {
  grpc::ClientContext context;
  SetDeadline(context, timeout);
  Response response;
  grpc::Status status = (stub->*method)(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace

std::unique_ptr<GrpcCoordinatorClient> GrpcCoordinatorClient::Create(
    const std::string& target, const GrpcCoordinatorClientOptions& options) {
  grpc::ChannelArguments args;
  int max_backoff_ms = static_cast<int>(absl::ToInt64Milliseconds(options.max_reconnect_backoff));
  if (max_backoff_ms < 100) max_backoff_ms = 100;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  auto channel = CreateSecureChannel(target, options.credentials, options.auth_token, args);
  return std::make_unique<GrpcCoordinatorClient>(std::move(channel), options);
}

GrpcCoordinatorClient::GrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel,
                                             const GrpcCoordinatorClientOptions& options)
    : channel_(std::move(channel)), stub_(v1::Coordinator::NewStub(channel_)), options_(options) {}

absl::StatusOr<v1::RegisterWorkerResponse> GrpcCoordinatorClient::Register(
    const v1::RegisterWorkerRequest& request) {
  return Call<v1::RegisterWorkerResponse>(stub_.get(), &v1::Coordinator::Stub::RegisterWorker,
                                          request, options_.rpc_deadline);
}

absl::StatusOr<v1::LeaseTasksResponse> GrpcCoordinatorClient::Lease(
    const v1::LeaseTasksRequest& request) {
  return Call<v1::LeaseTasksResponse>(
      stub_.get(), &v1::Coordinator::Stub::LeaseTasks, request,
      options_.rpc_deadline + absl::Milliseconds(request.wait_ms()));
}

absl::StatusOr<v1::HeartbeatResponse> GrpcCoordinatorClient::Heartbeat(
    const v1::HeartbeatRequest& request) {
  return Call<v1::HeartbeatResponse>(stub_.get(), &v1::Coordinator::Stub::Heartbeat, request,
                                     options_.rpc_deadline);
}

absl::StatusOr<v1::CompleteTasksResponse> GrpcCoordinatorClient::Complete(
    const v1::CompleteTasksRequest& request) {
  return Call<v1::CompleteTasksResponse>(stub_.get(), &v1::Coordinator::Stub::CompleteTasks,
                                         request, options_.rpc_deadline);
}

absl::StatusOr<v1::FailTaskResponse> GrpcCoordinatorClient::Fail(
    const v1::FailTaskRequest& request) {
  return Call<v1::FailTaskResponse>(stub_.get(), &v1::Coordinator::Stub::FailTask, request,
                                    options_.rpc_deadline);
}

absl::StatusOr<v1::RecordTaskIntentResponse> CoordinatorClient::RecordTaskIntent(
    const v1::RecordTaskIntentRequest&) {
  return absl::UnimplementedError("RecordTaskIntent is not supported by this client");
}

absl::StatusOr<v1::RecordTaskIntentResponse> GrpcCoordinatorClient::RecordTaskIntent(
    const v1::RecordTaskIntentRequest& request) {
  return Call<v1::RecordTaskIntentResponse>(
      stub_.get(), &v1::Coordinator::Stub::RecordTaskIntent, request, options_.rpc_deadline);
}

}  // namespace ftb::workers
