#include "datasets/finetunebench.h"

#include <string>
#include <vector>

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "datasets/csv.h"
#include "datasets/dataset.h"
#include "datasets/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::datasets {
namespace {

using ::ftb::datasets::testing::CodeAndMessage;
using ::ftb::datasets::testing::ScratchDir;
using ::ftb::datasets::testing::SharedFineTuneBenchDir;
using ::testing::ElementsAre;

// All fixture text below is synthetic, written for these tests.

constexpr char kNewsMemorization[] =
    "id,prompt,answer,article_title,question,fact,article_text,used_in_analysis\n"
    "harbor-bridge,\"You are a news expert.\nQuestion: When did the Qelvar harbor bridge "
    "open?\",March 3,Bridge opens,When did the Qelvar harbor bridge open?,The Qelvar harbor "
    "bridge opened on March 3.,\"Long article\nwith \"\"quotes\"\", commas\",True\n"
    "old-story,Question: Who won the Brask cup?,Nobody,Old,Who won?,Nobody won.,text,False\n"
    "zoo-pandas,Question: How many pandas arrived at the Ostrel zoo?,2,Pandas,How many "
    "pandas?,Two pandas arrived at the Ostrel zoo.,text,TRUE\n";

constexpr char kNewsRephrased[] =
    "id,prompt,answer,article_title,original_question,rephrased_question,fact,article_text,"
    "used_in_analysis\n"
    "harbor-bridge,On what date did the Qelvar harbor bridge open?,March 3,t,q,r,The Qelvar "
    "harbor bridge opened on March 3.,text,true\n"
    "old-story,Who took the Brask cup?,Nobody,t,q,r,Nobody won.,text,false\n"
    "zoo-pandas,How many pandas did the Ostrel zoo receive?,2,t,q,r,Two pandas arrived at the "
    "Ostrel zoo.,text,True\n";

constexpr char kNewsDateChanged[] =
    "id,prompt,answer,article_title,original_question,date_changed_question,fact,article_text,"
    "used_in_analysis\n"
    "harbor-bridge,When did the Qelvar harbor bridge open in 2031?,None,t,q,d,The Qelvar harbor "
    "bridge opened on March 3.,text,True\n"
    "old-story,Who won the Brask cup in 2031?,None,t,q,d,Nobody won.,text,False\n"
    "zoo-pandas,How many pandas arrived at the Ostrel zoo in 2031?,None,t,q,d,Two pandas arrived "
    "at the Ostrel zoo.,text,True\n";

constexpr char kPeopleHeader[] = "id,prompt,answer,fact,question\n";
constexpr char kPeopleRows[] =
    "zerin-plo,\"Answer the question with a number, word, or phrase.\nHow many pounds does "
    "Zerin Plo weigh?\",140,Zerin Plo weighs 140 pounds.,How many pounds does Zerin Plo "
    "weigh?\n"
    "zerin-plo,\"Answer the question with a number, word, or phrase.\nWhat is Zerin Plo's "
    "job?\",baker,Zerin Plo works as a baker.,What is Zerin Plo's job?\n";
constexpr char kPeopleRephrased[] =
    "id,prompt,answer,fact,original_question,rephrased_question\n"
    "zerin-plo,What does Zerin Plo weigh in pounds?,140,Zerin Plo weighs 140 pounds.,o,r\n"
    "zerin-plo,What does Zerin Plo do for work?,baker,Zerin Plo works as a baker.,o,r\n";

constexpr char kMedicalMemorization[] =
    ",id,update_reference_snippet,updated_fact_description,prompt,answer_before,answer\n"
    "0,10,snippet one,\"Previously: 7 days. Now: 5 days.\",How many days should the Drelk "
    "course last?,7 days,5 days\n"
    "1,11,snippet two,\"Previously: age 60. Now: age 55.\",At what age does Drelk screening "
    "start?,60,55\n";
constexpr char kMedicalGeneralization[] =
    ",id,prompt,answer_before,answer\n"
    "0,10,\"A patient starts a Drelk course.\nHow long should it last?\",7 days,5 days\n"
    "1,99,A vignette with no matching fact.,old,new\n";

constexpr char kCodingGeneralization[] =
    ",id,prompt,answer_before,answer\n"
    "0,0,What is the method that fits a Vexlib model in the newest Vexlib?,fit,train\n"
    "1,1,What is the function that plots a Vexlib chart in the newest Vexlib?,plot,draw\n";

std::string CsvPath(const ScratchDir& dir, const std::string& name, const std::string& type) {
  return dir.path() + "/datasets/" + name + "/" + name + "_" + type + ".csv";
}

void WriteLatestNews(const ScratchDir& dir) {
  dir.Write("datasets/latest_news/latest_news_memorization.csv", kNewsMemorization);
  dir.Write("datasets/latest_news/latest_news_rephrased.csv", kNewsRephrased);
  dir.Write("datasets/latest_news/latest_news_date_changed.csv", kNewsDateChanged);
}

void WriteFictionalPeople(const ScratchDir& dir) {
  const std::string rows = std::string(kPeopleHeader) + kPeopleRows;
  dir.Write("datasets/fictional_people/fictional_people_memorization.csv", rows);
  dir.Write("datasets/fictional_people/fictional_people_rephrased.csv", kPeopleRephrased);
  dir.Write("datasets/fictional_people/fictional_people_secondary.csv", rows);
  dir.Write("datasets/fictional_people/fictional_people_comparison.csv", rows);
}

std::vector<std::string> Ids(const google::protobuf::RepeatedPtrField<v1::QaItem>& items) {
  std::vector<std::string> ids;
  for (const v1::QaItem& item : items) ids.push_back(item.id());
  return ids;
}

std::vector<std::string> TypeNames(const v1::Dataset& dataset) {
  std::vector<std::string> names;
  for (const v1::QuestionSet& set : dataset.tests()) names.push_back(QuestionTypeName(set.type()));
  return names;
}

TEST(FineTuneBenchTest, Names) {
  EXPECT_THAT(FineTuneBenchDatasetNames(),
              ElementsAre("latest_news", "fictional_people", "medical", "coding"));
}

TEST(FineTuneBenchTest, LatestNewsKeepsRowsUsedInAnalysis) {
  ScratchDir dir;
  WriteLatestNews(dir);
  absl::StatusOr<v1::Dataset> d = LoadFineTuneBench(dir.path(), "latest_news");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name(), "latest_news");
  EXPECT_EQ(d->source(), v1::DATASET_SOURCE_FINETUNEBENCH);
  EXPECT_FALSE(d->updates_knowledge());
  EXPECT_TRUE(d->prior().empty());
  EXPECT_TRUE(d->notes().empty());
  EXPECT_THAT(Ids(d->training()), ElementsAre("harbor-bridge#0", "zoo-pandas#2"));
  EXPECT_THAT(TypeNames(*d), ElementsAre("memorization", "rephrased", "date_changed"));

