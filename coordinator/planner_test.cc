#include "coordinator/planner.h"

#include <set>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
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

TEST(PlannerTest, CountCellsAgreesWithTheExpansionWithoutExpanding) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  absl::StatusOr<Plan> plan = PlanCampaign(spec, Summaries());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(CountCells(spec), plan->cells.size());
  // An evaluation-only dataset has one cell (epochs 0) per training run.
  spec.mutable_datasets(0)->set_evaluation_only(true);
  plan = PlanCampaign(spec, Summaries());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(CountCells(spec), plan->cells.size());
  // Axis sizes whose product overflows 64 bits saturate.
  v1::CampaignSpec huge = TwoByTwoSpec();
  for (int k = 0; k < 70000; ++k) huge.mutable_grid()->add_seed(static_cast<uint64_t>(k));
  for (int k = 0; k < 70000; ++k) huge.mutable_grid()->add_batch_size(static_cast<uint32_t>(k));
  for (int k = 0; k < 70000; ++k) huge.mutable_grid()->add_learning_rate_multiplier(k + 1.0);
  for (int k = 0; k < 70000; ++k) huge.mutable_grid()->add_epochs(static_cast<uint32_t>(k));
  for (int k = 0; k < 2; ++k) *huge.add_models() = huge.models(0);
  EXPECT_EQ(CountCells(huge), UINT64_MAX);
  EXPECT_THAT(std::string(TooManyCellsError(CountCells(huge), 5).message()),
              ::testing::HasSubstr("more than 18446744073709551614 cells; the limit is 5"));
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
  EXPECT_THAT(plan, ::ftb::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                             "planner: 0 loaded datasets for 2 in the spec"));
}

// Epochs 0 (the base model) and `auto` (0) are grid values like any other:
// epochs 0 is the first cell of each run, a run of epochs 0 alone trains
// nothing (max_epochs 0), and auto is its own point of the canonical key.
TEST(PlannerTest, BaseModelCellsAndAutoHyperparameters) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  spec.mutable_grid()->clear_epochs();
  for (uint32_t e : {5, 0, 1}) spec.mutable_grid()->add_epochs(e);
  spec.mutable_grid()->clear_learning_rate_multiplier();
  spec.mutable_grid()->add_learning_rate_multiplier(kAutoLearningRateMultiplier);
  spec.mutable_grid()->add_learning_rate_multiplier(1.0);
  spec.mutable_grid()->clear_batch_size();
  spec.mutable_grid()->add_batch_size(kAutoBatchSize);
  spec.mutable_grid()->clear_seed();
  spec.mutable_grid()->add_seed(0);
  spec.mutable_models(1)->mutable_grid()->clear_epochs();
  spec.mutable_models(1)->mutable_grid()->add_epochs(0);  // the base model only
  absl::StatusOr<Plan> plan = PlanCampaign(spec, Summaries());
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Per dataset: tiny 3 epochs x 2 lr = 6 cells in 2 runs; gpt 1 x 2 = 2 in 2.
  ASSERT_EQ(plan->cells.size(), 2u * (6 + 2));
  ASSERT_EQ(plan->runs.size(), 2u * (2 + 2));
  const TrainingRun& tiny = plan->runs[0];
  EXPECT_EQ(tiny.cell_count, 3u);
  EXPECT_EQ(tiny.max_epochs, 5u);
  EXPECT_EQ(plan->cells[tiny.first_cell].epochs, 0u);
  EXPECT_EQ(plan->cells[tiny.first_cell].learning_rate_multiplier, kAutoLearningRateMultiplier);
  const TrainingRun& gpt = plan->runs[2];
  EXPECT_EQ(gpt.cell_count, 1u);
  EXPECT_EQ(gpt.max_epochs, 0u);  // no training job
  // Ids: distinct, stable, auto apart from every number, the hasher agrees.
  std::set<std::string> ids;
  const CellIdHasher hasher(spec, *plan);
  for (const GridPoint& p : plan->cells) {
    const std::string id = CellId(MakeCellKey(spec, *plan, p));
    ids.insert(id);
    EXPECT_EQ(hasher.Id(p), id);
  }
  EXPECT_EQ(ids.size(), plan->cells.size());
  const v1::CellKey auto_key = MakeCellKey(spec, *plan, plan->cells[0]);
  const v1::CellKey one_key = MakeCellKey(spec, *plan, plan->cells[3]);
  EXPECT_EQ(LearningRateMultiplierText(auto_key.learning_rate_multiplier()), "auto");
  EXPECT_EQ(LearningRateMultiplierText(one_key.learning_rate_multiplier()), "1");
  EXPECT_EQ(BatchSizeText(auto_key.batch_size()), "auto");
  EXPECT_EQ(BatchSizeText(8), "8");
  EXPECT_NE(TrainingRunId(auto_key), TrainingRunId(one_key));
  // The auto runs' ids survive a re-plan (recovery re-derives them).
  absl::StatusOr<Plan> again = PlanCampaign(spec, Summaries());
  EXPECT_EQ(CellId(MakeCellKey(spec, *again, again->cells[0])), CellId(auto_key));
}

