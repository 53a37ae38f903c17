#include "providers/openai_client.h"

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

// --- OpenAiClient -------------------------------------------------------------

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

OpenAiClient::OpenAiClient(OpenAiClientOptions options, std::unique_ptr<HttpTransport> transport)
    : options_(std::move(options)),
      transport_(std::move(transport)),
      policy_(options_.retry),
      limiter_(options_.requests_per_minute, options_.tokens_per_minute,
               options_.clock != nullptr ? options_.clock : RealClock::Get()),
      rng_(options_.jitter_seed) {}

absl::Status OpenAiClient::Redacted(const absl::Status& status) const {
  if (status.ok()) return status;
  absl::Status out(status.code(), Redact(std::string(status.message()), options_.api_key));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

absl::StatusOr<Json> OpenAiClient::Call(const std::string& method, const std::string& path,
                                        const std::string& body,
                                        const std::string& content_type,
                                        double estimated_tokens, const Sleeper& sleep) {
  HttpRequest request;
  request.method = method;
  request.url = options_.base_url + path;
  request.timeout = options_.timeout;
  request.headers.emplace_back("Authorization", absl::StrCat("Bearer ", options_.api_key));
  request.headers.emplace_back("Accept", "application/json");
  if (!content_type.empty()) request.headers.emplace_back("Content-Type", content_type);
  request.body = body;
  // The path without its query, for messages (queries hold no secrets, but
  // keep messages short).
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
      decision = policy_.Decide(attempt, what, reply, rng_);
    }
    if (decision.retry) {
      stats.CountRetry(options_.provider);
      if (!sleep(decision.delay)) return absl::CancelledError(absl::StrCat(what, ": cancelled"));
      continue;
    }
    if (!decision.error.ok()) return Redacted(decision.error);
    Json json = Json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      return absl::InternalError(absl::StrCat(what, ": HTTP ", reply->status,
                                              " with a body that is not JSON: ",
                                              Redact(reply->body.substr(0, 200), options_.api_key)));
    }
    return json;
  }
}

absl::StatusOr<std::vector<Json>> OpenAiClient::ListAll(const std::string& path_and_query,
                                                        const Sleeper& sleep) {
  std::vector<Json> out;
  std::string after;
  const char sep = path_and_query.find('?') == std::string::npos ? '?' : '&';
  for (int page = 0; page < 1000; ++page) {
    std::string path = absl::StrCat(path_and_query, std::string(1, sep), "limit=100");
    if (!after.empty()) absl::StrAppend(&path, "&after=", UrlEncode(after));
    absl::StatusOr<Json> reply = Call("GET", path, "", "", 0, sleep);
    if (!reply.ok()) return reply.status();
    if (!reply->contains("data") || !(*reply)["data"].is_array()) {
      return absl::InternalError(
          absl::StrCat("GET ", path_and_query, ": reply has no \"data\" list"));
    }
    for (Json& item : (*reply)["data"]) out.push_back(std::move(item));
    if (!reply->value("has_more", false) || out.empty() || !out.back().contains("id")) break;
    after = out.back()["id"].get<std::string>();
  }
  return out;
}

absl::StatusOr<Json> OpenAiClient::UploadFile(const std::string& filename,
                                              const std::string& jsonl, const Sleeper& sleep) {
  MultipartBody form;
  form.AddField("purpose", "fine-tune");
  form.AddFile("file", filename, "application/jsonl", jsonl);
  return Call("POST", "/files", form.Encode(), form.ContentType(), 0, sleep);
}

absl::StatusOr<Json> OpenAiClient::GetFile(const std::string& id, const Sleeper& sleep) {
  return Call("GET", absl::StrCat("/files/", UrlEncode(id)), "", "", 0, sleep);
}

absl::StatusOr<std::vector<Json>> OpenAiClient::ListFiles(const std::string& purpose,
                                                          const Sleeper& sleep) {
  return ListAll(absl::StrCat("/files?purpose=", UrlEncode(purpose)), sleep);
}

absl::StatusOr<Json> OpenAiClient::CreateJob(const Json& request, const Sleeper& sleep) {
  return Call("POST", "/fine_tuning/jobs", request.dump(), "application/json", 0, sleep);
}

absl::StatusOr<Json> OpenAiClient::GetJob(const std::string& id, const Sleeper& sleep) {
  return Call("GET", absl::StrCat("/fine_tuning/jobs/", UrlEncode(id)), "", "", 0, sleep);
}

absl::StatusOr<std::vector<Json>> OpenAiClient::ListJobsByMetadata(const std::string& key,
                                                                   const std::string& value,
                                                                   const Sleeper& sleep) {
  return ListAll(absl::StrCat("/fine_tuning/jobs?", UrlEncode(absl::StrCat("metadata[", key, "]")),
                              "=", UrlEncode(value)),
                 sleep);
}

absl::StatusOr<std::vector<Json>> OpenAiClient::RecentEvents(const std::string& id, int limit,
                                                             const Sleeper& sleep) {
  absl::StatusOr<Json> reply =
      Call("GET", absl::StrCat("/fine_tuning/jobs/", UrlEncode(id), "/events?limit=", limit), "",
           "", 0, sleep);
  if (!reply.ok()) return reply.status();
  std::vector<Json> out;
  if (reply->contains("data") && (*reply)["data"].is_array()) {
    for (Json& e : (*reply)["data"]) out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<Json>> OpenAiClient::ListCheckpoints(const std::string& id,
                                                                const Sleeper& sleep) {
  return ListAll(absl::StrCat("/fine_tuning/jobs/", UrlEncode(id), "/checkpoints"), sleep);
}

absl::StatusOr<Json> OpenAiClient::CancelJob(const std::string& id, const Sleeper& sleep) {
  return Call("POST", absl::StrCat("/fine_tuning/jobs/", UrlEncode(id), "/cancel"), "", "", 0,
              sleep);
}

absl::StatusOr<Json> OpenAiClient::ChatCompletion(const Json& request, double estimated_tokens,
                                                  const Sleeper& sleep) {
  return Call("POST", "/chat/completions", request.dump(), "application/json", estimated_tokens,
              sleep);
}

}  // namespace ftb::providers
