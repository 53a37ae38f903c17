#include "workers/openai_backend.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "cost/price_table.h"
#include "datasets/dataset.h"
#include "datasets/export.h"
#include "providers/rest_client.h"
#include "providers/retry.h"
#include "workers/provider_task.h"

namespace ftb::workers {
namespace {

namespace fs = std::filesystem;
using providers::Json;

constexpr char kName[] = "openai";
constexpr char kDefaultBaseUrl[] = "https://api.openai.com/v1";
constexpr char kTagKey[] = "ftb_tag";

struct Options {
  std::string base_url = kDefaultBaseUrl;
  std::string api_key_env = "OPENAI_API_KEY";
  std::string api_key_file;
  int max_tokens = 64;
  std::string system_prompt;
  bool use_checkpoints = true;
  double poll_seconds = 10;
  double max_poll_seconds = 60;
  // A job paused this long (status "paused": OpenAI's POST
  // /fine_tuning/jobs/{id}/pause, or the provider's own doing) fails the
  // task instead of being polled forever.
  double paused_timeout_seconds = 86400;
  double requests_per_minute = 0;
  double tokens_per_minute = 0;
  int http_max_attempts = 8;
  double http_backoff_ms = 500;
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
    if (name == "base_url") {
      FTB_RETURN_IF_ERROR(OptionUrl(kName, name, v, &o.base_url));
    } else if (name == "api_key_env") {
      FTB_RETURN_IF_ERROR(str(&o.api_key_env));
    } else if (name == "api_key_file") {
      FTB_RETURN_IF_ERROR(str(&o.api_key_file));
    } else if (name == "max_tokens") {
      FTB_RETURN_IF_ERROR(num(&d, 1, 4096));
      o.max_tokens = static_cast<int>(d);
    } else if (name == "system_prompt") {
      FTB_RETURN_IF_ERROR(str(&o.system_prompt));
    } else if (name == "use_checkpoints") {
      FTB_RETURN_IF_ERROR(OptionBool(kName, name, v, &o.use_checkpoints));
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
          "openai: unknown model option \"", name,
          "\"; known: api_key_env, api_key_file, artifact_dir, base_url, http_backoff_ms, "
          "http_max_attempts, max_poll_seconds, max_tokens, paused_timeout_seconds, poll_seconds, "
          "requests_per_minute, system_prompt, tokens_per_minute, use_checkpoints"));
    }
  }
  o.max_poll_seconds = std::max(o.max_poll_seconds, o.poll_seconds);
  return o;
}

absl::StatusOr<std::string> ResolveApiKey(const Options& o) {
  std::string key;
  if (!o.api_key_file.empty()) {
    std::ifstream in(o.api_key_file);
    if (!in) {
      return absl::FailedPreconditionError(absl::StrCat(
          "openai: model.options.api_key_file: cannot read ", o.api_key_file));
    }
    std::getline(in, key);
  } else {
    const char* v = std::getenv(o.api_key_env.c_str());
    if (v == nullptr || *v == '\0') {
      return absl::FailedPreconditionError(
          absl::StrCat("openai: environment variable ", o.api_key_env,
                       " (model.options.api_key_env) is not set on this worker: it must hold "
                       "the API key"));
    }
    key = v;
  }
  key = std::string(absl::StripAsciiWhitespace(key));
  if (key.empty()) return absl::FailedPreconditionError("openai: the API key is empty");
  return key;
}

// Maps client errors to what the runtime should report.
absl::Status Surface(const absl::Status& s) {
  if (providers::IsInsufficientQuota(s)) return PauseCampaignError(std::string(s.message()));
  return s;
}

bool Terminal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

// One provider job and the epochs it serves.
struct JobRun {
  uint32_t n_epochs = 0;
  std::vector<uint32_t> serves;
  std::string tag;
  std::string id;
  Json job;
  std::map<uint32_t, std::string> model_for_epoch;
  // When this attempt first saw the job paused; InfiniteFuture when not.
  PauseWatch pause;
};

