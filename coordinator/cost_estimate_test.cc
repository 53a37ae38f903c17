#include "coordinator/cost_estimate.h"

#include "gtest/gtest.h"

namespace ftb::coordinator {
namespace {

TEST(CostEstimateTest, KnownTokenCountsAndPrices) {
  cost::PriceTable prices;
  ASSERT_TRUE(prices
                  .Add("version: t\nbackend: openai\nmodels:\n  m: {training_per_1m_tokens: 3, "
                       "input_per_1m_tokens: 0.3, output_per_1m_tokens: 1.2, source: s, as_of: "
                       "d}\n",
                       "p.yaml")
                  .ok());
  v1::CampaignSpec spec;
  spec.add_datasets()->set_name("people");
  auto* m = spec.add_models();
  m->set_name("m");
  m->set_backend("openai");
  for (uint32_t e : {1, 5, 10}) spec.mutable_grid()->add_epochs(e);
  spec.mutable_grid()->add_learning_rate_multiplier(1);
  spec.mutable_grid()->add_batch_size(1);
  spec.mutable_grid()->add_seed(0);
  DatasetSummary d{"people", "f", 150, 600, {}};
  d.training_tokens = 100'000;
  d.test_prompt_tokens = 20'000;
  d.test_answer_tokens = 1'000;
  Plan plan = *PlanCampaign(spec, {d});
  ASSERT_EQ(plan.runs.size(), 1u);
  // One job trained for 10 epochs: 1,000,000 tokens x $3/1M = $3.00; three
  // cells of inference: 3 x (20,000 x $0.30 + 1,000 x $1.20) / 1M = $0.0216.
  CostEstimate run = EstimateRun(prices, spec, plan, 0);
  EXPECT_EQ(run.train_tokens, 1'000'000u);
  EXPECT_EQ(run.infer_tokens, 63'000u);
  EXPECT_DOUBLE_EQ(run.train_usd, 3.0);
  EXPECT_NEAR(run.infer_usd, 0.0216, 1e-12);
  EXPECT_TRUE(run.priced);
  // The 5-epoch cell on its own: 500,000 training tokens.
  CostEstimate cell = EstimateCell(prices, spec, plan, plan.cells[1]);
  EXPECT_EQ(cell.train_tokens, 500'000u);
  EXPECT_NEAR(cell.total(), 1.5 + 0.0072, 1e-12);
  // Unknown model: unpriced, $0.
  spec.mutable_models(0)->set_name("other");
  CostEstimate unknown = EstimateRun(prices, spec, plan, 0);
  EXPECT_FALSE(unknown.priced);
  EXPECT_EQ(unknown.total(), 0);
}

// Epochs 0 trains nothing and is answered by the base model at its own
// prices; a run of only epochs 0 has no training cost; auto hyperparameters
// change nothing (training is billed on tokens x epochs).
TEST(CostEstimateTest, BaseModelCellsPayInferenceOnlyAtBasePrices) {
  cost::PriceTable prices;
  ASSERT_TRUE(prices
                  .Add("version: t\nbackend: openai\nmodels:\n  m: {training_per_1m_tokens: 3, "
                       "input_per_1m_tokens: 0.3, output_per_1m_tokens: 1.2, "
                       "base_input_per_1m_tokens: 0.15, base_output_per_1m_tokens: 0.6, source: "
                       "s, as_of: d}\n",
                       "p.yaml")
                  .ok());
  v1::CampaignSpec spec;
  spec.add_datasets()->set_name("people");
  spec.add_datasets()->set_name("coding");
  spec.mutable_datasets(1)->set_evaluation_only(true);
  auto* m = spec.add_models();
  m->set_name("m");
  m->set_backend("openai");
  for (uint32_t e : {0, 1, 10}) spec.mutable_grid()->add_epochs(e);
  spec.mutable_grid()->add_learning_rate_multiplier(kAutoLearningRateMultiplier);
  spec.mutable_grid()->add_batch_size(kAutoBatchSize);
  spec.mutable_grid()->add_seed(0);
  DatasetSummary d{"people", "f", 150, 600, {}};
  d.training_tokens = 100'000;
  d.test_prompt_tokens = 20'000;
  d.test_answer_tokens = 1'000;
  DatasetSummary coding{"coding", "g", 0, 218, {}};
  coding.test_prompt_tokens = 10'000;
  coding.test_answer_tokens = 2'000;
  Plan plan = *PlanCampaign(spec, {d, coding});
  ASSERT_EQ(plan.runs.size(), 2u);
  // people: one 10-epoch job ($3.00); inference: two tuned cells at
  // 2 x (20,000 x 0.30 + 1,000 x 1.20) / 1M = $0.0144, the base cell at
  // (20,000 x 0.15 + 1,000 x 0.60) / 1M = $0.0036.
  CostEstimate run = EstimateRun(prices, spec, plan, 0);
  EXPECT_DOUBLE_EQ(run.train_usd, 3.0);
  EXPECT_NEAR(run.infer_usd, 0.0144 + 0.0036, 1e-12);
  CostEstimate base = EstimateCell(prices, spec, plan, plan.cells[0]);
  ASSERT_EQ(plan.cells[0].epochs, 0u);
  EXPECT_EQ(base.train_tokens, 0u);
  EXPECT_EQ(base.train_usd, 0);
  EXPECT_NEAR(base.infer_usd, 0.0036, 1e-12);
  // coding (evaluation only): its one cell is the base model; no training.
  CostEstimate eval = EstimateRun(prices, spec, plan, 1);
  EXPECT_EQ(eval.train_tokens, 0u);
  EXPECT_EQ(eval.train_usd, 0);
  EXPECT_NEAR(eval.infer_usd, (10'000 * 0.15 + 2'000 * 0.6) / 1e6, 1e-12);
  // The same grid with numbers instead of auto costs exactly the same.
  spec.mutable_grid()->set_learning_rate_multiplier(0, 2.0);
  spec.mutable_grid()->set_batch_size(0, 16);
  Plan numbers = *PlanCampaign(spec, {d, coding});
  EXPECT_DOUBLE_EQ(EstimateRun(prices, spec, numbers, 0).total(), run.total());
}

// A table without base_* prices bills the base model like a tuned one.
TEST(CostEstimateTest, BasePricesDefaultToTheTunedOnes) {
  cost::PriceTable prices;
  ASSERT_TRUE(prices
                  .Add("version: t\nbackend: vertex\nmodels:\n  g: {training_per_1m_tokens: 8, "
                       "input_per_1m_tokens: 0.5, output_per_1m_tokens: 2, source: s, as_of: d}\n",
                       "p.yaml")
                  .ok());
  const cost::ModelPrice* p = prices.Find("vertex", "g");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->base_input_per_1m_tokens, 0.5);
  EXPECT_EQ(p->base_output_per_1m_tokens, 2);
  // The shipped tables: OpenAI's base models are cheaper than its tuned ones.
  const cost::ModelPrice* mini = cost::PriceTable::Builtin().Find("openai", "gpt-4o-mini-2024-07-18");
  ASSERT_NE(mini, nullptr);
  EXPECT_LT(mini->base_input_per_1m_tokens, mini->input_per_1m_tokens);
}

}  // namespace
}  // namespace ftb::coordinator
