#include "workers/vertex_backend.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "datasets/dataset.h"
#include "providers/rest_client.h"
#include "workers/provider_task.h"

namespace ftb::workers {
namespace {

namespace fs = std::filesystem;
using providers::Json;

constexpr char kName[] = "vertex";
constexpr char kTagLabel[] = "ftb-tag";

struct Options {
  std::string project;
  std::string location = "us-central1";
  std::string training_data_uri;
  std::string validation_data_uri;
  int adapter_size = 0;  // 0: Vertex's default
  int max_output_tokens = 64;
  std::string system_prompt;
  std::string base_url;
  std::string access_token_env = "VERTEX_ACCESS_TOKEN";
  std::string token_command;
  double poll_seconds = 30;
  double max_poll_seconds = 300;
  // A job in JOB_STATE_PAUSED (aiplatform v1 JobState) this long fails the
  // task instead of being polled forever.
  double paused_timeout_seconds = 86400;
  double requests_per_minute = 0;
  double tokens_per_minute = 0;
  int http_max_attempts = 8;
  double http_backoff_ms = 1000;
  std::string artifact_dir;
};

absl::StatusOr<Options> ParseOptions(const google::protobuf::Struct& s) {
  Options o;
  for (const auto& [name, v] : s.fields()) {
    auto str = [&](std::string* out) { return OptionString(kName, name, v, out); };
    auto num = [&](double* out, double lo, double hi) {
      return OptionNumber(kName, name, v, lo, hi, out);
    };
    double d = 0;
    if (name == "project") {
      FTB_RETURN_IF_ERROR(str(&o.project));
    } else if (name == "location") {
      FTB_RETURN_IF_ERROR(str(&o.location));
    } else if (name == "training_data_uri") {
      FTB_RETURN_IF_ERROR(str(&o.training_data_uri));
    } else if (name == "validation_data_uri") {
      FTB_RETURN_IF_ERROR(str(&o.validation_data_uri));
    } else if (name == "adapter_size") {
      FTB_RETURN_IF_ERROR(num(&d, 1, 32));
      o.adapter_size = static_cast<int>(d);
      if (o.adapter_size != d ||
          (o.adapter_size != 1 && o.adapter_size != 4 && o.adapter_size != 8 &&
           o.adapter_size != 16 && o.adapter_size != 32)) {
        return absl::InvalidArgumentError(
            "vertex: model.options.adapter_size: expected 1, 4, 8, 16 or 32");
      }
    } else if (name == "max_output_tokens") {
      FTB_RETURN_IF_ERROR(num(&d, 1, 8192));
      o.max_output_tokens = static_cast<int>(d);
    } else if (name == "system_prompt") {
      FTB_RETURN_IF_ERROR(str(&o.system_prompt));
    } else if (name == "base_url") {
      FTB_RETURN_IF_ERROR(OptionUrl(kName, name, v, &o.base_url));
    } else if (name == "access_token_env") {
      FTB_RETURN_IF_ERROR(str(&o.access_token_env));
    } else if (name == "token_command") {
      FTB_RETURN_IF_ERROR(str(&o.token_command));
    } else if (name == "poll_seconds") {
      FTB_RETURN_IF_ERROR(num(&o.poll_seconds, 0.001, 3600));
    } else if (name == "max_poll_seconds") {
      FTB_RETURN_IF_ERROR(num(&o.max_poll_seconds, 0.001, 3600));
    } else if (name == "paused_timeout_seconds") {
      FTB_RETURN_IF_ERROR(num(&o.paused_timeout_seconds, 0.001, 30 * 86400));
    } else if (name == "requests_per_minute") {
      FTB_RETURN_IF_ERROR(num(&o.requests_per_minute, 0, 1e9));
    } else if (name == "tokens_per_minute") {
      FTB_RETURN_IF_ERROR(num(&o.tokens_per_minute, 0, 1e12));
    } else if (name == "http_max_attempts") {
      FTB_RETURN_IF_ERROR(num(&d, 1, 20));
      o.http_max_attempts = static_cast<int>(d);
    } else if (name == "http_backoff_ms") {
      FTB_RETURN_IF_ERROR(num(&o.http_backoff_ms, 1, 600000));
    } else if (name == "artifact_dir") {
      FTB_RETURN_IF_ERROR(str(&o.artifact_dir));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "vertex: unknown model option \"", name,
          "\"; known: access_token_env, adapter_size, artifact_dir, base_url, http_backoff_ms, "
          "http_max_attempts, location, max_output_tokens, max_poll_seconds, "
          "paused_timeout_seconds, poll_seconds, project, requests_per_minute, system_prompt, token_command, tokens_per_minute, "
          "training_data_uri, validation_data_uri"));
    }
  }
  if (o.project.empty()) {
    return absl::InvalidArgumentError(
        "vertex: model.options.project: expected the Google Cloud project id (required)");
  }
  if (o.location.empty()) {
    return absl::InvalidArgumentError("vertex: model.options.location: expected a region");
  }
  if (o.training_data_uri.empty()) {
    return absl::InvalidArgumentError(
        "vertex: model.options.training_data_uri: expected the gs:// URI of the training JSONL "
        "(required; write it with `ftb datasets export NAME --format vertex` and copy it to "
        "Cloud Storage)");
  }
  o.max_poll_seconds = std::max(o.max_poll_seconds, o.poll_seconds);
  return o;
}

