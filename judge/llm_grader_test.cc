#include "judge/llm_grader.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "judge/verdict_cache.h"
#include "nlohmann/json.hpp"

namespace ftb::judge {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr char kKey[] = "sk-llm-judge-test-SECRET-77aa";

providers::HttpResponse Reply(int status, std::string body) {
  providers::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// A chat completion whose message content is `content`.
providers::HttpResponse Chat(const std::string& content) {
  Json body = {{"id", "chatcmpl-1"},
               {"object", "chat.completion"},
               {"choices",
                {{{"index", 0},
                  {"message", {{"role", "assistant"}, {"content", content}}},
                  {"finish_reason", "stop"}}}},
               {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 5}, {"total_tokens", 15}}}};
  return Reply(200, body.dump());
}

// Answers every request with `respond` (thread-safe), recording requests and
// the most requests in flight at once.
class ScriptedTransport : public providers::HttpTransport {
 public:
  using Responder = std::function<absl::StatusOr<providers::HttpResponse>(
      const providers::HttpRequest&, int call)>;
  explicit ScriptedTransport(Responder respond, absl::Duration latency = absl::ZeroDuration())
      : respond_(std::move(respond)), latency_(latency) {}

  absl::StatusOr<providers::HttpResponse> Send(const providers::HttpRequest& request) override {
    int call;
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
      call = static_cast<int>(requests_.size());
      max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    }
    absl::SleepFor(latency_);
    absl::StatusOr<providers::HttpResponse> r = respond_(request, call);
    absl::MutexLock lock(&mu_);
    --in_flight_;
    return r;
  }
  std::vector<providers::HttpRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  int max_in_flight() {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }

 private:
  Responder respond_;
  absl::Duration latency_;
  absl::Mutex mu_;
  std::vector<providers::HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// The user message of a chat request.
std::string UserPrompt(const providers::HttpRequest& r) {
  Json body = Json::parse(r.body);
  return body["messages"][1]["content"].get<std::string>();
}

// Like tests/fakes/fake_openai.py's judge: correct when the ANSWER line
// contains the REFERENCE line's text.
absl::StatusOr<providers::HttpResponse> ContainsJudge(const providers::HttpRequest& r, int) {
  std::string user = UserPrompt(r);
  auto field = [&](const std::string& label) {
    std::vector<std::string> lines = absl::StrSplit(user, '\n');
    for (const std::string& line : lines) {
      if (line.rfind(label + ": ", 0) == 0) {
        return Json::parse(line.substr(label.size() + 2)).get<std::string>();
      }
    }
    return std::string();
  };
  bool ok = absl::StrContains(absl::AsciiStrToLower(field("ANSWER")),
                              absl::AsciiStrToLower(field("REFERENCE")));
  return Chat(Json({{"verdict", ok ? "CORRECT" : "INCORRECT"}, {"reason", "compared"}}).dump());
}

v1::JudgeItem Item(std::string reference, std::string answer, std::string id = "q1") {
  v1::JudgeItem item;
  item.set_cell_id("cell-a");
  item.set_question_type("memorization");
  item.set_question_id(std::move(id));
  item.set_prompt("What is the favourite colour of Ada Quill?");
  item.set_reference(std::move(reference));
  item.set_answer(std::move(answer));
  return item;
}

struct Fixture {
  explicit Fixture(ScriptedTransport::Responder respond, LlmGraderOptions o = {},
                   absl::Duration latency = absl::ZeroDuration()) {
    setenv("FTB_TEST_LLM_JUDGE_KEY", kKey, 1);
    o.api_key_env = "FTB_TEST_LLM_JUDGE_KEY";
    o.base_url = "http://judge.test/v1";
    if (o.model == LlmGraderOptions{}.model) o.model = "judge-1";
    o.seed = 42;
    auto t = std::make_unique<ScriptedTransport>(std::move(respond), latency);
    transport = t.get();
    auto g = LlmGrader::Create(o, std::move(t), [](absl::Duration) { return true; });
    EXPECT_TRUE(g.ok()) << g.status();
    grader = *std::move(g);
  }
  ScriptedTransport* transport;
  std::unique_ptr<LlmGrader> grader;
};