// State of one Run().
class Runner {
 public:
  Runner(const v1::TaskAssignment& task, TaskContext& ctx, providers::OpenAiClient& client,
         const Options& options, std::string tag)
      : task_(task),
        work_(task.tune()),
        ctx_(ctx),
        client_(client),
        options_(options),
        tag_(std::move(tag)),
        sleep_([&ctx](absl::Duration d) { return ctx.SleepFor(d); }) {}

  absl::StatusOr<v1::TaskResult> Run(const v1::Dataset& dataset, const std::string& cache_path);

 private:
  absl::Status Record(const std::string& kind, const std::string& tag, const std::string& id);
  // The provider id an earlier attempt recorded for (kind, tag), or "".
  std::string RecordedId(const std::string& kind, const std::string& tag) const;
  absl::StatusOr<std::string> EnsureFile(const std::string& jsonl);
  // The uploaded training file named `filename` of `bytes` bytes, recorded
  // when found; "" when there is none.
  absl::StatusOr<std::string> FindFile(const std::string& filename, size_t bytes);
  absl::Status EnsureJob(JobRun& run, const std::string& file_id);
  // Adopts (and records) a live job carrying run.tag; false when none.
  absl::StatusOr<bool> AdoptJobByTag(JobRun& run);
  // Before create attempt `attempt` + 1 after an ambiguous failure: waits.
  // False when cancelled.
  bool WaitBeforeLookup(int attempt);
  absl::Status WaitForJobs(std::vector<JobRun>& runs);
  absl::Status ResolveModels(JobRun& run);
  absl::Status Cancelled(std::vector<JobRun>& runs);
  // Uploads, trains and waits for the jobs serving `epochs` (all >= 1),
  // adding their models to `model_for_epoch`; returns the trained tokens.
  absl::StatusOr<uint64_t> Train(const v1::Dataset& dataset, const std::vector<uint32_t>& epochs,
                                 std::map<uint32_t, std::string>& model_for_epoch);
  absl::StatusOr<v1::TaskResult> Answer(const v1::Dataset& dataset, const std::string& cache_path,
                                        const std::map<uint32_t, std::string>& model_for_epoch,
                                        uint64_t trained_tokens);

  const v1::TaskAssignment& task_;
  const v1::TuneWork& work_;
  TaskContext& ctx_;
  providers::OpenAiClient& client_;
  const Options& options_;
  const std::string tag_;
  const providers::Sleeper sleep_;
};

absl::Status Runner::Record(const std::string& kind, const std::string& tag,
                            const std::string& id) {
  return RecordProviderIntent(ctx_, kName, kind, tag, id);
}

std::string Runner::RecordedId(const std::string& kind, const std::string& tag) const {
  return RecordedProviderId(task_, kind, tag);
}

absl::StatusOr<std::string> Runner::EnsureFile(const std::string& jsonl) {
  const std::string filename = absl::StrCat(tag_, ".jsonl");
  if (std::string id = RecordedId("file", tag_); !id.empty()) {
    absl::StatusOr<Json> file = client_.GetFile(id, sleep_);
    if (file.ok()) {
      ctx_.Log(absl::StrCat("openai: adopted training file ", id, " (recorded by an earlier attempt)"));
      return id;
    }
    if (file.status().code() != absl::StatusCode::kNotFound) return Surface(file.status());
    ctx_.Log(absl::StrCat("openai: recorded training file ", id, " is gone; uploading again"));
  } else {
    // Lost between intent and reply, or no intents at all: look it up by name.
    FTB_ASSIGN_OR_RETURN(std::string found, FindFile(filename, jsonl.size()));
    if (!found.empty()) return found;
  }
  FTB_RETURN_IF_ERROR(Record("file", tag_, ""));
  absl::StatusOr<Json> file;
  for (int attempt = 1;; ++attempt) {
    file = client_.UploadFile(filename, jsonl, sleep_);
    // An ambiguous failure (timeout, dropped reply, 5xx): the upload may have
    // been stored, so look for it by name before uploading again.
    if (file.ok() || !providers::IsMaybeCreated(file.status()) ||
        attempt >= options_.http_max_attempts) {
      break;
    }
    ctx_.Log(absl::StrCat("openai: upload of ", filename, " failed ambiguously (",
                          file.status().message(), "); looking it up before uploading again"));
    if (!WaitBeforeLookup(attempt)) return absl::CancelledError("openai: cancelled");
    FTB_ASSIGN_OR_RETURN(std::string found, FindFile(filename, jsonl.size()));
    if (!found.empty()) return found;
  }
  if (!file.ok()) return Surface(file.status());
  std::string id = JsonString(*file, "id");
  if (id.empty()) return absl::InternalError("openai: POST /files: reply has no id");
  FTB_RETURN_IF_ERROR(Record("file", tag_, id));
  ctx_.Log(absl::StrCat("openai: uploaded training file ", id, " (", jsonl.size(), " bytes)"));
  return id;
}

