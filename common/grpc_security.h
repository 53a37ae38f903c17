// Client-side security of a channel to the coordinator: TLS (optionally
// mutual) and the shared bearer token. Used by workers and by every CLI
// client (submit, status, watch, cancel, budget), so all of them speak to a
// secured coordinator the same way. The server side is coordinator/auth.h.
//
// Secrets (the token, private keys) are read from files or the environment,
// held in memory only, and never appear in error messages or logs: errors
// name the file, never its content.
//
// Thread-safety: functions are thread-safe; the returned channel is too.
#ifndef FTB_COMMON_GRPC_SECURITY_H_
#define FTB_COMMON_GRPC_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace ftb {

// Environment variable holding the token when no --auth-token-file is given.
inline constexpr char kAuthTokenEnv[] = "FTB_AUTH_TOKEN";

struct ChannelSecurity {
  // PEM CA bundle that signed the coordinator's certificate. Non-empty =
  // TLS; empty = plaintext.
  std::string tls_ca_file;
  // Client certificate chain and private key (PEM), for a coordinator that
  // requires mutual TLS. Both or neither; only with tls_ca_file.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Sent with every call as "authorization: Bearer <token>"; empty = none.
  std::string auth_token;
};

// The token: the content of `file` (surrounding whitespace trimmed) if
// `file` is non-empty, else $FTB_AUTH_TOKEN, else "" (no token).
// kNotFound if the file cannot be read, kInvalidArgument if it is empty or
// the token holds characters that cannot go into an HTTP/2 header.
absl::StatusOr<std::string> ResolveAuthToken(const std::string& file);

// Reads a whole file (PEM material). kNotFound naming `what` and the path.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, const std::string& what);

// TLS credentials per `security` (insecure when tls_ca_file is empty).
// kInvalidArgument for a cert without a key (or vice versa) or client
// material without a CA; kNotFound for unreadable files.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ChannelSecurity& security);

// A channel to `target` with `credentials` (null = insecure) that attaches
// the bearer token (if any) to every call. Does not connect.
std::shared_ptr<grpc::Channel> CreateSecureChannel(
    const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials,
    const std::string& auth_token, const grpc::ChannelArguments& args);

// Both of the above. Errors: as MakeChannelCredentials.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateSecureChannel(
    const std::string& target, const ChannelSecurity& security,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());

}  // namespace ftb

#endif  // FTB_COMMON_GRPC_SECURITY_H_
