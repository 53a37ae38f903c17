// The `llm` grader (LLM-as-judge): asks a model behind any OpenAI-compatible
// chat completions endpoint to grade an answer against the reference, with a
// rubric prompt of our own (LlmRubricSystemPrompt, LlmRubricUserPrompt), at
// temperature 0 and a fixed seed.
//
// Id: "llm/<model>/<rubric version>", e.g. "llm/gpt-4o-mini-2024-07-18/r1".
// The rubric version (kRubricVersion) changes whenever the prompt or the
// parsing of replies changes, so cached verdicts (judge/verdict_cache.h) of
// an older rubric are never reused.
//
// GRADING an item:
//  1. item.unavailable_reason set -> no_answer with that reason (no call).
//  2. An answer of only whitespace -> incorrect ("empty answer"; no call),
//     as the rules grader does.
//  3. No reference -> error ("no reference answer"; no call).
//  4. Otherwise one chat completion. The reply must be a JSON object
//     {"verdict": "CORRECT" | "INCORRECT" | "STALE" | "ABSTAINED",
//      "reason": "<one line>"} (ParseLlmVerdict: case-insensitive verdict,
//     code fences and text around the object tolerated). An unparseable
//     reply is asked again, up to max_attempts calls in all; then the item
//     gets an `error` verdict ("unparseable judge reply ..."), which reports
//     leave out of accuracy (never counted as a wrong answer). An HTTP 400
//     for the item (e.g. a prompt too long for the judge's context) is an
//     `error` verdict too.
//
// CALLS go through providers::OpenAiClient: rate limited
// (requests_per_minute, plus the provider's x-ratelimit-* headers), retried
// on 408/409/429/5xx and connection errors with backoff. GradeAll grades up
// to `concurrency` items at once. It fails the whole batch (so the task is
// retried later, and verdicts already cached are not asked again) when the
// client gives up on a call for any reason other than a 400: kUnavailable,
// kDeadlineExceeded, kResourceExhausted (insufficient_quota carries the
// pause payload), kUnauthenticated, kNotFound, ...; Grade() turns such a
// failure into an `error` verdict instead, since it cannot fail.
//
// SECRETS. The API key (from the environment variable api_key_env, default
// OPENAI_API_KEY, or the first line of api_key_file) is read when the grader
// is created and used only in the Authorization header; errors have it
// redacted by the client. A missing key is not a creation error: grading
// then fails with kFailedPrecondition naming the variable or file.
//
// THE `paper` GRADER (kind "paper", id "paper/<model>/v1", e.g.
// "paper/gpt-4o-mini-2024-07-18/v1") is the same machinery with the
// FineTuneBench authors' judging protocol instead of our rubric
// (PaperGraderProtocol): their eval prompt, quoted verbatim in
// judge/finetunebench_eval_prompt.h (system message; user message "Question:
// {question}\nAnswer: {answer}\nContext: {context}\nGuess: {guess}\n
// Evaluation: " filled with item.prompt, item.reference, item.context and
// item.answer), at temperature 0 and a fixed seed (default 42, the seed of
// the authors' notebook calls; their repository states none for the judge), with
// max_tokens default 10. The reply must be the one word "Correct" or
// "Incorrect" (ParsePaperVerdict); anything else is asked again and then an
// `error` verdict, as above. The protocol has no stale or abstained verdict.
// Steps 1-3 of GRADING apply unchanged. The judge model is the `model`
// option; the authors' repository does not name the judge's model, so the default
// (gpt-4o-mini-2024-07-18) is ours. Note that item.prompt is the whole text
// sent to the tuned model (for some datasets an instruction line before the
// question), which ftb fills in for {question}.
//
// Thread-safe: Grade and GradeAll may be called concurrently; one grader's
// client (and so its rate limits) is shared by all calls.
#ifndef FTB_JUDGE_LLM_GRADER_H_
#define FTB_JUDGE_LLM_GRADER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "judge/grader.h"
#include "providers/http.h"
#include "providers/openai_client.h"

