// Call admission: the CallAuthorizer policy on its own, then a real
// loopback coordinator with a token, anonymous reads, a submission rate, a
// message size limit and a campaign size limit.
#include "coordinator/auth.h"

#include <chrono>
#include <functional>

#include "absl/strings/str_cat.h"
#include "common/grpc_security.h"
#include "coordinator/service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "tok-3f9a1c27e5b84d60";
constexpr char kSubmit[] = "/ftb.v1.Coordinator/SubmitCampaign";
constexpr char kList[] = "/ftb.v1.Coordinator/ListCampaigns";
constexpr char kComplete[] = "/ftb.v1.Coordinator/CompleteTasks";

ServerSecurityOptions WithToken() {
  ServerSecurityOptions o;
  o.auth_token = kToken;
  o.max_submissions_per_minute = 0;
  return o;
}

TEST(CallAuthorizerTest, TokenRequiredOnEveryMethodButHealth) {
  FakeClock clock;
  CallAuthorizer a(WithToken(), &clock);
  const std::string bearer = std::string("Bearer ") + kToken;
  for (const char* m : {kSubmit, kList, kComplete, "/ftb.v1.Coordinator/RegisterWorker",
                        "/ftb.v1.Coordinator/SomeFutureRpc",
                        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", ""}) {
    absl::Status missing = a.Authorize(m, std::nullopt, "shared");
    EXPECT_EQ(missing.code(), absl::StatusCode::kUnauthenticated) << m;
    EXPECT_THAT(missing.message(), HasSubstr("requires a token")) << m;
    absl::Status wrong = a.Authorize(m, std::string_view("Bearer nope"), "shared");
    EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated) << m;
    EXPECT_THAT(wrong.message(), HasSubstr("invalid token")) << m;
    EXPECT_THAT(wrong.message(), Not(HasSubstr("nope")));
    EXPECT_TRUE(a.Authorize(m, std::string_view(bearer), "shared").ok()) << m;
  }
  // Near misses: no scheme, other scheme, trailing byte, token prefix.
  for (std::string v : {std::string(kToken), std::string("Basic ") + kToken, bearer + " ",
                        bearer.substr(0, bearer.size() - 1)}) {
    EXPECT_EQ(a.Authorize(kList, std::string_view(v), "shared").code(),
              absl::StatusCode::kUnauthenticated)
        << v;
  }
  EXPECT_TRUE(a.Authorize("/grpc.health.v1.Health/Check", std::nullopt, "shared").ok());
  EXPECT_TRUE(a.Authorize("/grpc.health.v1.Health/Watch", std::string_view("junk"), "x").ok());
}

TEST(CallAuthorizerTest, AnonymousReadsOnlyWhenConfiguredAndOnlyWithoutAHeader) {
  FakeClock clock;
  ServerSecurityOptions o = WithToken();
  o.allow_anonymous_read = true;
  CallAuthorizer a(o, &clock);
  for (const char* m : {"/ftb.v1.Coordinator/GetCampaign", kList,
                        "/ftb.v1.Coordinator/WatchCampaign", "/ftb.v1.Coordinator/ExportCampaign"}) {
    EXPECT_TRUE(a.Authorize(m, std::nullopt, "shared").ok()) << m;
    EXPECT_EQ(a.Authorize(m, std::string_view("Bearer wrong"), "shared").code(),
              absl::StatusCode::kUnauthenticated)
        << m;
  }
  for (const char* m : {kSubmit, kComplete, "/ftb.v1.Coordinator/CancelCampaign",
                        "/ftb.v1.Coordinator/UpdateBudget", "/ftb.v1.Coordinator/LeaseTasks",
                        "/ftb.v1.Coordinator/RecordTaskIntent"}) {
    EXPECT_EQ(a.Authorize(m, std::nullopt, "shared").code(), absl::StatusCode::kUnauthenticated)
        << m;
  }
}