absl::StatusOr<std::string> Runner::FindFile(const std::string& filename, size_t bytes) {
  absl::StatusOr<std::vector<Json>> files = client_.ListFiles("fine-tune", sleep_);
  if (!files.ok()) return Surface(files.status());
  for (const Json& f : *files) {
    if (JsonString(f, "filename") == filename && JsonString(f, "status") != "error" &&
        JsonUint(f, "bytes") == bytes) {
      std::string found = JsonString(f, "id");
      ctx_.Log(absl::StrCat("openai: adopted training file ", found, " found by name ", filename));
      FTB_RETURN_IF_ERROR(Record("file", tag_, found));
      return found;
    }
  }
  return std::string();
}

bool Runner::WaitBeforeLookup(int attempt) {
  return ctx_.SleepFor(absl::Milliseconds(options_.http_backoff_ms) * std::min(attempt, 8));
}

absl::StatusOr<bool> Runner::AdoptJobByTag(JobRun& run) {
  absl::StatusOr<std::vector<Json>> jobs = client_.ListJobsByMetadata(kTagKey, run.tag, sleep_);
  if (!jobs.ok()) return Surface(jobs.status());
  for (const Json& j : *jobs) {
    const std::string status = JsonString(j, "status");
    // Trust but verify: the filter is the provider's, the tag is ours.
    auto metadata = j.find("metadata");
    if (metadata == j.end() || !metadata->is_object() ||
        JsonString(*metadata, kTagKey) != run.tag) {
      continue;
    }
    if (status == "failed" || status == "cancelled") continue;
    run.id = JsonString(j, "id");
    run.job = j;
    ctx_.Log(absl::StrCat("openai: adopted job ", run.id, " (", status, ") found by tag ", run.tag));
    FTB_RETURN_IF_ERROR(Record("job", run.tag, run.id));
    return true;
  }
  return false;
}