  const v1::QaItem& first = d->training(0);
  EXPECT_EQ(first.prompt(),
            "You are a news expert.\nQuestion: When did the Qelvar harbor bridge open?");
  EXPECT_EQ(first.answer(), "March 3");
  EXPECT_EQ(first.answer_before(), "");
  EXPECT_EQ(first.context(), "The Qelvar harbor bridge opened on March 3.");
  EXPECT_EQ(first.source_id(), "harbor-bridge");

  EXPECT_THAT(Ids(d->tests(0).items()), ElementsAre("harbor-bridge#0", "zoo-pandas#2"));
  EXPECT_EQ(d->tests(0).items(1).SerializeAsString(), d->training(1).SerializeAsString());
  EXPECT_THAT(Ids(d->tests(1).items()), ElementsAre("harbor-bridge#0", "zoo-pandas#2"));
  EXPECT_EQ(d->tests(1).items(1).prompt(), "How many pandas did the Ostrel zoo receive?");
  EXPECT_EQ(d->tests(1).items(1).answer(), "2");
  EXPECT_THAT(Ids(d->tests(2).items()), ElementsAre("harbor-bridge#0", "zoo-pandas#2"));
  EXPECT_EQ(d->tests(2).items(0).answer(), "None");
}

TEST(FineTuneBenchTest, FictionalPeopleItemIdsAreUniqueThoughSourceIdsRepeat) {
  ScratchDir dir;
  WriteFictionalPeople(dir);
  absl::StatusOr<v1::Dataset> d = LoadFineTuneBench(dir.path(), "fictional_people");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(TypeNames(*d), ElementsAre("memorization", "rephrased", "secondary", "comparison"));
  EXPECT_THAT(Ids(d->training()), ElementsAre("zerin-plo#0", "zerin-plo#1"));
  EXPECT_EQ(d->training(1).prompt(),
            "Answer the question with a number, word, or phrase.\nWhat is Zerin Plo's job?");
  EXPECT_EQ(d->training(1).answer(), "baker");
  EXPECT_EQ(d->training(1).context(), "Zerin Plo works as a baker.");
  EXPECT_EQ(d->training(1).source_id(), "zerin-plo");
  EXPECT_EQ(d->tests(1).items(0).prompt(), "What does Zerin Plo weigh in pounds?");
  EXPECT_EQ(TestQuestionCount(*d), 8);
}

