// TogetherClient against a scripted HttpTransport: the paths, headers and
// bodies it sends and how it reads replies, as Together's OpenAPI document
// (togethercomputer/openapi, openapi.yaml at 090263aa0fde, 2026-04-28)
// describes them.
#include "providers/together_client.h"

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "providers/http.h"
#include "providers/retry.h"

namespace ftb::providers {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

HttpResponse Reply(int status, std::string body = "{}",
                   std::map<std::string, std::string> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

// ErrorData of openapi.yaml.
std::string ErrorBody(const std::string& message, const std::string& type,
                      const std::string& code = "") {
  Json error = {{"message", message}, {"type", type}, {"param", nullptr}};
  error["code"] = code.empty() ? Json(nullptr) : Json(code);
  return Json{{"error", error}}.dump();
}

class ScriptedTransport : public HttpTransport {
 public:
  void Push(absl::StatusOr<HttpResponse> r) {
    absl::MutexLock lock(&mu_);
    script_.push_back(std::move(r));
  }
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    if (script_.empty()) return Reply(500, ErrorBody("script exhausted", "server_error"));
    auto r = std::move(script_.front());
    script_.pop_front();
    return r;
  }
  std::vector<HttpRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  absl::Mutex mu_;
  std::deque<absl::StatusOr<HttpResponse>> script_;
  std::vector<HttpRequest> requests_;
};

std::string HeaderOf(const HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (absl::AsciiStrToLower(key) == name) return value;
  }
  return "";
}

constexpr char kKey[] = "tgp_v1_secret0123456789";

struct Fixture {
  explicit Fixture(std::string base_url = "http://fake/v1") {
    auto t = std::make_unique<ScriptedTransport>();
    transport = t.get();
    TogetherClientOptions o;
    if (!base_url.empty()) o.base_url = std::move(base_url);
    o.api_key = kKey;
    o.rest.retry.max_attempts = 3;
    client = std::make_unique<TogetherClient>(o, std::move(t));
  }
  Sleeper sleeper() {
    return [this](absl::Duration d) {
      slept.push_back(d);
      return true;
    };
  }
  ScriptedTransport* transport;
  std::unique_ptr<TogetherClient> client;
  std::vector<absl::Duration> slept;
};

std::string JobJson(const std::string& id, const std::string& status,
                    const std::string& suffix = "", const std::string& output_name = "") {
  Json job = {{"id", id},
              {"status", status},
              {"created_at", "2026-05-01T10:00:00.000Z"},
              {"updated_at", "2026-05-01T10:00:00.000Z"}};
  if (!suffix.empty()) job["suffix"] = suffix;
  if (!output_name.empty()) job["model_output_name"] = output_name;
  return job.dump();
}

TEST(TogetherClient, DefaultServerIsApiTogetherAi) {
  // openapi.yaml `servers: - url: https://api.together.ai/v1`.
  EXPECT_EQ(TogetherClientOptions().base_url, "https://api.together.ai/v1");
  Fixture f(/*base_url=*/"");
  f.transport->Push(Reply(200, JobJson("ft-1", "queued")));
  ASSERT_TRUE(f.client->GetJob("ft-1", f.sleeper()).ok());
  EXPECT_EQ(f.transport->requests().at(0).url, "https://api.together.ai/v1/fine-tunes/ft-1");
}