TEST(ParseLlmVerdictTest, ReadsTheRubricsJson) {
  auto r = ParseLlmVerdict(R"({"verdict": "CORRECT", "reason": "Names the reference colour."})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, VerdictKind::kCorrect);
  EXPECT_EQ(r->reason, "Names the reference colour.");
  // Case, surrounding text and code fences are tolerated; reasons are one line.
  r = ParseLlmVerdict("Here you go:\n```json\n{\"verdict\": \" stale \", \"reason\": \"old\\nvalue\"}\n```");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, VerdictKind::kStale);
  EXPECT_EQ(r->reason, "old value");
  EXPECT_EQ(ParseLlmVerdict(R"({"verdict":"Abstained"})")->kind, VerdictKind::kAbstained);
  EXPECT_EQ(ParseLlmVerdict(R"({"verdict":"Abstained"})")->reason, "abstained");
  EXPECT_EQ(ParseLlmVerdict(R"({"verdict":"INCORRECT","reason":"no"})")->kind,
            VerdictKind::kIncorrect);
}

TEST(ParseLlmVerdictTest, RejectsAnythingElse) {
  EXPECT_EQ(ParseLlmVerdict("CORRECT").status().message(), "no JSON object");
  EXPECT_EQ(ParseLlmVerdict("{verdict: CORRECT}").status().message(), "no JSON object");
  EXPECT_EQ(ParseLlmVerdict(R"({"grade": "CORRECT"})").status().message(),
            "no string field \"verdict\"");
  EXPECT_EQ(ParseLlmVerdict(R"({"verdict": "partially correct"})").status().message(),
            "verdict \"partially correct\" is not one of CORRECT, INCORRECT, STALE, ABSTAINED");
  EXPECT_EQ(ParseLlmVerdict(R"({"verdict": "no_answer"})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseLlmVerdict("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParsePaperVerdictTest, ReadsOneWordCorrectOrIncorrect) {
  for (const char* reply : {"Correct", "correct", " Correct.\n", "**Correct**", "\"Correct\"",
                            "Evaluation: Correct", "`correct`"}) {
    absl::StatusOr<LlmReply> r = ParsePaperVerdict(reply);
    ASSERT_TRUE(r.ok()) << reply << ": " << r.status();
    EXPECT_EQ(r->kind, VerdictKind::kCorrect) << reply;
    EXPECT_EQ(r->reason, "paper judge: Correct");
  }
  for (const char* reply : {"Incorrect", "INCORRECT.", "Evaluation:incorrect"}) {
    absl::StatusOr<LlmReply> r = ParsePaperVerdict(reply);
    ASSERT_TRUE(r.ok()) << reply << ": " << r.status();
    EXPECT_EQ(r->kind, VerdictKind::kIncorrect) << reply;
  }
  for (const char* reply : {"", "Partially correct", "Correct, because it names the bridge",
                            "Correct.\nIncorrect", "Correct or Incorrect", "Correct..",
                            "{\"verdict\": \"correct\"}", "Yes", "Incorrect!"}) {
    EXPECT_EQ(ParsePaperVerdict(reply).status().message(),
              "the reply is not \"Correct\" or \"Incorrect\"")
        << reply;
  }
}

TEST(PaperGraderProtocolTest, FillsTheAuthorsTemplateOnce) {
  v1::JudgeItem item;
  item.set_prompt("Which city does Ana live in?");
  item.set_reference("Porto");
  item.set_context("Ana lives in Porto.");
  item.set_answer("She lives in {answer} {context}");  // placeholders are data here
  EXPECT_EQ(PaperGraderUserPrompt(item),
            "Question: Which city does Ana live in?\nAnswer: Porto\nContext: Ana lives in "
            "Porto.\nGuess: She lives in {answer} {context}\nEvaluation: ");
  item.clear_context();
  EXPECT_EQ(PaperGraderUserPrompt(item),
            "Question: Which city does Ana live in?\nAnswer: Porto\nContext: \nGuess: She lives "
            "in {answer} {context}\nEvaluation: ");
  const LlmJudgeProtocol p = PaperGraderProtocol();
  EXPECT_EQ(p.kind, "paper");
  EXPECT_EQ(p.version, "v1");
  EXPECT_TRUE(absl::StartsWith(p.system_prompt, "You are given a question, the answer, and the "
                                                "context that the question came from.\n"));
  EXPECT_TRUE(absl::EndsWith(p.system_prompt, "Guess: Golden Gate\nEvaluation: Correct"));
  const LlmGraderOptions d = PaperGraderDefaults();
  EXPECT_EQ(d.seed, 42);
  EXPECT_EQ(d.max_tokens, 10);
  // Options parse as for llm, over the paper defaults, and errors name the kind.
  google::protobuf::Struct s;
  (*s.mutable_fields())["model"].set_string_value("gpt-4o-2024-08-06");
  absl::StatusOr<LlmGraderOptions> o = ParseLlmGraderOptions(s, "paper", d);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->seed, 42);
  EXPECT_EQ(o->max_tokens, 10);
  EXPECT_EQ(o->model, "gpt-4o-2024-08-06");
  (*s.mutable_fields())["temperature"].set_number_value(0.7);
  EXPECT_EQ(ParseLlmGraderOptions(s, "paper", d).status().message(),
            "grader \"paper\": options.temperature: expected 0 (the judge always grades at "
            "temperature 0)");
}

TEST(LlmGraderOptionsTest, ParsesAndChecksOptions) {
  google::protobuf::Struct s;
  auto& f = *s.mutable_fields();
  f["base_url"].set_string_value("http://127.0.0.1:9/v1/");
  f["model"].set_string_value("gpt-4o-2024-08-06");
  f["seed"].set_number_value(7);
  f["concurrency"].set_string_value("16");
  f["requests_per_minute"].set_number_value(500);
  f["api_key_file"].set_string_value("/run/secrets/judge");
  absl::StatusOr<LlmGraderOptions> o = ParseLlmGraderOptions(s);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->base_url, "http://127.0.0.1:9/v1");
  EXPECT_EQ(o->model, "gpt-4o-2024-08-06");
  EXPECT_EQ(o->seed, 7);
  EXPECT_EQ(o->concurrency, 16);
  EXPECT_EQ(o->requests_per_minute, 500);
  EXPECT_EQ(o->api_key_file, "/run/secrets/judge");
  EXPECT_EQ(o->api_key_env, "OPENAI_API_KEY");
  EXPECT_EQ(o->max_attempts, 3);

  f["concurrency"].set_number_value(0);
  EXPECT_EQ(ParseLlmGraderOptions(s).status().message(),
            "grader \"llm\": options.concurrency: expected an integer in [1, 256]");
  f["concurrency"].set_number_value(2.5);
  EXPECT_EQ(ParseLlmGraderOptions(s).status().code(), absl::StatusCode::kInvalidArgument);
  f["concurrency"].set_number_value(2);
  f["base_url"].set_string_value("judge.example.com");
  EXPECT_EQ(ParseLlmGraderOptions(s).status().message(),
            "grader \"llm\": options.base_url: expected an http(s) URL, got \"judge.example.com\"");
}

