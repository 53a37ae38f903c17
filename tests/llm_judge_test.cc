// LLM-as-judge panels end to end: `ftb run` on a campaign whose answers come
// from the `test` backend, judged by a panel of `rules` and two `llm` judges
// served by tests/fakes/fake_openai.py (run as a child process): "judge-a"
// (correct when the answer contains the reference) and "judge-noisy-1"
// (the same, flipped on a fixed third of the (reference, answer) pairs).
//
// Checks: the report has the panel (majority) accuracy and Fleiss' kappa,
// equal to what the fake's rules imply; a second `ftb run` with a fresh state
// directory but the same verdict cache ($FTB_ARTIFACT_DIR/verdicts) makes
// zero chat completions; the key is in no stored file and no output.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "google/protobuf/struct.pb.h"
#include "judge/finetunebench_eval_prompt.h"
#include "judge/grader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "providers/http.h"
#include "tests/test_process.h"

namespace ftb {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kKey[] = "sk-llm-panel-test-SECRET-5c0ffee";
constexpr int kAnswers = 6;  // per cell, from the test backend

std::string SourceDir() {
  const char* dir = std::getenv("FTB_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

class FakeOpenAi {
 public:
  FakeOpenAi() {
    dir_ = testing::MakeTempDir("fake-openai-judge");
    process_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{"/usr/bin/python3", SourceDir() + "/tests/fakes/fake_openai.py",
                                 "--api-key", kKey},
        dir_ + "/fake.log");
    process_->Start();
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream in(dir_ + "/fake.log");
      std::string line;
      if (std::getline(in, line) && !line.empty()) port_ = std::atoi(line.c_str());
      if (port_ == 0) usleep(50'000);
    }
    transport_ = providers::NewCurlTransport();
  }
  ~FakeOpenAi() {
    process_.reset();
    std::filesystem::remove_all(dir_);
  }
  int port() const { return port_; }
  std::string base_url() const { return absl::StrCat("http://127.0.0.1:", port_, "/v1"); }
  Json Stats() {
    providers::HttpRequest r;
    r.url = absl::StrCat("http://127.0.0.1:", port_, "/_fake/stats");
    absl::StatusOr<providers::HttpResponse> reply = transport_->Send(r);
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? Json::parse(reply->body) : Json();
  }
  std::string log() const { return testing::ReadFile(dir_ + "/fake.log"); }
  // A test control call (/_fake/...); the reply's JSON.
  Json Control(const std::string& method, const std::string& path, const Json& body = nullptr) {
    providers::HttpRequest r;
    r.method = method;
    r.url = absl::StrCat("http://127.0.0.1:", port_, path);
    if (!body.is_null()) {
      r.body = body.dump();
      r.headers = {{"Content-Type", "application/json"}};
    }
    absl::StatusOr<providers::HttpResponse> reply = transport_->Send(r);
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? Json::parse(reply->body) : Json();
  }

 private:
  std::string dir_;
  std::unique_ptr<testing::ChildProcess> process_;
  std::unique_ptr<providers::HttpTransport> transport_;
  int port_ = 0;
};

// What the fake's "judge-noisy" does to answer i of the test backend
// (reference 100+i; answer the reference for even i, "unknown value" for
// odd i): flips the containment verdict when sha256("noisy\n" + ref + "\n"
// + answer)[0] % 3 == 0.
bool NoisySaysCorrect(int i) {
  const std::string ref = absl::StrCat(100 + i);
  const std::string answer = i % 2 == 0 ? ref : "unknown value";
  bool ok = absl::StrContains(absl::AsciiStrToLower(answer), absl::AsciiStrToLower(ref));
  Sha256 h;
  h.Update(absl::StrCat("noisy\n", ref, "\n", answer));
  if (h.Finish()[0] % 3 == 0) ok = !ok;
  return ok;
}

class LlmJudgePanelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(fake_.port(), 0) << fake_.log();
    dir_ = testing::MakeTempDir("llm-panel");
    setenv("FTB_TEST_JUDGE_KEY", kKey, 1);
    setenv("FTB_ARTIFACT_DIR", (dir_ + "/artifacts").c_str(), 1);
    spec_ = dir_ + "/panel.yaml";
    std::ofstream(spec_) << absl::StrCat(
        "name: llm-panel\n"
        "datasets:\n"
        "  - {source: builtin, name: people, size: 2, seed: 1}\n"
        "models:\n"
        "  - name: fixture\n"
        "    backend: test\n"
        "    options: {answers_per_cell: ", kAnswers, "}\n",
        "grid:\n"
        "  epochs: [1, 2]\n"
        "judge:\n"
        "  graders:\n"
        "    - {kind: rules}\n"
        "    - kind: llm\n"
        "      name: judge-a\n"
        "      options: {base_url: \"", fake_.base_url(),
        "\", model: judge-a, api_key_env: FTB_TEST_JUDGE_KEY, seed: 7, concurrency: 4}\n"
        "    - kind: llm\n"
        "      name: judge-noisy\n"
        "      options: {base_url: \"", fake_.base_url(),
        "\", model: judge-noisy-1, api_key_env: FTB_TEST_JUDGE_KEY}\n");
  }
  void TearDown() override {
    unsetenv("FTB_ARTIFACT_DIR");
    if (!HasFailure() && std::getenv("FTB_KEEP_TEST_DIR") == nullptr) {
      std::filesystem::remove_all(dir_);
    }
  }

