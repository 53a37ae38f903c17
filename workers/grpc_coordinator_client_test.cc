// GrpcCoordinatorClient and the status conversion against a real gRPC server
// on 127.0.0.1, and a Worker talking through it (including a coordinator
// restart on the same port).
#include <grpcpp/grpcpp.h>

#include <memory>
#include <thread>

#include "common/grpc_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "workers/coordinator_client.h"
#include "workers/fake_coordinator_client.h"
#include "workers/test_backend.h"
#include "workers/testing_util.h"
#include "workers/worker.h"

namespace ftb::workers {
namespace {

using testing::MakeTestTask;
using testing::WaitUntil;

TEST(GrpcStatusTest, RoundTripsEveryCanonicalCode) {
  for (int code = 1; code <= 16; ++code) {
    absl::Status status(static_cast<absl::StatusCode>(code), "msg");
    grpc::Status g = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(g.error_message(), "msg");
    EXPECT_EQ(FromGrpcStatus(g), status);
  }
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")),
            absl::UnavailableError("down"));
}

// Serves the worker methods by forwarding to a CoordinatorClient (the fake),
// optionally delaying Heartbeat to provoke deadlines.
class ForwardingService final : public v1::Coordinator::Service {
 public:
  explicit ForwardingService(CoordinatorClient* target) : target_(target) {}

  void set_heartbeat_delay(absl::Duration d) { heartbeat_delay_ = d; }

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override {
    return Reply(target_->Register(*request), response);
  }
  grpc::Status LeaseTasks(grpc::ServerContext*, const v1::LeaseTasksRequest* request,
                          v1::LeaseTasksResponse* response) override {
    return Reply(target_->Lease(*request), response);
  }
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override {
    absl::SleepFor(heartbeat_delay_);
    return Reply(target_->Heartbeat(*request), response);
  }
  grpc::Status CompleteTasks(grpc::ServerContext*, const v1::CompleteTasksRequest* request,
                             v1::CompleteTasksResponse* response) override {
    return Reply(target_->Complete(*request), response);
  }
  grpc::Status FailTask(grpc::ServerContext*, const v1::FailTaskRequest* request,
                        v1::FailTaskResponse* response) override {
    return Reply(target_->Fail(*request), response);
  }

 private:
  template <typename T>
  static grpc::Status Reply(absl::StatusOr<T> result, T* response) {
    if (!result.ok()) return ToGrpcStatus(result.status());
    *response = *std::move(result);
    return grpc::Status::OK;
  }

  CoordinatorClient* target_;
  absl::Duration heartbeat_delay_ = absl::ZeroDuration();  // set before serving
};

class Server {
 public:
  // Listens on 127.0.0.1:`port` (0 = pick one).
  Server(ForwardingService* service, int port = 0) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
  }
  ~Server() { Shutdown(); }
  void Shutdown() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    server_->Wait();
    server_.reset();
  }
  int port() const { return port_; }
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

GrpcCoordinatorClientOptions FastOptions() {
  GrpcCoordinatorClientOptions options;
  options.rpc_deadline = absl::Milliseconds(500);
  options.max_reconnect_backoff = absl::Milliseconds(100);
  return options;
}

TEST(GrpcCoordinatorClientTest, CallsAndStatusCodesCrossTheWire) {
  FakeCoordinatorClient fake;
  ForwardingService service(&fake);
  Server server(&service);
  ASSERT_GT(server.port(), 0);
  auto client = GrpcCoordinatorClient::Create(server.target(), FastOptions());

  v1::LeaseTasksRequest lease;
  lease.set_worker_id("w1");
  lease.set_max_tasks(1);
  EXPECT_EQ(client->Lease(lease).status().code(),
            absl::StatusCode::kFailedPrecondition);  // not registered

  v1::RegisterWorkerRequest reg;
  reg.set_worker_id("w1");
  auto registered = client->Register(reg);
  ASSERT_TRUE(registered.ok()) << registered.status();
  EXPECT_DOUBLE_EQ(registered->lease_seconds(), 0.15);

  fake.AddTask(MakeTestTask("t1"));
  auto leased = client->Lease(lease);
  ASSERT_TRUE(leased.ok()) << leased.status();
  ASSERT_EQ(leased->tasks_size(), 1);
  EXPECT_EQ(leased->tasks(0).attempt(), 1u);

  v1::CompleteTasksRequest complete;
  complete.set_worker_id("w1");
  auto* c = complete.add_completions();
  c->set_task_id("t1");
  c->set_attempt(1);
  auto outcome = client->Complete(complete);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->outcomes(0), v1::COMPLETION_OUTCOME_ACCEPTED);
  outcome = client->Complete(complete);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->outcomes(0), v1::COMPLETION_OUTCOME_DUPLICATE);
}