absl::Status Runner::EnsureJob(JobRun& run, const std::string& file_id) {
  if (std::string id = RecordedId("job", run.tag); !id.empty()) {
    absl::StatusOr<Json> job = client_.GetJob(id, sleep_);
    if (job.ok() && JsonString(*job, "status") != "failed" &&
        JsonString(*job, "status") != "cancelled") {
      run.id = id;
      run.job = *std::move(job);
      ctx_.Log(absl::StrCat("openai: adopted job ", id, " (", JsonString(run.job, "status"),
                            ", recorded by an earlier attempt)"));
      return absl::OkStatus();
    }
    if (!job.ok() && job.status().code() != absl::StatusCode::kNotFound) {
      return Surface(job.status());
    }
  }
  // Look for a live job carrying the tag (a crash between the create call
  // and recording its id, or a lost coordinator record).
  FTB_ASSIGN_OR_RETURN(bool adopted, AdoptJobByTag(run));
  if (adopted) return absl::OkStatus();
  Json request = {
      {"model", work_.model().name()},
      {"training_file", file_id},
      {"suffix", run.tag},
      {"seed", static_cast<int64_t>(work_.seed() % 2147483648ULL)},
      {"metadata", {{kTagKey, run.tag}, {"ftb_task", task_.task_id()},
                    {"ftb_campaign", task_.campaign_id()}}},
      {"method", {{"type", "supervised"}, {"supervised", {{"hyperparameters", Json::object()}}}}}};
  // `auto` (0) sends nothing: OpenAI then picks its own default.
  Json& hyper = request["method"]["supervised"]["hyperparameters"];
  hyper["n_epochs"] = run.n_epochs;
  if (work_.batch_size() != kAutoBatchSize) hyper["batch_size"] = work_.batch_size();
  if (work_.learning_rate_multiplier() != kAutoLearningRateMultiplier) {
    hyper["learning_rate_multiplier"] = work_.learning_rate_multiplier();
  }
  FTB_RETURN_IF_ERROR(Record("job", run.tag, ""));
  absl::StatusOr<Json> job;
  for (int attempt = 1;; ++attempt) {
    job = client_.CreateJob(request, sleep_);
    // Never pay twice: after an ambiguous failure (timeout, dropped reply,
    // 5xx) the job may exist; the client did not repeat the POST
    // (providers/retry.h), and neither do we before listing by the tag.
    if (job.ok() || !providers::IsMaybeCreated(job.status()) ||
        attempt >= options_.http_max_attempts) {
      break;
    }
    ctx_.Log(absl::StrCat("openai: creating the job for tag ", run.tag, " failed ambiguously (",
                          job.status().message(), "); looking it up by tag before creating again"));
    if (!WaitBeforeLookup(attempt)) return absl::CancelledError("openai: cancelled");
    FTB_ASSIGN_OR_RETURN(bool adopted, AdoptJobByTag(run));
    if (adopted) return absl::OkStatus();
  }
  if (!job.ok()) return Surface(job.status());
  run.id = JsonString(*job, "id");
  if (run.id.empty()) return absl::InternalError("openai: POST /fine_tuning/jobs: reply has no id");
  run.job = *std::move(job);
  FTB_RETURN_IF_ERROR(Record("job", run.tag, run.id));
  ctx_.Log(absl::StrCat("openai: created job ", run.id, " (", run.n_epochs, " epochs, serves ",
                        run.serves.size(), " cell(s))"));
  return absl::OkStatus();
}

absl::Status Runner::Cancelled(std::vector<JobRun>& runs) {
  if (CampaignCancelled(ctx_, tag_)) {
    for (JobRun& run : runs) {
      if (run.id.empty() || Terminal(JsonString(run.job, "status"))) continue;
      // The task is cancelled: one quick try, no retry loop.
      absl::StatusOr<Json> c = client_.CancelJob(run.id, [](absl::Duration) { return false; });
      ctx_.Log(absl::StrCat("openai: campaign cancelled; cancel job ", run.id, ": ",
                            c.ok() ? "ok" : std::string(c.status().message())));
    }
  } else {
    ctx_.Log("openai: task cancelled; provider jobs left running for the next attempt to adopt");
  }
  return absl::CancelledError("openai: cancelled");
}