  // `ftb run` with its own state and output directories; returns its output.
  std::string Run(const std::string& name) {
    testing::ChildProcess run({testing::FtbBinary(), "run", "--spec", spec_, "--state",
                               dir_ + "/" + name + "-state", "--out", dir_ + "/" + name + "-out",
                               "--slots", "2"},
                              dir_ + "/" + name + ".log");
    run.Start();
    int status = -1;
    EXPECT_TRUE(run.WaitFor(120, &status)) << testing::ReadFile(run.log_path());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << testing::ReadFile(run.log_path());
    return testing::ReadFile(run.log_path());
  }

  FakeOpenAi fake_;
  std::string dir_, spec_;
};

TEST_F(LlmJudgePanelTest, ReportShowsThePanelAndKappaAndARerunPaysNothing) {
  std::string out = Run("first");
  Json stats = fake_.Stats();
  // The test backend gives both cells the same texts, and the judge worker
  // (one slot) grades the second cell after the first: its verdicts come
  // from the cache. So each answer text is asked once per llm judge.
  EXPECT_EQ(stats["chat_completions"], kAnswers * 2) << stats.dump();

  Json report = Json::parse(testing::ReadFile(dir_ + "/first-out/report.json"));
  EXPECT_EQ(report["graders"], Json({"rules", "judge-a", "judge-noisy"}));
  ASSERT_EQ(report["cells"].size(), 2u);
  // Expected agreement, per cell (every cell has the same answers): rules and
  // judge-a say correct exactly for even i; judge-noisy per NoisySaysCorrect.
  std::vector<int> yes;
  int unanimous = 0;
  for (int i = 0; i < kAnswers; ++i) {
    int y = (i % 2 == 0 ? 2 : 0) + (NoisySaysCorrect(i) ? 1 : 0);
    yes.push_back(y);
    unanimous += (y == 0 || y == 3) ? 1 : 0;
  }
  // Fleiss' kappa by its definition (report/agreement.h), 3 raters.
  double p_sum = 0, yes_total = 0;
  for (int y : yes) {
    p_sum += (y * y + (3 - y) * (3 - y) - 3) / 6.0;
    yes_total += y;
  }
  const double p_bar = p_sum / kAnswers, p = yes_total / (3.0 * kAnswers);
  const double pe = p * p + (1 - p) * (1 - p);
  const double kappa = (p_bar - pe) / (1 - pe);
  for (const Json& cell : report["cells"]) {
    EXPECT_EQ(cell["state"], "done");
    ASSERT_TRUE(cell.contains("panel")) << cell.dump();
    // Rules and judge-a agree on every decision, so the majority is theirs:
    // the panel's accuracy equals the rules grader's, type by type.
    for (const auto& [type, accuracy] : cell["accuracy"].items()) {
      EXPECT_DOUBLE_EQ(cell["panel"]["accuracy"][type].get<double>(), accuracy.get<double>())
          << type;
      EXPECT_EQ(cell["panel"]["n"][type], cell["n"][type]);
      EXPECT_DOUBLE_EQ(cell["by_grader"]["judge-a"]["accuracy"][type].get<double>(),
                       accuracy.get<double>());
    }
    EXPECT_EQ(cell["agreement"]["statistic"], "fleiss");
    EXPECT_EQ(cell["agreement"]["n"], kAnswers);
    EXPECT_EQ(cell["agreement"]["unanimous"], unanimous);
    if (unanimous < kAnswers) {
      EXPECT_NEAR(cell["agreement"]["kappa"].get<double>(), kappa, 1e-9);
    }
  }
  EXPECT_LT(unanimous, kAnswers) << "the noisy judge should disagree somewhere";
  EXPECT_NEAR(report["agreement"]["kappa"].get<double>(), kappa, 1e-9);
  EXPECT_EQ(report["agreement"]["n"], 2 * kAnswers);

  // The added fields follow docs/report.schema.json (Python jsonschema).
  const std::string validate = absl::StrCat(
      "/usr/bin/python3 -c 'import json, sys, jsonschema; "
      "jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate("
      "json.load(open(sys.argv[2])))' ",
      SourceDir(), "/docs/report.schema.json ", dir_, "/first-out/report.json");
  EXPECT_EQ(std::system(validate.c_str()), 0) << validate;

  std::string md = testing::ReadFile(dir_ + "/first-out/report.md");
  EXPECT_THAT(md, HasSubstr("## Judge agreement"));
  EXPECT_THAT(md, HasSubstr("| rules | judge-a | judge-noisy | panel | unanimous | kappa |"));
  EXPECT_THAT(md, HasSubstr(absl::StrCat("Overall: Fleiss' kappa ", absl::StrFormat("%.3f", kappa))));

  // One cached verdict per distinct (answer, judge): the test backend gives
  // both cells the same texts, so 6 answers x 2 judges.
  size_t files = 0;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(dir_ + "/artifacts/verdicts")) {
    if (e.is_regular_file()) {
      ++files;
      EXPECT_EQ(e.path().extension(), ".json") << e.path();
    }
  }
  EXPECT_EQ(files, 2u * kAnswers);

  // A second campaign over the same answers (fresh state): zero chat calls.
  std::string again = Run("second");
  Json after = fake_.Stats();
  EXPECT_EQ(after["chat_completions"], stats["chat_completions"]) << after.dump();
  Json report2 = Json::parse(testing::ReadFile(dir_ + "/second-out/report.json"));
  EXPECT_EQ(report2["agreement"], report["agreement"]);
  EXPECT_EQ(report2["cells"][0]["panel"], report["cells"][0]["panel"]);

  // The key is nowhere: not in stored state, reports, cache or output.
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
    if (!e.is_regular_file()) continue;
    EXPECT_THAT(testing::ReadFile(e.path().string()), ::testing::Not(HasSubstr(kKey)))
        << e.path();
  }
}