TEST(LlmGraderTest, SendsTheRubricAtTemperatureZeroWithTheSeed) {
  Fixture f(ContainsJudge);
  EXPECT_EQ(f.grader->id(), "llm/judge-1/r1");
  v1::JudgeItem item = Item("Teal", "Her favourite colour is \"teal\".");
  item.set_answer_before("Orange");
  item.set_context("Ada Quill is a fictional painter.");
  Verdict v = f.grader->Grade(item);
  EXPECT_EQ(v.kind, VerdictKind::kCorrect);
  EXPECT_EQ(v.reason, "compared");
  EXPECT_EQ(v.grader, "llm/judge-1/r1");

  ASSERT_EQ(f.transport->requests().size(), 1u);
  const providers::HttpRequest r = f.transport->requests()[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "http://judge.test/v1/chat/completions");
  Json body = Json::parse(r.body);
  EXPECT_EQ(body["model"], "judge-1");
  EXPECT_EQ(body["temperature"], 0);
  EXPECT_EQ(body["seed"], 42);
  EXPECT_EQ(body["max_tokens"], 200);
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][0]["content"], std::string(LlmRubricSystemPrompt()));
  EXPECT_THAT(std::string(LlmRubricSystemPrompt()),
              HasSubstr("exactly one of:\nCORRECT: "));
  // Texts go in as JSON strings, one labelled line each.
  EXPECT_EQ(body["messages"][1]["content"],
            "QUESTION: \"What is the favourite colour of Ada Quill?\"\n"
            "REFERENCE: \"Teal\"\n"
            "PRE-UPDATE ANSWER: \"Orange\"\n"
            "CONTEXT: \"Ada Quill is a fictional painter.\"\n"
            "ANSWER: \"Her favourite colour is \\\"teal\\\".\"\n");
  bool authorized = false;
  for (const auto& [name, value] : r.headers) {
    if (name == "Authorization") authorized = value == absl::StrCat("Bearer ", kKey);
  }
  EXPECT_TRUE(authorized);
}