TEST(CallAuthorizerTest, NoTokenConfiguredMeansNoTokenChecks) {
  FakeClock clock;
  ServerSecurityOptions o;
  o.max_submissions_per_minute = 0;
  CallAuthorizer a(o, &clock);
  EXPECT_FALSE(a.requires_token());
  EXPECT_TRUE(a.Authorize(kSubmit, std::nullopt, "shared").ok());
  EXPECT_TRUE(a.Authorize(kComplete, std::string_view("Bearer anything"), "shared").ok());
}

// Issue 18 item 3: with a worker token, each credential admits only its
// own role's RPCs (before, the one token admitted everything).
TEST(CallAuthorizerTest, WorkerAndUserTokensAdmitOnlyTheirOwnRpcs) {
  FakeClock clock;
  ServerSecurityOptions options;
  options.auth_token = kToken;
  options.worker_token = "wtok-81c0d2b7e4a95f36";
  CallAuthorizer a(options, &clock);
  const std::string user = absl::StrCat("Bearer ", kToken);
  const std::string worker = absl::StrCat("Bearer ", options.worker_token);
  for (const char* m : {"/ftb.v1.Coordinator/RegisterWorker", "/ftb.v1.Coordinator/LeaseTasks",
                        "/ftb.v1.Coordinator/Heartbeat", kComplete,
                        "/ftb.v1.Coordinator/FailTask", "/ftb.v1.Coordinator/RecordTaskIntent"}) {
    EXPECT_TRUE(IsWorkerMethod(m)) << m;
    EXPECT_TRUE(a.Authorize(m, std::string_view(worker), "shared").ok()) << m;
    absl::Status s = a.Authorize(m, std::string_view(user), "shared");
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << m;
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("a user token cannot call worker"));
  }
  for (const char* m : {kSubmit, "/ftb.v1.Coordinator/CancelCampaign",
                        "/ftb.v1.Coordinator/UpdateBudget", "/ftb.v1.Coordinator/DeleteCampaign",
                        kList, "/ftb.v1.Coordinator/GetCampaign"}) {
    EXPECT_FALSE(IsWorkerMethod(m)) << m;
    EXPECT_TRUE(a.Authorize(m, std::string_view(user), "shared").ok()) << m;
    EXPECT_EQ(a.Authorize(m, std::string_view(worker), "shared").code(),
              absl::StatusCode::kPermissionDenied)
        << m;
  }
  EXPECT_EQ(a.Authorize(kComplete, std::string_view("Bearer other"), "shared").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(a.Authorize(kComplete, std::nullopt, "shared").code(),
            absl::StatusCode::kUnauthenticated);
  // A worker token needs a user token beside it, and must differ from it.
  ServerSecurityOptions only_worker;
  only_worker.worker_token = "w";
  EXPECT_EQ(MakeServerCredentials(only_worker).status().code(),
            absl::StatusCode::kInvalidArgument);
  ServerSecurityOptions same;
  same.auth_token = same.worker_token = "t";
  EXPECT_EQ(MakeServerCredentials(same).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CallAuthorizerTest, SubmissionsAreRateLimitedPerIdentityOtherCallsAreNot) {
  FakeClock clock;
  ServerSecurityOptions o;
  o.max_submissions_per_minute = 2;
  CallAuthorizer a(o, &clock);
  EXPECT_TRUE(a.Authorize(kSubmit, std::nullopt, "x509:CN=a").ok());
  EXPECT_TRUE(a.Authorize(kSubmit, std::nullopt, "x509:CN=a").ok());
  absl::Status third = a.Authorize(kSubmit, std::nullopt, "x509:CN=a");
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.message(), HasSubstr("--max-submissions-per-minute"));
  EXPECT_TRUE(a.Authorize(kSubmit, std::nullopt, "x509:CN=b").ok());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(a.Authorize(kList, std::nullopt, "x509:CN=a").ok());
  clock.AdvanceMs(30'000);
  EXPECT_TRUE(a.Authorize(kSubmit, std::nullopt, "x509:CN=a").ok());
}

TEST(MakeServerCredentialsTest, InconsistentOptionsAreRefusedByName) {
  ServerSecurityOptions o;
  o.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_THAT(MakeServerCredentials(o).status().message(), HasSubstr("--tls-key"));
  o.tls_key_file = "/nonexistent/key.pem";
  absl::Status missing = MakeServerCredentials(o).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("/nonexistent/cert.pem"));
  ServerSecurityOptions ca_only;
  ca_only.tls_client_ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(MakeServerCredentials(ca_only).status().code(), absl::StatusCode::kInvalidArgument);
}