TEST(TogetherClient, CreateJobSendsTheFineTuneRequestFields) {
  Fixture f;
  f.transport->Push(Reply(200, JobJson("ft-abc", "pending", "ftb-0123456789abcdef-e3")));
  TogetherJobRequest request;
  request.model = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference";
  request.training_file = "file-123";
  request.n_epochs = 3;
  request.n_checkpoints = 3;
  request.learning_rate = 1e-4;
  request.batch_size = 8;
  request.lora_r = 16;
  request.lora_alpha = 32;
  request.lora_dropout = 0.05;
  request.lora_trainable_modules = "q_proj,v_proj";
  request.suffix = "ftb-0123456789abcdef-e3";
  request.seed = 42;
  request.train_on_inputs = "false";
  absl::StatusOr<Json> job = f.client->CreateJob(request, f.sleeper());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ((*job)["id"], "ft-abc");

  const std::vector<HttpRequest> sent = f.transport->requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, "POST");
  EXPECT_EQ(sent[0].url, "http://fake/v1/fine-tunes");
  EXPECT_EQ(HeaderOf(sent[0], "authorization"), absl::StrCat("Bearer ", kKey));
  EXPECT_THAT(HeaderOf(sent[0], "content-type"), HasSubstr("application/json"));
  const Json body = Json::parse(sent[0].body);
  EXPECT_EQ(body["model"], "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference");
  EXPECT_EQ(body["training_file"], "file-123");
  EXPECT_EQ(body["n_epochs"], 3);
  EXPECT_EQ(body["n_checkpoints"], 3);
  EXPECT_DOUBLE_EQ(body["learning_rate"].get<double>(), 1e-4);
  EXPECT_EQ(body["batch_size"], 8);
  EXPECT_EQ(body["suffix"], "ftb-0123456789abcdef-e3");
  EXPECT_EQ(body["random_seed"], 42);
  // LoRATrainingType: type, lora_r and lora_alpha required.
  EXPECT_EQ(body["training_type"],
            (Json{{"type", "Lora"},
                  {"lora_r", 16},
                  {"lora_alpha", 32},
                  {"lora_dropout", 0.05},
                  {"lora_trainable_modules", "q_proj,v_proj"}}));
  // TrainingMethodSFT: method and train_on_inputs required.
  EXPECT_EQ(body["training_method"], (Json{{"method", "sft"}, {"train_on_inputs", false}}));
  // Not wire fields of the request schema (or deprecated there).
  for (const char* field : {"lora", "seed", "train_on_inputs", "output_name"}) {
    EXPECT_FALSE(body.contains(field)) << field;
  }
}

TEST(TogetherClient, CreateJobDefaultsLeaveServiceDefaultsAlone) {
  Fixture f;
  f.transport->Push(Reply(200, JobJson("ft-abc", "pending")));
  TogetherJobRequest request;
  request.model = "Qwen/Qwen3-8B";
  request.training_file = "file-1";
  request.suffix = "ftb-x-e1";
  request.lora = false;
  ASSERT_TRUE(f.client->CreateJob(request, f.sleeper()).ok());
  const Json body = Json::parse(f.transport->requests().at(0).body);
  EXPECT_EQ(body["training_type"], (Json{{"type", "Full"}}));
  EXPECT_EQ(body["training_method"], (Json{{"method", "sft"}, {"train_on_inputs", "auto"}}));
  for (const char* field : {"n_checkpoints", "learning_rate", "batch_size", "random_seed"}) {
    EXPECT_FALSE(body.contains(field)) << field;
  }
}

// A 5xx on a create may have created the job: not repeated, marked
// IsMaybeCreated, so the caller looks for the tag before creating again.
TEST(TogetherClient, CreateIsNotRepeatedAfterAnAmbiguousFailure) {
  Fixture f;
  f.transport->Push(Reply(500, ErrorBody("internal error", "server_error")));
  TogetherJobRequest request;
  request.model = "m";
  request.training_file = "file-1";
  absl::StatusOr<Json> job = f.client->CreateJob(request, f.sleeper());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsMaybeCreated(job.status()));
  EXPECT_EQ(f.transport->requests().size(), 1u);

  // A dropped reply after sending: the same.
  f.transport->Push(absl::UnavailableError("connection reset by peer"));
  job = f.client->CreateJob(request, f.sleeper());
  EXPECT_TRUE(IsMaybeCreated(job.status())) << job.status();
  EXPECT_EQ(f.transport->requests().size(), 2u);
}