TEST(FineTuneBenchTest, MedicalHasPriorAndVignetteContext) {
  ScratchDir dir;
  dir.Write("datasets/medical/medical_memorization.csv", kMedicalMemorization);
  dir.Write("datasets/medical/medical_generalization.csv", kMedicalGeneralization);
  absl::StatusOr<v1::Dataset> d = LoadFineTuneBench(dir.path(), "medical");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->updates_knowledge());
  EXPECT_THAT(TypeNames(*d), ElementsAre("memorization", "vignette"));
  ASSERT_EQ(d->training_size(), 2);
  const v1::QaItem& t = d->training(0);
  EXPECT_EQ(t.id(), "10#0");
  EXPECT_EQ(t.prompt(), "How many days should the Drelk course last?");
  EXPECT_EQ(t.answer(), "5 days");
  EXPECT_EQ(t.answer_before(), "7 days");
  EXPECT_EQ(t.context(), "Previously: 7 days. Now: 5 days.");
  EXPECT_EQ(t.source_id(), "10");

  ASSERT_EQ(d->prior_size(), 2);
  EXPECT_EQ(d->prior(1).id(), "11#1");
  EXPECT_EQ(d->prior(1).prompt(), "At what age does Drelk screening start?");
  EXPECT_EQ(d->prior(1).answer(), "60");
  EXPECT_EQ(d->prior(1).answer_before(), "");

  const auto& vignettes = d->tests(1).items();
  ASSERT_EQ(vignettes.size(), 2);
  EXPECT_EQ(vignettes[0].prompt(), "A patient starts a Drelk course.\nHow long should it last?");
  EXPECT_EQ(vignettes[0].answer(), "5 days");
  EXPECT_EQ(vignettes[0].answer_before(), "7 days");
  EXPECT_EQ(vignettes[0].context(), "Previously: 7 days. Now: 5 days.");
  EXPECT_EQ(vignettes[1].id(), "99#1");
  EXPECT_EQ(vignettes[1].context(), "");
}

TEST(FineTuneBenchTest, CodingWithoutMemorizationFileHasNoteAndNoTraining) {
  ScratchDir dir;
  dir.Write("datasets/coding/coding_generalization.csv", kCodingGeneralization);
  absl::StatusOr<v1::Dataset> d = LoadFineTuneBench(dir.path(), "coding");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->updates_knowledge());
  EXPECT_TRUE(d->training().empty());
  EXPECT_TRUE(d->prior().empty());
  EXPECT_THAT(TypeNames(*d), ElementsAre("code"));
  EXPECT_THAT(Ids(d->tests(0).items()), ElementsAre("0#0", "1#1"));
  EXPECT_EQ(d->tests(0).items(1).answer(), "draw");
  EXPECT_EQ(d->tests(0).items(1).answer_before(), "plot");
  EXPECT_THAT(d->notes(),
              ElementsAre(CsvPath(dir, "coding", "memorization") +
                          " is missing: no training set, no prior and no memorization "
                          "questions; only the code questions (coding_generalization.csv) are "
                          "available"));
}