TEST(LlmGraderTest, DecidesWithoutACallWhenThereIsNothingToAsk) {
  Fixture f(ContainsJudge);
  v1::JudgeItem missing = Item("Teal", "Teal");
  missing.set_unavailable_reason("no recorded response");
  Verdict v = f.grader->Grade(missing);
  EXPECT_EQ(v.kind, VerdictKind::kNoAnswer);
  EXPECT_EQ(v.reason, "no recorded response");
  v = f.grader->Grade(Item("Teal", " \n "));
  EXPECT_EQ(v.kind, VerdictKind::kIncorrect);
  EXPECT_EQ(v.reason, "empty answer");
  v = f.grader->Grade(Item("", "Teal"));
  EXPECT_EQ(v.kind, VerdictKind::kError);
  EXPECT_EQ(v.reason, "no reference answer");
  EXPECT_EQ(f.transport->requests().size(), 0u);
}

TEST(LlmGraderTest, RetriesAnUnparseableReplyThenSucceeds) {
  Fixture f([](const providers::HttpRequest&, int call) {
    return call == 1 ? Chat("The answer looks right to me.")
                     : Chat(R"({"verdict": "ABSTAINED", "reason": "says it does not know"})");
  });
  Verdict v = f.grader->Grade(Item("Teal", "I don't know."));
  EXPECT_EQ(v.kind, VerdictKind::kAbstained);
  EXPECT_EQ(v.reason, "says it does not know");
  EXPECT_EQ(f.transport->requests().size(), 2u);
  // Both calls were billed (10 + 5 tokens each in Chat()).
  EXPECT_EQ(v.prompt_tokens, 20u);
  EXPECT_EQ(v.completion_tokens, 10u);
  EXPECT_EQ(f.grader->price_key(), (std::pair<std::string, std::string>{"openai", "judge-1"}));
}

TEST(LlmGraderTest, UnparseableRepliesBecomeErrorVerdictsNotWrongAnswers) {
  Fixture f([](const providers::HttpRequest&, int) {
    return Chat(R"({"verdict": "mostly right"})");
  });
  Verdict v = f.grader->Grade(Item("Teal", "teal-ish"));
  EXPECT_EQ(v.kind, VerdictKind::kError);
  EXPECT_EQ(v.reason,
            "unparseable judge reply after 3 attempts: verdict \"mostly right\" is not one of "
            "CORRECT, INCORRECT, STALE, ABSTAINED in \"{\"verdict\": \"mostly right\"}\"");
  EXPECT_EQ(f.transport->requests().size(), 3u);  // max_attempts, then no more

  // A reply with no choices at all is unparseable too.
  LlmGraderOptions once;
  once.max_attempts = 1;
  Fixture g([](const providers::HttpRequest&, int) { return Reply(200, "{\"choices\": []}"); },
            once);
  v = g.grader->Grade(Item("Teal", "teal"));
  EXPECT_EQ(v.kind, VerdictKind::kError);
  EXPECT_THAT(v.reason, HasSubstr("after 1 attempt: no JSON object"));
}