// 429 is refused before any work: retried, also for a create, waiting what
// retry-after says.
TEST(TogetherClient, RateLimitedCreateIsRetriedAfterRetryAfter) {
  Fixture f;
  f.transport->Push(Reply(429, ErrorBody("rate limit exceeded", "rate_limit_exceeded"),
                          {{"retry-after", "2"}, {"x-ratelimit-remaining", "0"}}));
  f.transport->Push(Reply(200, JobJson("ft-1", "pending")));
  TogetherJobRequest request;
  request.model = "m";
  request.training_file = "file-1";
  absl::StatusOr<Json> job = f.client->CreateJob(request, f.sleeper());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(f.transport->requests().size(), 2u);
  ASSERT_EQ(f.slept.size(), 1u);
  EXPECT_EQ(f.slept[0], absl::Seconds(2));
}

TEST(TogetherClient, UploadFileIsMultipartWithPurposeAndFileName) {
  Fixture f;
  f.transport->Push(Reply(200, R"({"id":"file-9","object":"file","created_at":1,
      "filename":"train.jsonl","bytes":12,"purpose":"fine-tune","FileType":"jsonl",
      "Processed":true})"));
  absl::StatusOr<Json> file =
      f.client->UploadFile("train.jsonl", "{\"messages\":[]}\n", f.sleeper());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)["id"], "file-9");
  const HttpRequest sent = f.transport->requests().at(0);
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.url, "http://fake/v1/files/upload");
  EXPECT_THAT(HeaderOf(sent, "content-type"), HasSubstr("multipart/form-data; boundary="));
  EXPECT_THAT(sent.body, HasSubstr("name=\"purpose\"\r\n\r\nfine-tune\r\n"));
  EXPECT_THAT(sent.body, HasSubstr("name=\"file_name\"\r\n\r\ntrain.jsonl\r\n"));
  EXPECT_THAT(sent.body, HasSubstr("name=\"file\"; filename=\"train.jsonl\""));
  EXPECT_THAT(sent.body, HasSubstr("{\"messages\":[]}\n"));
}

TEST(TogetherClient, ListJobsIsOneRequestWithoutPagingParameters) {
  Fixture f;
  f.transport->Push(Reply(200, absl::StrCat("{\"data\":[", JobJson("ft-1", "completed"), ",",
                                            JobJson("ft-2", "running"), "],\"has_more\":true}")));
  absl::StatusOr<std::vector<Json>> jobs = f.client->ListJobs(f.sleeper());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[1]["id"], "ft-2");
  // GET /fine-tunes has no parameters in openapi.yaml: no invented cursor,
  // even when a reply says has_more.
  ASSERT_EQ(f.transport->requests().size(), 1u);
  EXPECT_EQ(f.transport->requests()[0].url, "http://fake/v1/fine-tunes");
}

TEST(TogetherClient, ListWithoutDataIsInternal) {
  Fixture f;
  f.transport->Push(Reply(200, R"({"jobs":[]})"));
  absl::StatusOr<std::vector<Json>> jobs = f.client->ListJobs(f.sleeper());
  EXPECT_EQ(jobs.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(jobs.status().message(), HasSubstr("GET /fine-tunes"));
}

TEST(TogetherClient, FindJobsByTagMatchesSuffixAndModelOutputName) {
  Fixture f;
  const std::string tag = "ftb-0123456789abcdef-e3";
  f.transport->Push(Reply(
      200,
      absl::StrCat("{\"data\":[", JobJson("ft-1", "completed", "other"), ",",
                   JobJson("ft-2", "running", "", "me/Qwen3-8B-" + tag + "-1a2b"), ",",
                   JobJson("ft-3", "queued", tag), ",",
                   // output_name is not a field of the job object.
                   R"({"id":"ft-4","status":"queued","output_name":")", tag, R"("},)",
                   JobJson("ft-5", "queued", "ftb-0123456789abcdef-e5"), "]}")));
  absl::StatusOr<std::vector<Json>> jobs = f.client->FindJobsByTag(tag, f.sleeper());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0]["id"], "ft-2");
  EXPECT_EQ((*jobs)[1]["id"], "ft-3");
}