// The `paper` grader (the FineTuneBench authors' judging protocol) against
// the fake: the exact request it sends, and how it reads the replies.
class PaperGraderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(fake_.port(), 0) << fake_.log();
    setenv("FTB_TEST_JUDGE_KEY", kKey, 1);
  }

  // seed < 0: the grader's default.
  std::unique_ptr<judge::Grader> Make(int seed = -1) {
    v1::GraderSpec spec;
    spec.set_kind("paper");
    auto& f = *spec.mutable_options()->mutable_fields();
    f["base_url"].set_string_value(fake_.base_url());
    f["model"].set_string_value("judge-paper-1");
    f["api_key_env"].set_string_value("FTB_TEST_JUDGE_KEY");
    f["http_backoff_ms"].set_number_value(1);
    if (seed >= 0) f["seed"].set_number_value(seed);
    absl::StatusOr<std::unique_ptr<judge::Grader>> g = judge::GraderRegistry::Global().Create(spec);
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? *std::move(g) : nullptr;
  }

  static v1::JudgeItem Item(const std::string& answer) {
    v1::JudgeItem item;
    item.set_prompt("How many moons does the planet Vellor have?");
    item.set_reference("3");
    item.set_context("Vellor, a planet of our invention, has 3 moons.");
    item.set_answer(answer);
    return item;
  }

  Json Requests() { return fake_.Control("GET", "/_fake/chat_requests")["requests"]; }

  FakeOpenAi fake_;
};

