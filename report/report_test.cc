#include "report/report.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

#include "coordinator/scheduler.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "report/agreement.h"
#include "storage/memory_state_store.h"

namespace ftb::report {
namespace {

TEST(WilsonTest, KnownValues) {
  auto [lo, hi] = WilsonInterval(8, 10);
  EXPECT_NEAR(lo, 0.4902, 1e-4);
  EXPECT_NEAR(hi, 0.9433, 1e-4);
  auto [lo0, hi0] = WilsonInterval(0, 10);
  EXPECT_DOUBLE_EQ(lo0, 0);
  EXPECT_NEAR(hi0, 0.2775, 1e-4);
  EXPECT_EQ(WilsonInterval(0, 0), std::make_pair(0.0, 0.0));
}

// A campaign run through the real scheduler: two cells of one training run,
// answers judged by `rules`.
class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::CampaignSpec spec;
    spec.set_name("rep");
    auto* d = spec.add_datasets();
    d->set_name("people");
    d->set_label("people");
    d->set_source(v1::DATASET_SOURCE_BUILTIN);
    auto* m = spec.add_models();
    m->set_name("tiny");
    m->set_backend("local");
    spec.mutable_grid()->add_epochs(1);
    spec.mutable_grid()->add_epochs(5);
    spec.mutable_grid()->add_learning_rate_multiplier(1);
    spec.mutable_grid()->add_batch_size(8);
    spec.mutable_grid()->add_seed(0);
    spec.mutable_retry()->set_max_attempts(1);
    spec.mutable_retry()->set_lease_seconds(60);
    auto* g = spec.mutable_judge()->add_graders();
    g->set_kind("rules");
    g->set_name("rules");
    spec.mutable_judge()->set_batch_size(100);
    coordinator::Scheduler s(&store_, &clock_, &ids_);
    ASSERT_TRUE(s.Recover().ok());
    auto submitted =
        s.Submit(spec, {coordinator::DatasetSummary{"people", "ff", 150, 600, {"a note"}}}, "", "");
    ASSERT_TRUE(submitted.ok());
    id_ = submitted->campaign_id;
    for (auto [role, backend] : {std::pair{v1::WORKER_ROLE_TUNE, "local"},
                                 std::pair{v1::WORKER_ROLE_JUDGE, "rules"}}) {
      v1::RegisterWorkerRequest r;
      r.set_worker_id(backend);
      r.set_role(role);
      r.add_backends(backend);
      s.RegisterWorker(r);
    }
    v1::LeaseTasksRequest lease;
    lease.set_worker_id("local");
    lease.set_max_tasks(1);
    v1::TaskAssignment tune = s.Lease(lease)->tasks(0);
    v1::CompleteTasksRequest done;
    done.set_worker_id("local");
    auto* c = done.add_completions();
    c->set_task_id(tune.task_id());
    c->set_attempt(1);
    c->set_lease_token(tune.lease_token());
    for (const std::string& cell : tune.tune().cell_ids()) {
      auto* a = c->mutable_result()->add_answers();
      a->set_cell_id(cell);
      for (int q = 0; q < 10; ++q) {
        auto* item = a->add_items();
        item->set_question_type(q < 5 ? "memorization" : "rephrased");
        item->set_question_id(std::to_string(q));
        // Rephrased references are yes/no here (2 Yes, 3 No), so the set
        // gets the baselines; one memorization item carries a pre-update
        // answer, which makes `people` updated knowledge.
        item->set_reference(q < 5 ? "126" : (q < 7 ? "Yes" : "no."));
        if (q == 0) item->set_answer_before("125");
      }
    }
    ASSERT_TRUE(s.Complete(done).ok());
    lease.set_worker_id("rules");
    lease.set_max_tasks(10);
    auto judges = s.Lease(lease);
    ASSERT_EQ(judges->tasks_size(), 2);
    // Cell at epochs 1: 1/5 memorization, 0/4 rephrased + 1 no_answer.
    // Cell at epochs 5: 5/5 memorization, 2/5 rephrased (1 stale).
    for (const auto& j : judges->tasks()) {
      v1::CompleteTasksRequest verdicts;
      verdicts.set_worker_id("rules");
      auto* vc = verdicts.add_completions();
      vc->set_task_id(j.task_id());
      vc->set_attempt(1);
      vc->set_lease_token(j.lease_token());
      bool late = j.judge().items(0).cell_id() == tune.tune().cell_ids(1);
      for (const auto& item : j.judge().items()) {
        auto* v = vc->mutable_result()->add_verdicts();
        v->set_cell_id(item.cell_id());
        v->set_question_type(item.question_type());
        v->set_question_id(item.question_id());
        v->set_grader("rules/1");
        int q = std::stoi(item.question_id());
        std::string verdict = "incorrect";
        if (late) {
          if (q < 5 || q < 7) verdict = "correct";
          if (q == 7) verdict = "stale";
        } else {
          if (q == 0) verdict = "correct";
          if (q == 9) verdict = "no_answer";
        }
        v->set_verdict(verdict);
      }
      vc->mutable_result()->set_cost_usd(0.5);
      ASSERT_TRUE(s.Complete(verdicts).ok());
    }
    ASSERT_TRUE(s.Commit().ok());
  }