TEST(TogetherClient, EventsCheckpointsAndCancelPaths) {
  Fixture f;
  f.transport->Push(Reply(200, R"({"data":[{"object":"fine-tune-event","type":"job_start",
      "message":"Job started","created_at":"t"}]})"));
  f.transport->Push(Reply(200, R"({"data":[{"step":10,"path":"me/m-ftb:10",
      "created_at":"t","checkpoint_type":"Intermediate"}]})"));
  f.transport->Push(Reply(200, JobJson("ft-1/x", "cancel_requested")));
  absl::StatusOr<std::vector<Json>> events = f.client->ListEvents("ft-1/x", f.sleeper());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(events->at(0)["type"], "job_start");
  absl::StatusOr<std::vector<Json>> checkpoints = f.client->ListCheckpoints("ft-1/x", f.sleeper());
  ASSERT_TRUE(checkpoints.ok()) << checkpoints.status();
  EXPECT_EQ(checkpoints->at(0)["step"], 10);
  absl::StatusOr<Json> cancelled = f.client->CancelJob("ft-1/x", f.sleeper());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  const std::vector<HttpRequest> sent = f.transport->requests();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].method, "GET");
  EXPECT_EQ(sent[0].url, "http://fake/v1/fine-tunes/ft-1%2Fx/events");
  EXPECT_EQ(sent[1].url, "http://fake/v1/fine-tunes/ft-1%2Fx/checkpoints");
  EXPECT_EQ(sent[2].method, "POST");
  EXPECT_EQ(sent[2].url, "http://fake/v1/fine-tunes/ft-1%2Fx/cancel");
}

TEST(TogetherClient, FailureReasonIsTheNewestJobErrorEvent) {
  std::vector<Json> events = {
      Json{{"type", "job_start"}, {"message", "started"}},
      Json{{"type", "job_error"}, {"message", "first"}},
      Json{{"type", "warning"}, {"message", "disk"}},
      Json{{"type", "job_error"}, {"message", "Training file has 3 invalid lines"}},
      Json{{"type", "job_error"}, {"message", 7}},  // not a string: skipped
      Json("not an object"),
  };
  EXPECT_EQ(TogetherClient::FailureReason(events), "Training file has 3 invalid lines");
  EXPECT_EQ(TogetherClient::FailureReason({Json{{"type", "job_complete"}, {"message", "ok"}}}),
            "");
  EXPECT_EQ(TogetherClient::FailureReason({}), "");
}

TEST(TogetherClient, ErrorsCarryTheErrorDataMessageWithTheKeyRedacted) {
  Fixture f;
  f.transport->Push(Reply(
      401, ErrorBody(absl::StrCat("Invalid API key provided: ", kKey), "invalid_request_error",
                     "invalid_api_key")));
  absl::StatusOr<Json> job = f.client->GetJob("ft-1", f.sleeper());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(job.status().message(), HasSubstr("Invalid API key provided"));
  EXPECT_THAT(job.status().message(), Not(HasSubstr(kKey)));
  EXPECT_EQ(f.transport->requests().size(), 1u);  // 401 is final

  f.transport->Push(Reply(404, ErrorBody("fine-tune job not found", "invalid_request_error")));
  job = f.client->GetJob("ft-404", f.sleeper());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound);
}

TEST(TogetherClient, ChatCompletionPostsTheRequest) {
  Fixture f;
  f.transport->Push(Reply(200, R"({"id":"c1","object":"chat.completion","created":1,
      "model":"me/m","choices":[{"index":0,"message":{"role":"assistant","content":"Paris"},
      "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,
      "total_tokens":6}})"));
  Json request = {{"model", "me/m"},
                  {"messages", Json::array({{{"role", "user"}, {"content", "Capital?"}}})},
                  {"max_tokens", 100},
                  {"temperature", 0}};
  absl::StatusOr<Json> reply = f.client->ChatCompletion(request, 50, f.sleeper());
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ((*reply)["choices"][0]["message"]["content"], "Paris");
  const HttpRequest sent = f.transport->requests().at(0);
  EXPECT_EQ(sent.url, "http://fake/v1/chat/completions");
  EXPECT_EQ(Json::parse(sent.body), request);
}

}  // namespace
}  // namespace ftb::providers
