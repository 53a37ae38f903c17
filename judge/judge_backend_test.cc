#include "judge/judge_backend.h"

#include <memory>
#include <string>
#include <utility>

#include "cost/price_table.h"
#include "gtest/gtest.h"

namespace ftb::judge {
namespace {

v1::TaskAssignment JudgeTask(std::initializer_list<std::pair<const char*, const char*>> items) {
  v1::TaskAssignment task;
  task.set_task_id("c1/t7");
  task.set_attempt(1);
  task.set_kind(v1::TASK_KIND_JUDGE);
  task.set_backend("rules");
  task.mutable_judge()->mutable_grader()->set_kind("rules");
  int i = 0;
  for (const auto& [reference, answer] : items) {
    v1::JudgeItem* item = task.mutable_judge()->add_items();
    item->set_cell_id("cell-a");
    item->set_question_type(i % 2 == 0 ? "memorization" : "secondary");
    item->set_question_id("q#" + std::to_string(i++));
    item->set_reference(reference);
    item->set_answer(answer);
  }
  return task;
}

class JudgeBackendTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(RegisterJudgeBackends(registry_).ok()); }
  workers::BackendRegistry registry_;
};

TEST_F(JudgeBackendTest, RegistersOneBackendPerGraderKind) {
  EXPECT_EQ(registry_.Names(), (std::vector<std::string>{"llm", "paper", "rules"}));
  EXPECT_EQ(RegisterJudgeBackends(registry_).code(), absl::StatusCode::kAlreadyExists);
  auto llm = registry_.Create("llm");  // no call and no key needed to offer it
  EXPECT_TRUE(llm.ok()) << llm.status();
}

TEST_F(JudgeBackendTest, GradesEveryItemInOrder) {
  auto backend = registry_.Create("rules");
  ASSERT_TRUE(backend.ok()) << backend.status();
  v1::TaskAssignment task =
      JudgeTask({{"Yes", "Yes, he is."}, {"5", "six"}, {"None", "N/A"}, {"Blue", ""}});
  task.mutable_judge()->mutable_items(1)->set_unavailable_reason("nothing recorded");
  workers::TaskContext ctx(task.task_id(), 1, nullptr);
  absl::StatusOr<v1::TaskResult> r = (*backend)->Run(task, ctx);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->verdicts_size(), 4);
  EXPECT_EQ(r->verdicts(0).verdict(), "correct");
  EXPECT_EQ(r->verdicts(1).verdict(), "no_answer");
  EXPECT_EQ(r->verdicts(1).reason(), "nothing recorded");
  EXPECT_EQ(r->verdicts(2).verdict(), "correct");
  EXPECT_EQ(r->verdicts(3).verdict(), "incorrect");  // said nothing
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r->verdicts(i).cell_id(), "cell-a");
    EXPECT_EQ(r->verdicts(i).question_id(), "q#" + std::to_string(i));
    EXPECT_EQ(r->verdicts(i).question_type(), i % 2 == 0 ? "memorization" : "secondary");
    EXPECT_EQ(r->verdicts(i).grader(), "rules/2");
  }
  EXPECT_EQ(r->answers_size(), 0);
  EXPECT_EQ(r->digest().size(), 64u);
  // Deterministic: the same task grades to the same digest.
  workers::TaskContext again(task.task_id(), 2, nullptr);
  EXPECT_EQ((*backend)->Run(task, again)->digest(), r->digest());
  task.mutable_judge()->mutable_items(0)->set_answer("No");
  EXPECT_NE((*backend)->Run(task, again)->digest(), r->digest());
}

// A grader that bills tokens like an LLM judge: 100 prompt and 7 completion
// tokens per verdict, priced as openai/<model>.
class MeteredGrader : public Grader {
 public:
  explicit MeteredGrader(std::string model = "gpt-4o") : model_(std::move(model)) {}
  std::string_view kind() const override { return "metered"; }
  std::string_view id() const override { return "metered/1"; }
  Verdict Grade(const v1::JudgeItem&) const override {
    Verdict v;
    v.kind = VerdictKind::kCorrect;
    v.grader = "metered/1";
    v.prompt_tokens = 100;
    v.completion_tokens = 7;
    return v;
  }
  std::pair<std::string, std::string> price_key() const override { return {"openai", model_}; }

 private:
  std::string model_;
};

// Runs three metered verdicts on openai/<model> and returns the result.
absl::StatusOr<v1::TaskResult> RunMetered(const std::string& model) {
  GraderRegistry graders;
  absl::Status registered = graders.Register(
      "metered", [model](const v1::GraderSpec&) -> absl::StatusOr<std::unique_ptr<Grader>> {
        return std::make_unique<MeteredGrader>(model);
      });
  if (!registered.ok()) return registered;
  workers::BackendRegistry registry;
  if (absl::Status s = RegisterJudgeBackends(registry, graders); !s.ok()) return s;
  auto backend = registry.Create("metered");
  if (!backend.ok()) return backend.status();
  v1::TaskAssignment task = JudgeTask({{"a", "a"}, {"b", "b"}, {"c", "c"}});
  task.set_backend("metered");
  task.mutable_judge()->mutable_grader()->set_kind("metered");
  workers::TaskContext ctx(task.task_id(), 1, nullptr);
  return (*backend)->Run(task, ctx);
}

