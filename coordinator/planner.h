// The planner: turns a validated CampaignSpec and its loaded datasets into
// the grid of cells and the training runs that serve them. Pure: no I/O, no
// clocks; the same inputs give the same cells, ids and order. Thread-safe.
//
// A cell is one point of the grid (dataset x model x epochs x learning rate
// x batch size x seed). Cells that differ only in their epoch count share a
// training run: one TUNE task trains to the largest epoch count and the
// backend evaluates a snapshot at each requested epoch (see TrainingRun).
//
// Special values (docs/spec.md, "Base model and auto"): epochs 0 is the base
// model, evaluated untuned (no training; a run whose only epoch count is 0
// has max_epochs 0 and its backend creates no training job); a learning rate
// multiplier or batch size of 0 is `auto` (the backend sends nothing and the
// provider picks its default). An evaluation-only dataset
// (DatasetSpec.evaluation_only) gets cells at epochs 0 only.
// Grid axes are expanded here and nowhere else; the scheduler sees tasks
// with a backend name and cell ids, so a new axis or backend leaves it alone.
#ifndef FTB_COORDINATOR_PLANNER_H_
#define FTB_COORDINATOR_PLANNER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/hash.h"
#include "ftb/v1/campaign.pb.h"
#include "ftb/v1/dataset.pb.h"
#include "ftb/v1/state.pb.h"

namespace ftb::coordinator {

// `auto` on the learning rate multiplier and batch size axes (see above).
inline constexpr double kAutoLearningRateMultiplier = 0;
inline constexpr uint32_t kAutoBatchSize = 0;
// How plans and reports show the two axes: "auto" for the auto value, else
// the number ("%g" for the multiplier).
std::string LearningRateMultiplierText(double v);
std::string BatchSizeText(uint32_t v);

// What the planner needs to know about a loaded dataset.
struct DatasetSummary {
  std::string label;
  std::string fingerprint;
  uint32_t training_examples = 0;
  uint32_t test_questions = 0;
  // Loader notes (e.g. a missing training file).
  std::vector<std::string> notes;
  // Token estimates (cost/tokens.h): the chat-format training file, all test
  // prompts, all reference answers.
  uint64_t training_tokens = 0;
  uint64_t test_prompt_tokens = 0;
  uint64_t test_answer_tokens = 0;
  // Comparison questions answerable from the names in the question alone
  // (datasets::IsNameOnlyComparison), and all comparison questions.
  uint32_t comparison_name_only = 0;
  uint32_t comparison_questions = 0;
};

// Conversions to and from the stored form (v1::DatasetSummary).
DatasetSummary FromProto(const v1::DatasetSummary& d);
v1::DatasetSummary ToProto(const DatasetSummary& d);

DatasetSummary Summarize(const v1::DatasetSpec& spec, const v1::Dataset& dataset);

// One grid point, compact (32 bytes) so million-cell grids stay small.
// Indices refer to CampaignSpec.datasets / models.
struct GridPoint {
  uint32_t dataset = 0;
  uint32_t model = 0;
  uint32_t epochs = 0;
  uint32_t batch_size = 0;
  double learning_rate_multiplier = 0;
  uint64_t seed = 0;
};

// Cells sharing everything but epochs: one training run.
struct TrainingRun {
  // Index of the first cell of the run in Plan::cells; the run's cells are
  // contiguous, ordered by ascending epochs.
  uint64_t first_cell = 0;
  uint32_t cell_count = 0;
  uint32_t max_epochs = 0;
};

struct Plan {
  std::vector<DatasetSummary> datasets;
  // Grid order: dataset, model, learning rate, batch size, seed, epochs
  // (epochs innermost so a run's cells are adjacent).
  std::vector<GridPoint> cells;
  std::vector<TrainingRun> runs;
};

// Plan- and submit-time checks of the loaded datasets (parallel to
// spec.datasets), kept out of PlanCampaign so that recovering a campaign
// accepted earlier never fails on them: a dataset with no training examples
// is kFailedPrecondition naming it (and the loader's notes, which name the
// missing file) unless it is evaluation_only.
absl::Status ValidateDatasets(const v1::CampaignSpec& spec,
                              const std::vector<DatasetSummary>& datasets);

// The number of cells PlanCampaign would make of `spec`, from the axis
// sizes alone (no expansion: a 10-kB spec may describe 10^8 cells), so that
// an oversized campaign is refused before anything is built. Saturates at
// UINT64_MAX.
uint64_t CountCells(const v1::CampaignSpec& spec);

// kInvalidArgument "campaign has N cells; the limit is M ...".
absl::Status TooManyCellsError(uint64_t cells, uint64_t limit);

// Expands the grid. `datasets` is parallel to spec.datasets. Errors:
// kInvalidArgument when the inputs disagree (sizes differ) or an axis is
// empty after defaults (a spec that did not go through spec::Parse).
absl::StatusOr<Plan> PlanCampaign(const v1::CampaignSpec& spec,
                                  std::vector<DatasetSummary> datasets);

// The stable key of a cell, and its id: the first 128 bits, in hex, of a
// SHA-256 over the key's canonical encoding.
v1::CellKey MakeCellKey(const v1::CampaignSpec& spec, const Plan& plan,
                        const GridPoint& point);
// The same, with the model's CanonicalOptionsJson precomputed by the caller
// (it is the costly part; the scheduler caches it per model).
v1::CellKey MakeCellKey(const v1::CampaignSpec& spec, const Plan& plan, const GridPoint& point,
                        std::string_view backend_options_json);
std::string CellId(const v1::CellKey& key);
// Id of a training run: hash of its cells' shared key (epochs excluded).
std::string TrainingRunId(const v1::CellKey& any_cell_of_run);

// CellId(MakeCellKey(spec, plan, point)) for many points of one plan,
// without building keys: the hash state after the fields a (dataset, model)
// pair shares is computed once (the scheduler names cells on every lease
// and completion).
class CellIdHasher {
 public:
  CellIdHasher(const v1::CampaignSpec& spec, const Plan& plan);
  std::string Id(const GridPoint& point) const;

 private:
  size_t models_;
  std::vector<Sha256> prefixes_;  // [dataset * models_ + model]
};

// Canonical JSON (sorted keys, no whitespace) of a backend options Struct.
std::string CanonicalOptionsJson(const google::protobuf::Struct& options);

}  // namespace ftb::coordinator

#endif  // FTB_COORDINATOR_PLANNER_H_
