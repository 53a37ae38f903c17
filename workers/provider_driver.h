// One driver for every provider fine-tuning backend (openai, vertex,
// together): it owns the task's life cycle — intent → adopt by the recorded
// id or by the idempotency tag → create (re-listing by tag after an
// ambiguous failure, never paying twice) → poll with events and a paused-job
// timeout → checkpoints → answer every cell → price → cancel on campaign
// cancel. A provider plugs in a small ProviderApi (create, get,
// list-by-tag, cancel, classify state and error, checkpoints, answer) and
// one declarative OptionTable (name, type, default, required, doc), which
// also validates `ftb plan` and writes the docs.
#ifndef FTB_WORKERS_PROVIDER_DRIVER_H_
#define FTB_WORKERS_PROVIDER_DRIVER_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ftb/v1/coordinator.pb.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"
#include "workers/backend.h"
#include "workers/provider_task.h"

namespace ftb::workers {

// ---------------------------------------------------------------------------
// Options: one declarative table per backend.

struct OptionDef {
  enum class Type { kString, kUrl, kNumber, kInteger, kBool, kChoice };
  std::string name;
  Type type = Type::kString;
  // The default as documented and as used when the option is absent ("" =
  // none: String() is "", Number() is 0, Bool() is false).
  std::string default_value;
  bool required = false;
  // Inclusive range of kNumber and kInteger.
  double min = 0;
  double max = 0;
  // The accepted values of kChoice (compared as text: `2` and "2" match
  // "2").
  std::vector<std::string> choices;
  std::string doc;
};

// The parsed options of one model: every option of the table, given or
// defaulted.
class OptionValues {
 public:
  const std::string& String(std::string_view name) const;
  double Number(std::string_view name) const;
  int Integer(std::string_view name) const;
  bool Bool(std::string_view name) const;
  // Whether the spec gave the option (not defaulted).
  bool Given(std::string_view name) const;

 private:
  friend class OptionTable;
  std::map<std::string, std::string, std::less<>> text_;
  std::map<std::string, double, std::less<>> number_;
  std::map<std::string, bool, std::less<>> given_;
};

class OptionTable {
 public:
  OptionTable(std::string backend, std::vector<OptionDef> defs);

  // Errors (kInvalidArgument) name the field: "together:
  // model.options.lora_r: expected an integer in 1..256, got 0"; an unknown
  // option lists the known ones; a missing required option says what it
  // must hold.
  absl::StatusOr<OptionValues> Parse(const google::protobuf::Struct& options) const;
  // A Markdown table (option, type, default, required, description) for
  // docs/providers.md, which a test keeps equal to the code.
  std::string Markdown() const;

  const std::string& backend() const { return backend_; }
  const std::vector<OptionDef>& defs() const { return defs_; }

 private:
  std::string backend_;
  std::vector<OptionDef> defs_;
};

// The options every provider backend has (poll_seconds, max_poll_seconds,
// paused_timeout_seconds, requests_per_minute, tokens_per_minute,
// http_max_attempts, http_backoff_ms, artifact_dir, system_prompt,
// use_checkpoints), with the backend's own defaults for the polling ones.
std::vector<OptionDef> CommonProviderOptions(double poll_seconds, double max_poll_seconds,
                                             double http_backoff_ms);

// ---------------------------------------------------------------------------
// The provider interface.

// A provider's job state, classified.
struct JobStatus {
  enum class Phase { kPending, kRunning, kPaused, kSucceeded, kFailed, kCancelled };
  Phase phase = Phase::kPending;
  // The provider's own state ("running", "JOB_STATE_PAUSED"), for messages.
  std::string state;
  // Training progress in [0, 1] when known, else < 0.
  double fraction = -1;
  // The newest event or progress message, "" when none.
  std::string note;
  // kFailed: why, classified — kInvalidArgument when trying again cannot
  // help (bad data or request), kUnavailable when it may. The message names
  // the job and carries the provider's error code and text.
  absl::Status error;
};

// One provider job of a task: the epoch count it trains and the epoch
// counts it serves (itself and, through checkpoints, smaller ones).
struct ProviderJob {
  uint32_t n_epochs = 0;
  std::vector<uint32_t> serves;
  // The task tag + "-e<n_epochs>": the idempotency tag the provider keeps
  // on the job (metadata, label, suffix) and the driver's intent key.
  std::string tag;
  // The provider's id or resource name; "" until created or adopted.
  std::string id;
  // The job object as last seen.
  nlohmann::json object;
};

class ProviderApi {
 public:
  virtual ~ProviderApi() = default;

  // The backend name ("together"), used in messages, intents and prices.
  virtual std::string_view name() const = 0;

