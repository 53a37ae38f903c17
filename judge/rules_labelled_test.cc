// Measures the `rules` grader against answers we labelled by hand
// (judge/testdata/rules_labelled.tsv): the questions, references, pre-update
// answers and contexts come from the published FineTuneBench CSVs, read at
// test time; the answers and labels are ours.
//
// Figures (ours, not the paper's): over every labelled answer, "correct" is
// the positive class; precision = answers graded correct that we labelled
// correct / answers graded correct; recall = answers graded correct that we
// labelled correct / answers we labelled correct. Stale and incorrect labels
// are both "not correct". The test prints the figures overall and per
// dataset, lists every disagreement, and fails below the floors, which sit
// just under what the grader measured when they were set (README, Grading).
//
// Skips (visibly, through GTEST_SKIP) when the published data is absent.
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "datasets/finetunebench.h"
#include "datasets/test_util.h"
#include "gtest/gtest.h"
#include "judge/rules_grader.h"

namespace ftb::judge {
namespace {

struct Labelled {
  int line = 0;
  std::string dataset, type, item, label, answer;
};

std::string SourceDir() {
  const char* dir = std::getenv("FTB_SOURCE_DIR");
  return dir != nullptr && *dir != '\0' ? dir : ".";
}

std::vector<Labelled> ReadLabelled(const std::string& path) {
  std::vector<Labelled> out;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, '\t');
    if (f.size() != 5) {
      ADD_FAILURE() << path << ":" << n << ": expected 5 tab-separated columns, got " << f.size();
      continue;
    }
    if (f[3] != "correct" && f[3] != "incorrect" && f[3] != "stale") {
      ADD_FAILURE() << path << ":" << n << ": label must be correct, incorrect or stale, got \""
                    << f[3] << "\"";
      continue;
    }
    out.push_back({n, f[0], f[1], f[2], f[3], f[4]});
  }
  return out;
}

// "QUESTION_TYPE_DATE_CHANGED" -> "date_changed".
std::string TypeName(v1::QuestionType type) {
  return absl::AsciiStrToLower(v1::QuestionType_Name(type).substr(sizeof("QUESTION_TYPE_") - 1));
}

struct Counts {
  int labelled_correct = 0, graded_correct = 0, both = 0, total = 0;
  int labelled_stale = 0, stale_graded_stale = 0;

  double precision() const { return graded_correct == 0 ? 0 : double(both) / graded_correct; }
  double recall() const { return labelled_correct == 0 ? 0 : double(both) / labelled_correct; }
  std::string Format() const {
    return absl::StrFormat(
        "%3d answers: precision %.3f (%d/%d), recall %.3f (%d/%d); stale labels graded stale "
        "%d/%d",
        total, precision(), both, graded_correct, recall(), both, labelled_correct,
        stale_graded_stale, labelled_stale);
  }
};

TEST(RulesLabelledSetTest, PrecisionAndRecallOfCorrectAgainstOurLabels) {
  const std::string data = datasets::testing::SharedFineTuneBenchDir();
  if (data.empty()) {
    GTEST_SKIP() << "published FineTuneBench data not found at "
                 << datasets::testing::SharedFineTuneBenchPath()
                 << " (the labelled set keys into it; set FTB_SOURCE_DIR to the repository root)";
  }
  const std::string path = SourceDir() + "/judge/testdata/rules_labelled.tsv";
  const std::vector<Labelled> set = ReadLabelled(path);
  ASSERT_GE(set.size(), 100u);

  // (dataset, type, item id) -> the published item.
  std::map<std::string, v1::QaItem> items;
  for (const std::string& name : datasets::FineTuneBenchDatasetNames()) {
    absl::StatusOr<v1::Dataset> d = datasets::LoadFineTuneBench(data, name);
    ASSERT_TRUE(d.ok()) << d.status();
    for (const v1::QuestionSet& s : d->tests()) {
      for (const v1::QaItem& item : s.items()) {
        items[absl::StrCat(name, "\t", TypeName(s.type()), "\t", item.id())] = item;
      }
    }
  }

  RulesGrader grader;
  std::map<std::string, Counts> by_dataset, by_set;
  Counts all;
  std::string disagreements;
  for (const Labelled& l : set) {
    auto it = items.find(absl::StrCat(l.dataset, "\t", l.type, "\t", l.item));
    if (it == items.end()) {
      ADD_FAILURE() << path << ":" << l.line << ": no " << l.type << " item " << l.item
                    << " in dataset " << l.dataset;
      continue;
    }
    v1::JudgeItem j;
    j.set_question_type(l.type);
    j.set_question_id(l.item);
    j.set_prompt(it->second.prompt());
    j.set_reference(it->second.answer());
    j.set_answer_before(it->second.answer_before());
    j.set_context(it->second.context());
    j.set_answer(l.answer);
    const Verdict v = grader.Grade(j);
    const bool graded_correct = v.kind == VerdictKind::kCorrect;
    const bool labelled_correct = l.label == "correct";
    for (Counts* c : {&all, &by_dataset[l.dataset], &by_set[l.dataset + "/" + l.type]}) {
      ++c->total;
      c->labelled_correct += labelled_correct;
      c->graded_correct += graded_correct;
      c->both += labelled_correct && graded_correct;
      if (l.label == "stale") {
        ++c->labelled_stale;
        c->stale_graded_stale += v.kind == VerdictKind::kStale;
      }
    }
    if (graded_correct != labelled_correct || (l.label == "stale") != (v.kind == VerdictKind::kStale)) {
      absl::StrAppend(&disagreements, "  line ", l.line, ": ", l.label, " graded ", std::string(v.name()), " (",
                      v.reason, "): \"", l.answer, "\" vs \"", it->second.answer(), "\"\n");
    }
  }
  std::printf("rules grader %s on %s:\n  all              %s\n", std::string(grader.id()).c_str(),
              path.c_str(), all.Format().c_str());
  for (const auto& [name, c] : by_dataset) {
    std::printf("  %-16s %s\n", name.c_str(), c.Format().c_str());
  }
  for (const auto& [name, c] : by_set) {
    std::printf("  %-29s %s\n", name.c_str(), c.Format().c_str());
  }
  std::printf("disagreements with our labels:\n%s", disagreements.c_str());

  EXPECT_EQ(by_dataset.size(), 4u) << "the set covers all four datasets";
  // Floors: just under the figures rules/2 measured when they were set
  // (precision 95/96 = 0.990, recall 95/121 = 0.785; medical recall 28/45 =
  // 0.622; stale 23/23). rules/1 measured precision 65/65 = 1.000, recall
  // 65/121 = 0.537, medical recall 3/45 = 0.067, stale 20/23, so it fails
  // the recall floors.
  EXPECT_GE(all.precision(), 0.97);
  EXPECT_GE(all.recall(), 0.75);
  EXPECT_GE(by_dataset["medical"].recall(), 0.60);
  EXPECT_GE(by_dataset["latest_news"].recall(), 0.75);
  EXPECT_GE(all.stale_graded_stale, all.labelled_stale - 1);
}

}  // namespace
}  // namespace ftb::judge