absl::Status Runner::WaitForJobs(std::vector<JobRun>& runs) {
  absl::Duration interval = absl::Seconds(options_.poll_seconds);
  const absl::Duration max_interval = absl::Seconds(options_.max_poll_seconds);
  std::string last_note;
  while (true) {
    bool all_done = true;
    double fraction = 0;
    std::string note;
    for (JobRun& run : runs) {
      std::string status = JsonString(run.job, "status");
      if (!Terminal(status)) {
        absl::StatusOr<Json> job = client_.GetJob(run.id, sleep_);
        if (!job.ok()) {
          if (ctx_.cancelled()) return Cancelled(runs);
          return Surface(job.status());
        }
        run.job = *std::move(job);
        status = JsonString(run.job, "status");
      }
      FTB_RETURN_IF_ERROR(run.pause.Observe(
          ctx_, status == "paused", absl::Seconds(options_.paused_timeout_seconds),
          absl::StrCat("openai: job ", run.id), "paused",
          absl::StrCat("resume it (POST /fine_tuning/jobs/", run.id,
                       "/resume) or cancel it at the provider")));
      double f = status == "succeeded" ? 1 : status == "running" ? 0.1 : 0.02;
      if (!Terminal(status)) {
        all_done = false;
        absl::StatusOr<std::vector<Json>> events = client_.RecentEvents(run.id, 5, sleep_);
        if (events.ok()) {
          for (const Json& e : *events) {  // newest first
            auto data = e.find("data");
            if (data != e.end() && data->is_object() && data->contains("step") &&
                data->contains("total_steps")) {
              double total = (*data)["total_steps"].get<double>();
              if (total > 0) f = std::max(f, 0.1 + 0.9 * (*data)["step"].get<double>() / total);
              break;
            }
          }
          if (!events->empty()) note = JsonString(events->front(), "message");
        }
      }
      fraction += f / static_cast<double>(runs.size());
      if (status == "failed") {
        const Json& err = run.job.contains("error") ? run.job["error"] : Json();
        std::string code = err.is_object() ? JsonString(err, "code") : "";
        std::string message = err.is_object() ? JsonString(err, "message") : "";
        std::string what = absl::StrCat("openai: job ", run.id, " failed", code.empty() ? "" : " (",
                                        code, code.empty() ? "" : ")", ": ", message);
        // A bad training file will fail again; anything else may not.
        if (code == "invalid_training_file" || code == "invalid_request_error") {
          return absl::InvalidArgumentError(what);
        }
        return absl::UnavailableError(what);
      }
      if (status == "cancelled") {
        return absl::AbortedError(absl::StrCat("openai: job ", run.id,
                                               " was cancelled at the provider"));
      }
    }
    ctx_.SetProgress(0.8 * fraction, note.empty() ? "training" : note);
    if (!note.empty() && note != last_note) {
      ctx_.Log(absl::StrCat("openai: ", note));
      last_note = note;
    }
    if (all_done) return absl::OkStatus();
    if (!ctx_.SleepFor(interval)) return Cancelled(runs);
    interval = std::min(max_interval, interval * 1.5);
  }
}

absl::Status Runner::ResolveModels(JobRun& run) {
  const std::string final_model = JsonString(run.job, "fine_tuned_model");
  if (final_model.empty()) {
    return absl::InternalError(absl::StrCat("openai: job ", run.id,
                                            " succeeded without a fine_tuned_model"));
  }
  run.model_for_epoch[run.n_epochs] = final_model;
  if (run.serves.size() == 1) return absl::OkStatus();
  absl::StatusOr<std::vector<Json>> ckpts = client_.ListCheckpoints(run.id, sleep_);
  if (!ckpts.ok()) return Surface(ckpts.status());
  std::vector<std::pair<uint64_t, std::string>> by_step;
  for (const Json& c : *ckpts) {
    by_step.emplace_back(JsonUint(c, "step_number"), JsonString(c, "fine_tuned_model_checkpoint"));
  }
  std::sort(by_step.begin(), by_step.end());
  // The last k checkpoints are epochs n-k+1 .. n.
  const size_t k = by_step.size();
  for (uint32_t e : run.serves) {
    if (e == run.n_epochs) continue;
    const uint32_t back = run.n_epochs - e;  // 1 or 2
    if (back >= k || by_step[k - 1 - back].second.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "openai: job ", run.id, " has no checkpoint for epoch ", e, " (", k,
          " checkpoints); set model.options.use_checkpoints: false"));
    }
    run.model_for_epoch[e] = by_step[k - 1 - back].second;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::TaskResult> Runner::Run(const v1::Dataset& dataset,
                                           const std::string& cache_path) {
  // Epochs 0 is the base model itself: nothing to train for it.
  std::vector<uint32_t> epochs;
  std::map<uint32_t, std::string> model_for_epoch;
  for (uint32_t e : work_.epochs()) {
    if (e == 0) {
      model_for_epoch[0] = work_.model().name();
    } else {
      epochs.push_back(e);
    }
  }
  uint64_t trained_tokens = 0;
  if (epochs.empty()) {
    ctx_.Log("openai: epochs 0 only: the base model answers; no training file, no job");
  } else {
    FTB_ASSIGN_OR_RETURN(trained_tokens, Train(dataset, epochs, model_for_epoch));
  }
  return Answer(dataset, cache_path, model_for_epoch, trained_tokens);
}