TEST(LlmGraderTest, RejectedItemIsAnErrorVerdictOtherFailuresFailTheBatch) {
  // 400 for one item: that item is an error, the others are graded.
  Fixture f([](const providers::HttpRequest& r, int call) -> absl::StatusOr<providers::HttpResponse> {
    if (absl::StrContains(UserPrompt(r), "too long")) {
      return Reply(400, R"({"error": {"message": "context length exceeded", "type": "invalid_request_error", "code": "context_length_exceeded"}})");
    }
    return ContainsJudge(r, call);
  });
  v1::JudgeItem a = Item("Teal", "teal"), b = Item("Teal", "too long"), c = Item("Teal", "red");
  std::vector<const v1::JudgeItem*> items = {&a, &b, &c};
  absl::StatusOr<std::vector<Verdict>> v = f.grader->GradeAll(items, {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)[0].kind, VerdictKind::kCorrect);
  EXPECT_EQ((*v)[1].kind, VerdictKind::kError);
  EXPECT_THAT((*v)[1].reason, HasSubstr("judge call rejected"));
  EXPECT_EQ((*v)[2].kind, VerdictKind::kIncorrect);

  // 401 (a bad key, echoed by the provider): the batch fails, key redacted.
  Fixture g([](const providers::HttpRequest&, int) {
    return Reply(401, absl::StrCat(R"({"error": {"message": "Incorrect API key provided: )", kKey,
                                   R"(", "type": "invalid_request_error", "code": "invalid_api_key"}})"));
  });
  absl::StatusOr<std::vector<Verdict>> failed = g.grader->GradeAll(items, {});
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("grader llm/judge-1/r1: "));
  EXPECT_THAT(std::string(failed.status().message()), Not(HasSubstr(kKey)));
  // Grade() cannot fail: an error verdict, also without the key.
  Verdict one = g.grader->Grade(a);
  EXPECT_EQ(one.kind, VerdictKind::kError);
  EXPECT_THAT(one.reason, Not(HasSubstr(kKey)));
}

TEST(LlmGraderTest, MissingKeyFailsGradingNotCreation) {
  LlmGraderOptions o;
  o.api_key_env = "FTB_TEST_LLM_JUDGE_KEY_UNSET";
  unsetenv(o.api_key_env.c_str());
  auto g = LlmGrader::Create(o);
  ASSERT_TRUE(g.ok()) << g.status();
  v1::JudgeItem a = Item("Teal", "teal");
  std::vector<const v1::JudgeItem*> items = {&a};
  absl::StatusOr<std::vector<Verdict>> v = (*g)->GradeAll(items, {});
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(v.status().message(),
            "grader \"llm\": environment variable FTB_TEST_LLM_JUDGE_KEY_UNSET "
            "(options.api_key_env) is not set on this judge worker: it must hold the API key");
  EXPECT_EQ((*g)->Grade(a).kind, VerdictKind::kError);
}

TEST(LlmGraderTest, GradesConcurrentlyUpToTheLimitAndKeepsItemOrder) {
  LlmGraderOptions o;
  o.concurrency = 4;
  Fixture f(ContainsJudge, o, absl::Milliseconds(20));
  std::vector<v1::JudgeItem> storage;
  for (int i = 0; i < 24; ++i) {
    storage.push_back(Item(absl::StrCat(100 + i), i % 3 == 0 ? "no idea" : absl::StrCat(100 + i),
                           absl::StrCat("q", i)));
  }
  std::vector<const v1::JudgeItem*> items;
  for (const auto& item : storage) items.push_back(&item);
  std::atomic<int> seen{0};
  Grader::GradeAllOptions options;
  options.on_verdict = [&](size_t, const Verdict&) { ++seen; };
  absl::StatusOr<std::vector<Verdict>> v = f.grader->GradeAll(items, options);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->size(), 24u);
  for (int i = 0; i < 24; ++i) {
    EXPECT_EQ((*v)[i].kind, i % 3 == 0 ? VerdictKind::kIncorrect : VerdictKind::kCorrect) << i;
  }
  EXPECT_EQ(seen.load(), 24);
  EXPECT_EQ(f.transport->requests().size(), 24u);
  EXPECT_LE(f.transport->max_in_flight(), 4);
  EXPECT_GE(f.transport->max_in_flight(), 2);
}

