// HTTP for provider clients: a transport interface (so tests can script
// replies), its libcurl implementation, and small helpers (multipart bodies,
// secret redaction). No retries here: see retry.h and openai_client.h.
#ifndef FTB_PROVIDERS_HTTP_H_
#define FTB_PROVIDERS_HTTP_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ftb::providers {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, DELETE
  std::string url;
  // Sent as given. Values may hold secrets (Authorization): never log them.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration timeout = absl::Seconds(60);
};

struct HttpResponse {
  int status = 0;
  // Lower-cased names; a repeated header keeps its last value.
  std::map<std::string, std::string> headers;
  std::string body;

  // The header's value, or "" when absent. `name` is lower case.
  std::string Header(std::string_view name) const;
};

// Status payload type URL: the request was never sent (see Send()).
inline constexpr char kNotSentPayload[] = "type.ftb.dev/ftb.provider.NotSent";
inline bool RequestNotSent(const absl::Status& status) {
  return status.GetPayload(kNotSentPayload).has_value();
}

// Sends one request, no retries. Thread-safe implementations are required
// (one client serves all of a worker's slots).
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Any HTTP status is a reply (OK). Errors: kUnavailable when no reply came
  // (connection refused, reset, dropped mid-reply, DNS); kDeadlineExceeded
  // when `request.timeout` passed; kInvalidArgument for a malformed URL.
  // An error where the request certainly never reached the server (DNS
  // failure, connection refused) carries kNotSentPayload: only such a
  // failure of a create call is safe to repeat blindly.
  virtual absl::StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;
};

// libcurl, one easy handle per request (no shared connection pool; provider
// calls are few and slow next to a TLS handshake). Thread-safe.
std::unique_ptr<HttpTransport> NewCurlTransport();

// A multipart/form-data body (RFC 7578) with a fixed, content-independent
// boundary checked not to occur in the parts.
class MultipartBody {
 public:
  void AddField(std::string name, std::string value);
  void AddFile(std::string name, std::string filename, std::string content_type,
               std::string content);
  // The Content-Type header value, with the boundary.
  std::string ContentType() const;
  std::string Encode() const;

 private:
  struct Part {
    std::string name, filename, content_type, content;
    bool is_file = false;
  };
  std::string Boundary() const;
  std::vector<Part> parts_;
};

// `text` with every occurrence of `secret` (if non-empty) replaced by
// "[REDACTED]".
std::string Redact(std::string_view text, std::string_view secret);

}  // namespace ftb::providers

#endif  // FTB_PROVIDERS_HTTP_H_