// A judge on a model that also has fine-tuned rates is charged the base
// model's rates (gpt-4o-mini: fine-tuned inference costs twice the base).
TEST(JudgeBackendCostTest, JudgeOnABaseModelPaysBaseRatesNotFineTunedRates) {
  absl::StatusOr<v1::TaskResult> r = RunMetered("gpt-4o-mini-2024-07-18");
  ASSERT_TRUE(r.ok()) << r.status();
  const cost::ModelPrice* price =
      cost::PriceTable::Builtin().Find("openai", "gpt-4o-mini-2024-07-18");
  ASSERT_NE(price, nullptr);
  ASSERT_GT(price->base_input_per_1m_tokens, 0);
  ASSERT_LT(price->base_input_per_1m_tokens, price->input_per_1m_tokens);
  EXPECT_DOUBLE_EQ(
      r->cost_usd(),
      (300 * price->base_input_per_1m_tokens + 21 * price->base_output_per_1m_tokens) / 1e6);
}

TEST(JudgeBackendCostTest, BilledTokensArePricedIntoTheResult) {
  GraderRegistry graders;
  ASSERT_TRUE(graders
                  .Register("metered",
                            [](const v1::GraderSpec&) -> absl::StatusOr<std::unique_ptr<Grader>> {
                              return std::make_unique<MeteredGrader>();
                            })
                  .ok());
  workers::BackendRegistry registry;
  ASSERT_TRUE(RegisterJudgeBackends(registry, graders).ok());
  auto backend = registry.Create("metered");
  ASSERT_TRUE(backend.ok()) << backend.status();
  v1::TaskAssignment task = JudgeTask({{"a", "a"}, {"b", "b"}, {"c", "c"}});
  task.set_backend("metered");
  task.mutable_judge()->mutable_grader()->set_kind("metered");
  workers::TaskContext ctx(task.task_id(), 1, nullptr);
  absl::StatusOr<v1::TaskResult> r = (*backend)->Run(task, ctx);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tokens(), 3u * 107u);
  const cost::ModelPrice* price = cost::PriceTable::Builtin().Find("openai", "gpt-4o");
  ASSERT_NE(price, nullptr);
  ASSERT_GT(price->input_per_1m_tokens, 0);
  EXPECT_DOUBLE_EQ(r->cost_usd(),
                   (300 * price->input_per_1m_tokens + 21 * price->output_per_1m_tokens) / 1e6);
}

TEST_F(JudgeBackendTest, EmptyGraderKindMeansTheBackendsOwn) {
  auto backend = registry_.Create("rules");
  ASSERT_TRUE(backend.ok());
  v1::TaskAssignment task = JudgeTask({{"7", "7"}});
  task.mutable_judge()->clear_grader();
  workers::TaskContext ctx(task.task_id(), 1, nullptr);
  absl::StatusOr<v1::TaskResult> r = (*backend)->Run(task, ctx);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verdicts(0).verdict(), "correct");
}

TEST_F(JudgeBackendTest, RejectsWrongTasks) {
  auto backend = registry_.Create("rules");
  ASSERT_TRUE(backend.ok());
  workers::TaskContext ctx("c1/t7", 1, nullptr);

  v1::TaskAssignment tune = JudgeTask({{"7", "7"}});
  tune.set_kind(v1::TASK_KIND_TUNE);
  absl::Status s = (*backend)->Run(tune, ctx).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "judge backend \"rules\" runs JUDGE tasks only; task c1/t7 is TASK_KIND_TUNE");

  v1::TaskAssignment llm = JudgeTask({{"7", "7"}});
  llm.mutable_judge()->mutable_grader()->set_kind("llm");
  s = (*backend)->Run(llm, ctx).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "task c1/t7 asks for grader \"llm\" but this backend runs \"rules\"");

  v1::TaskAssignment options = JudgeTask({{"7", "7"}});
  (*options.mutable_judge()->mutable_grader()->mutable_options()->mutable_fields())["strict"]
      .set_bool_value(true);
  s = (*backend)->Run(options, ctx).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "grader \"rules\" takes no options, got \"strict\"");
}

TEST_F(JudgeBackendTest, StopsWhenCancelled) {
  auto backend = registry_.Create("rules");
  ASSERT_TRUE(backend.ok());
  v1::TaskAssignment task = JudgeTask({{"7", "7"}});
  workers::TaskContext ctx(task.task_id(), 1, nullptr);
  ctx.Cancel();
  EXPECT_EQ((*backend)->Run(task, ctx).status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace ftb::judge