  storage::MemoryStateStore store_;
  FakeClock clock_;
  SequentialIdSource ids_;
  std::string id_;
};

TEST_F(ReportTest, CountsVerdictsPerCellAndType) {
  absl::StatusOr<CampaignReport> r = LoadCampaignReport(store_, id_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->cells.size(), 2u);
  EXPECT_EQ(r->state, v1::CAMPAIGN_STATE_SUCCEEDED);
  const CellReport& early = r->cells[0];
  EXPECT_EQ(early.key.epochs(), 1u);
  EXPECT_EQ(early.state, "done");
  EXPECT_EQ(early.types.at("memorization").correct, 1u);
  EXPECT_EQ(early.types.at("memorization").n, 5u);
  EXPECT_EQ(early.types.at("rephrased").n, 4u);
  EXPECT_EQ(early.types.at("rephrased").excluded, 1u);
  const CellReport& late = r->cells[1];
  EXPECT_EQ(late.types.at("memorization").correct, 5u);
  EXPECT_EQ(late.types.at("rephrased").correct, 2u);
  EXPECT_EQ(late.types.at("rephrased").stale, 1u);
  EXPECT_DOUBLE_EQ(*late.cost_usd, 0.5);
  EXPECT_EQ(LoadCampaignReport(store_, "nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*ListCampaignIds(store_), std::vector<std::string>{id_});
}

TEST_F(ReportTest, RendersEveryFormat) {
  CampaignReport r = *LoadCampaignReport(store_, id_);
  std::string md = RenderMarkdown(r);
  EXPECT_NE(md.find("| model | epochs | memorization | rephrased | rephrased baselines | state "
                    "| cost |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| tiny | 5 | 100.0% [57–100] n=5 | 40.0% [12–77] n=5, stale 1 | "
                    "chance 50.0%, majority 60.0% (No) | done |"),
            std::string::npos)
      << md;
  // Epochs 1: question 9 (a No) is no_answer, so the majority is over 2 Yes
  // and 2 No among the graded ones.
  EXPECT_NE(md.find("0.0% [0–49] n=4, 1 no_answer | chance 50.0%, majority 50.0% (No)"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("- people: a note"), std::string::npos);

  nlohmann::json j = nlohmann::json::parse(RenderJson(r));
  EXPECT_EQ(j["campaign"], id_);
  ASSERT_EQ(j["cells"].size(), 2u);
  const auto& cell = j["cells"][1];
  for (const char* k : {"dataset", "model", "backend", "epochs", "learning_rate_multiplier",
                        "batch_size", "seed", "state", "accuracy", "n", "stale", "cost_usd"}) {
    EXPECT_TRUE(cell.contains(k)) << k;
  }
  EXPECT_DOUBLE_EQ(cell["accuracy"]["rephrased"].get<double>(), 0.4);
  EXPECT_EQ(cell["n"]["memorization"], 5);
  EXPECT_EQ(cell["stale"]["rephrased"], 1);
  EXPECT_TRUE(j["cells"][0]["cost_usd"].is_number());

  std::string csv = RenderCsv(r);
  // Header + 2 cells x (2 types + the generalization row) + 4 leaderboard
  // rows (one model: memorization, generalization, new, updated).
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 11) << csv;
  EXPECT_NE(csv.find(",done,rephrased,2,5,0.400000,0.117621,0.769276,1,0,0.500000,0,0,0.500000,"
                     "0.600000,No,,\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find(",done,generalization,2,5,0.400000,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",tiny,,,1,8,0,,leaderboard:updated_knowledge,,,0.400000,"),
            std::string::npos)
      << csv;
  std::string html = RenderHtml(r);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("people — tiny"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no fetches
}

}  // namespace
}  // namespace ftb::report

namespace ftb::report {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The HTML report in a real browser: headless Chromium (Debian `chromium`,
// installed by scripts/install-deps.sh --test) loads it from disk with the
// network closed, logs no console error, and renders the plots.
TEST_F(ReportTest, HtmlOpensInHeadlessChromiumWithoutConsoleErrors) {
  const char* chromium = "/usr/bin/chromium";
  if (access(chromium, X_OK) != 0) {
    GTEST_SKIP() << "chromium not installed (scripts/install-deps.sh --test installs it)";
  }
  char dir_template[] = "/tmp/ftb-html-XXXXXX";
  std::string dir = mkdtemp(dir_template);
  std::string html = dir + "/report.html";
  {
    std::ofstream f(html);
    f << RenderHtml(*LoadCampaignReport(store_, id_));
  }
  std::string cmd = absl::StrCat(
      "timeout 120 ", chromium,
      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
      " --disable-background-networking --disable-component-update --disable-sync"
      " --user-data-dir=", dir, "/profile --enable-logging=stderr --v=0 --dump-dom file://", html,
      " > ", dir, "/dom.html 2> ", dir, "/chromium.log");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << Slurp(dir + "/chromium.log");
  std::string dom = Slurp(dir + "/dom.html");
  std::string log = Slurp(dir + "/chromium.log");
  EXPECT_NE(dom.find("<svg"), std::string::npos) << dom.substr(0, 500);
  EXPECT_NE(dom.find("<path d=\"M"), std::string::npos);  // a plotted line
  EXPECT_NE(dom.find("<rect"), std::string::npos);        // a bar
  EXPECT_EQ(log.find(":CONSOLE"), std::string::npos) << log;
  std::system(absl::StrCat("rm -rf ", dir).c_str());
}

}  // namespace
}  // namespace ftb::report

// --- judge panels ------------------------------------------------------------------

namespace ftb::report {
namespace {

TEST(AgreementTest, MajorityVerdictAndItsTieBreak) {
  EXPECT_EQ(MajorityVerdict({"correct", "incorrect", "correct"}), "correct");
  EXPECT_EQ(MajorityVerdict({"incorrect", "correct", "correct"}), "correct");
  // Ties go to the tied verdict of the grader listed first.
  EXPECT_EQ(MajorityVerdict({"abstained", "incorrect"}), "abstained");
  EXPECT_EQ(MajorityVerdict({"stale", "correct", "incorrect"}), "stale");
  EXPECT_EQ(MajorityVerdict({"error", "incorrect", "correct"}), "incorrect");  // error: no vote
  EXPECT_EQ(MajorityVerdict({"", "correct", "incorrect", "incorrect"}), "incorrect");
  EXPECT_EQ(MajorityVerdict({"error", "error"}), "error");
  EXPECT_EQ(MajorityVerdict({"", ""}), "");
  EXPECT_EQ(MajorityVerdict({"no_answer", "no_answer", "error"}), "no_answer");
}

TEST(AgreementTest, CohenKappaByHand) {
  // 10 items. a says yes on items 0-5, b on items 0-4 and 9.
  // Agreement p_o = 8/10 (items 0-4 yes/yes, 6-8 no/no).
  // p_a = p_b = 0.6, so p_e = 0.6*0.6 + 0.4*0.4 = 0.52.
  // kappa = (0.8 - 0.52) / (1 - 0.52) = 0.28 / 0.48 = 0.58333...
  std::vector<bool> a = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  std::vector<bool> b = {1, 1, 1, 1, 1, 0, 0, 0, 0, 1};
  ASSERT_TRUE(CohenKappa(a, b).has_value());
  EXPECT_NEAR(*CohenKappa(a, b), 0.28 / 0.48, 1e-12);
  // Perfect agreement on mixed items: p_o = 1 -> kappa 1.
  EXPECT_DOUBLE_EQ(*CohenKappa({1, 0, 1}, {1, 0, 1}), 1.0);
  // Perfect disagreement, p_o = 0, p_e = 0.5 -> (0 - 0.5) / 0.5 = -1.
  EXPECT_DOUBLE_EQ(*CohenKappa({1, 0}, {0, 1}), -1.0);
  // a = {1,0,0,0}, b = {1,1,1,0} agree on items 0 and 3: p_o = 2/4;
  // p_a = .25, p_b = .75: p_e = .25*.75 + .75*.25 = .375;
  // kappa = (.5 - .375) / .625 = 0.2.
  EXPECT_NEAR(*CohenKappa({1, 0, 0, 0}, {1, 1, 1, 0}), 0.2, 1e-12);
  // Undefined: everyone always says yes (p_e = 1), no items, sizes differ.
  EXPECT_FALSE(CohenKappa({1, 1}, {1, 1}).has_value());
  EXPECT_FALSE(CohenKappa({}, {}).has_value());
  EXPECT_FALSE(CohenKappa({1}, {1, 0}).has_value());
}

TEST(AgreementTest, FleissKappaByHand) {
  // 3 raters, 4 items with 3, 0, 2, 1 yes.
  // P_i = (y^2 + (3-y)^2 - 3) / 6: 1, 1, 1/3, 1/3 -> P = (8/3) / 4 = 2/3.
  // p = 6 yes / 12 ratings = 0.5 -> P_e = 0.25 + 0.25 = 0.5.
  // kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
  ASSERT_TRUE(FleissKappa({3, 0, 2, 1}, 3).has_value());
  EXPECT_NEAR(*FleissKappa({3, 0, 2, 1}, 3), 1.0 / 3, 1e-12);
  // 3 raters, 5 items with 3, 2, 1, 3, 1 yes (the panel test below):
  // P_i: 1, 1/3, 1/3, 1, 1/3 -> P = 3/5; p = 10/15 -> P_e = 4/9 + 1/9 = 5/9;
  // kappa = (3/5 - 5/9) / (4/9) = (2/45) / (20/45) = 0.1.
  EXPECT_NEAR(*FleissKappa({3, 2, 1, 3, 1}, 3), 0.1, 1e-12);
  // 4 raters, unanimous on mixed items -> 1.
  EXPECT_DOUBLE_EQ(*FleissKappa({4, 0, 4, 0}, 4), 1.0);
  // Undefined: every rating the same, no items, one rater, a count too big.
  EXPECT_FALSE(FleissKappa({3, 3}, 3).has_value());
  EXPECT_FALSE(FleissKappa({}, 3).has_value());
  EXPECT_FALSE(FleissKappa({1, 0}, 1).has_value());
  EXPECT_FALSE(FleissKappa({4, 0}, 3).has_value());
}

// One cell judged by a panel of three graders: rules, and two llm judges.
class PanelReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::CampaignSpec spec;
    spec.set_name("panel");
    auto* d = spec.add_datasets();
    d->set_name("people");
    d->set_label("people");
    d->set_source(v1::DATASET_SOURCE_BUILTIN);
    auto* m = spec.add_models();
    m->set_name("tiny");
    m->set_backend("local");
    spec.mutable_grid()->add_epochs(1);
    spec.mutable_grid()->add_learning_rate_multiplier(1);
    spec.mutable_grid()->add_batch_size(8);
    spec.mutable_grid()->add_seed(0);
    spec.mutable_retry()->set_max_attempts(1);
    spec.mutable_retry()->set_lease_seconds(60);
    for (auto [kind, name] : {std::pair{"rules", "rules"}, std::pair{"llm", "judge-a"},
                              std::pair{"llm", "judge-b"}}) {
      auto* g = spec.mutable_judge()->add_graders();
      g->set_kind(kind);
      g->set_name(name);
    }
    spec.mutable_judge()->set_batch_size(100);
    coordinator::Scheduler s(&store_, &clock_, &ids_);
    ASSERT_TRUE(s.Recover().ok());
    auto submitted =
        s.Submit(spec, {coordinator::DatasetSummary{"people", "ff", 150, 600, {}}}, "", "");
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    id_ = submitted->campaign_id;
    v1::RegisterWorkerRequest tune;
    tune.set_worker_id("tune");
    tune.set_role(v1::WORKER_ROLE_TUNE);
    tune.add_backends("local");
    s.RegisterWorker(tune);
    v1::RegisterWorkerRequest judge;
    judge.set_worker_id("judge");
    judge.set_role(v1::WORKER_ROLE_JUDGE);
    judge.add_backends("rules");
    judge.add_backends("llm");
    s.RegisterWorker(judge);
    v1::LeaseTasksRequest lease;
    lease.set_worker_id("tune");
    lease.set_max_tasks(1);
    v1::TaskAssignment task = s.Lease(lease)->tasks(0);
    v1::CompleteTasksRequest done;
    done.set_worker_id("tune");
    auto* c = done.add_completions();
    c->set_task_id(task.task_id());
    c->set_attempt(1);
    c->set_lease_token(task.lease_token());
    auto* a = c->mutable_result()->add_answers();
    a->set_cell_id(task.tune().cell_ids(0));
    for (int q = 0; q < 6; ++q) {
      auto* item = a->add_items();
      item->set_question_type(q < 3 ? "memorization" : "rephrased");
      item->set_question_id(std::to_string(q));
    }
    ASSERT_TRUE(s.Complete(done).ok());
    // Verdicts per grader for questions 0..5 (C correct, I incorrect,
    // A abstained, E error):
    //   rules:   C C I A C I
    //   judge-a: C I I I C C
    //   judge-b: C C C E C I
    // Majority: C C I A(tie A/I: rules first) C I.
    const std::map<std::string, std::vector<std::string>> verdicts = {
        {"rules", {"correct", "correct", "incorrect", "abstained", "correct", "incorrect"}},
        {"judge-a", {"correct", "incorrect", "incorrect", "incorrect", "correct", "correct"}},
        {"judge-b", {"correct", "correct", "correct", "error", "correct", "incorrect"}}};
    lease.set_worker_id("judge");
    lease.set_max_tasks(10);
    auto judges = s.Lease(lease);
    ASSERT_EQ(judges->tasks_size(), 3);
    for (const auto& j : judges->tasks()) {
      v1::CompleteTasksRequest r;
      r.set_worker_id("judge");
      auto* vc = r.add_completions();
      vc->set_task_id(j.task_id());
      vc->set_attempt(1);
      vc->set_lease_token(j.lease_token());
      const std::string& grader = j.judge().grader().name();
      for (const auto& item : j.judge().items()) {
        auto* v = vc->mutable_result()->add_verdicts();
        v->set_cell_id(item.cell_id());
        v->set_question_type(item.question_type());
        v->set_question_id(item.question_id());
        // Both llm judges carry the same kind prefix: the task, not the
        // id, says whose verdict it is.
        v->set_grader(grader == "rules" ? "rules/1" : "llm/some-model/r1");
        v->set_verdict(verdicts.at(grader)[std::stoi(item.question_id())]);
      }
      ASSERT_TRUE(s.Complete(r).ok());
    }
    ASSERT_TRUE(s.Commit().ok());
  }

  storage::MemoryStateStore store_;
  FakeClock clock_;
  SequentialIdSource ids_;
  std::string id_;
};

TEST_F(PanelReportTest, MajorityPerAnswerAndFleissKappaPerCell) {
  absl::StatusOr<CampaignReport> r = LoadCampaignReport(store_, id_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->graders, (std::vector<std::string>{"rules", "judge-a", "judge-b"}));
  EXPECT_EQ(r->grader, "rules");
  ASSERT_EQ(r->cells.size(), 1u);
  const CellReport& c = r->cells[0];
  EXPECT_EQ(c.state, "done");
  // The main counts are still the first grader's.
  EXPECT_EQ(c.types.at("memorization").correct, 2u);
  EXPECT_EQ(c.types.at("rephrased").correct, 1u);
  // Panel: memorization C C I -> 2/3; rephrased A C I -> 1/3.
  EXPECT_EQ(c.panel.at("memorization").correct, 2u);
  EXPECT_EQ(c.panel.at("memorization").n, 3u);
  EXPECT_EQ(c.panel.at("rephrased").correct, 1u);
  EXPECT_EQ(c.panel.at("rephrased").n, 3u);
  ASSERT_EQ(c.by_grader.size(), 3u);
  EXPECT_EQ(c.by_grader[1].at("memorization").correct, 1u);  // judge-a: C I I
  EXPECT_EQ(c.by_grader[1].at("rephrased").correct, 2u);     // judge-a: I C C
  EXPECT_EQ(c.by_grader[2].at("memorization").correct, 3u);
  EXPECT_EQ(c.by_grader[2].at("rephrased").n, 2u);  // the error is left out
  EXPECT_EQ(c.by_grader[2].at("rephrased").excluded, 1u);
  // Agreement over questions 0, 1, 2, 4, 5 (3 has an error): yes counts
  // 3, 2, 1, 3, 1 -> Fleiss' kappa 0.1 (AgreementTest.FleissKappaByHand);
  // unanimous on 0 and 4.
  EXPECT_EQ(c.agreement.n, 5u);
  EXPECT_EQ(c.agreement.unanimous, 2u);
  ASSERT_TRUE(c.agreement.kappa.has_value());
  EXPECT_NEAR(*c.agreement.kappa, 0.1, 1e-12);
  EXPECT_NEAR(*r->agreement.kappa, 0.1, 1e-12);

  std::string md = RenderMarkdown(*r);
  EXPECT_NE(md.find("## Judge agreement"), std::string::npos) << md;
  EXPECT_NE(md.find("| dataset | model | epochs | rules | judge-a | judge-b | panel | unanimous "
                    "| kappa |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| 2/5 (40.0%) | 0.100 |"), std::string::npos) << md;
  EXPECT_NE(md.find("Overall: Fleiss' kappa 0.100 over 5 answers"), std::string::npos) << md;

  nlohmann::json j = nlohmann::json::parse(RenderJson(*r));
  EXPECT_EQ(j["graders"], nlohmann::json({"rules", "judge-a", "judge-b"}));
  EXPECT_EQ(j["agreement"]["statistic"], "fleiss");
  EXPECT_NEAR(j["agreement"]["kappa"].get<double>(), 0.1, 1e-12);
  const auto& cell = j["cells"][0];
  EXPECT_DOUBLE_EQ(cell["accuracy"]["memorization"].get<double>(), 2.0 / 3);  // rules, as before
  EXPECT_DOUBLE_EQ(cell["panel"]["accuracy"]["rephrased"].get<double>(), 1.0 / 3);
  EXPECT_EQ(cell["panel"]["n"]["rephrased"], 3);
  EXPECT_EQ(cell["by_grader"]["judge-b"]["n"]["rephrased"], 2);
  EXPECT_EQ(cell["agreement"]["n"], 5);
  EXPECT_EQ(cell["agreement"]["unanimous"], 2);
  EXPECT_NE(RenderHtml(*r).find("<h2>Judge agreement</h2>"), std::string::npos);
}

TEST_F(ReportTest, NoPanelSectionForOneGrader) {
  CampaignReport r = *LoadCampaignReport(store_, id_);
  EXPECT_EQ(r.graders, std::vector<std::string>{"rules"});
  EXPECT_TRUE(r.cells[0].panel.empty());
  EXPECT_EQ(RenderMarkdown(r).find("Judge agreement"), std::string::npos);
  nlohmann::json j = nlohmann::json::parse(RenderJson(r));
  EXPECT_FALSE(j.contains("agreement"));
  EXPECT_FALSE(j["cells"][0].contains("panel"));
}

}  // namespace
}  // namespace ftb::report