  // Training data. Providers that take an uploaded file return true from
  // UploadsTrainingFile; the driver then adopts a recorded file (GetFile),
  // looks one up by name (FindFile), or uploads (UploadFile, re-looking up
  // after an ambiguous failure). Others get `training_file` = "" and take
  // their data location from their options.
  virtual bool UploadsTrainingFile() const { return false; }
  // The training JSONL of the dataset in the provider's format.
  virtual std::string TrainingJsonl(const v1::Dataset& dataset) const;
  // kNotFound when the file is gone.
  virtual absl::Status GetFile(const std::string& id);
  // The id of an uploaded file named `filename` of `bytes` bytes, "" if none.
  virtual absl::StatusOr<std::string> FindFile(const std::string& filename, size_t bytes);
  // The new file's id. An ambiguous failure satisfies
  // providers::IsMaybeCreated().
  virtual absl::StatusOr<std::string> UploadFile(const std::string& filename,
                                                 const std::string& jsonl);

  // Which jobs to create for `epochs` (all >= 1): n_epochs → the epoch
  // counts it serves. The default is one job per epoch count; providers
  // with per-epoch checkpoints group them.
  virtual std::map<uint32_t, std::vector<uint32_t>> PlanJobs(
      const std::vector<uint32_t>& epochs) const;

  // Creates `job` (job.id is ""). The created job object. An ambiguous
  // failure satisfies providers::IsMaybeCreated(); the driver then lists by
  // tag before creating again.
  virtual absl::StatusOr<nlohmann::json> CreateJob(const ProviderJob& job,
                                                   const std::string& training_file) = 0;
  // kNotFound when the job does not exist.
  virtual absl::StatusOr<nlohmann::json> GetJob(const std::string& id) = 0;
  // Jobs that may carry `tag` (the driver checks JobTag itself: the
  // provider's filter is trusted only so far).
  virtual absl::StatusOr<std::vector<nlohmann::json>> ListJobsByTag(const std::string& tag) = 0;
  // The id and the idempotency tag a job object carries ("" when none).
  virtual std::string JobId(const nlohmann::json& job) const = 0;
  virtual std::string JobTag(const nlohmann::json& job) const = 0;
  // Classifies a job object; may fetch its events for progress and for the
  // reason of a failure.
  virtual JobStatus Classify(const ProviderJob& job) = 0;
  // One quick try (the task is being cancelled).
  virtual absl::Status CancelJob(const std::string& id) = 0;
  // What to tell a user about a paused job ("resume it with ... or cancel
  // it at the provider").
  virtual std::string HowToResume(const ProviderJob& job) const = 0;

  // After success: the model to ask for each epoch count of job.serves.
  virtual absl::Status ResolveModels(const ProviderJob& job,
                                     std::map<uint32_t, std::string>* model_for_epoch) = 0;
  // The tokens the provider bills for training this job.
  virtual uint64_t TrainedTokens(const ProviderJob& job) const = 0;
  // The model that answers for epochs 0 (the untuned base model).
  virtual std::string BaseModel(const std::string& model) const { return model; }
  // Asks `model` one question (a billable call).
  virtual absl::StatusOr<AnswerCache::Entry> Ask(const std::string& model,
                                                 const v1::QaItem& question) = 0;
};

// What the driver needs of the options (from CommonProviderOptions).
struct DriverSettings {
  absl::Duration poll = absl::Seconds(10);
  absl::Duration max_poll = absl::Seconds(60);
  absl::Duration paused_timeout = absl::Hours(24);
  int http_max_attempts = 8;
  absl::Duration http_backoff = absl::Milliseconds(500);
  // Where answers are cached ("" = memory only).
  std::string answer_cache_path;

  static DriverSettings FromOptions(const OptionValues& values);
};

// Runs one TUNE task on `api`: trains what the cells need (nothing for
// epochs 0), answers every cell's questions and prices the result.
// `task_tag` is ProviderTaskTag of the task; `digest_domain` names the
// answer digest ("ftb.workers.together.v1"). Errors: kCancelled (provider
// jobs cancelled when the campaign was, else left for the next attempt to
// adopt); the classified job error; a paused-too-long FailedPrecondition;
// PauseCampaignError on exhausted quota; the api's errors.
absl::StatusOr<v1::TaskResult> RunProviderTask(const v1::TaskAssignment& task, TaskContext& ctx,
                                               ProviderApi& api, const DriverSettings& settings,
                                               const v1::Dataset& dataset,
                                               const std::string& task_tag,
                                               std::string_view digest_domain);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_PROVIDER_DRIVER_H_