TEST(LlmGraderTest, CancelledBatchStops) {
  Fixture f(ContainsJudge);
  v1::JudgeItem a = Item("Teal", "teal");
  std::vector<const v1::JudgeItem*> items = {&a, &a, &a};
  Grader::GradeAllOptions options;
  options.cancelled = [] { return true; };
  EXPECT_EQ(f.grader->GradeAll(items, options).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(f.transport->requests().size(), 0u);
}

// --- the verdict cache ------------------------------------------------------------

class VerdictCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/verdicts-", getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  size_t Files() {
    size_t n = 0;
    if (!std::filesystem::exists(dir_)) return 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
      if (e.is_regular_file()) ++n;
    }
    return n;
  }
  std::string dir_;
};

TEST_F(VerdictCacheTest, KeyCoversTheTextsAndTheGrader) {
  v1::JudgeItem a = Item("Teal", "teal");
  const std::string k = VerdictCache::Key(a, "llm/judge-1/r1");
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(VerdictCache::Key(a, "llm/judge-1/r1"), k);
  v1::JudgeItem other_cell = a;
  other_cell.set_cell_id("cell-b");
  other_cell.set_question_id("q9");
  EXPECT_EQ(VerdictCache::Key(other_cell, "llm/judge-1/r1"), k);  // same texts, same verdict
  EXPECT_NE(VerdictCache::Key(a, "llm/judge-2/r1"), k);            // another model
  EXPECT_NE(VerdictCache::Key(a, "llm/judge-1/r2"), k);            // another rubric
  for (auto change : std::vector<std::function<void(v1::JudgeItem&)>>{
           [](v1::JudgeItem& i) { i.set_prompt("Other?"); },
           [](v1::JudgeItem& i) { i.set_reference("Red"); },
           [](v1::JudgeItem& i) { i.set_answer_before("Teal"); },
           [](v1::JudgeItem& i) { i.set_context("ctx"); },
           [](v1::JudgeItem& i) { i.set_answer("red"); }}) {
    v1::JudgeItem b = a;
    change(b);
    EXPECT_NE(VerdictCache::Key(b, "llm/judge-1/r1"), k);
  }
}

TEST_F(VerdictCacheTest, SecondGradingMakesNoCalls) {
  Fixture f(ContainsJudge);
  VerdictCache cache(dir_);
  std::vector<v1::JudgeItem> storage = {Item("Teal", "teal", "q1"), Item("7", "seven", "q2"),
                                        Item("Rome", "It is Rome.", "q3")};
  std::vector<const v1::JudgeItem*> items;
  for (const auto& item : storage) items.push_back(&item);

  CachedGradeStats first;
  auto v1 = GradeWithCache(*f.grader, &cache, items, {}, &first);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(f.transport->requests().size(), 3u);
  EXPECT_EQ(first.hits, 0u);
  EXPECT_EQ(first.stored, 3u);
  EXPECT_EQ(Files(), 3u);  // one file per verdict, no temporary files left

  CachedGradeStats second;
  auto v2 = GradeWithCache(*f.grader, &cache, items, {}, &second);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(f.transport->requests().size(), 3u);  // zero new calls
  EXPECT_EQ(second.hits, 3u);
  EXPECT_EQ(second.graded, 0u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*v2)[i].kind, (*v1)[i].kind);
    EXPECT_EQ((*v2)[i].reason, (*v1)[i].reason);
    EXPECT_EQ((*v2)[i].grader, "llm/judge-1/r1");
    EXPECT_EQ((*v1)[i].prompt_tokens, 10u);  // paid for once...
    EXPECT_EQ((*v2)[i].prompt_tokens, 0u);   // ...and not again
  }
  EXPECT_EQ((*v2)[1].kind, VerdictKind::kIncorrect);

  // Another judge model shares the directory but not the verdicts.
  LlmGraderOptions o;
  o.model = "judge-2";
  Fixture g(ContainsJudge, o);
  ASSERT_TRUE(GradeWithCache(*g.grader, &cache, items, {}).ok());
  EXPECT_EQ(g.transport->requests().size(), 3u);
  EXPECT_EQ(Files(), 6u);
}

