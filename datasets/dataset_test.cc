#include "datasets/dataset.h"

#include <string>
#include <vector>

#include "datasets/builtin.h"
#include "datasets/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::datasets {
namespace {

using ::ftb::datasets::testing::CodeAndMessage;
using ::ftb::datasets::testing::ScratchDir;
using ::testing::ElementsAre;

v1::DatasetSpec Builtin(const std::string& name, uint32_t size, uint64_t seed,
                        std::vector<std::string> types = {}) {
  v1::DatasetSpec spec;
  spec.set_name(name);
  spec.set_source(v1::DATASET_SOURCE_BUILTIN);
  spec.set_size(size);
  spec.set_seed(seed);
  for (const std::string& t : types) spec.add_question_types(t);
  return spec;
}

std::vector<std::string> TypeNames(const v1::Dataset& dataset) {
  std::vector<std::string> names;
  for (const v1::QuestionSet& set : dataset.tests()) names.push_back(QuestionTypeName(set.type()));
  return names;
}

TEST(QuestionTypeTest, NamesRoundTrip) {
  const std::vector<std::pair<v1::QuestionType, std::string>> expected = {
      {v1::QUESTION_TYPE_MEMORIZATION, "memorization"},
      {v1::QUESTION_TYPE_REPHRASED, "rephrased"},
      {v1::QUESTION_TYPE_DATE_CHANGED, "date_changed"},
      {v1::QUESTION_TYPE_SECONDARY, "secondary"},
      {v1::QUESTION_TYPE_COMPARISON, "comparison"},
      {v1::QUESTION_TYPE_VIGNETTE, "vignette"},
      {v1::QUESTION_TYPE_CODE, "code"},
  };
  for (const auto& [type, name] : expected) {
    EXPECT_EQ(QuestionTypeName(type), name);
    EXPECT_EQ(ParseQuestionType(name), type) << name;
  }
  EXPECT_EQ(QuestionTypeName(v1::QUESTION_TYPE_UNSPECIFIED), "unspecified");
  EXPECT_EQ(ParseQuestionType("unspecified"), std::nullopt);
  EXPECT_EQ(ParseQuestionType("Memorization"), std::nullopt);
  EXPECT_EQ(ParseQuestionType("QUESTION_TYPE_CODE"), std::nullopt);
  EXPECT_EQ(ParseQuestionType(""), std::nullopt);
}

TEST(LoadDatasetTest, BuiltinMatchesGenerator) {
  absl::StatusOr<v1::Dataset> d = LoadDataset(Builtin("people", 25, 4));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->SerializeAsString(), GeneratePeople(25, 4)->SerializeAsString());
  absl::StatusOr<v1::Dataset> u = LoadDataset(Builtin("updates", 40, 4));
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->SerializeAsString(), GenerateUpdates(40, 4)->SerializeAsString());
}

TEST(LoadDatasetTest, FiltersQuestionTypesKeepingDatasetOrder) {
  absl::StatusOr<v1::Dataset> d =
      LoadDataset(Builtin("people", 25, 4, {"comparison", "memorization", "comparison"}));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(TypeNames(*d), ElementsAre("memorization", "comparison"));
  EXPECT_EQ(d->training_size(), 150);
  EXPECT_EQ(TestQuestionCount(*d), 300);
}

TEST(LoadDatasetTest, UnknownQuestionType) {
  EXPECT_EQ(CodeAndMessage(LoadDataset(Builtin("people", 25, 4, {"trivia"})).status()),
            "INVALID_ARGUMENT: unknown question type \"trivia\"; valid types: memorization, "
            "rephrased, date_changed, secondary, comparison, vignette, code");
}

TEST(LoadDatasetTest, QuestionTypeTheDatasetLacks) {
  EXPECT_EQ(
      CodeAndMessage(LoadDataset(Builtin("updates", 40, 4, {"rephrased", "secondary"})).status()),
      "INVALID_ARGUMENT: dataset \"updates\" has no secondary questions; available types: "
      "memorization, rephrased");
}

TEST(LoadDatasetTest, UnknownBuiltin) {
  EXPECT_EQ(CodeAndMessage(LoadDataset(Builtin("robots", 25, 4)).status()),
            "INVALID_ARGUMENT: unknown builtin dataset \"robots\"; valid names: people, updates");
}

