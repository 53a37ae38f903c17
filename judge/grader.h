// Graders turn a model's answer to one question into a verdict. A grader is
// chosen by kind ("rules", "llm", "paper") through a GraderRegistry; judge workers run
// graders over JUDGE tasks through judge/judge_backend.h.
//
// Thread-safety: Grader::Grade and Grader::GradeAll are const and may be
// called concurrently from any number of threads on one instance.
// GraderRegistry is thread-safe.
//
// This module depends on proto/, common/ and providers/ (the `llm` grader's
// OpenAI-compatible client), not on the worker runtime.
#ifndef FTB_JUDGE_GRADER_H_
#define FTB_JUDGE_GRADER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "ftb/v1/campaign.pb.h"
#include "ftb/v1/coordinator.pb.h"

namespace ftb::judge {

// What a grader concluded. Reports (docs/report-format.md) count kCorrect as
// right; kIncorrect, kStale and kAbstained as wrong; kNoAnswer and kError are
// left out of accuracy and reported separately.
enum class VerdictKind {
  kCorrect,    // gives the reference answer
  kIncorrect,  // does not
  kStale,      // gives the pre-update answer (answer_before) of updated knowledge
  kAbstained,  // declines ("I don't know", "None", ...) where an answer exists
  kNoAnswer,   // nothing to grade (empty, or marked unavailable by the backend)
  kError,      // the grader could not grade the item (e.g. no reference)
};

// The name stored in v1::Verdict.verdict: "correct", "incorrect", "stale",
// "abstained", "no_answer", "error".
std::string_view VerdictName(VerdictKind kind);

struct Verdict {
  VerdictKind kind = VerdictKind::kError;
  // Short and human-readable, e.g. "number matches the reference".
  std::string reason;
  // "<kind>/<version>" of the grader that decided, e.g. "rules/1".
  std::string grader;
  // Tokens a service billed for this verdict, over every call it took (0 for
  // rules and for verdicts read back from the cache).
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;

  std::string_view name() const { return VerdictName(kind); }
};

class Grader {
 public:
  virtual ~Grader() = default;
  // The kind this grader was created as ("rules").
  virtual std::string_view kind() const = 0;
  // "<kind>/<version>", recorded with every verdict. The version changes
  // whenever a verdict for some input would change.
  virtual std::string_view id() const = 0;
  // Grades one item (question, reference, answer). Never fails as a call: a
  // grader that cannot decide returns VerdictKind::kError with the reason.
  virtual Verdict Grade(const v1::JudgeItem& item) const = 0;

  struct GradeAllOptions {
    // Polled between items (and while waiting to retry); once it returns
    // true GradeAll stops with kCancelled. Empty = never cancelled.
    std::function<bool()> cancelled;
    // Called with (i, verdict of *items[i]) as soon as each verdict is
    // known, possibly from several threads at once and before GradeAll
    // fails for another item: the verdict cache stores what was paid for
    // even when the batch fails. Empty = not called.
    std::function<void(size_t, const Verdict&)> on_verdict;
  };
  // Grades `items` (none null); on success result[i] is the verdict of
  // *items[i]. The default grades them one by one with Grade() and fails
  // only with kCancelled. Graders that call a service override it to grade
  // items concurrently, and may fail the whole batch where retrying the task
  // later is the right answer rather than an `error` verdict per item (e.g.
  // kUnavailable: the service stayed unreachable through the client's
  // retries; kResourceExhausted marked providers::kPausePayload: out of
  // quota; kFailedPrecondition: no API key; kNotFound: no such model).
  virtual absl::StatusOr<std::vector<Verdict>> GradeAll(
      absl::Span<const v1::JudgeItem* const> items, const GradeAllOptions& options) const;

  // True when a verdict costs money or time to obtain again (an LLM call):
  // the judge backend then keeps this grader's verdicts in the verdict cache
  // (judge/verdict_cache.h), keyed by id() and the item's texts.
  virtual bool cache_verdicts() const { return false; }

  // Where the tokens of Verdict::prompt_tokens/completion_tokens are priced:
  // (backend, model) in the price tables (cost/price_table.h), or empty for
  // a grader that costs nothing.
  virtual std::pair<std::string, std::string> price_key() const { return {}; }
};

// Makes a grader for a GraderSpec (kind and options). Errors are returned
// as is by GraderRegistry::Create.
using GraderFactory =
    std::function<absl::StatusOr<std::unique_ptr<Grader>>(const v1::GraderSpec& spec)>;

// Grader kinds -> factories. Thread-safe.
class GraderRegistry {
 public:
  // The process-wide registry with the built-in kinds registered (see
  // RegisterBuiltinGraders). Never destroyed.
  static GraderRegistry& Global();

  // Errors: kInvalidArgument for an empty kind or a null factory;
  // kAlreadyExists if `kind` is taken.
  absl::Status Register(std::string kind, GraderFactory factory);
  // Creates a grader of kind spec.kind(). Errors: kNotFound naming the known
  // kinds when spec.kind() is not registered; otherwise whatever the factory
  // returns (e.g. kUnimplemented for "llm", kInvalidArgument for options the
  // kind does not take).
  absl::StatusOr<std::unique_ptr<Grader>> Create(const v1::GraderSpec& spec) const;
  // Sorted.
  std::vector<std::string> Kinds() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, GraderFactory, std::less<>> factories_ ABSL_GUARDED_BY(mu_);
};

// Registers the built-in kinds:
//   "rules"  judge/rules_grader.h; takes no options (kInvalidArgument naming
//            the first option given);
//   "llm"    judge/llm_grader.h: LLM-as-judge over an OpenAI-compatible chat
//            completions endpoint; kInvalidArgument for an unknown or
//            malformed option. Creating it makes no network call, and a
//            missing API key fails grading (kFailedPrecondition), not
//            creation, so `ftb worker --role judge --backends llm` starts
//            without a key in its environment when specs name a key file.
//   "paper"  judge/llm_grader.h: the FineTuneBench authors' judging
//            protocol (their prompt, Correct/Incorrect) on the same
//            machinery and options as "llm" (defaults seed 42, max_tokens
//            10).
// Errors: kAlreadyExists if one of the kinds is taken.
absl::Status RegisterBuiltinGraders(GraderRegistry& registry);

// GraderRegistry::Global().Create with the given kind and no options.
absl::StatusOr<std::unique_ptr<Grader>> CreateGrader(std::string_view kind);

// Copies a verdict into its wire form with the item's cell, question type
// and question id.
v1::Verdict ToProto(const v1::JudgeItem& item, const Verdict& verdict);

}  // namespace ftb::judge

#endif  // FTB_JUDGE_GRADER_H_