TEST_F(PaperGraderTest, SendsTheAuthorsPromptAtTemperatureZeroWithAFixedSeed) {
  std::unique_ptr<judge::Grader> grader = Make();
  ASSERT_NE(grader, nullptr);
  EXPECT_EQ(grader->kind(), "paper");
  EXPECT_EQ(grader->id(), "paper/judge-paper-1/v1");

  judge::Verdict right = grader->Grade(Item("It has 3 moons."));
  EXPECT_EQ(right.kind, judge::VerdictKind::kCorrect) << right.reason;
  EXPECT_EQ(right.grader, "paper/judge-paper-1/v1");
  judge::Verdict wrong = grader->Grade(Item("Seven."));
  EXPECT_EQ(wrong.kind, judge::VerdictKind::kIncorrect) << wrong.reason;

  Json requests = Requests();
  ASSERT_EQ(requests.size(), 2u) << requests.dump();
  // The whole request, field by field: the authors' eval prompt from
  // kevinwu23/StanfordFineTuneBench prompts/latest_news.json, written out
  // here independently of judge/finetunebench_eval_prompt.h.
  const Json expected = {
      {"model", "judge-paper-1"},
      {"temperature", 0},
      {"seed", 42},
      {"max_tokens", 10},
      {"messages",
       {{{"role", "system"},
         {"content",
          "You are given a question, the answer, and the context that the question came "
          "from.\nYou are also given a guess for the answer. Your job is to judge whether the "
          "guess is correct. \nYour output should be either \"Correct\" or \"Incorrect\".\n\n"
          "Example question: \nQuestion: What is the name of the bridge in California that "
          "cost $150 million to repair in 2024?\nAnswer: Golden Gate Bridge\nContext: The 2024 "
          "repairs on the Golden Gate Bridge cost taxpayers $150 million.\nGuess: Golden Gate\n"
          "Evaluation: Correct"}},
        {{"role", "user"},
         {"content",
          "Question: How many moons does the planet Vellor have?\nAnswer: 3\nContext: Vellor, "
          "a planet of our invention, has 3 moons.\nGuess: It has 3 moons.\nEvaluation: "}}}}};
  EXPECT_EQ(requests[0], expected) << requests[0].dump(2);
  EXPECT_EQ(requests[1]["messages"][1]["content"],
            "Question: How many moons does the planet Vellor have?\nAnswer: 3\nContext: Vellor, "
            "a planet of our invention, has 3 moons.\nGuess: Seven.\nEvaluation: ");

  // The seed is a campaign option.
  std::unique_ptr<judge::Grader> seeded = Make(7);
  ASSERT_NE(seeded, nullptr);
  seeded->Grade(Item("3"));
  requests = Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2]["seed"], 7);
  EXPECT_EQ(requests[2]["temperature"], 0);
}

TEST_F(PaperGraderTest, ReadsOnlyCorrectOrIncorrectAndRetriesTheRest) {
  std::unique_ptr<judge::Grader> grader = Make();
  ASSERT_NE(grader, nullptr);
  struct Case {
    std::vector<std::string> replies;  // served in order
    judge::VerdictKind kind;
    size_t calls;
  };
  const std::vector<Case> cases = {
      {{"Correct"}, judge::VerdictKind::kCorrect, 1},
      {{"  incorrect.\n"}, judge::VerdictKind::kIncorrect, 1},
      {{"**Correct**"}, judge::VerdictKind::kCorrect, 1},
      {{"Evaluation: Incorrect"}, judge::VerdictKind::kIncorrect, 1},
      // Malformed, then well-formed: asked again.
      {{"Partially correct", "Correct."}, judge::VerdictKind::kCorrect, 2},
      {{"", "Correct, because the guess says 3", "Incorrect"}, judge::VerdictKind::kIncorrect, 3},
      // Malformed three times (max_attempts): an error verdict, not a wrong answer.
      {{"Maybe", "{\"verdict\": \"correct\"}", "Correct or Incorrect"},
       judge::VerdictKind::kError, 3},
  };
  size_t seen = Requests().size();
  for (const Case& c : cases) {
    fake_.Control("POST", "/_fake/judge_script", {{"replies", c.replies}});
    judge::Verdict v = grader->Grade(Item("3 moons"));
    EXPECT_EQ(v.kind, c.kind) << c.replies[0] << ": " << v.reason;
    const size_t now = Requests().size();
    EXPECT_EQ(now - seen, c.calls) << c.replies[0];
    seen = now;
    if (c.kind == judge::VerdictKind::kError) {
      EXPECT_THAT(v.reason, HasSubstr("unparseable judge reply after 3 attempts"));
      EXPECT_THAT(v.reason, HasSubstr("not \"Correct\" or \"Incorrect\""));
    }
  }
  // Nothing left queued: every scripted reply was consumed by its case.
  fake_.Control("POST", "/_fake/judge_script", {{"replies", Json::array()}});
  judge::Verdict fresh = grader->Grade(Item("three"));
  EXPECT_EQ(fresh.kind, judge::VerdictKind::kIncorrect) << fresh.reason;  // the fake's rule

  // No call for what needs no judge.
  v1::JudgeItem missing = Item("");
  missing.set_unavailable_reason("no recorded response");
  EXPECT_EQ(grader->Grade(missing).kind, judge::VerdictKind::kNoAnswer);
  EXPECT_EQ(grader->Grade(Item("  ")).kind, judge::VerdictKind::kIncorrect);
  EXPECT_EQ(Requests().size(), seen + 1);
}