const char* AdapterSizeEnum(int size) {
  switch (size) {
    case 1:
      return "ADAPTER_SIZE_ONE";
    case 4:
      return "ADAPTER_SIZE_FOUR";
    case 8:
      return "ADAPTER_SIZE_EIGHT";
    case 16:
      return "ADAPTER_SIZE_SIXTEEN";
    default:
      return "ADAPTER_SIZE_THIRTY_TWO";
  }
}

// Maps client errors to what the runtime should report.
absl::Status Surface(const absl::Status& s) {
  if (providers::IsInsufficientQuota(s)) return PauseCampaignError(std::string(s.message()));
  return s;
}

bool Terminal(const std::string& state) {
  return state == "JOB_STATE_SUCCEEDED" || state == "JOB_STATE_FAILED" ||
         state == "JOB_STATE_CANCELLED" || state == "JOB_STATE_EXPIRED";
}

// A job that can still give (or has given) a tuned model.
bool Adoptable(const std::string& state) {
  return !state.empty() && state != "JOB_STATE_FAILED" && state != "JOB_STATE_CANCELLED" &&
         state != "JOB_STATE_EXPIRED";
}

// One tuning job: one epoch count.
struct JobRun {
  uint32_t epochs = 0;
  std::string tag;
  std::string name;  // projects/P/locations/R/tuningJobs/ID
  Json job;
  // When this attempt first saw the job JOB_STATE_PAUSED; InfiniteFuture
  // when not.
  PauseWatch pause;
};

// State of one Run().
class Runner {
 public:
  Runner(const v1::TaskAssignment& task, TaskContext& ctx, providers::VertexClient& client,
         const Options& options, std::string tag, std::string training_uri)
      : task_(task),
        work_(task.tune()),
        ctx_(ctx),
        client_(client),
        options_(options),
        tag_(std::move(tag)),
        training_uri_(std::move(training_uri)),
        sleep_([&ctx](absl::Duration d) { return ctx.SleepFor(d); }) {}

  absl::StatusOr<v1::TaskResult> Run(const v1::Dataset& dataset, const std::string& cache_path);

 private:
  absl::Status EnsureJob(JobRun& run);
  // Adopts (and records) a live job labelled run.tag; false when none.
  absl::StatusOr<bool> AdoptJobByTag(JobRun& run);
  absl::Status WaitForJobs(std::vector<JobRun>& runs);
  absl::Status Cancelled(std::vector<JobRun>& runs);
  absl::StatusOr<AnswerCache::Entry> Ask(const std::string& endpoint, const v1::QaItem& q);

  const v1::TaskAssignment& task_;
  const v1::TuneWork& work_;
  TaskContext& ctx_;
  providers::VertexClient& client_;
  const Options& options_;
  const std::string tag_;
  const std::string training_uri_;
  const providers::Sleeper sleep_;
};