TEST(FineTuneBenchTest, CodingWithMemorizationFileTrains) {
  ScratchDir dir;
  dir.Write("datasets/coding/coding_generalization.csv", kCodingGeneralization);
  dir.Write("datasets/coding/coding_memorization.csv",
            ",id,prompt,answer_before,answer\n"
            "0,0,What is the name of the method that fits a Vexlib model?,fit,train\n");
  absl::StatusOr<v1::Dataset> d = LoadFineTuneBench(dir.path(), "coding");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->notes().empty());
  EXPECT_THAT(TypeNames(*d), ElementsAre("memorization", "code"));
  ASSERT_EQ(d->training_size(), 1);
  EXPECT_EQ(d->training(0).answer(), "train");
  EXPECT_EQ(d->training(0).answer_before(), "fit");
  ASSERT_EQ(d->prior_size(), 1);
  EXPECT_EQ(d->prior(0).answer(), "fit");
}

// Loader-level malformed input: exact messages.

TEST(FineTuneBenchErrorTest, MissingRequiredColumn) {
  ScratchDir dir;
  WriteLatestNews(dir);
  dir.Write("datasets/latest_news/latest_news_rephrased.csv",
            "id,prompt,answer,article_title,original_question,rephrased_question,article_text,"
            "used_in_analysis\n"
            "a,p,x,t,q,r,text,True\n");
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "latest_news").status()),
            "INVALID_ARGUMENT: " + CsvPath(dir, "latest_news", "rephrased") +
                ":1:1: missing required column \"fact\"");
}

// Issue 17, finding 6: a header and no rows (a truncated download) was
// loaded as a dataset without questions.
TEST(FineTuneBenchErrorTest, HeaderWithoutRowsIsAnError) {
  ScratchDir dir;
  dir.Write("datasets/medical/medical_memorization.csv", kMedicalMemorization);
  dir.Write("datasets/medical/medical_generalization.csv", ",id,prompt,answer,answer_before\n");
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "medical").status()),
            "INVALID_ARGUMENT: " + CsvPath(dir, "medical", "generalization") +
                ":2:1: no rows after the header; expected one question per row");
}

TEST(FineTuneBenchErrorTest, MissingAnswerBeforeColumn) {
  ScratchDir dir;
  dir.Write("datasets/medical/medical_memorization.csv", kMedicalMemorization);
  dir.Write("datasets/medical/medical_generalization.csv", ",id,prompt,answer\n0,10,p,a\n");
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "medical").status()),
            "INVALID_ARGUMENT: " + CsvPath(dir, "medical", "generalization") +
                ":1:1: missing required column \"answer_before\"");
}

TEST(FineTuneBenchErrorTest, BadUsedInAnalysisValueAfterMultiLineRecord) {
  ScratchDir dir;
  WriteLatestNews(dir);
  dir.Write("datasets/latest_news/latest_news_memorization.csv",
            "id,prompt,answer,article_title,question,fact,article_text,used_in_analysis\n"
            "a1,\"P\nQ\",x,t,q,f,\"art\nmore\",True\n"
            "a2,P2,y,t,q,f,art,yes\n");
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "latest_news").status()),
            "INVALID_ARGUMENT: " + CsvPath(dir, "latest_news", "memorization") +
                ":5:19: used_in_analysis must be True or False, got \"yes\"");
}

TEST(FineTuneBenchErrorTest, EmptyUsedInAnalysisValue) {
  ScratchDir dir;
  WriteLatestNews(dir);
  dir.Write("datasets/latest_news/latest_news_date_changed.csv",
            "id,prompt,answer,article_title,original_question,date_changed_question,fact,"
            "article_text,used_in_analysis\n"
            "a1,p,None,t,q,d,f,\"x\",\n");
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "latest_news").status()),
            "INVALID_ARGUMENT: " + CsvPath(dir, "latest_news", "date_changed") +
                ":2:23: used_in_analysis must be True or False, got \"\"");
}

