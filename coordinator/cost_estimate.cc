#include "coordinator/cost_estimate.h"

#include "cost/tokens.h"

namespace ftb::coordinator {
namespace {

CostEstimate Estimate(const cost::PriceTable& prices, const v1::CampaignSpec& spec,
                      const Plan& plan, const GridPoint& first, uint32_t train_epochs,
                      uint32_t cells) {
  CostEstimate e;
  const v1::ModelSpec& model = spec.models(static_cast<int>(first.model));
  const DatasetSummary& d = plan.datasets[first.dataset];
  e.train_tokens = cost::TrainingTokens(d.training_tokens, train_epochs);
  e.infer_tokens = cells * (d.test_prompt_tokens + d.test_answer_tokens);
  const cost::ModelPrice* p = prices.Find(model.backend(), model.name());
  if (p == nullptr) {
    e.priced = false;
    return e;
  }
  e.verified = p->verified;
  e.train_usd = e.train_tokens * p->training_per_1m_tokens / 1e6;
  e.infer_usd = cells * (d.test_prompt_tokens * p->input_per_1m_tokens +
                         d.test_answer_tokens * p->output_per_1m_tokens) /
                1e6;
  return e;
}

}  // namespace

CostEstimate& CostEstimate::operator+=(const CostEstimate& o) {
  train_usd += o.train_usd;
  infer_usd += o.infer_usd;
  train_tokens += o.train_tokens;
  infer_tokens += o.infer_tokens;
  priced = priced && o.priced;
  verified = verified && o.verified;
  return *this;
}

CostEstimate EstimateRun(const cost::PriceTable& prices, const v1::CampaignSpec& spec,
                         const Plan& plan, uint32_t run) {
  const TrainingRun& r = plan.runs[run];
  return Estimate(prices, spec, plan, plan.cells[r.first_cell], r.max_epochs, r.cell_count);
}

CostEstimate EstimateCell(const cost::PriceTable& prices, const v1::CampaignSpec& spec,
                          const Plan& plan, const GridPoint& cell) {
  return Estimate(prices, spec, plan, cell, cell.epochs, 1);
}

}  // namespace ftb::coordinator