absl::StatusOr<uint64_t> Runner::Train(const v1::Dataset& dataset,
                                       const std::vector<uint32_t>& epochs,
                                       std::map<uint32_t, std::string>& model_for_epoch) {
  const std::string jsonl =
      datasets::ExportTrainingJsonl(dataset, datasets::ExportFormat::kOpenAiChat);
  FTB_ASSIGN_OR_RETURN(const std::string file_id, EnsureFile(jsonl));
  if (ctx_.cancelled()) return absl::CancelledError("openai: cancelled");

  std::vector<JobRun> runs;
  for (auto& [n, serves] : PlanOpenAiJobs(epochs, options_.use_checkpoints)) {
    JobRun& run = runs.emplace_back();
    run.n_epochs = n;
    run.serves = serves;
    run.tag = absl::StrCat(tag_, "-e", n);
  }
  for (JobRun& run : runs) {
    if (ctx_.cancelled()) return Cancelled(runs);
    FTB_RETURN_IF_ERROR(EnsureJob(run, file_id));
  }
  FTB_RETURN_IF_ERROR(WaitForJobs(runs));

  uint64_t trained_tokens = 0;
  for (JobRun& run : runs) {
    FTB_RETURN_IF_ERROR(ResolveModels(run));
    trained_tokens += JsonUint(run.job, "trained_tokens");
    for (const auto& [e, m] : run.model_for_epoch) model_for_epoch[e] = m;
  }
  return trained_tokens;
}

absl::StatusOr<v1::TaskResult> Runner::Answer(
    const v1::Dataset& dataset, const std::string& cache_path,
    const std::map<uint32_t, std::string>& model_for_epoch, uint64_t trained_tokens) {
  AnswerCache cache(cache_path);
  const int64_t seed = static_cast<int64_t>(work_.seed() % 2147483648ULL);
  AskFn ask = [&](const std::string& model,
                  const v1::QaItem& q) -> absl::StatusOr<AnswerCache::Entry> {
    Json messages = Json::array();
    if (!options_.system_prompt.empty()) {
      messages.push_back({{"role", "system"}, {"content", options_.system_prompt}});
    }
    messages.push_back({{"role", "user"}, {"content", q.prompt()}});
    Json request = {{"model", model},
                    {"messages", messages},
                    {"temperature", 0},
                    {"seed", seed},
                    {"max_tokens", options_.max_tokens}};
    double estimate = static_cast<double>(q.prompt().size() / 4 + options_.max_tokens + 10);
    absl::StatusOr<Json> reply = client_.ChatCompletion(request, estimate, sleep_);
    if (!reply.ok()) return Surface(reply.status());
    const Json& choices = (*reply)["choices"];
    if (!choices.is_array() || choices.empty() || !choices[0].contains("message")) {
      return absl::InternalError("openai: POST /chat/completions: reply has no choices");
    }
    AnswerCache::Entry entry;
    entry.answer = JsonString(choices[0]["message"], "content");
    if (reply->contains("usage") && (*reply)["usage"].is_object()) {
      entry.prompt_tokens = JsonUint((*reply)["usage"], "prompt_tokens");
      entry.completion_tokens = JsonUint((*reply)["usage"], "completion_tokens");
    }
    return entry;
  };
  return AnswerAndPrice(kName, work_, dataset, model_for_epoch, cache, ask, trained_tokens, ctx_,
                        "ftb.workers.openai.v1");
}

}  // namespace

std::string OpenAiTaskTag(const std::string& campaign_id, const std::string& task_id) {
  return ProviderTaskTag("ftb.openai.tag.v1", campaign_id, task_id);
}

