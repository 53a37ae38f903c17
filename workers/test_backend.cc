#include "workers/test_backend.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"
#include "common/rng.h"
#include "common/status_macros.h"

namespace ftb::workers {
namespace {

struct TestOptions {
  int64_t sleep_ms_min = 1;
  int64_t sleep_ms_max = 5;
  int64_t fail_first_attempts = 0;
};

// Reads a non-negative integer option; leaves `out` alone if absent.
absl::Status ReadInt(const google::protobuf::Struct& options, const std::string& key,
                     int64_t* out) {
  auto it = options.fields().find(key);
  if (it == options.fields().end()) return absl::OkStatus();
  const google::protobuf::Value& value = it->second;
  int64_t parsed = -1;
  bool ok = false;
  if (value.kind_case() == google::protobuf::Value::kNumberValue) {
    double d = value.number_value();
    parsed = static_cast<int64_t>(d);
    ok = d >= 0 && d <= 1e12 && static_cast<double>(parsed) == d;
  } else if (value.kind_case() == google::protobuf::Value::kStringValue) {
    ok = absl::SimpleAtoi(value.string_value(), &parsed) && parsed >= 0;
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("test backend: model.options.", key, ": expected a non-negative integer"));
  }
  *out = parsed;
  return absl::OkStatus();
}

absl::StatusOr<TestOptions> ParseOptions(const google::protobuf::Struct& s) {
  TestOptions options;
  FTB_RETURN_IF_ERROR(ReadInt(s, "sleep_ms_min", &options.sleep_ms_min));
  FTB_RETURN_IF_ERROR(ReadInt(s, "sleep_ms_max", &options.sleep_ms_max));
  FTB_RETURN_IF_ERROR(ReadInt(s, "fail_first_attempts", &options.fail_first_attempts));
  if (options.sleep_ms_min > options.sleep_ms_max) {
    return absl::InvalidArgumentError(
        absl::StrCat("test backend: model.options.sleep_ms_min (", options.sleep_ms_min,
                     ") must not exceed sleep_ms_max (", options.sleep_ms_max, ")"));
  }
  return options;
}

}  // namespace

v1::TaskResult TestBackend::ExpectedResult(const v1::TuneWork& work) {
  Sha256 hash;
  hash.UpdateField("ftb.workers.test_backend.v1");
  hash.UpdateField(work.model().name());
  hash.UpdateField(absl::StrCat(work.cell_ids_size()));
  for (const std::string& cell_id : work.cell_ids()) hash.UpdateField(cell_id);
  hash.UpdateField(absl::StrCat(work.epochs_size()));
  uint64_t epoch_sum = 0;
  for (uint32_t epochs : work.epochs()) {
    hash.UpdateField(absl::StrCat(epochs));
    epoch_sum += epochs;
  }
  v1::TaskResult result;
  result.set_digest(DigestHex(hash.Finish()));
  // Looks like a token count: 1000 per trained epoch, 100 per cell answered.
  result.set_tokens(1000 * epoch_sum + 100 * static_cast<uint64_t>(work.cell_ids_size()));
  // Optional synthetic answers, for pipeline tests that need judging:
  // answers_per_cell items per cell; even questions answered right.
  auto answers = work.model().options().fields().find("answers_per_cell");
  if (answers != work.model().options().fields().end() &&
      answers->second.kind_case() == google::protobuf::Value::kNumberValue) {
    const int n = static_cast<int>(answers->second.number_value());
    for (const std::string& cell_id : work.cell_ids()) {
      v1::CellAnswers* cell = result.add_answers();
      cell->set_cell_id(cell_id);
      for (int i = 0; i < n; ++i) {
        v1::JudgeItem* item = cell->add_items();
        item->set_cell_id(cell_id);
        item->set_question_type(i % 3 == 0 ? "rephrased" : "memorization");
        item->set_question_id(absl::StrCat("q", i));
        item->set_prompt(absl::StrCat("What is the value of item ", i, "?"));
        item->set_reference(absl::StrCat(100 + i));
        item->set_answer(i % 2 == 0 ? absl::StrCat(100 + i) : "unknown value");
      }
    }
  }
  // Optional fixed price per task, for cost-accounting tests.
  auto price = work.model().options().fields().find("cost_usd_per_task");
  result.set_cost_usd(price != work.model().options().fields().end() &&
                              price->second.kind_case() == google::protobuf::Value::kNumberValue
                          ? price->second.number_value()
                          : 0);
  return result;
}

absl::StatusOr<v1::TaskResult> TestBackend::Run(const v1::TaskAssignment& task, TaskContext& ctx) {
  runs_.fetch_add(1);
  {
    absl::MutexLock lock(&mu_);
    ++runs_by_task_[task.task_id()];
  }
  FTB_ASSIGN_OR_RETURN(TestOptions options, ParseOptions(task.tune().model().options()));
  if (options.sleep_ms_max > 0) {
    // Seeded by task and attempt: a retry sleeps differently, a rerun alike.
    Rng rng(std::hash<std::string>{}(task.task_id()) * 31 + task.attempt());
    int64_t ms = rng.Uniform(options.sleep_ms_min, options.sleep_ms_max);
    if (!ctx.SleepFor(absl::Milliseconds(ms))) {
      return absl::CancelledError("test backend: cancelled while sleeping");
    }
  }
  if (ctx.cancelled()) return absl::CancelledError("test backend: cancelled");
  if (static_cast<int64_t>(task.attempt()) <= options.fail_first_attempts) {
    return absl::UnavailableError(
        absl::StrCat("test backend: injected failure of attempt ", task.attempt(),
                     " (fail_first_attempts=", options.fail_first_attempts, ")"));
  }
  return ExpectedResult(task.tune());
}

int TestBackend::runs_of(const std::string& task_id) const {
  absl::MutexLock lock(&mu_);
  auto it = runs_by_task_.find(task_id);
  return it == runs_by_task_.end() ? 0 : it->second;
}

absl::Status RegisterTestBackend(BackendRegistry& registry) {
  return registry.Register(
      TestBackend::kName,
      [](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<TuningBackend>> {
        return std::make_unique<TestBackend>();
      },
      [](const google::protobuf::Struct& s) -> absl::Status {
        static constexpr const char* kNames[] = {"answers_per_cell", "cost_usd_per_task",
                                                      "fail_first_attempts", "sleep_ms_max",
                                                      "sleep_ms_min"};
        for (const auto& [name, unused] : s.fields()) {
          if (std::find(std::begin(kNames), std::end(kNames), name) == std::end(kNames)) {
            return absl::InvalidArgumentError(
                absl::StrCat("test backend: unknown option model.options.", name,
                             "; valid options: ", absl::StrJoin(kNames, ", ")));
          }
        }
        return ParseOptions(s).status();
      });
}

}  // namespace ftb::workers