absl::Status Runner::EnsureJob(JobRun& run) {
  if (std::string name = RecordedProviderId(task_, "job", run.tag); !name.empty()) {
    absl::StatusOr<Json> job = client_.GetTuningJob(name, sleep_);
    if (job.ok() && Adoptable(JsonString(*job, "state"))) {
      run.name = name;
      run.job = *std::move(job);
      ctx_.Log(absl::StrCat("vertex: adopted tuning job ", name, " (",
                            JsonString(run.job, "state"), ", recorded by an earlier attempt)"));
      return absl::OkStatus();
    }
    if (!job.ok() && job.status().code() != absl::StatusCode::kNotFound) {
      return Surface(job.status());
    }
  }
  // A crash between the create call and recording its name, or a lost
  // coordinator record: look for the job by its label.
  FTB_ASSIGN_OR_RETURN(bool adopted, AdoptJobByTag(run));
  if (adopted) return absl::OkStatus();
  Json hyper = {{"epochCount", run.epochs}};
  // `auto` (0) sends nothing: Vertex then picks its own default.
  if (work_.learning_rate_multiplier() != kAutoLearningRateMultiplier) {
    hyper["learningRateMultiplier"] = work_.learning_rate_multiplier();
  }
  if (options_.adapter_size > 0) hyper["adapterSize"] = AdapterSizeEnum(options_.adapter_size);
  Json spec = {{"trainingDatasetUri", training_uri_}, {"hyperParameters", hyper}};
  if (!options_.validation_data_uri.empty()) {
    spec["validationDatasetUri"] = options_.validation_data_uri;
  }
  Json request = {{"baseModel", work_.model().name()},
                  {"supervisedTuningSpec", spec},
                  {"tunedModelDisplayName", run.tag},
                  {"labels", {{kTagLabel, run.tag}}}};
  FTB_RETURN_IF_ERROR(RecordProviderIntent(ctx_, kName, "job", run.tag, ""));
  absl::StatusOr<Json> job;
  for (int attempt = 1;; ++attempt) {
    job = client_.CreateTuningJob(request, sleep_);
    // Never pay twice: after an ambiguous failure (timeout, dropped reply,
    // 5xx) the job may exist; the client did not repeat the POST
    // (providers/retry.h), and neither do we before listing by the label.
    if (job.ok() || !providers::IsMaybeCreated(job.status()) ||
        attempt >= options_.http_max_attempts) {
      break;
    }
    ctx_.Log(absl::StrCat("vertex: creating the tuning job for tag ", run.tag,
                          " failed ambiguously (", job.status().message(),
                          "); looking it up by label before creating again"));
    if (!ctx_.SleepFor(absl::Milliseconds(options_.http_backoff_ms) * std::min(attempt, 8))) {
      return absl::CancelledError("vertex: cancelled");
    }
    FTB_ASSIGN_OR_RETURN(adopted, AdoptJobByTag(run));
    if (adopted) return absl::OkStatus();
  }
  if (!job.ok()) return Surface(job.status());
  run.name = JsonString(*job, "name");
  if (run.name.empty()) {
    return absl::InternalError("vertex: POST .../tuningJobs: reply has no name");
  }
  run.job = *std::move(job);
  FTB_RETURN_IF_ERROR(RecordProviderIntent(ctx_, kName, "job", run.tag, run.name));
  ctx_.Log(absl::StrCat("vertex: created tuning job ", run.name, " (", run.epochs, " epochs)"));
  return absl::OkStatus();
}

absl::StatusOr<bool> Runner::AdoptJobByTag(JobRun& run) {
  absl::StatusOr<std::vector<Json>> jobs =
      client_.ListTuningJobs(absl::StrCat("labels.", kTagLabel, "=", run.tag), sleep_);
  if (!jobs.ok()) return Surface(jobs.status());
  for (const Json& j : *jobs) {
    const std::string state = JsonString(j, "state");
    auto labels = j.find("labels");
    // Trust but verify: the filter is the provider's, the tag is ours.
    if (labels == j.end() || !labels->is_object() || JsonString(*labels, kTagLabel) != run.tag ||
        !Adoptable(state)) {
      continue;
    }
    run.name = JsonString(j, "name");
    run.job = j;
    ctx_.Log(absl::StrCat("vertex: adopted tuning job ", run.name, " (", state,
                          ") found by tag ", run.tag));
    FTB_RETURN_IF_ERROR(RecordProviderIntent(ctx_, kName, "job", run.tag, run.name));
    return true;
  }
  return false;
}