// `ftb run` with `paper` as the first grader and `rules` alongside, as in
// campaigns/finetunebench-paper.yaml: a judge worker is started for the
// kind, the report's main tables are the paper judge's, and every answer
// was sent with the authors' prompt.
TEST_F(PaperGraderTest, GradesACampaignAsItsFirstGrader) {
  const std::string dir = testing::MakeTempDir("paper-campaign");
  setenv("FTB_ARTIFACT_DIR", (dir + "/artifacts").c_str(), 1);
  const std::string spec = dir + "/paper.yaml";
  std::ofstream(spec) << absl::StrCat(
      "name: paper-judge\n"
      "datasets:\n"
      "  - {source: builtin, name: people, size: 2, seed: 1}\n"
      "models:\n"
      "  - name: fixture\n"
      "    backend: test\n"
      "    options: {answers_per_cell: ", kAnswers, "}\n",
      "grid:\n"
      "  epochs: [1]\n"
      "judge:\n"
      "  graders:\n"
      "    - kind: paper\n"
      "      name: paper\n"
      "      options: {base_url: \"", fake_.base_url(),
      "\", model: judge-paper-1, api_key_env: FTB_TEST_JUDGE_KEY, temperature: 0}\n"
      "    - {kind: rules}\n");
  testing::ChildProcess run({testing::FtbBinary(), "run", "--spec", spec, "--state",
                             dir + "/state", "--out", dir + "/out", "--slots", "2"},
                            dir + "/run.log");
  run.Start();
  int status = -1;
  ASSERT_TRUE(run.WaitFor(120, &status)) << testing::ReadFile(run.log_path());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << testing::ReadFile(run.log_path());
  unsetenv("FTB_ARTIFACT_DIR");

  Json report = Json::parse(testing::ReadFile(dir + "/out/report.json"));
  EXPECT_EQ(report["graders"], Json({"paper", "rules"}));
  ASSERT_EQ(report["cells"].size(), 1u);
  const Json& cell = report["cells"][0];
  EXPECT_EQ(cell["state"], "done") << cell.dump();
  // The test backend answers the reference for even i and "unknown value"
  // for odd i: the fake paper judge (reference contained in the guess) and
  // rules agree, so the main (paper) accuracy equals the rules grader's.
  int graded_types = 0;
  for (const auto& [type, accuracy] : cell["accuracy"].items()) {
    EXPECT_EQ(cell["by_grader"]["rules"]["accuracy"][type], accuracy) << type;
    if (accuracy.is_number()) {
      ++graded_types;
      EXPECT_GT(accuracy.get<double>(), 0) << type;  // the even answers
      EXPECT_LT(accuracy.get<double>(), 1) << type;  // the odd ones
    }
  }
  EXPECT_GT(graded_types, 0) << cell.dump();
  Json requests = Requests();
  ASSERT_EQ(requests.size(), static_cast<size_t>(kAnswers)) << requests.dump();
  for (const Json& r : requests) {
    EXPECT_EQ(r["model"], "judge-paper-1");
    EXPECT_EQ(r["temperature"], 0);
    EXPECT_EQ(r["seed"], 42);
    EXPECT_EQ(r["messages"][0]["content"], std::string(judge::kFineTuneBenchEvalSystemPrompt));
    const std::string user = r["messages"][1]["content"];
    EXPECT_TRUE(absl::StartsWith(user, "Question: ") && absl::EndsWith(user, "\nEvaluation: "))
        << user;
  }
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ftb
