#include "coordinator/auth.h"

#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_security.h"
#include "common/hash.h"
#include "grpc/grpc.h"
#include "grpc/grpc_security.h"
#include "grpc/grpc_security_constants.h"
#include "grpc/slice.h"

namespace ftb::coordinator {
namespace {

constexpr std::string_view kHealthPrefix = "/grpc.health.v1.Health/";
constexpr std::string_view kCoordinatorPrefix = "/ftb.v1.Coordinator/";

bool IsReadOnly(std::string_view method) {
  if (!method.starts_with(kCoordinatorPrefix)) return false;
  std::string_view name = method.substr(kCoordinatorPrefix.size());
  return name == "GetCampaign" || name == "ListCampaigns" || name == "WatchCampaign" ||
         name == "ExportCampaign";
}

}  // namespace

bool IsWorkerMethod(std::string_view method) {
  if (!method.starts_with(kCoordinatorPrefix)) return false;
  std::string_view name = method.substr(kCoordinatorPrefix.size());
  return name == "RegisterWorker" || name == "LeaseTasks" || name == "Heartbeat" ||
         name == "CompleteTasks" || name == "FailTask" || name == "RecordTaskIntent";
}

namespace {

std::array<uint8_t, 32> Digest(std::string_view s) {
  Sha256 h;
  h.Update(s);
  return h.Finish();
}

// Compares two digests without an early exit, so timing does not reveal how
// many leading bytes matched (and hashing first hides the length).
bool ConstantTimeEqual(const std::array<uint8_t, 32>& a, const std::array<uint8_t, 32>& b) {
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | (a[i] ^ b[i]);
  return diff == 0;
}

std::string_view SliceView(const grpc_slice& s) {
  return std::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(s)),
                          GRPC_SLICE_LENGTH(s));
}

// The client identity for rate limiting: the verified certificate's
// subject (mutual TLS), else one shared identity.
std::string Identity(const grpc_auth_context* ctx) {
  if (ctx != nullptr && grpc_auth_context_peer_is_authenticated(ctx)) {
    grpc_auth_property_iterator it =
        grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_SUBJECT_PROPERTY_NAME);
    if (const grpc_auth_property* p = grpc_auth_property_iterator_next(&it); p != nullptr) {
      return absl::StrCat("x509:", std::string(p->value, p->value_length));
    }
    it = grpc_auth_context_peer_identity(ctx);
    if (const grpc_auth_property* p = grpc_auth_property_iterator_next(&it); p != nullptr) {
      return absl::StrCat("peer:", std::string(p->value, p->value_length));
    }
  }
  return "shared";
}

// grpc_auth_metadata_processor.process: runs on a gRPC thread for every
// call, before the handler. Calls `cb` synchronously.
void Process(void* state, grpc_auth_context* context, const grpc_metadata* md, size_t num_md,
             grpc_process_auth_metadata_done_cb cb, void* user_data) {
  auto* authorizer = static_cast<std::shared_ptr<CallAuthorizer>*>(state)->get();
  std::string_view method;
  std::optional<std::string_view> authorization;
  const grpc_metadata* authorization_md = nullptr;
  for (size_t i = 0; i < num_md; ++i) {
    std::string_view key = SliceView(md[i].key);
    if (key == ":path") {
      method = SliceView(md[i].value);
    } else if (key == "authorization" && authorization_md == nullptr) {
      authorization = SliceView(md[i].value);
      authorization_md = &md[i];
    }
  }
  absl::Status status = authorizer->Authorize(method, authorization, Identity(context));
  std::string message(status.message());
  // The header is consumed either way: no handler, log or store ever sees it.
  cb(user_data, authorization_md, authorization_md ? 1 : 0, nullptr, 0,
     static_cast<grpc_status_code>(status.code()), status.ok() ? nullptr : message.c_str());
}

void Destroy(void* state) { delete static_cast<std::shared_ptr<CallAuthorizer>*>(state); }

// grpc::ServerCredentials that build core credentials (TLS or plaintext)
// with our processor. grpc::InsecureServerCredentials() cannot take an auth
// metadata processor (it asserts), but the core plaintext credentials can,
// so this class goes through the C API for both cases.
class AuthorizingServerCredentials final : public grpc::ServerCredentials {
 public:
  AuthorizingServerCredentials(std::shared_ptr<CallAuthorizer> authorizer, bool tls,
                               std::string key, std::string cert, std::string client_ca)
      : authorizer_(std::move(authorizer)),
        tls_(tls),
        key_(std::move(key)),
        cert_(std::move(cert)),
        client_ca_(std::move(client_ca)) {}

  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {
    // Not supported: this class installs its own processor. Callers never
    // use it (the coordinator builds its credentials here only).
    std::abort();
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    grpc_server_credentials* creds;
    if (tls_) {
      grpc_ssl_pem_key_cert_pair pair{key_.c_str(), cert_.c_str()};
      creds = grpc_ssl_server_credentials_create_ex(
          client_ca_.empty() ? nullptr : client_ca_.c_str(), &pair, 1,
          client_ca_.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                             : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY,
          nullptr);
    } else {
      creds = grpc_insecure_server_credentials_create();
    }
    if (creds == nullptr) return 0;
    grpc_auth_metadata_processor processor;
    processor.process = &Process;
    processor.destroy = &Destroy;
    processor.state = new std::shared_ptr<CallAuthorizer>(authorizer_);
    grpc_server_credentials_set_auth_metadata_processor(creds, processor);
    int port = grpc_server_add_http2_port(server, addr.c_str(), creds);
    grpc_server_credentials_release(creds);
    return port;
  }

