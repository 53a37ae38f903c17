#include "report/report.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

#include "coordinator/scheduler.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
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
    auto* c = done.add_completions();
    c->set_task_id(tune.task_id());
    c->set_attempt(1);
    for (const std::string& cell : tune.tune().cell_ids()) {
      auto* a = c->mutable_result()->add_answers();
      a->set_cell_id(cell);
      for (int q = 0; q < 10; ++q) {
        auto* item = a->add_items();
        item->set_question_type(q < 5 ? "memorization" : "rephrased");
        item->set_question_id(std::to_string(q));
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
      auto* vc = verdicts.add_completions();
      vc->set_task_id(j.task_id());
      vc->set_attempt(1);
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
  EXPECT_NE(md.find("| model | epochs | memorization | rephrased | state | cost |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| tiny | 5 | 100.0% [57–100] n=5 | 40.0% [12–77] n=5, stale 1 | done |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("0.0% [0–49] n=4, 1 ungraded"), std::string::npos) << md;
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
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);  // header + 2 cells x 2 types
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