namespace ftb::judge {

struct LlmGraderOptions {
  // Up to and including the API version, e.g. "http://127.0.0.1:8000/v1".
  std::string base_url = "https://api.openai.com/v1";
  std::string model = "gpt-4o-mini-2024-07-18";
  std::string api_key_env = "OPENAI_API_KEY";
  // When set, wins over api_key_env.
  std::string api_key_file;
  int64_t seed = 0;
  int max_tokens = 200;
  // Client-side limit before the provider's headers are seen; 0 = none.
  double requests_per_minute = 0;
  // Items graded at once by GradeAll.
  int concurrency = 4;
  // Chat calls per item when replies do not parse (the first included).
  int max_attempts = 3;
  // HTTP attempts per call (the client's retries of 429/5xx/...).
  int http_max_attempts = 8;
  double http_backoff_ms = 500;
};

// Reads GraderSpec.options. Keys: base_url (http(s) URL), model, api_key_env,
// api_key_file (strings); seed (integer >= 0), max_tokens (1-4096),
// requests_per_minute (>= 0), concurrency (1-256), max_attempts (1-10),
// http_max_attempts (1-20), http_backoff_ms (1-600000) as numbers (or
// numeric strings); temperature, which must be 0 (the judge always grades
// at 0; the key is accepted so specs can say so). Errors: kInvalidArgument naming the option and what was
// expected, or listing the known options for an unknown one.
// `kind` names the grader in errors; `defaults` are the values of options
// not given (PaperGraderDefaults() for `paper`).
absl::StatusOr<LlmGraderOptions> ParseLlmGraderOptions(const google::protobuf::Struct& options,
                                                        std::string_view kind = "llm",
                                                        LlmGraderOptions defaults = {});

// A parsed judge reply.
struct LlmReply {
  VerdictKind kind = VerdictKind::kError;  // one of correct/incorrect/stale/abstained
  std::string reason;                      // one line, at most 300 bytes
};
// Parses a judge model's reply (see GRADING). kInvalidArgument saying what
// was wrong ("no JSON object", "verdict \"maybe\" is not one of ...").
absl::StatusOr<LlmReply> ParseLlmVerdict(std::string_view reply);

// The rubric: the system message, and the user message for one item (the
// texts as JSON strings on labelled lines: QUESTION, REFERENCE, CONTEXT and
// PRE-UPDATE ANSWER when present, ANSWER).
std::string_view LlmRubricSystemPrompt();
std::string LlmRubricUserPrompt(const v1::JudgeItem& item);

// One way of asking a judge model: the prompt and how its replies are read.
struct LlmJudgeProtocol {
  std::string kind;     // the grader's kind and the id's prefix ("llm")
  std::string version;  // the id's suffix; changes with the prompt or parsing
  std::string system_prompt;
  std::function<std::string(const v1::JudgeItem&)> user_prompt;
  // kInvalidArgument for a reply that must be asked again.
  std::function<absl::StatusOr<LlmReply>(std::string_view)> parse_reply;
};

// Our rubric (kind "llm", version kRubricVersion).
LlmJudgeProtocol LlmRubricProtocol();
// The FineTuneBench authors' protocol (kind "paper", version kPaperVersion):
// see THE `paper` GRADER above.
LlmJudgeProtocol PaperGraderProtocol();
// The authors' user template filled for `item` (one pass: placeholder text
// inside a field stays as is).
std::string PaperGraderUserPrompt(const v1::JudgeItem& item);
// "Correct" or "Incorrect", case-insensitive, after trimming whitespace, an
// "Evaluation:" label, surrounding * _ ` " ' and one final period; else
// kInvalidArgument. "Correct." and "**Incorrect**" parse; "Correct, but
// ...", "Partially correct" and "" do not.
absl::StatusOr<LlmReply> ParsePaperVerdict(std::string_view reply);
// LlmGraderOptions with the `paper` defaults: seed 42, max_tokens 10.
LlmGraderOptions PaperGraderDefaults();

class LlmGrader : public Grader {
 public:
  static constexpr std::string_view kKind = "llm";
  static constexpr std::string_view kRubricVersion = "r1";
  static constexpr std::string_view kPaperKind = "paper";
  static constexpr std::string_view kPaperVersion = "v1";

  // `transport` null = libcurl. `sleep` (waits between HTTP retries; null =
  // absl::SleepFor in slices that stop early once GradeAll is cancelled) is
  // for tests. Reads the API key (see SECRETS); never fails for a missing
  // key. Errors: kInvalidArgument for options out of range.
  static absl::StatusOr<std::unique_ptr<LlmGrader>> Create(
      const LlmGraderOptions& options, std::unique_ptr<providers::HttpTransport> transport = nullptr,
      providers::Sleeper sleep = nullptr, LlmJudgeProtocol protocol = LlmRubricProtocol());

  std::string_view kind() const override { return protocol_.kind; }
  std::string_view id() const override { return id_; }
  Verdict Grade(const v1::JudgeItem& item) const override;
  absl::StatusOr<std::vector<Verdict>> GradeAll(absl::Span<const v1::JudgeItem* const> items,
                                                const GradeAllOptions& options) const override;
  bool cache_verdicts() const override { return true; }
  // Priced as the model on the `openai` backend (chat completions).
  std::pair<std::string, std::string> price_key() const override {
    return {"openai", options_.model};
  }

  const LlmGraderOptions& options() const { return options_; }

 private:
  LlmGrader(LlmGraderOptions options, absl::StatusOr<std::string> key,
            std::unique_ptr<providers::HttpTransport> transport, providers::Sleeper sleep,
            LlmJudgeProtocol protocol);
  // The verdict, or a batch-level error (see CALLS).
  absl::StatusOr<Verdict> GradeOne(const v1::JudgeItem& item,
                                   const std::function<bool()>& cancelled) const;

  const LlmGraderOptions options_;
  const LlmJudgeProtocol protocol_;
  const std::string id_;
  const absl::Status key_status_;  // OK, or why there is no key
  const providers::Sleeper sleep_;
  // Null when there is no key.
  const std::unique_ptr<providers::OpenAiClient> client_;
};

}  // namespace ftb::judge

#endif  // FTB_JUDGE_LLM_GRADER_H_
