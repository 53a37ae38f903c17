#include "common/grpc_security.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/client_interceptor.h"

namespace ftb {
namespace {

// Adds "authorization: Bearer <token>" to every call's initial metadata.
// A client interceptor rather than call credentials: gRPC refuses to send
// call credentials over a plaintext channel, and a token on a plaintext
// channel inside a private network (or a test) is a legitimate setup.
class BearerTokenInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;  // owned by the factory, which the channel keeps
};

class BearerTokenInterceptorFactory
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(const std::string& token)
      : header_(absl::StrCat("Bearer ", token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new BearerTokenInterceptor(&header_);
  }

 private:
  const std::string header_;
};

}  // namespace

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat(what, " ", path, ": cannot read the file"));
  std::stringstream text;
  text << f.rdbuf();
  if (f.bad()) return absl::NotFoundError(absl::StrCat(what, " ", path, ": read error"));
  return text.str();
}

absl::StatusOr<std::string> ResolveAuthToken(const std::string& file) {
  std::string token;
  std::string source;
  if (!file.empty()) {
    absl::StatusOr<std::string> text = ReadSecretFile(file, "--auth-token-file");
    if (!text.ok()) return text.status();
    token = std::string(absl::StripAsciiWhitespace(*text));
    source = absl::StrCat("--auth-token-file ", file);
    if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": the file is empty"));
  } else if (const char* env = std::getenv(kAuthTokenEnv); env != nullptr) {
    token = std::string(absl::StripAsciiWhitespace(env));
    source = kAuthTokenEnv;
    if (token.empty()) return std::string();  // set but empty = no token
  } else {
    return std::string();
  }
  // HTTP/2 header values: visible ASCII and spaces only. The message names
  // the position, never the content.
  for (size_t i = 0; i < token.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(token[i]);
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": the token has a non-printable or non-ASCII byte at offset ", i,
                       " (expected printable ASCII)"));
    }
  }
  return token;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ChannelSecurity& security) {
  if (security.tls_cert_file.empty() != security.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key: give both (client certificate and its key) or neither");
  }
  if (security.tls_ca_file.empty()) {
    if (!security.tls_cert_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-cert/--tls-key need --tls-ca (the CA that signed the coordinator's certificate)");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadSecretFile(security.tls_ca_file, "--tls-ca");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *std::move(ca);
  if (!security.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadSecretFile(security.tls_cert_file, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadSecretFile(security.tls_key_file, "--tls-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

std::shared_ptr<grpc::Channel> CreateSecureChannel(
    const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials,
    const std::string& auth_token, const grpc::ChannelArguments& args) {
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  if (auth_token.empty()) return grpc::CreateCustomChannel(target, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<BearerTokenInterceptorFactory>(auth_token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, credentials, args,
                                                                 std::move(factories));
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateSecureChannel(
    const std::string& target, const ChannelSecurity& security,
    const grpc::ChannelArguments& args) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(security);
  if (!credentials.ok()) return credentials.status();
  return CreateSecureChannel(target, *std::move(credentials), security.auth_token, args);
}

}  // namespace ftb