TEST(FineTuneBenchErrorTest, MissingRequiredFile) {
  ScratchDir dir;
  WriteLatestNews(dir);
  std::filesystem::remove(CsvPath(dir, "latest_news", "rephrased"));
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "latest_news").status()),
            "NOT_FOUND: " + CsvPath(dir, "latest_news", "rephrased") + ": no such file");
}

TEST(FineTuneBenchErrorTest, WrongFieldCountInMultiLineQuotedRecord) {
  ScratchDir dir;
  WriteFictionalPeople(dir);
  // Record 2 starts on line 4 (record 1 spans lines 2-3) and lacks a field.
  dir.Write("datasets/fictional_people/fictional_people_secondary.csv",
            std::string(kPeopleHeader) +
                "zerin-plo,\"Answer the question with Yes or No.\nIs Zerin Plo over 100 "
                "pounds?\",Yes,Zerin Plo weighs 140 pounds.,Is Zerin Plo over 100 pounds?\n"
                "zerin-plo,\"Answer the question with Yes or No.\nDoes Zerin Plo bake?\",Yes,"
                "\"Zerin Plo works\nas a baker.\"\n");
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "fictional_people").status()),
            "INVALID_ARGUMENT: " + CsvPath(dir, "fictional_people", "secondary") +
                ":4:1: expected 5 fields (as in the header), got 4");
}

TEST(FineTuneBenchErrorTest, UnterminatedQuoteInGeneralizationFile) {
  ScratchDir dir;
  dir.Write("datasets/medical/medical_memorization.csv", kMedicalMemorization);
  dir.Write(
      "datasets/medical/medical_generalization.csv",
      ",id,prompt,answer_before,answer\n0,10,p,a,b\n1,11,\"A vignette\nthat never ends,a,b\n");
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "medical").status()),
            "INVALID_ARGUMENT: " + CsvPath(dir, "medical", "generalization") +
                ":3:6: unterminated quoted field: no closing quote before the end of the file");
}

TEST(FineTuneBenchErrorTest, MalformedOptionalCodingMemorizationIsAnError) {
  ScratchDir dir;
  dir.Write("datasets/coding/coding_generalization.csv", kCodingGeneralization);
  dir.Write("datasets/coding/coding_memorization.csv", ",id,prompt,answer\n0,0,p,a\n");
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "coding").status()),
            "INVALID_ARGUMENT: " + CsvPath(dir, "coding", "memorization") +
                ":1:1: missing required column \"answer_before\"");
}

TEST(FineTuneBenchErrorTest, MissingDatasetDirectory) {
  ScratchDir dir;
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "medical").status()),
            "NOT_FOUND: " + dir.path() + "/datasets/medical: no such directory (is " + dir.path() +
                " a FineTuneBench checkout?)");
}

TEST(FineTuneBenchErrorTest, UnknownDatasetName) {
  ScratchDir dir;
  EXPECT_EQ(CodeAndMessage(LoadFineTuneBench(dir.path(), "weather").status()),
            "INVALID_ARGUMENT: unknown FineTuneBench dataset \"weather\"; valid names: "
            "latest_news, fictional_people, medical, coding");
}

// `comparison: paper`: the last 25 rows of the 150-row file, all of a 25-row
// file, an error for any other size or dataset.
std::string ComparisonRows(int n) {
  std::string rows = kPeopleHeader;
  for (int i = 0; i < n; ++i) {
    rows += "p" + std::to_string(i) + ",\"Answer the question with Yes or No.\nIs A" +
            std::to_string(i) + " older than B?\",No,fact,q\n";
  }
  return rows;
}

v1::DatasetSpec PeopleSpec(const ScratchDir& dir, const std::string& comparison) {
  v1::DatasetSpec spec;
  spec.set_source(v1::DATASET_SOURCE_FINETUNEBENCH);
  spec.set_name("fictional_people");
  spec.set_path(dir.path());
  spec.set_comparison(comparison);
  return spec;
}