// --- the paper's metrics (issue 12) ------------------------------------------------

namespace ftb::report {
namespace {

TEST_F(ReportTest, YesNoBaselinesAndUpdatedKnowledgeFromTheJudgeItems) {
  CampaignReport r = *LoadCampaignReport(store_, id_);
  EXPECT_EQ(r.updated_knowledge, std::vector<std::string>{"people"});
  const TypeCounts& late = r.cells[1].types.at("rephrased");
  EXPECT_EQ(late.reference_yes, 2u);
  EXPECT_EQ(late.reference_no, 3u);
  EXPECT_TRUE(IsYesNo(late));
  EXPECT_DOUBLE_EQ(MajorityBaseline(late), 0.6);
  EXPECT_EQ(MajorityAnswer(late), "No");
  EXPECT_FALSE(IsYesNo(r.cells[1].types.at("memorization")));  // "126" is no yes/no
  const TypeCounts& early = r.cells[0].types.at("rephrased");
  EXPECT_EQ(early.no_answer, 1u);
  EXPECT_EQ(early.errors, 0u);
  EXPECT_EQ(early.reference_yes + early.reference_no, early.n);  // the graded ones only

  nlohmann::json j = nlohmann::json::parse(RenderJson(r));
  EXPECT_EQ(j["schema_version"], kReportSchemaVersion);
  EXPECT_EQ(j["schema_version"], 2);
  const auto& cell = j["cells"][1];
  EXPECT_DOUBLE_EQ(cell["baselines"]["rephrased"]["chance"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(cell["baselines"]["rephrased"]["majority"].get<double>(), 0.6);
  EXPECT_EQ(cell["baselines"]["rephrased"]["majority_answer"], "No");
  EXPECT_FALSE(cell["baselines"].contains("memorization"));
  EXPECT_EQ(j["cells"][0]["no_answer"]["rephrased"], 1);
  EXPECT_EQ(j["cells"][0]["error"]["rephrased"], 0);
  EXPECT_DOUBLE_EQ(cell["generalization"]["accuracy"].get<double>(), 0.4);
  EXPECT_EQ(cell["generalization"]["types"], nlohmann::json({"rephrased"}));
  EXPECT_EQ(j["updated_knowledge"], nlohmann::json({"people"}));
  ASSERT_EQ(j["leaderboard"].size(), 1u);
  EXPECT_EQ(j["leaderboard"][0]["datasets"][0]["epochs"], 5);
  EXPECT_EQ(j["leaderboard"][0]["datasets"][0]["knowledge"], "updated");
  EXPECT_TRUE(j["leaderboard"][0]["new_knowledge"].is_null());
  EXPECT_DOUBLE_EQ(j["leaderboard"][0]["updated_knowledge"].get<double>(), 0.4);
}

// A hand-built report: two models on a new-knowledge and an
// updated-knowledge dataset at epochs 1 and 5.
CampaignReport TwoModels() {
  CampaignReport r;
  r.campaign_id = "c1";
  r.name = "two";
  r.grader = "rules";
  r.graders = {"rules"};
  r.updated_knowledge = {"medical"};
  auto cell = [&](const std::string& dataset, const std::string& model, uint32_t epochs,
                  std::map<std::string, TypeCounts> types) {
    CellReport c;
    c.key.set_dataset(dataset);
    c.key.set_model(model);
    c.key.set_backend("replay");
    c.key.set_epochs(epochs);
    c.key.set_learning_rate_multiplier(0);  // auto
    c.key.set_batch_size(0);                // auto
    c.id = absl::StrCat(dataset, "-", model, "-", epochs);
    c.state = "done";
    c.types = std::move(types);
    r.cells.push_back(std::move(c));
  };
  auto counts = [](uint64_t correct, uint64_t n) {
    TypeCounts t;
    t.correct = correct;
    t.n = n;
    return t;
  };
  TypeCounts secondary = counts(58, 100);
  secondary.reference_no = 61;
  secondary.reference_yes = 39;
  // Epochs 1 must not count: the leaderboard takes the largest epoch count.
  cell("people", "a", 1, {{"memorization", counts(0, 10)}, {"rephrased", counts(0, 10)}});
  cell("people", "a", 5,
       {{"memorization", counts(9, 10)}, {"rephrased", counts(4, 10)}, {"secondary", secondary}});
  cell("medical", "a", 5, {{"memorization", counts(8, 10)}, {"vignette", counts(2, 10)}});
  cell("people", "b", 5, {{"memorization", counts(5, 10)}, {"rephrased", counts(1, 10)}});
  // b's medical cell failed: it has no figures and drops out of b's means.
  cell("medical", "b", 5, {});
  r.cells.back().state = "failed";
  r.cells.back().last_error = "provider said: training file has fewer than 10 examples";
  return r;
}

TEST(PaperMetricsTest, GeneralizationIsTheRephraseTypeSetsOnly) {
  for (const char* t : {"rephrased", "date_changed", "vignette", "code"}) {
    EXPECT_TRUE(IsGeneralizationType(t)) << t;
  }
  for (const char* t : {"memorization", "secondary", "comparison"}) {
    EXPECT_FALSE(IsGeneralizationType(t)) << t;
  }
  EXPECT_TRUE(IsInferenceType("secondary"));
  EXPECT_TRUE(IsInferenceType("comparison"));
  CampaignReport r = TwoModels();
  TypeCounts g = PaperGeneralization(r.cells[1]);  // people, a, 5: secondary left out
  EXPECT_EQ(g.correct, 4u);
  EXPECT_EQ(g.n, 10u);
}

TEST(PaperMetricsTest, LeaderboardAveragesDatasetsAtTheLargestEpochCount) {
  std::vector<LeaderboardRow> rows = Leaderboard(TwoModels());
  ASSERT_EQ(rows.size(), 3u);
  const LeaderboardRow& a = rows[0];
  EXPECT_EQ(a.model, "a");
  ASSERT_EQ(a.datasets.size(), 2u);
  EXPECT_EQ(a.datasets[0].epochs, 5u);
  EXPECT_DOUBLE_EQ(*a.memorization, (0.9 + 0.8) / 2);
  EXPECT_DOUBLE_EQ(*a.generalization, (0.4 + 0.2) / 2);
  EXPECT_DOUBLE_EQ(*a.new_knowledge, 0.4);
  EXPECT_DOUBLE_EQ(*a.updated_knowledge, 0.2);
  const LeaderboardRow& b = rows[1];
  EXPECT_DOUBLE_EQ(*b.memorization, 0.5);
  EXPECT_DOUBLE_EQ(*b.generalization, 0.1);
  EXPECT_FALSE(b.updated_knowledge.has_value());
  const LeaderboardRow& all = rows[2];
  EXPECT_EQ(all.model, "all models");
  EXPECT_DOUBLE_EQ(*all.generalization, (0.3 + 0.1) / 2);
  EXPECT_DOUBLE_EQ(*all.new_knowledge, (0.4 + 0.1) / 2);
  EXPECT_DOUBLE_EQ(*all.updated_knowledge, 0.2);  // only a has one
}

TEST(PaperMetricsTest, EveryFormatShowsTheMetricsBaselinesAndFailedCells) {
  CampaignReport r = TwoModels();
  std::string md = RenderMarkdown(r);
  EXPECT_NE(md.find("## Leaderboard"), std::string::npos) << md;
  EXPECT_NE(md.find("| a | 85.0% | 30.0% | 40.0% | 20.0% | people @5 (new), medical @5 "
                    "(updated) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| **all models** | 67.5% | 20.0% | 25.0% | 20.0% |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| secondary | secondary baselines |"), std::string::npos) << md;
  EXPECT_NE(md.find("chance 50.0%, majority 61.0% (No)"), std::string::npos) << md;
  EXPECT_NE(md.find("## Failed cells"), std::string::npos) << md;
  EXPECT_NE(md.find("provider said: training file has fewer than 10 examples"),
            std::string::npos);
  EXPECT_EQ(md.find("pools every question type"), std::string::npos);  // the old definition

  nlohmann::json j = nlohmann::json::parse(RenderJson(r));
  EXPECT_EQ(j["cells"][0]["learning_rate_multiplier"], "auto");
  EXPECT_EQ(j["cells"][0]["batch_size"], "auto");
  EXPECT_EQ(j["cells"][4]["state"], "failed");
  EXPECT_EQ(j["cells"][4]["last_error"],
            "provider said: training file has fewer than 10 examples");
  EXPECT_TRUE(j["cells"][4]["generalization"]["accuracy"].is_null());
  EXPECT_EQ(j["leaderboard"][2]["all_models"], true);
  EXPECT_DOUBLE_EQ(j["leaderboard"][0]["generalization"].get<double>(), 0.3);

  std::string csv = RenderCsv(r);
  // The failed cell keeps a row, with its state and error.
  EXPECT_NE(csv.find("c1,medical-b-5,medical,b,replay,5,auto,auto,0,failed,,,,,,,,,,,,,,,"
                     "provider said: training file has fewer than 10 examples,\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find(",secondary,58,100,0.580000,"), std::string::npos);
  EXPECT_NE(csv.find(",0.500000,0.610000,No,,\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("c1,,,all models,,,,,,,leaderboard:generalization,,,0.200000,"),
            std::string::npos)
      << csv;
  for (size_t start = 0, end; start < csv.size(); start = end + 1) {  // 26 columns each
    end = csv.find('\n', start);
    std::string line = csv.substr(start, end - start);
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 25) << line;
  }

  std::string html = RenderHtml(r);
  EXPECT_NE(html.find("<h2>Leaderboard</h2>"), std::string::npos);
  EXPECT_NE(html.find("<h2>Failed cells</h2>"), std::string::npos);
  EXPECT_NE(html.find("secondary baselines"), std::string::npos);
}

}  // namespace
}  // namespace ftb::report

namespace ftb::report {
namespace {

// A training run that fails for good: its cells stay in every format, with
// the task's last error.
TEST(FailedCellTest, FailedRunKeepsItsCellsAndLastError) {
  storage::MemoryStateStore store;
  FakeClock clock;
  SequentialIdSource ids;
  v1::CampaignSpec spec;
  spec.set_name("fails");
  auto* d = spec.add_datasets();
  d->set_name("people");
  d->set_label("people");
  d->set_source(v1::DATASET_SOURCE_BUILTIN);
  auto* m = spec.add_models();
  m->set_name("tiny");
  m->set_backend("local");
  spec.mutable_grid()->add_epochs(1);
  spec.mutable_grid()->add_epochs(5);
  spec.mutable_grid()->add_learning_rate_multiplier(1);
  spec.mutable_grid()->add_batch_size(8);
  spec.mutable_grid()->add_seed(0);
  spec.mutable_retry()->set_max_attempts(1);
  spec.mutable_retry()->set_lease_seconds(60);
  spec.mutable_judge()->add_graders()->set_kind("rules");
  coordinator::Scheduler s(&store, &clock, &ids);
  ASSERT_TRUE(s.Recover().ok());
  coordinator::DatasetSummary summary{"people", "ff", 150, 600, {}};
  summary.comparison_questions = 150;
  summary.comparison_name_only = 58;
  auto submitted = s.Submit(spec, {summary}, "", "");
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  v1::RegisterWorkerRequest w;
  w.set_worker_id("local");
  w.set_role(v1::WORKER_ROLE_TUNE);
  w.add_backends("local");
  s.RegisterWorker(w);
  v1::LeaseTasksRequest lease;
  lease.set_worker_id("local");
  lease.set_max_tasks(1);
  v1::TaskAssignment tune = s.Lease(lease)->tasks(0);
  v1::FailTaskRequest fail;
  fail.set_worker_id("local");
  fail.set_task_id(tune.task_id());
  fail.set_attempt(1);
  fail.set_lease_token(tune.lease_token());
  fail.set_error("trainer exited 3: out of memory, with a \"quote\", a comma");
  fail.set_retryable(false);
  auto failed = s.Fail(fail);
  ASSERT_TRUE(failed.ok()) << failed.status();
  ASSERT_TRUE(s.Commit().ok());

  CampaignReport r = *LoadCampaignReport(store, submitted->campaign_id);
  ASSERT_EQ(r.cells.size(), 2u);
  for (const CellReport& c : r.cells) {
    EXPECT_EQ(c.state, "failed");
    EXPECT_EQ(c.last_error, "trainer exited 3: out of memory, with a \"quote\", a comma");
  }
  std::string csv = RenderCsv(r);
  // Header, one row per failed cell, 4 leaderboard rows.
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7) << csv;
  EXPECT_NE(csv.find(",failed,,,,,,,,,,,,,,,\"trainer exited 3: out of memory, with a "
                     "\"\"quote\"\", a comma\",\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(RenderMarkdown(r).find("## Failed cells"), std::string::npos);
  EXPECT_NE(RenderMarkdown(r).find("- people: 58 of 150 comparison questions are answerable "
                                   "from the two names alone"),
            std::string::npos);
  nlohmann::json j = nlohmann::json::parse(RenderJson(r));
  EXPECT_EQ(j["cells"][1]["last_error"],
            "trainer exited 3: out of memory, with a \"quote\", a comma");
  EXPECT_NE(RenderHtml(r).find("out of memory"), std::string::npos);
}

}  // namespace
}  // namespace ftb::report
