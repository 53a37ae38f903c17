// The coordinator's transport security and call admission: TLS (optionally
// mutual), the shared bearer token, and the per-client submission rate.
//
// How it plugs in. MakeServerCredentials() returns grpc::ServerCredentials
// (TLS or plaintext) that carry a gRPC auth metadata processor. gRPC runs
// the processor on every call's initial metadata BEFORE any handler runs, so
// a refused call never reaches the service or the scheduler: it changes no
// state. Unlike a server interceptor, the processor can fail a call with a
// status of its choice (UNAUTHENTICATED, RESOURCE_EXHAUSTED). It is also
// method-agnostic: an RPC added to ftb.v1.Coordinator later requires the
// token without anyone remembering to wire it (fail closed).
//
// Two credentials. The user token (auth_token) is for people and their
// tools: Submit/Cancel/UpdateBudget/DeleteCampaign, the reads, reflection.
// The worker token (worker_token) is for workers: RegisterWorker,
// LeaseTasks, Heartbeat, CompleteTasks, FailTask, RecordTaskIntent. With
// both configured each is refused (PERMISSION_DENIED) on the other's RPCs,
// so a leaked worker token cannot submit, cancel, delete or change budgets,
// and a user token cannot lease or report results. With only auth_token
// configured the coordinator runs in SINGLE-TOKEN MODE: that one token is
// both, and whoever holds it may do everything (the mode of earlier
// versions; fine when users and workers are the same trusted party, e.g.
// `ftb run`). Under mutual TLS the certificate authenticates the channel;
// the tokens still decide the role.
//
// Policy (CallAuthorizer, testable without sockets):
//   /grpc.health.v1.Health/*             always allowed (probes carry no
//                                        token);
//   worker RPCs (above)                  need the worker token (the user
//                                        token in single-token mode);
//   GetCampaign, ListCampaigns,          need the user token, unless
//   WatchCampaign, ExportCampaign        allow_anonymous_read and the call
//                                        carries no authorization header;
//   everything else (Submit/Cancel/      need the user token.
//   UpdateBudget/DeleteCampaign,
//   reflection, unknown methods)
// A wrong token is refused everywhere (also on reads with
// allow_anonymous_read: a misconfigured client should hear about it). The
// token is compared in constant time (SHA-256 of both, then a constant-time
// compare of the digests) and the authorization header is consumed: handlers
// never see it, so it cannot leak into logs or state. No token configured =
// no token checks.
//
// SubmitCampaign calls are rate limited per client identity (token bucket,
// RateLimiter): the client certificate's subject under mutual TLS, else one
// shared identity for everybody (a processor cannot see the peer address;
// with a shared token all token holders are one client anyway).
//
// Thread-safety: everything here is thread-safe; gRPC calls the processor on
// its own threads.
#ifndef FTB_COORDINATOR_AUTH_H_
#define FTB_COORDINATOR_AUTH_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/rate_limiter.h"
#include "grpcpp/security/server_credentials.h"

namespace ftb::coordinator {

struct ServerSecurityOptions {
  // PEM certificate chain and private key of the coordinator. Both = TLS;
  // neither = plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  // PEM CA bundle for client certificates. Set = mutual TLS: every client
  // must present a certificate signed by it (needs tls_cert_file).
  std::string tls_client_ca_file;
  // Shared secret clients send as "authorization: Bearer <token>"; empty =
  // no token required. Never logged or stored. The user token, or the only
  // token in single-token mode (worker_token empty).
  std::string auth_token;
  // The workers' token (`ftb coordinator --worker-token-file`); needs
  // auth_token and must differ from it. Empty = single-token mode.
  std::string worker_token;
  // Lets GetCampaign/ListCampaigns/WatchCampaign through without a token.
  bool allow_anonymous_read = false;
  // SubmitCampaign calls per client per minute (bursts of the same number);
  // 0 = unlimited.
  double max_submissions_per_minute = 60;
};

// The per-call decision, separated from gRPC for tests.
class CallAuthorizer {
 public:
  // `clock` is not owned; it must outlive the authorizer.
  CallAuthorizer(const ServerSecurityOptions& options, const Clock* clock);

  // `method` is the call's path ("/ftb.v1.Coordinator/SubmitCampaign");
  // `authorization` the header's value, if sent; `identity` the client
  // identity for rate limiting. OK, kUnauthenticated (missing or wrong
  // token; the message never contains a token), kPermissionDenied (a valid
  // token of the other role) or kResourceExhausted (submission rate).
  absl::Status Authorize(std::string_view method,
                         const std::optional<std::string_view>& authorization,
                         const std::string& identity);

  bool requires_token() const { return requires_token_; }

 private:
  const bool requires_token_;
  const bool separate_worker_token_;
  const bool allow_anonymous_read_;
  std::array<uint8_t, 32> expected_digest_{};  // SHA-256("Bearer " + token)
  std::array<uint8_t, 32> worker_digest_{};    // of worker_token, if set
  std::unique_ptr<RateLimiter> submissions_;   // null = unlimited
};

// Whether `method` ("/ftb.v1.Coordinator/LeaseTasks") is a worker RPC.
bool IsWorkerMethod(std::string_view method);

// Server credentials per `options` with the CallAuthorizer installed.
// kInvalidArgument for inconsistent options (a cert without a key, a client
// CA without a server cert, a worker token without a user token or equal to
// it), kNotFound for unreadable files. `clock` (null =
// RealClock) drives the rate limiter.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurityOptions& options, const Clock* clock = nullptr);

}  // namespace ftb::coordinator

#endif  // FTB_COORDINATOR_AUTH_H_