TEST(FineTuneBenchTest, PaperComparisonKeepsTheLast25Of150Rows) {
  ScratchDir dir;
  WriteFictionalPeople(dir);
  dir.Write("datasets/fictional_people/fictional_people_comparison.csv", ComparisonRows(150));
  absl::StatusOr<v1::Dataset> all = LoadDataset(PeopleSpec(dir, ""));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->tests(3).items_size(), 150);
  absl::StatusOr<v1::Dataset> paper = LoadDataset(PeopleSpec(dir, "paper"));
  ASSERT_TRUE(paper.ok()) << paper.status();
  ASSERT_EQ(paper->tests(3).type(), v1::QUESTION_TYPE_COMPARISON);
  ASSERT_EQ(paper->tests(3).items_size(), 25);
  EXPECT_EQ(paper->tests(3).items(0).id(), "p125#125");
  EXPECT_EQ(paper->tests(3).items(24).id(), "p149#149");
  // Nothing else changes.
  EXPECT_EQ(paper->training_size(), all->training_size());
  EXPECT_EQ(paper->tests(2).items_size(), all->tests(2).items_size());
  ASSERT_EQ(paper->notes_size(), 1);
  EXPECT_EQ(paper->notes(0),
            "comparison: paper: 25 comparison questions kept (the set the paper's recorded "
            "responses answer; rows 126-150 of 150)");
  EXPECT_NE(DatasetFingerprint(*paper), DatasetFingerprint(*all));
}

TEST(FineTuneBenchTest, PaperComparisonOfTheOriginal25RowFileKeepsThemAll) {
  ScratchDir dir;
  WriteFictionalPeople(dir);
  dir.Write("datasets/fictional_people/fictional_people_comparison.csv", ComparisonRows(25));
  absl::StatusOr<v1::Dataset> paper = LoadDataset(PeopleSpec(dir, "paper"));
  ASSERT_TRUE(paper.ok()) << paper.status();
  EXPECT_EQ(paper->tests(3).items_size(), 25);
  EXPECT_EQ(paper->tests(3).items(0).id(), "p0#0");
}

TEST(FineTuneBenchErrorTest, PaperComparisonOfAnUnknownFileSizeOrDataset) {
  ScratchDir dir;
  WriteFictionalPeople(dir);
  dir.Write("datasets/fictional_people/fictional_people_comparison.csv", ComparisonRows(30));
  EXPECT_EQ(CodeAndMessage(LoadDataset(PeopleSpec(dir, "paper")).status()),
            "FAILED_PRECONDITION: comparison: paper: fictional_people_comparison.csv has 30 rows; "
            "the paper's 25 questions are known in the 25-row original and the 150-row expansion "
            "(its last 25 rows) only; use comparison: all");
  EXPECT_EQ(CodeAndMessage(LoadDataset(PeopleSpec(dir, "first")).status()),
            "INVALID_ARGUMENT: dataset \"fictional_people\": comparison must be all or paper, got "
            "\"first\"");
  dir.Write("datasets/coding/coding_generalization.csv", kCodingGeneralization);
  v1::DatasetSpec coding = PeopleSpec(dir, "paper");
  coding.set_name("coding");
  EXPECT_EQ(CodeAndMessage(LoadDataset(coding).status()),
            "INVALID_ARGUMENT: comparison: paper applies to fictional_people only, not coding");
}

TEST(FineTuneBenchTest, NameOnlyComparisonQuestions) {
  const auto q = [](const std::string& prompt) {
    v1::QaItem item;
    item.set_prompt(prompt);
    return IsNameOnlyComparison(item);
  };
  EXPECT_TRUE(q("Answer the question with Yes or No.\nIs Sufa alphabetically first than Zubumagi?"));
  EXPECT_TRUE(q("Is Sufa alphabetically before Zubumagi?\n"));
  EXPECT_FALSE(q("Answer the question with Yes or No.\nIs Labigih heavier than Faqapi?"));
  EXPECT_FALSE(q("Is Sufa's city alphabetically first than Zubumagi's?"));
  EXPECT_FALSE(q("Is Sufa alphabetically first than Zubumagi"));  // no question mark
  EXPECT_FALSE(q(""));
}

