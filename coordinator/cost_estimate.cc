#include "coordinator/cost_estimate.h"

#include "cost/tokens.h"

namespace ftb::coordinator {
namespace {

// `cells` cells of one run starting at `first`, of which `base_cells` are at
// epochs 0 (inference on the untuned base model, at its own prices).
CostEstimate Estimate(const cost::PriceTable& prices, const v1::CampaignSpec& spec,
                      const Plan& plan, const GridPoint& first, uint32_t train_epochs,
                      uint32_t cells, uint32_t base_cells) {
  CostEstimate e;
  const v1::ModelSpec& model = spec.models(static_cast<int>(first.model));
  const DatasetSummary& d = plan.datasets[first.dataset];
  // Training depends on the tokens and the epochs only: an `auto` learning
  // rate multiplier or batch size changes nothing here.
  e.train_tokens = cost::TrainingTokens(d.training_tokens, train_epochs);
  e.infer_tokens = cells * (d.test_prompt_tokens + d.test_answer_tokens);
  const cost::ModelPrice* p = prices.Find(model.backend(), model.name());
  if (p == nullptr) {
    e.priced = false;
    return e;
  }
  e.verified = p->verified;
  e.train_usd = e.train_tokens * p->training_per_1m_tokens / 1e6;
  const uint32_t tuned_cells = cells - base_cells;
  e.infer_usd = (tuned_cells * (d.test_prompt_tokens * p->input_per_1m_tokens +
                                d.test_answer_tokens * p->output_per_1m_tokens) +
                 base_cells * (d.test_prompt_tokens * p->base_input_per_1m_tokens +
                               d.test_answer_tokens * p->base_output_per_1m_tokens)) /
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
  uint32_t base_cells = 0;
  for (uint32_t k = 0; k < r.cell_count; ++k) base_cells += plan.cells[r.first_cell + k].epochs == 0;
  return Estimate(prices, spec, plan, plan.cells[r.first_cell], r.max_epochs, r.cell_count,
                  base_cells);
}

CostEstimate EstimateCell(const cost::PriceTable& prices, const v1::CampaignSpec& spec,
                          const Plan& plan, const GridPoint& cell) {
  return Estimate(prices, spec, plan, cell, cell.epochs, 1, cell.epochs == 0 ? 1 : 0);
}

}  // namespace ftb::coordinator