// An evaluation-only dataset gets the base model only, whatever the epochs
// axis says; the other datasets keep it.
TEST(PlannerTest, EvaluationOnlyDatasetRunsAtEpochsZeroOnly) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  spec.mutable_datasets(1)->set_evaluation_only(true);
  absl::StatusOr<Plan> plan = PlanCampaign(spec, Summaries());
  ASSERT_TRUE(plan.ok()) << plan.status();
  size_t updates_cells = 0;
  for (const GridPoint& p : plan->cells) {
    if (p.dataset == 1) {
      ++updates_cells;
      EXPECT_EQ(p.epochs, 0u);
    }
  }
  EXPECT_EQ(updates_cells, 4u + 4u);  // one cell per run: tiny 4 runs, gpt 4 runs
  for (const TrainingRun& r : plan->runs) {
    if (plan->cells[r.first_cell].dataset == 1) {
      EXPECT_EQ(r.max_epochs, 0u);
    }
  }
  EXPECT_EQ(plan->cells.size(), 16u + 8u);
}

TEST(PlannerTest, ValidateDatasetsRefusesNothingToTrainOnUnlessEvaluationOnly) {
  v1::CampaignSpec spec = TwoByTwoSpec();
  std::vector<DatasetSummary> summaries = Summaries();
  EXPECT_TRUE(ValidateDatasets(spec, summaries).ok());
  summaries[1].training_examples = 0;
  summaries[1].notes = {"/data/datasets/coding/coding_memorization.csv is missing: no training set"};
  absl::Status s = ValidateDatasets(spec, summaries);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "datasets[1] updates: no training examples to fine-tune on "
            "(/data/datasets/coding/coding_memorization.csv is missing: no training set). Add the "
            "training file, or set evaluation_only: true on the dataset to evaluate the base "
            "model only (epochs 0)");
  spec.mutable_datasets(1)->set_evaluation_only(true);
  EXPECT_TRUE(ValidateDatasets(spec, summaries).ok());
}

TEST(PlannerTest, SummaryCountsNameOnlyComparisonQuestions) {
  v1::Dataset d;
  d.set_name("fictional_people");
  v1::QuestionSet* set = d.add_tests();
  set->set_type(v1::QUESTION_TYPE_COMPARISON);
  set->add_items()->set_prompt("Answer the question with Yes or No.\nIs Sufa alphabetically first than Zubumagi?");
  set->add_items()->set_prompt("Answer the question with Yes or No.\nIs Labigih heavier than Faqapi?");
  set->add_items()->set_prompt("Is Zoqog alphabetically before Xadogoha?");
  v1::QuestionSet* secondary = d.add_tests();
  secondary->set_type(v1::QUESTION_TYPE_SECONDARY);
  secondary->add_items()->set_prompt("Is A alphabetically first than B?");  // not comparison
  v1::DatasetSpec spec;
  spec.set_name("fictional_people");
  DatasetSummary s = Summarize(spec, d);
  EXPECT_EQ(s.comparison_questions, 3u);
  EXPECT_EQ(s.comparison_name_only, 2u);
  DatasetSummary back = FromProto(ToProto(s));
  EXPECT_EQ(back.comparison_questions, 3u);
  EXPECT_EQ(back.comparison_name_only, 2u);
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