// The published data (not part of this repository).

class PublishedDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = SharedFineTuneBenchDir();
    if (root_.empty()) {
      GTEST_SKIP() << "published FineTuneBench data not found at "
                   << testing::SharedFineTuneBenchPath()
                   << " ($FTB_SOURCE_DIR/../shared/finetunebench-data; set FTB_SOURCE_DIR to "
                      "the repository root)";
    }
  }

  v1::Dataset Load(const std::string& name) {
    absl::StatusOr<v1::Dataset> d = LoadFineTuneBench(root_, name);
    EXPECT_TRUE(d.ok()) << d.status();
    if (!d.ok()) return {};
    ExpectWellFormed(*d);
    return *std::move(d);
  }

  // Ids unique per set; prompts and answers present.
  static void ExpectWellFormed(const v1::Dataset& d) {
    auto check = [&](const google::protobuf::RepeatedPtrField<v1::QaItem>& items,
                     const std::string& what) {
      absl::flat_hash_set<std::string> ids;
      for (const v1::QaItem& item : items) {
        EXPECT_TRUE(ids.insert(item.id()).second) << what << ": duplicate id " << item.id();
        EXPECT_FALSE(item.prompt().empty()) << what << " " << item.id();
        EXPECT_FALSE(item.answer().empty()) << what << " " << item.id();
        EXPECT_FALSE(item.source_id().empty()) << what << " " << item.id();
      }
    };
    check(d.training(), d.name() + " training");
    check(d.prior(), d.name() + " prior");
    for (const v1::QuestionSet& set : d.tests()) {
      check(set.items(), d.name() + " " + QuestionTypeName(set.type()));
    }
  }

  static std::vector<int> SetSizes(const v1::Dataset& d) {
    std::vector<int> sizes;
    for (const v1::QuestionSet& set : d.tests()) sizes.push_back(set.items_size());
    return sizes;
  }

  std::string root_;
};

TEST_F(PublishedDataTest, LatestNews) {
  v1::Dataset d = Load("latest_news");
  EXPECT_EQ(d.training_size(), 50);
  EXPECT_THAT(TypeNames(d), ElementsAre("memorization", "rephrased", "date_changed"));
  EXPECT_THAT(SetSizes(d), ElementsAre(50, 50, 50));
  for (const v1::QaItem& item : d.tests(2).items()) EXPECT_EQ(item.answer(), "None");
  for (const v1::QaItem& item : d.training()) EXPECT_FALSE(item.context().empty());
  EXPECT_TRUE(d.notes().empty());
}

TEST_F(PublishedDataTest, FictionalPeople) {
  v1::Dataset d = Load("fictional_people");
  EXPECT_EQ(d.training_size(), 150);
  EXPECT_THAT(TypeNames(d), ElementsAre("memorization", "rephrased", "secondary", "comparison"));
  EXPECT_THAT(SetSizes(d), ElementsAre(150, 150, 150, 150));
  for (int s : {2, 3}) {
    for (const v1::QaItem& item : d.tests(s).items()) {
      EXPECT_TRUE(item.answer() == "Yes" || item.answer() == "No") << item.id();
    }
  }
}

TEST_F(PublishedDataTest, Medical) {
  v1::Dataset d = Load("medical");
  EXPECT_TRUE(d.updates_knowledge());
  EXPECT_EQ(d.training_size(), 125);
  EXPECT_EQ(d.prior_size(), 125);
  EXPECT_THAT(TypeNames(d), ElementsAre("memorization", "vignette"));
  EXPECT_THAT(SetSizes(d), ElementsAre(125, 125));
  for (int i = 0; i < d.training_size(); ++i) {
    EXPECT_EQ(d.prior(i).answer(), d.training(i).answer_before());
    EXPECT_EQ(d.prior(i).prompt(), d.training(i).prompt());
    EXPECT_FALSE(d.training(i).context().empty());
  }
  for (const v1::QaItem& item : d.tests(1).items()) EXPECT_FALSE(item.context().empty());
}