TEST_F(VerdictCacheTest, ErrorsAreNotCachedAndABrokenFileIsAMiss) {
  std::atomic<bool> garble{true};
  Fixture f([&](const providers::HttpRequest& r, int call) -> absl::StatusOr<providers::HttpResponse> {
    if (garble) return Chat("hmm");
    return ContainsJudge(r, call);
  });
  VerdictCache cache(dir_);
  v1::JudgeItem a = Item("Teal", "teal");
  std::vector<const v1::JudgeItem*> items = {&a};
  auto v = GradeWithCache(*f.grader, &cache, items, {});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)[0].kind, VerdictKind::kError);
  EXPECT_EQ(Files(), 0u);
  garble = false;
  v = GradeWithCache(*f.grader, &cache, items, {});  // asked again
  EXPECT_EQ((*v)[0].kind, VerdictKind::kCorrect);
  EXPECT_EQ(f.transport->requests().size(), 4u);  // 3 garbled attempts + 1
  const std::string path = cache.PathOf(VerdictCache::Key(a, f.grader->id()));
  ASSERT_TRUE(std::filesystem::exists(path));
  { std::ofstream(path) << "{\"verdict\": "; }
  EXPECT_FALSE(cache.Lookup(VerdictCache::Key(a, f.grader->id())).has_value());
  v = GradeWithCache(*f.grader, &cache, items, {});
  EXPECT_EQ(f.transport->requests().size(), 5u);
  EXPECT_TRUE(cache.Lookup(VerdictCache::Key(a, f.grader->id())).has_value());  // rewritten
}

TEST_F(VerdictCacheTest, VerdictsPaidForBeforeABatchFailsAreKept) {
  LlmGraderOptions o;
  o.concurrency = 1;
  o.http_max_attempts = 1;
  Fixture f([](const providers::HttpRequest& r, int call) -> absl::StatusOr<providers::HttpResponse> {
    if (call == 3) return absl::UnavailableError("connection reset by peer");
    return ContainsJudge(r, call);
  }, o);
  VerdictCache cache(dir_);
  std::vector<v1::JudgeItem> storage = {Item("1", "1", "q1"), Item("2", "2", "q2"),
                                        Item("3", "3", "q3"), Item("4", "4", "q4")};
  std::vector<const v1::JudgeItem*> items;
  for (const auto& item : storage) items.push_back(&item);
  auto failed = GradeWithCache(*f.grader, &cache, items, {});
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Files(), 2u);
  // The retried task pays only for what was not answered.
  CachedGradeStats stats;
  auto v = GradeWithCache(*f.grader, &cache, items, {}, &stats);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.graded, 2u);
  EXPECT_EQ(f.transport->requests().size(), 5u);
}

TEST_F(VerdictCacheTest, GradersThatCostNothingAreNotCached) {
  // The default GradeAll (rules) goes straight through.
  class Constant : public Grader {
   public:
    std::string_view kind() const override { return "const"; }
    std::string_view id() const override { return "const/1"; }
    Verdict Grade(const v1::JudgeItem&) const override {
      return Verdict{VerdictKind::kCorrect, "always", "const/1"};
    }
  } constant;
  VerdictCache cache(dir_);
  v1::JudgeItem a = Item("Teal", "teal");
  std::vector<const v1::JudgeItem*> items = {&a};
  CachedGradeStats stats;
  auto v = GradeWithCache(constant, &cache, items, {}, &stats);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)[0].kind, VerdictKind::kCorrect);
  EXPECT_EQ(stats.graded, 1u);
  EXPECT_EQ(Files(), 0u);
}

}  // namespace
}  // namespace ftb::judge