std::map<uint32_t, std::vector<uint32_t>> PlanOpenAiJobs(const std::vector<uint32_t>& epochs,
                                                         bool use_checkpoints) {
  std::map<uint32_t, std::vector<uint32_t>> jobs;
  std::set<uint32_t> left(epochs.begin(), epochs.end());
  while (!left.empty()) {
    const uint32_t top = *left.rbegin();
    std::vector<uint32_t>& serves = jobs[top];
    for (auto it = left.begin(); it != left.end();) {
      if (*it == top || (use_checkpoints && *it + 2 >= top)) {
        serves.push_back(*it);
        it = left.erase(it);
      } else {
        ++it;
      }
    }
  }
  return jobs;
}

OpenAiBackend::OpenAiBackend(std::string artifact_dir) : artifact_dir_(std::move(artifact_dir)) {}

std::unique_ptr<OpenAiBackend> OpenAiBackend::Create(const BackendOptions& options) {
  return std::make_unique<OpenAiBackend>(ProviderArtifactDir(options));
}

providers::OpenAiClient* OpenAiBackend::ClientFor(const providers::OpenAiClientOptions& options) {
  // Keyed by URL and a hash of the key: the key itself is not kept as a key.
  const std::string id = absl::StrCat(options.base_url, "\n", Sha256Hex(options.api_key), "\n",
                                      options.retry.max_attempts, "\n",
                                      absl::FormatDuration(options.retry.initial_backoff));
  absl::MutexLock lock(&mu_);
  std::unique_ptr<providers::OpenAiClient>& client = clients_[id];
  if (!client) {
    client = std::make_unique<providers::OpenAiClient>(options, providers::NewCurlTransport());
  }
  return client.get();
}

absl::StatusOr<v1::TaskResult> OpenAiBackend::Run(const v1::TaskAssignment& task,
                                                  TaskContext& ctx) {
  FTB_RETURN_IF_ERROR(ValidateProviderTuneTask(task, kName, 50));  // OpenAI's n_epochs range
  const v1::TuneWork& work = task.tune();
  FTB_ASSIGN_OR_RETURN(const Options options, ParseOptions(work.model().options()));
  FTB_ASSIGN_OR_RETURN(const std::string key, ResolveApiKey(options));
  providers::OpenAiClientOptions client_options;
  client_options.base_url = options.base_url;
  client_options.api_key = key;
  client_options.provider = kName;
  client_options.retry.max_attempts = options.http_max_attempts;
  client_options.retry.initial_backoff =
      absl::Microseconds(static_cast<int64_t>(options.http_backoff_ms * 1000));
  client_options.requests_per_minute = options.requests_per_minute;
  client_options.tokens_per_minute = options.tokens_per_minute;
  providers::OpenAiClient* client = ClientFor(client_options);
  // The coordinator's share of the campaign's limits for this backend caps
  // the client's buckets (shared by this worker's slots).
  client->limiter().SetLimits(
      CappedLimit(options.requests_per_minute, task.requests_per_minute()),
      CappedLimit(options.tokens_per_minute, task.tokens_per_minute()));

  FTB_ASSIGN_OR_RETURN(const v1::Dataset dataset, datasets::LoadDataset(work.dataset()));
  if (ctx.cancelled()) return absl::CancelledError("openai: cancelled");
  const std::string tag = OpenAiTaskTag(task.campaign_id(), task.task_id());
  const std::string dir = options.artifact_dir.empty() ? artifact_dir_ : options.artifact_dir;
  const std::string cache_path =
      dir == "off" ? "" : (fs::path(dir) / "openai" / tag / "answers.jsonl").string();
  ctx.Log(absl::StrCat("openai: task tag ", tag, ", base URL ", options.base_url));
  Runner runner(task, ctx, *client, options, tag);
  absl::StatusOr<v1::TaskResult> result = runner.Run(dataset, cache_path);
  if (!result.ok()) {
    // Belt and braces: nothing the provider echoed may carry the key out.
    return providers::RedactStatus(result.status(), key);
  }
  return result;
}

absl::Status RegisterOpenAiBackend(BackendRegistry& registry) {
  return registry.Register(
      OpenAiBackend::kName,
      [](const BackendOptions& options) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
        return OpenAiBackend::Create(options);
      },
      [](const google::protobuf::Struct& s) { return ParseOptions(s).status(); });
}

}  // namespace ftb::workers