absl::Status Runner::Cancelled(std::vector<JobRun>& runs) {
  if (CampaignCancelled(ctx_, tag_)) {
    for (JobRun& run : runs) {
      if (run.name.empty() || Terminal(JsonString(run.job, "state"))) continue;
      // The task is cancelled: one quick try, no retry loop.
      absl::Status c = client_.CancelTuningJob(run.name, [](absl::Duration) { return false; });
      ctx_.Log(absl::StrCat("vertex: campaign cancelled; cancel tuning job ", run.name, ": ",
                            c.ok() ? "ok" : std::string(c.message())));
    }
  } else {
    ctx_.Log("vertex: task cancelled; tuning jobs left running for the next attempt to adopt");
  }
  return absl::CancelledError("vertex: cancelled");
}

absl::Status Runner::WaitForJobs(std::vector<JobRun>& runs) {
  absl::Duration interval = absl::Seconds(options_.poll_seconds);
  const absl::Duration max_interval = absl::Seconds(options_.max_poll_seconds);
  std::string last_note;
  while (true) {
    bool all_done = true;
    double fraction = 0;
    int running = 0, succeeded = 0;
    for (JobRun& run : runs) {
      std::string state = JsonString(run.job, "state");
      if (!Terminal(state)) {
        absl::StatusOr<Json> job = client_.GetTuningJob(run.name, sleep_);
        if (!job.ok()) {
          if (ctx_.cancelled()) return Cancelled(runs);
          return Surface(job.status());
        }
        run.job = *std::move(job);
        state = JsonString(run.job, "state");
      }
      FTB_RETURN_IF_ERROR(run.pause.Observe(
          ctx_, state == "JOB_STATE_PAUSED", absl::Seconds(options_.paused_timeout_seconds),
          absl::StrCat("vertex: tuning job ", run.name), "JOB_STATE_PAUSED",
          "resume or cancel it in the Vertex AI console"));
      if (!Terminal(state)) all_done = false;
      running += state == "JOB_STATE_RUNNING";
      succeeded += state == "JOB_STATE_SUCCEEDED";
      fraction += (state == "JOB_STATE_SUCCEEDED"  ? 1
                   : state == "JOB_STATE_RUNNING" ? 0.3
                                                  : 0.02) /
                  static_cast<double>(runs.size());
      if (state == "JOB_STATE_FAILED" || state == "JOB_STATE_EXPIRED") {
        const Json& err = run.job.contains("error") ? run.job["error"] : Json();
        const int64_t code = err.is_object() && err.contains("code") && err["code"].is_number()
                                 ? err["code"].get<int64_t>()
                                 : 0;
        std::string what = absl::StrCat("vertex: tuning job ", run.name, " ",
                                        state == "JOB_STATE_FAILED" ? "failed" : "expired",
                                        code != 0 ? absl::StrCat(" (code ", code, ")") : "", ": ",
                                        err.is_object() ? JsonString(err, "message") : "");
        // google.rpc.Code 3 INVALID_ARGUMENT / 9 FAILED_PRECONDITION: the
        // data or the request; trying again cannot help.
        if (code == 3 || code == 9) return absl::InvalidArgumentError(what);
        return absl::UnavailableError(what);
      }
      if (state == "JOB_STATE_CANCELLED") {
        return absl::AbortedError(
            absl::StrCat("vertex: tuning job ", run.name, " was cancelled at the provider"));
      }
    }
    const std::string note = absl::StrCat("tuning: ", succeeded, "/", runs.size(), " done, ",
                                          running, " running");
    ctx_.SetProgress(0.8 * fraction, note);
    if (note != last_note) {
      ctx_.Log(absl::StrCat("vertex: ", note));
      last_note = note;
    }
    if (all_done) return absl::OkStatus();
    if (!ctx_.SleepFor(interval)) return Cancelled(runs);
    interval = std::min(max_interval, interval * 1.5);
  }
}

