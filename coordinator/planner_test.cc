#include "coordinator/planner.h"

#include <set>

#include "gtest/gtest.h"

namespace ftb::coordinator {
namespace {

v1::CampaignSpec TwoByTwoSpec() {
  v1::CampaignSpec spec;
  spec.set_name("t");
  for (const char* name : {"people", "updates"}) {
    auto* d = spec.add_datasets();
    d->set_name(name);
    d->set_source(v1::DATASET_SOURCE_BUILTIN);
  }
  auto* a = spec.add_models();
  a->set_name("tiny");
  a->set_backend("local");
  (*a->mutable_options()->mutable_fields())["width"].set_number_value(64);
  auto* b = spec.add_models();
  b->set_name("gpt-4o-mini-2024-07-18");
  b->set_backend("openai");
  b->mutable_grid()->add_epochs(3);  // per-model override
  for (uint32_t e : {10, 1, 5}) spec.mutable_grid()->add_epochs(e);
  spec.mutable_grid()->add_learning_rate_multiplier(1.0);
  spec.mutable_grid()->add_learning_rate_multiplier(0.1);
  spec.mutable_grid()->add_batch_size(4);
  spec.mutable_grid()->add_seed(0);
  spec.mutable_grid()->add_seed(1);
  return spec;
}

std::vector<DatasetSummary> Summaries() {
  return {DatasetSummary{"people", "aaaa", 150, 600, {}},
          DatasetSummary{"updates", "bbbb", 80, 160, {}}};
}

TEST(PlannerTest, ExpandsTheGridWithPerModelOverrides) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  absl::StatusOr<Plan> plan = PlanCampaign(spec, Summaries());
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Per dataset: tiny 3 epochs x 2 lr x 1 batch x 2 seeds = 12 cells in 4
  // runs; gpt 1 epoch x 2 x 1 x 2 = 4 cells in 4 runs.
  EXPECT_EQ(plan->cells.size(), 2u * (12 + 4));
  EXPECT_EQ(plan->runs.size(), 2u * (4 + 4));
  // A run's cells are adjacent, ascending in epochs, and differ only there.
  const TrainingRun& first = plan->runs[0];
  ASSERT_EQ(first.cell_count, 3u);
  EXPECT_EQ(first.max_epochs, 10u);
  EXPECT_EQ(plan->cells[0].epochs, 1u);
  EXPECT_EQ(plan->cells[1].epochs, 5u);
  EXPECT_EQ(plan->cells[2].epochs, 10u);
  std::string run_id = TrainingRunId(MakeCellKey(spec, *plan, plan->cells[0]));
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(TrainingRunId(MakeCellKey(spec, *plan, plan->cells[i])), run_id);
  }
  EXPECT_NE(TrainingRunId(MakeCellKey(spec, *plan, plan->cells[3])), run_id);
  // The override applies to its model only.
  for (const GridPoint& p : plan->cells) {
    if (p.model == 1) {
      EXPECT_EQ(p.epochs, 3u);
    }
  }
}

TEST(PlannerTest, CellIdsAreDistinctAndStable) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  absl::StatusOr<Plan> plan = PlanCampaign(spec, Summaries());
  ASSERT_TRUE(plan.ok());
  std::set<std::string> ids;
  for (const GridPoint& p : plan->cells) ids.insert(CellId(MakeCellKey(spec, *plan, p)));
  EXPECT_EQ(ids.size(), plan->cells.size());
  // Pinned: the id is a content hash, identical across runs and machines.
  // If this changes, stored campaigns no longer match their specs.
  v1::CellKey key = MakeCellKey(spec, *plan, plan->cells[0]);
  EXPECT_EQ(key.backend_options_json(), R"({"width":64})");
  EXPECT_EQ(CellId(key).size(), 32u);
  absl::StatusOr<Plan> again = PlanCampaign(spec, Summaries());
  EXPECT_EQ(CellId(MakeCellKey(spec, *again, again->cells[0])), CellId(key));
}

TEST(PlannerTest, CellIdHasherAgreesWithCellId) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  spec.mutable_grid()->add_learning_rate_multiplier(0.1);
  spec.mutable_grid()->add_seed(12345678901ULL);
  absl::StatusOr<Plan> plan = PlanCampaign(spec, Summaries());
  ASSERT_TRUE(plan.ok());
  const CellIdHasher hasher(spec, *plan);
  ASSERT_GT(plan->cells.size(), 8u);
  for (const GridPoint& p : plan->cells) {
    EXPECT_EQ(hasher.Id(p), CellId(MakeCellKey(spec, *plan, p)));
  }
}

TEST(PlannerTest, IdsDependOnDatasetContentAndOptions) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  absl::StatusOr<Plan> plan = PlanCampaign(spec, Summaries());
  ASSERT_TRUE(plan.ok());
  std::string id = CellId(MakeCellKey(spec, *plan, plan->cells[0]));
  std::vector<DatasetSummary> changed = Summaries();
  changed[0].fingerprint = "cccc";
  absl::StatusOr<Plan> plan2 = PlanCampaign(spec, changed);
  EXPECT_NE(CellId(MakeCellKey(spec, *plan2, plan2->cells[0])), id);
  (*spec.mutable_models(0)->mutable_options()->mutable_fields())["width"].set_number_value(128);
  EXPECT_NE(CellId(MakeCellKey(spec, *plan, plan->cells[0])), id);
}

TEST(PlannerTest, CanonicalOptionsJsonSortsKeys) {
  google::protobuf::Struct a, b;
  (*a.mutable_fields())["z"].set_string_value("1");
  (*a.mutable_fields())["a"].set_bool_value(true);
  (*b.mutable_fields())["a"].set_bool_value(true);
  (*b.mutable_fields())["z"].set_string_value("1");
  EXPECT_EQ(CanonicalOptionsJson(a), R"({"a":true,"z":"1"})");
  EXPECT_EQ(CanonicalOptionsJson(a), CanonicalOptionsJson(b));
}

TEST(PlannerTest, RejectsMismatchedDatasets) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  absl::StatusOr<Plan> plan = PlanCampaign(spec, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(plan.status().message(), "planner: 0 loaded datasets for 2 in the spec");
}

TEST(PlannerTest, MillionCellGridIsCompact) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  spec.mutable_grid()->clear_seed();
  for (uint64_t s = 0; s < 100000; ++s) spec.mutable_grid()->add_seed(s);
  spec.mutable_models()->RemoveLast();
  absl::StatusOr<Plan> plan = PlanCampaign(spec, Summaries());
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->cells.size(), 2u * 3 * 2 * 100000);
  EXPECT_EQ(sizeof(GridPoint), 32u);
}

}  // namespace
}  // namespace ftb::coordinator
