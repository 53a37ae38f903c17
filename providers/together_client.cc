#include "providers/together_client.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ftb::providers {

Json TogetherJobRequest::ToJson() const {
  Json body = {{"model", model},
               {"training_file", training_file},
               {"n_epochs", n_epochs},
               {"suffix", suffix}};
  if (n_checkpoints) body["n_checkpoints"] = *n_checkpoints;
  if (learning_rate) body["learning_rate"] = *learning_rate;
  if (batch_size) body["batch_size"] = *batch_size;
  if (seed) body["random_seed"] = *seed;
  // training_type is a oneOf of FullTrainingType and LoRATrainingType in
  // openapi.yaml (the top-level `lora=True` is the Python SDK's spelling,
  // not a wire field).
  Json training_type = {{"type", lora ? "Lora" : "Full"}};
  if (lora) {
    training_type["lora_r"] = lora_r;
    training_type["lora_alpha"] = lora_alpha;
    if (lora_dropout) training_type["lora_dropout"] = *lora_dropout;
    if (lora_trainable_modules) training_type["lora_trainable_modules"] = *lora_trainable_modules;
  }
  body["training_type"] = std::move(training_type);
  Json method = {{"method", "sft"}};
  if (train_on_inputs == "true" || train_on_inputs == "false") {
    method["train_on_inputs"] = train_on_inputs == "true";
  } else {
    method["train_on_inputs"] = "auto";
  }
  body["training_method"] = std::move(method);
  return body;
}

TogetherClient::TogetherClient(TogetherClientOptions options,
                               std::unique_ptr<HttpTransport> transport)
    : options_(std::move(options)), rest_(options_.rest, std::move(transport)) {}

absl::StatusOr<Json> TogetherClient::Call(const std::string& method, const std::string& path,
                                          const std::string& body,
                                          const std::string& content_type,
                                          double estimated_tokens, const Sleeper& sleep,
                                          bool idempotent) {
  return rest_.Call(method, options_.base_url + path, options_.api_key, body, content_type,
                    estimated_tokens, sleep, idempotent);
}

absl::StatusOr<std::vector<Json>> TogetherClient::DataList(Json reply, const std::string& what) {
  if (!reply.contains("data") || !reply["data"].is_array()) {
    return absl::InternalError(absl::StrCat(what, ": reply has no \"data\" list"));
  }
  std::vector<Json> out;
  for (Json& item : reply["data"]) out.push_back(std::move(item));
  return out;
}

absl::StatusOr<Json> TogetherClient::UploadFile(const std::string& filename,
                                                const std::string& jsonl, const Sleeper& sleep) {
  MultipartBody form;
  form.AddField("purpose", "fine-tune");
  form.AddField("file_name", filename);
  form.AddFile("file", filename, "application/jsonl", jsonl);
  return Call("POST", "/files/upload", form.Encode(), form.ContentType(), 0, sleep,
              /*idempotent=*/false);
}

absl::StatusOr<Json> TogetherClient::CreateJob(const TogetherJobRequest& request,
                                               const Sleeper& sleep) {
  return Call("POST", "/fine-tunes", request.ToJson().dump(), "application/json", 0, sleep,
              /*idempotent=*/false);
}

absl::StatusOr<Json> TogetherClient::GetJob(const std::string& id, const Sleeper& sleep) {
  return Call("GET", absl::StrCat("/fine-tunes/", UrlEncode(id)), "", "", 0, sleep);
}

absl::StatusOr<std::vector<Json>> TogetherClient::ListJobs(const Sleeper& sleep) {
  absl::StatusOr<Json> reply = Call("GET", "/fine-tunes", "", "", 0, sleep);
  if (!reply.ok()) return reply.status();
  return DataList(*std::move(reply), "GET /fine-tunes");
}

absl::StatusOr<std::vector<Json>> TogetherClient::FindJobsByTag(const std::string& tag,
                                                                const Sleeper& sleep) {
  absl::StatusOr<std::vector<Json>> jobs = ListJobs(sleep);
  if (!jobs.ok()) return jobs.status();
  std::vector<Json> out;
  for (Json& job : *jobs) {
    for (const char* field : {"suffix", "model_output_name"}) {
      auto it = job.find(field);
      if (it != job.end() && it->is_string() &&
          absl::StrContains(it->get<std::string>(), tag)) {
        out.push_back(std::move(job));
        break;
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<Json>> TogetherClient::ListEvents(const std::string& id,
                                                             const Sleeper& sleep) {
  const std::string path = absl::StrCat("/fine-tunes/", UrlEncode(id), "/events");
  absl::StatusOr<Json> reply = Call("GET", path, "", "", 0, sleep);
  if (!reply.ok()) return reply.status();
  return DataList(*std::move(reply), absl::StrCat("GET ", path));
}

absl::StatusOr<std::vector<Json>> TogetherClient::ListCheckpoints(const std::string& id,
                                                                  const Sleeper& sleep) {
  const std::string path = absl::StrCat("/fine-tunes/", UrlEncode(id), "/checkpoints");
  absl::StatusOr<Json> reply = Call("GET", path, "", "", 0, sleep);
  if (!reply.ok()) return reply.status();
  return DataList(*std::move(reply), absl::StrCat("GET ", path));
}

std::string TogetherClient::FailureReason(const std::vector<Json>& events) {
  std::string reason;
  for (const Json& event : events) {
    if (!event.is_object()) continue;
    auto type = event.find("type");
    auto message = event.find("message");
    if (type != event.end() && *type == "job_error" && message != event.end() &&
        message->is_string()) {
      reason = message->get<std::string>();
    }
  }
  return reason;
}

absl::StatusOr<Json> TogetherClient::CancelJob(const std::string& id, const Sleeper& sleep) {
  return Call("POST", absl::StrCat("/fine-tunes/", UrlEncode(id), "/cancel"), "", "", 0, sleep);
}

absl::StatusOr<Json> TogetherClient::ChatCompletion(const Json& request, double estimated_tokens,
                                                    const Sleeper& sleep) {
  return Call("POST", "/chat/completions", request.dump(), "application/json", estimated_tokens,
              sleep);
}

}  // namespace ftb::providers
