// What the provider backends (openai, vertex) share around their REST
// clients: the idempotency tag of a task, recording intents before billable
// calls (never paying twice), the per-tag answer cache, answering every test
// question of every cell, pricing, option parsing and JSON field access.
// Each backend keeps only what is specific to its provider's API.
#ifndef FTB_WORKERS_PROVIDER_TASK_H_
#define FTB_WORKERS_PROVIDER_TASK_H_

#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ftb/v1/coordinator.pb.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"
#include "workers/backend.h"

namespace ftb::workers {

// "ftb-" + 16 hex digits of SHA-256 over (domain, campaign id, task id).
std::string ProviderTaskTag(std::string_view domain, const std::string& campaign_id,
                            const std::string& task_id);

// The artifact directory of a provider backend: the worker's
// `artifact_dir` option, else $FTB_ARTIFACT_DIR, else ".ftb-artifacts".
std::string ProviderArtifactDir(const BackendOptions& options);

// `auto` on TuneWork.learning_rate_multiplier / batch_size (the same 0 as
// coordinator/planner.h kAutoLearningRateMultiplier / kAutoBatchSize, which
// workers do not link): the backend sends no value and the provider picks
// its default.
inline constexpr double kAutoLearningRateMultiplier = 0;
inline constexpr uint32_t kAutoBatchSize = 0;

// Checks what every provider backend needs of a task: kind TUNE, epochs
// ascending in 0..max_epochs (0, the untuned base model, first if at all)
// and parallel to cell_ids, a learning rate multiplier that is positive or
// auto. kInvalidArgument naming `backend` otherwise.
absl::Status ValidateProviderTuneTask(const v1::TaskAssignment& task, std::string_view backend,
                                      uint32_t max_epochs);

// The tighter of a model option's per-minute limit and the coordinator's
// share (either 0 = none); 0 when neither is set.
inline double CappedLimit(double option, double share) {
  if (share <= 0) return option;
  return option > 0 && option < share ? option : share;
}

// A string field of `j`, or "" when absent or not a string.
std::string JsonString(const nlohmann::json& j, const char* key);
// An unsigned field of `j`: a number, or a decimal string (Google APIs send
// int64 as strings); 0 when absent or neither.
uint64_t JsonUint(const nlohmann::json& j, const char* key);

// Reads one model option of `backend` ("openai: model.options.NAME:
// expected ..." on a mismatch). Numbers may also be given as strings.
absl::Status OptionString(std::string_view backend, const std::string& name,
                          const google::protobuf::Value& v, std::string* out);
absl::Status OptionNumber(std::string_view backend, const std::string& name,
                          const google::protobuf::Value& v, double lo, double hi, double* out);
absl::Status OptionBool(std::string_view backend, const std::string& name,
                        const google::protobuf::Value& v, bool* out);
// An http(s) URL without trailing slashes.
absl::Status OptionUrl(std::string_view backend, const std::string& name,
                       const google::protobuf::Value& v, std::string* out);

// Records (kind, tag, provider id) at the coordinator before (id "") and
// after (the provider's id) a billable call. OK without an intent sink (unit
// tests); kUnavailable when the coordinator did not store it, after which the
// billable call must not be made.
absl::Status RecordProviderIntent(TaskContext& ctx, std::string_view backend,
                                  const std::string& kind, const std::string& tag,
                                  const std::string& id);
// The provider id an earlier attempt recorded for (kind, tag), or "".
std::string RecordedProviderId(const v1::TaskAssignment& task, const std::string& kind,
                               const std::string& tag);
// After ctx.cancelled(): records a "cancel" intent and returns whether the
// coordinator says the campaign was cancelled (then the provider jobs are to
// be cancelled; otherwise left running for the next attempt to adopt).
bool CampaignCancelled(TaskContext& ctx, const std::string& tag);

// How long a provider job has been seen paused, so that a paused job is not
// polled forever. Observe() is called on every poll with whether the job is
// paused now (in the provider's `state`): OK while it is not, or has been
// paused for less than `limit` (logging once when a pause starts);
// FailedPrecondition (not retried: the next attempt would adopt the same
// paused job) naming the job, its state, how long it was paused and
// `how_to_resume` once the limit is passed.
class PauseWatch {
 public:
  absl::Status Observe(TaskContext& ctx, bool paused, absl::Duration limit,
                       absl::string_view job, absl::string_view state,
                       absl::string_view how_to_resume);

 private:
  absl::Time since_ = absl::InfiniteFuture();
};

// Answers cached per task on local disk (JSON lines, flushed per answer),
// keyed by (model, question type, question id). Not thread-safe: one per
// Run(). An empty path keeps answers in memory only.
class AnswerCache {
 public:
  struct Entry {
    std::string answer;
    uint64_t prompt_tokens = 0;
    uint64_t completion_tokens = 0;
  };

  explicit AnswerCache(std::string path);

  const Entry* Find(const std::string& model, const std::string& type, const std::string& id);
  void Add(const std::string& model, const std::string& type, const std::string& id,
           const Entry& e);
  size_t size() const { return entries_.size(); }

 private:
  static std::string Key(const std::string& m, const std::string& t, const std::string& i);
  std::string path_;
  std::map<std::string, Entry> entries_;
  std::ofstream out_;
};

// Asks `model` one question (a billable call). Errors are returned as is.
using AskFn =
    std::function<absl::StatusOr<AnswerCache::Entry>(const std::string& model, const v1::QaItem& q)>;

struct AnswerTotals {
  // All answers' usage, and the part of it spent on the base model (cells
  // at epochs 0), which is priced at the base model's rates.
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t base_prompt_tokens = 0;
  uint64_t base_completion_tokens = 0;
  size_t asked = 0;
  size_t reused = 0;
};

// Fills result->answers (one CellAnswers per cell of `work`, one JudgeItem
// per test question) and result->digest: each cell is answered by
// model_for_epoch[its epochs], from `cache` when it has the answer, else by
// `ask` (whose answer is added to the cache at once). Progress goes from 0.8
// to 1. Errors: kCancelled when ctx is cancelled; `ask`'s errors.
absl::StatusOr<AnswerTotals> AnswerAllCells(const v1::TuneWork& work, const v1::Dataset& dataset,
                                            const std::map<uint32_t, std::string>& model_for_epoch,
                                            AnswerCache& cache, const AskFn& ask,
                                            TaskContext& ctx, std::string_view digest_domain,
                                            v1::TaskResult* result);

// Sets result->tokens and result->cost_usd from trained tokens and answer
// usage at the built-in prices of (backend, model) (the base_* prices for
// the base model's share); logs when unpriced.
void PriceProviderResult(std::string_view backend, const std::string& model,
                         uint64_t trained_tokens, const AnswerTotals& totals, TaskContext& ctx,
                         v1::TaskResult* result);

// The end of every provider task: AnswerAllCells, a log line of what was
// asked and reused, PriceProviderResult and progress 1. `backend` names the
// backend in messages and prices. Errors: as AnswerAllCells (kCancelled
// says "<backend>: cancelled while answering").
absl::StatusOr<v1::TaskResult> AnswerAndPrice(
    std::string_view backend, const v1::TuneWork& work, const v1::Dataset& dataset,
    const std::map<uint32_t, std::string>& model_for_epoch, AnswerCache& cache, const AskFn& ask,
    uint64_t trained_tokens, TaskContext& ctx, std::string_view digest_domain);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_PROVIDER_TASK_H_
