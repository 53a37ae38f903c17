#include "providers/openai_client.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace ftb::providers {

// --- OpenAiClient -------------------------------------------------------------

namespace {

RestClientOptions RestOptions(const OpenAiClientOptions& o) {
  RestClientOptions r;
  r.provider = o.provider;
  r.retry = o.retry;
  r.requests_per_minute = o.requests_per_minute;
  r.tokens_per_minute = o.tokens_per_minute;
  r.timeout = o.timeout;
  r.clock = o.clock;
  r.jitter_seed = o.jitter_seed;
  return r;
}

}  // namespace

OpenAiClient::OpenAiClient(OpenAiClientOptions options, std::unique_ptr<HttpTransport> transport)
    : options_(std::move(options)), rest_(RestOptions(options_), std::move(transport)) {}

absl::StatusOr<Json> OpenAiClient::Call(const std::string& method, const std::string& path,
                                        const std::string& body,
                                        const std::string& content_type,
                                        double estimated_tokens, const Sleeper& sleep,
                                        bool idempotent) {
  return rest_.Call(method, options_.base_url + path, options_.api_key, body, content_type,
                    estimated_tokens, sleep, idempotent);
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
  return Call("POST", "/files", form.Encode(), form.ContentType(), 0, sleep,
              /*idempotent=*/false);
}

absl::StatusOr<Json> OpenAiClient::GetFile(const std::string& id, const Sleeper& sleep) {
  return Call("GET", absl::StrCat("/files/", UrlEncode(id)), "", "", 0, sleep);
}

absl::StatusOr<std::vector<Json>> OpenAiClient::ListFiles(const std::string& purpose,
                                                          const Sleeper& sleep) {
  return ListAll(absl::StrCat("/files?purpose=", UrlEncode(purpose)), sleep);
}

absl::StatusOr<Json> OpenAiClient::CreateJob(const Json& request, const Sleeper& sleep) {
  return Call("POST", "/fine_tuning/jobs", request.dump(), "application/json", 0, sleep,
              /*idempotent=*/false);
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