absl::StatusOr<AnswerCache::Entry> Runner::Ask(const std::string& endpoint, const v1::QaItem& q) {
  Json request = {
      {"contents", Json::array({{{"role", "user"}, {"parts", Json::array({{{"text", q.prompt()}}})}}})},
      {"generationConfig",
       {{"temperature", 0},
        {"maxOutputTokens", options_.max_output_tokens},
        {"seed", static_cast<int64_t>(work_.seed() % 2147483648ULL)}}}};
  if (!options_.system_prompt.empty()) {
    request["systemInstruction"] = {{"parts", Json::array({{{"text", options_.system_prompt}}})}};
  }
  const double estimate =
      static_cast<double>(q.prompt().size() / 4 + options_.max_output_tokens + 10);
  absl::StatusOr<Json> reply = client_.GenerateContent(endpoint, request, estimate, sleep_);
  if (!reply.ok()) return Surface(reply.status());
  AnswerCache::Entry entry;
  // No candidate (e.g. a blocked prompt: promptFeedback.blockReason) is an
  // empty answer, graded like any other.
  auto candidates = reply->find("candidates");
  if (candidates != reply->end() && candidates->is_array() && !candidates->empty()) {
    const Json& content = (*candidates)[0].value("content", Json::object());
    if (content.contains("parts") && content["parts"].is_array()) {
      for (const Json& part : content["parts"]) entry.answer += JsonString(part, "text");
    }
  }
  auto usage = reply->find("usageMetadata");
  if (usage != reply->end() && usage->is_object()) {
    entry.prompt_tokens = JsonUint(*usage, "promptTokenCount");
    entry.completion_tokens = JsonUint(*usage, "candidatesTokenCount");
  }
  return entry;
}

absl::StatusOr<v1::TaskResult> Runner::Run(const v1::Dataset& dataset,
                                           const std::string& cache_path) {
  std::vector<JobRun> runs;
  std::map<uint32_t, std::string> endpoint_for_epoch;
  for (uint32_t e : work_.epochs()) {
    if (e == 0) {
      // The untuned base model, through its publisher resource.
      endpoint_for_epoch[0] =
          absl::StrCat("projects/", options_.project, "/locations/", options_.location,
                       "/publishers/google/models/", work_.model().name());
      continue;
    }
    JobRun& run = runs.emplace_back();
    run.epochs = e;
    run.tag = absl::StrCat(tag_, "-e", e);
  }
  for (JobRun& run : runs) {
    if (ctx_.cancelled()) return Cancelled(runs);
    FTB_RETURN_IF_ERROR(EnsureJob(run));
  }
  if (runs.empty()) {
    ctx_.Log("vertex: epochs 0 only: the base model answers; no tuning job");
  } else {
    FTB_RETURN_IF_ERROR(WaitForJobs(runs));
  }

  uint64_t trained_tokens = 0;
  for (const JobRun& run : runs) {
    const Json tuned = run.job.value("tunedModel", Json::object());
    const std::string endpoint = tuned.is_object() ? JsonString(tuned, "endpoint") : "";
    if (endpoint.empty()) {
      return absl::InternalError(
          absl::StrCat("vertex: tuning job ", run.name, " succeeded without tunedModel.endpoint"));
    }
    endpoint_for_epoch[run.epochs] = endpoint;
    const Json stats = run.job.value("tuningDataStats", Json::object())
                           .value("supervisedTuningDataStats", Json::object());
    const uint64_t per_epoch = stats.is_object() ? JsonUint(stats, "totalBillableTokenCount") : 0;
    if (per_epoch == 0) {
      ctx_.Log(absl::StrCat("vertex: tuning job ", run.name,
                            " reports no totalBillableTokenCount; its training cost counts as 0"));
    }
    trained_tokens += per_epoch * run.epochs;
  }

  AnswerCache cache(cache_path);
  const AskFn ask = [this](const std::string& endpoint, const v1::QaItem& q) {
    return Ask(endpoint, q);
  };
  return AnswerAndPrice(kName, work_, dataset, endpoint_for_epoch, cache, ask, trained_tokens,
                        ctx_, "ftb.workers.vertex.v1");
}

}  // namespace

std::string VertexTaskTag(const std::string& campaign_id, const std::string& task_id) {
  return ProviderTaskTag("ftb.vertex.tag.v1", campaign_id, task_id);
}

absl::Status ValidateGcsUri(const std::string& uri, const std::string& field) {
  const size_t slash = uri.find('/', 5);
  if (uri.rfind("gs://", 0) != 0 || slash == std::string::npos || slash == 5 ||
      slash + 1 >= uri.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vertex: model.options.", field, ": expected gs://BUCKET/OBJECT, got \"", uri,
        "\" (upload the JSONL of `ftb datasets export NAME --format vertex` to Cloud Storage "
        "first)"));
  }
  return absl::OkStatus();
}

VertexBackend::VertexBackend(std::string artifact_dir) : artifact_dir_(std::move(artifact_dir)) {}

std::unique_ptr<VertexBackend> VertexBackend::Create(const BackendOptions& options) {
  return std::make_unique<VertexBackend>(ProviderArtifactDir(options));
}