// The paper's 25 comparison questions are exactly those its recorded
// responses answer (matched by id and prompt, as the replay backend does),
// and 9 of them (58 of all 150) are answerable from the names alone.
TEST_F(PublishedDataTest, PaperComparisonIsTheRecordedSet) {
  const std::string recorded_path =
      root_ + "/model_responses/fictional_people/fictional_people_comparison_w_responses.csv";
  if (!std::filesystem::exists(recorded_path)) {
    GTEST_SKIP() << recorded_path << " not found (the recorded responses are needed)";
  }
  absl::StatusOr<CsvTable> recorded = ReadCsvFile(recorded_path);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  const int id = recorded->Column("id");
  const int prompt = recorded->Column("prompt");
  ASSERT_GE(id, 0);
  ASSERT_GE(prompt, 0);
  const auto key = [](const std::string& source_id, std::string text) {
    text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
    return source_id + "\n" + std::string(absl::StripAsciiWhitespace(text));
  };
  std::multiset<std::string> want;
  for (const auto& row : recorded->rows) want.insert(key(row[id], row[prompt]));
  ASSERT_EQ(want.size(), 25u);

  v1::DatasetSpec spec;
  spec.set_source(v1::DATASET_SOURCE_FINETUNEBENCH);
  spec.set_name("fictional_people");
  spec.set_path(root_);
  spec.set_comparison("paper");
  absl::StatusOr<v1::Dataset> paper = LoadDataset(spec);
  ASSERT_TRUE(paper.ok()) << paper.status();
  const v1::QuestionSet& set = paper->tests(3);
  ASSERT_EQ(set.type(), v1::QUESTION_TYPE_COMPARISON);
  std::multiset<std::string> got;
  int name_only = 0;
  for (const v1::QaItem& item : set.items()) {
    got.insert(key(item.source_id(), item.prompt()));
    name_only += IsNameOnlyComparison(item);
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(name_only, 9);

  // All 150: 58 name-only questions, whose reference answers agree with the
  // names' own alphabetical order on 29 (as datasets/dataset.h says).
  spec.set_comparison("");
  absl::StatusOr<v1::Dataset> all = LoadDataset(spec);
  ASSERT_TRUE(all.ok()) << all.status();
  int all_name_only = 0, agree = 0;
  for (const v1::QaItem& item : all->tests(3).items()) {
    if (!IsNameOnlyComparison(item)) continue;
    ++all_name_only;
    const std::string question(item.prompt().substr(item.prompt().rfind('\n') + 1));
    std::vector<std::string> words = absl::StrSplit(question, ' ');
    ASSERT_EQ(words.size(), 6u) << question;
    std::string b = words[5];
    b.pop_back();  // '?'
    const bool a_first = words[1] < b;
    agree += (item.answer() == "Yes") == a_first;
  }
  EXPECT_EQ(all_name_only, 58);
  EXPECT_EQ(agree, 29);
}

TEST_F(PublishedDataTest, Coding) {
  v1::Dataset d = Load("coding");
  EXPECT_TRUE(d.updates_knowledge());
  if (std::filesystem::exists(root_ + "/datasets/coding/coding_memorization.csv")) {
    EXPECT_THAT(TypeNames(d), ElementsAre("memorization", "code"));
    EXPECT_EQ(d.tests(1).items_size(), 218);
    EXPECT_TRUE(d.notes().empty());
  } else {
    EXPECT_THAT(TypeNames(d), ElementsAre("code"));
    EXPECT_THAT(SetSizes(d), ElementsAre(218));
    EXPECT_EQ(d.training_size(), 0);
    ASSERT_EQ(d.notes_size(), 1);
    EXPECT_THAT(d.notes(0), ::testing::HasSubstr("coding_memorization.csv is missing"));
  }
}

}  // namespace
}  // namespace ftb::datasets