  std::shared_ptr<CallAuthorizer> authorizer_;
  const bool tls_;
  const std::string key_;
  const std::string cert_;
  const std::string client_ca_;
};

}  // namespace

CallAuthorizer::CallAuthorizer(const ServerSecurityOptions& options, const Clock* clock)
    : requires_token_(!options.auth_token.empty()),
      separate_worker_token_(!options.auth_token.empty() && !options.worker_token.empty()),
      allow_anonymous_read_(options.allow_anonymous_read) {
  if (requires_token_) expected_digest_ = Digest(absl::StrCat("Bearer ", options.auth_token));
  if (separate_worker_token_) {
    worker_digest_ = Digest(absl::StrCat("Bearer ", options.worker_token));
  }
  if (options.max_submissions_per_minute > 0) {
    submissions_ = std::make_unique<RateLimiter>(clock, options.max_submissions_per_minute,
                                                 options.max_submissions_per_minute);
  }
}

absl::Status CallAuthorizer::Authorize(std::string_view method,
                                       const std::optional<std::string_view>& authorization,
                                       const std::string& identity) {
  if (method.starts_with(kHealthPrefix)) return absl::OkStatus();
  if (separate_worker_token_ && authorization.has_value()) {
    const std::array<uint8_t, 32> digest = Digest(*authorization);
    const bool user = ConstantTimeEqual(digest, expected_digest_);
    const bool worker = ConstantTimeEqual(digest, worker_digest_);
    const bool worker_method = IsWorkerMethod(method);
    if (worker_method && user) {
      return absl::PermissionDeniedError(absl::StrCat(
          std::string(method), ": a user token cannot call worker RPCs (workers use the "
                               "coordinator's --worker-token-file token)"));
    }
    if (!worker_method && worker) {
      return absl::PermissionDeniedError(absl::StrCat(
          std::string(method), ": a worker token can only call worker RPCs (register, lease, "
                               "heartbeat, complete, fail, record intents)"));
    }
    if (!user && !worker) {
      return absl::UnauthenticatedError(absl::StrCat(
          std::string(method), ": invalid token (expected 'authorization: Bearer <token>' with "
                               "the coordinator's ",
          worker_method ? "worker" : "user", " token)"));
    }
  } else if (requires_token_) {
    if (!authorization.has_value()) {
      if (!(allow_anonymous_read_ && IsReadOnly(method))) {
        return absl::UnauthenticatedError(absl::StrCat(
            std::string(method), ": this coordinator requires a token (send "
            "'authorization: Bearer <token>'; ftb clients: --auth-token-file FILE or $",
            kAuthTokenEnv, ")"));
      }
    } else if (!ConstantTimeEqual(Digest(*authorization), expected_digest_)) {
      return absl::UnauthenticatedError(
          absl::StrCat(std::string(method), ": invalid token (expected 'authorization: Bearer "
                                            "<token>' with the coordinator's token)"));
    }
  }
  if (submissions_ != nullptr && method == "/ftb.v1.Coordinator/SubmitCampaign") {
    absl::Status s = submissions_->Acquire(identity, "campaign submissions");
    if (!s.ok()) {
      return absl::ResourceExhaustedError(
          absl::StrCat(s.message(), " (coordinator --max-submissions-per-minute)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurityOptions& options, const Clock* clock) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key: give both (the coordinator's certificate and its key) or "
        "neither");
  }
  if (!options.worker_token.empty() && options.auth_token.empty()) {
    return absl::InvalidArgumentError(
        "--worker-token-file needs a user token too (--auth-token-file or $FTB_AUTH_TOKEN): "
        "otherwise anyone could submit while only workers need a token");
  }
  if (!options.worker_token.empty() && options.worker_token == options.auth_token) {
    return absl::InvalidArgumentError(
        "--worker-token-file: the worker token equals the user token; give each role its own "
        "(or omit --worker-token-file for single-token mode)");
  }
  const bool tls = !options.tls_cert_file.empty();
  if (!tls && !options.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)");
  }
  std::string key, cert, client_ca;
  if (tls) {
    absl::StatusOr<std::string> c = ReadSecretFile(options.tls_cert_file, "--tls-cert");
    if (!c.ok()) return c.status();
    absl::StatusOr<std::string> k = ReadSecretFile(options.tls_key_file, "--tls-key");
    if (!k.ok()) return k.status();
    cert = *std::move(c);
    key = *std::move(k);
    if (!absl::StrContains(cert, "-----BEGIN CERTIFICATE-----")) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-cert ", options.tls_cert_file, ": expected a PEM certificate"));
    }
    if (!absl::StrContains(key, "PRIVATE KEY-----")) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-key ", options.tls_key_file, ": expected a PEM private key"));
    }
    if (!options.tls_client_ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadSecretFile(options.tls_client_ca_file, "--tls-client-ca");
      if (!ca.ok()) return ca.status();
      client_ca = *std::move(ca);
      if (!absl::StrContains(client_ca, "-----BEGIN CERTIFICATE-----")) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--tls-client-ca ", options.tls_client_ca_file, ": expected PEM certificates"));
      }
    }
  }
  auto authorizer =
      std::make_shared<CallAuthorizer>(options, clock ? clock : RealClock::Get());
  return std::shared_ptr<grpc::ServerCredentials>(std::make_shared<AuthorizingServerCredentials>(
      std::move(authorizer), tls, std::move(key), std::move(cert), std::move(client_ca)));
}

}  // namespace ftb::coordinator