providers::VertexClient* VertexBackend::ClientFor(const providers::VertexClientOptions& options) {
  // Keyed by a hash of the token, not the token itself.
  const std::string id = absl::StrCat(
      options.base_url, "\n", options.project, "\n", options.location, "\n",
      Sha256Hex(options.access_token), "\n", options.token_command, "\n",
      options.rest.retry.max_attempts, "\n", absl::FormatDuration(options.rest.retry.initial_backoff));
  absl::MutexLock lock(&mu_);
  std::unique_ptr<providers::VertexClient>& client = clients_[id];
  if (!client) {
    client = std::make_unique<providers::VertexClient>(options, providers::NewCurlTransport());
  }
  return client.get();
}

absl::StatusOr<v1::TaskResult> VertexBackend::Run(const v1::TaskAssignment& task,
                                                  TaskContext& ctx) {
  FTB_RETURN_IF_ERROR(ValidateProviderTuneTask(task, kName, 100));
  const v1::TuneWork& work = task.tune();
  FTB_ASSIGN_OR_RETURN(const Options options, ParseOptions(work.model().options()));
  const std::string training_uri =
      absl::StrReplaceAll(options.training_data_uri, {{"{dataset}", work.dataset().name()}});
  FTB_RETURN_IF_ERROR(ValidateGcsUri(training_uri, "training_data_uri"));
  if (!options.validation_data_uri.empty()) {
    FTB_RETURN_IF_ERROR(ValidateGcsUri(options.validation_data_uri, "validation_data_uri"));
  }

  providers::VertexClientOptions client_options;
  client_options.base_url = options.base_url;
  client_options.project = options.project;
  client_options.location = options.location;
  client_options.token_command = options.token_command;
  if (options.token_command.empty()) {
    const char* v = std::getenv(options.access_token_env.c_str());
    std::string token = v != nullptr ? std::string(absl::StripAsciiWhitespace(v)) : "";
    if (token.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "vertex: environment variable ", options.access_token_env,
          " (model.options.access_token_env) is not set on this worker: it must hold an access "
          "token (gcloud auth print-access-token), or set model.options.token_command"));
    }
    client_options.access_token = token;
  }
  client_options.rest.provider = kName;
  client_options.rest.retry.max_attempts = options.http_max_attempts;
  client_options.rest.retry.initial_backoff =
      absl::Microseconds(static_cast<int64_t>(options.http_backoff_ms * 1000));
  client_options.rest.requests_per_minute = options.requests_per_minute;
  client_options.rest.tokens_per_minute = options.tokens_per_minute;
  providers::VertexClient* client = ClientFor(client_options);
  // The coordinator's share of the campaign's limits for this backend caps
  // the client's buckets (shared by this worker's slots).
  client->limiter().SetLimits(
      CappedLimit(options.requests_per_minute, task.requests_per_minute()),
      CappedLimit(options.tokens_per_minute, task.tokens_per_minute()));

  FTB_ASSIGN_OR_RETURN(const v1::Dataset dataset, datasets::LoadDataset(work.dataset()));
  if (ctx.cancelled()) return absl::CancelledError("vertex: cancelled");
  const std::string tag = VertexTaskTag(task.campaign_id(), task.task_id());
  const std::string dir = options.artifact_dir.empty() ? artifact_dir_ : options.artifact_dir;
  const std::string cache_path =
      dir == "off" ? "" : (fs::path(dir) / "vertex" / tag / "answers.jsonl").string();
  ctx.Log(absl::StrCat("vertex: task tag ", tag, ", project ", options.project, ", location ",
                       options.location, ", training data ", training_uri));
  Runner runner(task, ctx, *client, options, tag, training_uri);
  absl::StatusOr<v1::TaskResult> result = runner.Run(dataset, cache_path);
  if (!result.ok()) {
    // Belt and braces: nothing the provider echoed may carry the token out.
    return providers::RedactStatus(result.status(), client_options.access_token);
  }
  return result;
}

absl::Status RegisterVertexBackend(BackendRegistry& registry) {
  return registry.Register(
      VertexBackend::kName,
      [](const BackendOptions& options) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
        return VertexBackend::Create(options);
      },
      [](const google::protobuf::Struct& s) { return ParseOptions(s).status(); });
}

}  // namespace ftb::workers
