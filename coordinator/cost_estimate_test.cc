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

}  // namespace
}  // namespace ftb::coordinator