TEST(GrpcCoordinatorClientTest, SlowReplyIsDeadlineExceeded) {
  FakeCoordinatorClient fake;
  ForwardingService service(&fake);
  service.set_heartbeat_delay(absl::Milliseconds(300));
  Server server(&service);
  GrpcCoordinatorClientOptions options = FastOptions();
  options.rpc_deadline = absl::Milliseconds(50);
  auto client = GrpcCoordinatorClient::Create(server.target(), options);
  v1::HeartbeatRequest request;
  request.set_worker_id("w1");
  EXPECT_EQ(client->Heartbeat(request).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(GrpcCoordinatorClientTest, NoServerIsUnavailable) {
  int port;
  {
    FakeCoordinatorClient fake;
    ForwardingService service(&fake);
    Server server(&service);
    port = server.port();
  }
  auto client = GrpcCoordinatorClient::Create(absl::StrCat("127.0.0.1:", port), FastOptions());
  v1::RegisterWorkerRequest request;
  request.set_worker_id("w1");
  EXPECT_EQ(client->Register(request).status().code(), absl::StatusCode::kUnavailable);
}

WorkerOptions GrpcWorkerOptions(const std::string& target) {
  WorkerOptions options;
  options.coordinator = target;
  options.worker_id = "w1";
  options.backends = {"test"};
  options.slots = 2;
  options.rpc_deadline = absl::Milliseconds(500);
  options.lease_wait = absl::Milliseconds(20);
  options.lease_poll = absl::Milliseconds(10);
  options.backoff_initial = absl::Milliseconds(5);
  options.backoff_max = absl::Milliseconds(100);
  options.log = [](std::string_view) {};
  return options;
}

TEST(GrpcWorkerTest, WorkerCompletesTasksOverGrpc) {
  FakeCoordinatorClient fake;
  ForwardingService service(&fake);
  Server server(&service);
  for (int i = 0; i < 5; ++i) fake.AddTask(MakeTestTask(absl::StrCat("t", i)));
  WorkerOptions options = GrpcWorkerOptions(server.target());
  options.max_tasks = 5;
  auto worker = Worker::Create(options);
  ASSERT_TRUE(worker.ok()) << worker.status();
  EXPECT_TRUE((*worker)->Run().ok());
  EXPECT_EQ(fake.accepted(), 5);
}

TEST(GrpcWorkerTest, ResultSurvivesCoordinatorRestartOnTheSamePort) {
  FakeCoordinatorClient fake;  // the coordinator's durable state
  ForwardingService service(&fake);
  auto server = std::make_unique<Server>(&service);
  const int port = server->port();
  fake.AddTask(MakeTestTask("t1", 150, 150));
  WorkerOptions options = GrpcWorkerOptions(server->target());
  options.max_tasks = 1;
  auto worker = Worker::Create(options);
  ASSERT_TRUE(worker.ok()) << worker.status();
  absl::Status status;
  std::thread thread([&] { status = (*worker)->Run(); });

  ASSERT_TRUE(WaitUntil([&] { return fake.IsLeased("t1", 1); }));
  server->Shutdown();  // the coordinator goes away; the task finishes
  ASSERT_TRUE(WaitUntil([&] { return (*worker)->stats().rpc_errors >= 2; }));
  EXPECT_TRUE(fake.completions().empty());
  fake.ForgetWorkers();  // and comes back without the registrations
  server = std::make_unique<Server>(&service, port);
  ASSERT_EQ(server->port(), port);

  thread.join();
  EXPECT_TRUE(status.ok()) << status;
  auto completions = fake.completions();
  ASSERT_EQ(completions.size(), 1u);
  EXPECT_EQ(completions[0].outcome, v1::COMPLETION_OUTCOME_ACCEPTED);
  EXPECT_EQ((*worker)->stats().registrations, 2u);
}

}  // namespace
}  // namespace ftb::workers
