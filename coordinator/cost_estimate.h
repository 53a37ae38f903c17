// Dollar estimates of cells and training runs from the price tables, used by
// `ftb plan` and by the scheduler's budget admission control. Pure;
// thread-safe.
//
// A training run is billed once, for its largest epoch count (the backend
// snapshots or checkpoints the smaller ones), on the estimated tokens of the
// chat-format training file; every cell then pays inference on its test
// prompts (input) and answers (output; the reference answers' length is the
// estimate). Judge costs are not estimated here (rules grading is free).
// A cell at epochs 0 trains nothing and pays inference at the base model's
// prices (cost::ModelPrice::base_*); a run of only such cells trains
// nothing. The learning rate multiplier and batch size, `auto` or not, do
// not enter the estimate: providers bill training tokens x epochs.
#ifndef FTB_COORDINATOR_COST_ESTIMATE_H_
#define FTB_COORDINATOR_COST_ESTIMATE_H_

#include <cstdint>

#include "coordinator/planner.h"
#include "cost/price_table.h"
#include "ftb/v1/campaign.pb.h"

namespace ftb::coordinator {

struct CostEstimate {
  double train_usd = 0;
  double infer_usd = 0;
  uint64_t train_tokens = 0;
  uint64_t infer_tokens = 0;
  // False when the price table has no entry for the backend and model (the
  // dollars above are then 0); unverified when an entry says verified: false.
  bool priced = true;
  bool verified = true;
  double total() const { return train_usd + infer_usd; }
  CostEstimate& operator+=(const CostEstimate& o);
};

CostEstimate EstimateRun(const cost::PriceTable& prices, const v1::CampaignSpec& spec,
                         const Plan& plan, uint32_t run);
// One cell on its own: training for its own epoch count plus its inference.
CostEstimate EstimateCell(const cost::PriceTable& prices, const v1::CampaignSpec& spec,
                          const Plan& plan, const GridPoint& cell);

}  // namespace ftb::coordinator

#endif  // FTB_COORDINATOR_COST_ESTIMATE_H_