TEST(LoadDatasetTest, BuiltinSizeZero) {
  EXPECT_EQ(CodeAndMessage(LoadDataset(Builtin("updates", 0, 4)).status()),
            "INVALID_ARGUMENT: updates: size must be between 1 and 10000, got 0");
}

TEST(LoadDatasetTest, NoSource) {
  v1::DatasetSpec spec;
  spec.set_name("people");
  EXPECT_EQ(CodeAndMessage(LoadDataset(spec).status()),
            "INVALID_ARGUMENT: dataset \"people\" has no source (builtin or finetunebench)");
}

TEST(LoadDatasetTest, FineTuneBenchNeedsPath) {
  v1::DatasetSpec spec;
  spec.set_name("coding");
  spec.set_source(v1::DATASET_SOURCE_FINETUNEBENCH);
  EXPECT_EQ(CodeAndMessage(LoadDataset(spec).status()),
            "INVALID_ARGUMENT: FineTuneBench dataset \"coding\" needs the path of a "
            "FineTuneBench checkout");
}

TEST(LoadDatasetTest, FineTuneBenchFromPath) {
  ScratchDir dir;
  dir.Write("datasets/coding/coding_generalization.csv",
            ",id,prompt,answer_before,answer\n0,0,Which Vexlib method fits?,fit,train\n");
  v1::DatasetSpec spec;
  spec.set_name("coding");
  spec.set_source(v1::DATASET_SOURCE_FINETUNEBENCH);
  spec.set_path(dir.path());
  absl::StatusOr<v1::Dataset> d = LoadDataset(spec);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(TypeNames(*d), ElementsAre("code"));
  EXPECT_EQ(TestQuestionCount(*d), 1);

  spec.add_question_types("memorization");
  EXPECT_EQ(CodeAndMessage(LoadDataset(spec).status()),
            "INVALID_ARGUMENT: dataset \"coding\" has no memorization questions; available "
            "types: code");

  spec.set_path(dir.path() + "/nowhere");
  EXPECT_EQ(LoadDataset(spec).status().code(), absl::StatusCode::kNotFound);
}

TEST(FingerprintTest, StableAndSensitiveToContent) {
  const v1::Dataset d = *GeneratePeople(5, 1);
  const std::string fp = DatasetFingerprint(d);
  EXPECT_EQ(fp.size(), 64u);
  EXPECT_EQ(fp.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(DatasetFingerprint(*GeneratePeople(5, 1)), fp);

  v1::Dataset changed = d;
  changed.mutable_tests(1)->mutable_items(3)->set_answer("999");
  EXPECT_NE(DatasetFingerprint(changed), fp);

  changed = d;
  changed.set_name("people2");
  EXPECT_NE(DatasetFingerprint(changed), fp);

  // Moving an item from training to prior changes the fingerprint.
  v1::Dataset a, b;
  v1::QaItem item;
  item.set_id("x");
  item.set_prompt("p");
  item.set_answer("a");
  *a.add_training() = item;
  *b.add_prior() = item;
  EXPECT_NE(DatasetFingerprint(a), DatasetFingerprint(b));

  // Field boundaries matter: "ab"+"c" differs from "a"+"bc".
  v1::Dataset c = a, e = a;
  c.mutable_training(0)->set_prompt("ab");
  c.mutable_training(0)->set_answer("c");
  e.mutable_training(0)->set_prompt("a");
  e.mutable_training(0)->set_answer("bc");
  EXPECT_NE(DatasetFingerprint(c), DatasetFingerprint(e));

  // Notes are not content.
  changed = d;
  changed.add_notes("a note");
  EXPECT_EQ(DatasetFingerprint(changed), fp);
}

TEST(TestQuestionCountTest, SumsAllSets) {
  EXPECT_EQ(TestQuestionCount(*GeneratePeople(25, 0)), 600);
  EXPECT_EQ(TestQuestionCount(*GenerateUpdates(40, 0)), 80);
  EXPECT_EQ(TestQuestionCount(v1::Dataset()), 0);
}

TEST(BuiltinDatasetsTest, ListsPeopleAndUpdates) {
  std::vector<std::string> names;
  for (const BuiltinInfo& info : BuiltinDatasets()) {
    names.push_back(info.name);
    EXPECT_FALSE(info.description.empty());
  }
  EXPECT_THAT(names, ElementsAre("people", "updates"));
}

}  // namespace
}  // namespace ftb::datasets