// --- a real coordinator -------------------------------------------------------

constexpr char kSpec[] = R"(name: auth
datasets:
  - {source: builtin, name: people, size: 2, seed: 1}
models:
  - {name: fixture, backend: test}
grid:
  epochs: [1, 3]
  seed: [0, 1]
)";

class SecuredCoordinatorTest : public ::testing::Test {
 protected:
  void Start(const CoordinatorOptions& options) {
    auto server = CoordinatorServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void StartWithToken() {
    CoordinatorOptions o;
    o.tick_ms = 20;
    o.security = WithToken();
    Start(o);
  }

  std::unique_ptr<v1::Coordinator::Stub> Stub(const std::string& token) {
    ChannelSecurity security;
    security.auth_token = token;
    auto channel = CreateSecureChannel(server_->address(), security);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return v1::Coordinator::NewStub(*channel);
  }

  template <typename Req, typename Resp, typename Method>
  static grpc::Status Call(v1::Coordinator::Stub* stub, Method method, const Req& req,
                           Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (stub->*method)(&ctx, req, resp);
  }

  static grpc::Status Submit(v1::Coordinator::Stub* stub, const std::string& yaml = kSpec,
                             std::string* id = nullptr) {
    v1::SubmitCampaignRequest req;
    req.set_spec_yaml(yaml);
    req.set_spec_filename("auth.yaml");
    v1::SubmitCampaignResponse resp;
    grpc::Status s = Call(stub, &v1::Coordinator::Stub::SubmitCampaign, req, &resp);
    if (id) *id = resp.campaign_id();
    return s;
  }

  static int Campaigns(v1::Coordinator::Stub* stub) {
    v1::ListCampaignsResponse resp;
    grpc::Status s = Call(stub, &v1::Coordinator::Stub::ListCampaigns,
                          v1::ListCampaignsRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.campaigns_size();
  }

  std::unique_ptr<CoordinatorServer> server_;
};

TEST_F(SecuredCoordinatorTest, MissingOrWrongTokenIsUnauthenticatedAndChangesNothing) {
  StartWithToken();
  auto good = Stub(kToken);
  auto none = Stub("");
  auto wrong = Stub("tok-wrong");

  for (auto* stub : {none.get(), wrong.get()}) {
    grpc::Status s = Submit(stub);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
    EXPECT_THAT(s.error_message(), Not(HasSubstr(kToken)));
    v1::ListCampaignsResponse list;
    EXPECT_EQ(Call(stub, &v1::Coordinator::Stub::ListCampaigns, v1::ListCampaignsRequest(), &list)
                  .error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    v1::RegisterWorkerRequest reg;
    reg.set_worker_id("intruder");
    reg.set_role(v1::WORKER_ROLE_TUNE);
    reg.add_backends("test");
    v1::RegisterWorkerResponse reg_out;
    EXPECT_EQ(Call(stub, &v1::Coordinator::Stub::RegisterWorker, reg, &reg_out).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(Campaigns(good.get()), 0);

  // A legitimate worker leases a task; an impostor tries to complete it.
  std::string id;
  ASSERT_TRUE(Submit(good.get(), kSpec, &id).ok());
  v1::RegisterWorkerRequest reg;
  reg.set_worker_id("w1");
  reg.set_role(v1::WORKER_ROLE_TUNE);
  reg.add_backends("test");
  v1::RegisterWorkerResponse reg_out;
  ASSERT_TRUE(Call(good.get(), &v1::Coordinator::Stub::RegisterWorker, reg, &reg_out).ok());
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("w1");
  lease.set_max_tasks(1);
  v1::LeaseTasksResponse leased;
  ASSERT_TRUE(Call(good.get(), &v1::Coordinator::Stub::LeaseTasks, lease, &leased).ok());
  ASSERT_EQ(leased.tasks_size(), 1);
  v1::CompleteTasksRequest complete;
  complete.set_worker_id("w1");
  auto* c = complete.add_completions();
  c->set_task_id(leased.tasks(0).task_id());
  c->set_attempt(leased.tasks(0).attempt());
  c->set_lease_token(leased.tasks(0).lease_token());
  c->mutable_result()->set_digest("forged");
  for (auto* stub : {none.get(), wrong.get()}) {
    v1::CompleteTasksResponse out;
    EXPECT_EQ(Call(stub, &v1::Coordinator::Stub::CompleteTasks, complete, &out).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    v1::CancelCampaignRequest cancel;
    cancel.set_campaign_id(id);
    v1::CancelCampaignResponse cancel_out;
    EXPECT_EQ(Call(stub, &v1::Coordinator::Stub::CancelCampaign, cancel, &cancel_out).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  v1::GetCampaignRequest get;
  get.set_campaign_id(id);
  v1::GetCampaignResponse got;
  ASSERT_TRUE(Call(good.get(), &v1::Coordinator::Stub::GetCampaign, get, &got).ok());
  EXPECT_EQ(got.progress().cells_done(), 0u);
  EXPECT_EQ(got.progress().tasks_leased(), 1u);
  EXPECT_EQ(got.progress().state(), v1::CAMPAIGN_STATE_RUNNING);
  EXPECT_EQ(Campaigns(good.get()), 1);

  // The real worker's report is still accepted: the forged one left no trace.
  v1::CompleteTasksResponse out;
  ASSERT_TRUE(Call(good.get(), &v1::Coordinator::Stub::CompleteTasks, complete, &out).ok());
  ASSERT_EQ(out.outcomes_size(), 1);
  EXPECT_EQ(out.outcomes(0), v1::COMPLETION_OUTCOME_ACCEPTED);
}

TEST_F(SecuredCoordinatorTest, AnonymousReadsWhenAllowed) {
  CoordinatorOptions o;
  o.tick_ms = 20;
  o.security = WithToken();
  o.security.allow_anonymous_read = true;
  Start(o);
  auto good = Stub(kToken);
  auto none = Stub("");
  ASSERT_TRUE(Submit(good.get()).ok());
  EXPECT_EQ(Campaigns(none.get()), 1);
  EXPECT_EQ(Submit(none.get()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Campaigns(good.get()), 1);
}

TEST_F(SecuredCoordinatorTest, SubmissionRateIsLimited) {
  CoordinatorOptions o;
  o.tick_ms = 20;
  o.security.max_submissions_per_minute = 2;
  Start(o);
  auto stub = Stub("");
  EXPECT_TRUE(Submit(stub.get()).ok());
  EXPECT_TRUE(Submit(stub.get()).ok());
  grpc::Status third = Submit(stub.get());
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third.error_message(), HasSubstr("too many campaign submissions"));
  EXPECT_EQ(Campaigns(stub.get()), 2);
}

TEST_F(SecuredCoordinatorTest, OversizedRequestsAndCampaignsAreRefused) {
  CoordinatorOptions o;
  o.tick_ms = 20;
  o.max_receive_message_bytes = 1 << 20;
  o.max_cells = 3;  // kSpec has 4 cells
  Start(o);
  auto stub = Stub("");
  grpc::Status big = Submit(stub.get(), std::string(kSpec) + "# " + std::string(2 << 20, 'x'));
  EXPECT_EQ(big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << big.error_message();
  grpc::Status cells = Submit(stub.get());
  EXPECT_EQ(cells.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(cells.error_message(), HasSubstr("4 cells; the limit is 3"));
  EXPECT_EQ(Campaigns(stub.get()), 0);
}

}  // namespace
}  // namespace ftb::coordinator
