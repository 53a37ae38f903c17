#include "providers/rest_client.h"

#include <cctype>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "providers/provider_stats.h"

namespace ftb::providers {

// --- ProviderStats ----------------------------------------------------------

ProviderStats& ProviderStats::Global() {
  static auto* stats = new ProviderStats;
  return *stats;
}

void ProviderStats::CountRequest(const std::string& provider, const std::string& status) {
  absl::MutexLock lock(&mu_);
  ++counts_.requests[{provider, status}];
}

void ProviderStats::CountRetry(const std::string& provider) {
  absl::MutexLock lock(&mu_);
  ++counts_.retries[provider];
}

ProviderStats::Snapshot ProviderStats::Get() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

// --- RestClient ---------------------------------------------------------------

Sleeper PlainSleeper() {
  return [](absl::Duration d) {
    absl::SleepFor(d);
    return true;
  };
}

std::string UrlEncode(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::Status RedactStatus(const absl::Status& status, std::string_view secret) {
  if (status.ok() || secret.empty()) return status;
  absl::Status out(status.code(), Redact(std::string(status.message()), secret));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

RestClient::RestClient(RestClientOptions options, std::unique_ptr<HttpTransport> transport)
    : options_(std::move(options)),
      transport_(std::move(transport)),
      policy_(options_.retry),
      limiter_(options_.requests_per_minute, options_.tokens_per_minute,
               options_.clock != nullptr ? options_.clock : RealClock::Get()),
      rng_(options_.jitter_seed) {}

absl::StatusOr<Json> RestClient::Call(const std::string& method, const std::string& url,
                                      const std::string& bearer, const std::string& body,
                                      const std::string& content_type, double estimated_tokens,
                                      const Sleeper& sleep, bool idempotent) {
  HttpRequest request;
  request.method = method;
  request.url = url;
  request.timeout = options_.timeout;
  if (!bearer.empty()) request.headers.emplace_back("Authorization", absl::StrCat("Bearer ", bearer));
  request.headers.emplace_back("Accept", "application/json");
  if (!content_type.empty()) request.headers.emplace_back("Content-Type", content_type);
  request.body = body;
  // The path without scheme, host and query, for messages (queries hold no
  // secrets, but keep messages short).
  std::string path = url;
  if (size_t scheme = path.find("://"); scheme != std::string::npos) {
    size_t slash = path.find('/', scheme + 3);
    path = slash == std::string::npos ? "/" : path.substr(slash);
  }
  const std::string what = absl::StrCat(method, " ", path.substr(0, path.find('?')));
  ProviderStats& stats = ProviderStats::Global();
  for (int attempt = 1;; ++attempt) {
    if (!limiter_.Acquire(estimated_tokens, sleep)) {
      return absl::CancelledError(absl::StrCat(what, ": cancelled"));
    }
    absl::StatusOr<HttpResponse> reply = transport_->Send(request);
    stats.CountRequest(options_.provider, reply.ok() ? absl::StrCat(reply->status) : "error");
    if (reply.ok()) limiter_.Observe(*reply);
    RetryDecision decision;
    {
      absl::MutexLock lock(&rng_mu_);
      decision = policy_.Decide(attempt, what, reply, rng_, idempotent);
    }
    if (decision.retry) {
      stats.CountRetry(options_.provider);
      if (!sleep(decision.delay)) return absl::CancelledError(absl::StrCat(what, ": cancelled"));
      continue;
    }
    if (!decision.error.ok()) return RedactStatus(decision.error, bearer);
    if (reply->body.find_first_not_of(" \t\r\n") == std::string::npos) return Json::object();
    Json json = Json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      return absl::InternalError(absl::StrCat(what, ": HTTP ", reply->status,
                                              " with a body that is not JSON: ",
                                              Redact(reply->body.substr(0, 200), bearer)));
    }
    return json;
  }
}

}  // namespace ftb::providers
