#include "datasets/finetunebench.h"

#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "datasets/csv.h"

namespace ftb::datasets {
namespace {

namespace fs = std::filesystem;

// How one published CSV file maps onto QaItem.
struct FileLayout {
  // Column copied into QaItem.context; empty for none.
  absl::string_view context_column = "";
  // When false, a missing context column leaves the context empty.
  bool context_required = true;
  bool has_answer_before = false;
  // Keep only rows whose used_in_analysis is True.
  bool has_used_in_analysis = false;
};

std::string CsvPath(const std::string& root, const std::string& name, absl::string_view type) {
  return (fs::path(root) / "datasets" / name / absl::StrCat(name, "_", type, ".csv")).string();
}

absl::StatusOr<int> RequireColumn(const CsvTable& table, absl::string_view column) {
  int index = table.Column(std::string_view(column.data(), column.size()));
  if (index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(table.filename, ":1:1: missing required column \"", column, "\""));
  }
  return index;
}

// Reads one file into items. Item ids are "<id column>#<0-based row index>"
// because the published ids repeat within a file (one per person in
// fictional_people).
absl::StatusOr<std::vector<v1::QaItem>> ReadItems(const std::string& path,
                                                  const FileLayout& layout) {
  FTB_ASSIGN_OR_RETURN(CsvTable table, ReadCsvFile(path));
  FTB_ASSIGN_OR_RETURN(const int id, RequireColumn(table, "id"));
  if (table.rows.empty()) {
    // A header and nothing else: a truncated download or a failed export,
    // never a dataset with no questions on purpose.
    return absl::InvalidArgumentError(
        absl::StrCat(table.filename, ":2:1: no rows after the header; expected one question per row"));
  }
  FTB_ASSIGN_OR_RETURN(const int prompt, RequireColumn(table, "prompt"));
  FTB_ASSIGN_OR_RETURN(const int answer, RequireColumn(table, "answer"));
  int answer_before = -1;
  if (layout.has_answer_before) {
    FTB_ASSIGN_OR_RETURN(answer_before, RequireColumn(table, "answer_before"));
  }
  int context = -1;
  if (!layout.context_column.empty()) {
    if (layout.context_required) {
      FTB_ASSIGN_OR_RETURN(context, RequireColumn(table, layout.context_column));
    } else {
      context = table.Column(
          std::string_view(layout.context_column.data(), layout.context_column.size()));
    }
  }
  int used = -1;
  if (layout.has_used_in_analysis) {
    FTB_ASSIGN_OR_RETURN(used, RequireColumn(table, "used_in_analysis"));
  }

  std::vector<v1::QaItem> items;
  items.reserve(table.rows.size());
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::vector<std::string>& row = table.rows[r];
    if (used >= 0) {
      const std::string& value = row[used];
      if (absl::EqualsIgnoreCase(value, "false")) continue;
      if (!absl::EqualsIgnoreCase(value, "true")) {
        return absl::InvalidArgumentError(
            absl::StrCat(table.Location(r, used),
                         ": used_in_analysis must be True or False, got \"", value, "\""));
      }
    }
    v1::QaItem& item = items.emplace_back();
    item.set_id(absl::StrCat(row[id], "#", r));
    item.set_prompt(row[prompt]);
    item.set_answer(row[answer]);
    if (answer_before >= 0) item.set_answer_before(row[answer_before]);
    if (context >= 0) item.set_context(row[context]);
    item.set_source_id(row[id]);
  }
  return items;
}

void AddTestSet(v1::QuestionType type, const std::vector<v1::QaItem>& items, v1::Dataset& dataset) {
  v1::QuestionSet* set = dataset.add_tests();
  set->set_type(type);
  set->mutable_items()->Reserve(static_cast<int>(items.size()));
  for (const v1::QaItem& item : items) *set->add_items() = item;
}

void SetTraining(const std::vector<v1::QaItem>& items, v1::Dataset& dataset) {
  for (const v1::QaItem& item : items) *dataset.add_training() = item;
}

// The old knowledge of updated facts: the same questions answered with
// answer_before.
void SetPrior(const std::vector<v1::QaItem>& items, v1::Dataset& dataset) {
  for (const v1::QaItem& item : items) {
    v1::QaItem* prior = dataset.add_prior();
    *prior = item;
    prior->set_answer(item.answer_before());
    prior->clear_answer_before();
  }
}

absl::Status LoadLatestNews(const std::string& root, v1::Dataset& dataset) {
  const std::string name = "latest_news";
  const FileLayout layout{.context_column = "fact", .has_used_in_analysis = true};
  FTB_ASSIGN_OR_RETURN(auto mem, ReadItems(CsvPath(root, name, "memorization"), layout));
  FTB_ASSIGN_OR_RETURN(auto reph, ReadItems(CsvPath(root, name, "rephrased"), layout));
  FTB_ASSIGN_OR_RETURN(auto date, ReadItems(CsvPath(root, name, "date_changed"), layout));
  SetTraining(mem, dataset);
  AddTestSet(v1::QUESTION_TYPE_MEMORIZATION, mem, dataset);
  AddTestSet(v1::QUESTION_TYPE_REPHRASED, reph, dataset);
  AddTestSet(v1::QUESTION_TYPE_DATE_CHANGED, date, dataset);
  return absl::OkStatus();
}

absl::Status LoadFictionalPeople(const std::string& root, v1::Dataset& dataset) {
  const std::string name = "fictional_people";
  const std::pair<absl::string_view, v1::QuestionType> kFiles[] = {
      {"memorization", v1::QUESTION_TYPE_MEMORIZATION},
      {"rephrased", v1::QUESTION_TYPE_REPHRASED},
      {"secondary", v1::QUESTION_TYPE_SECONDARY},
      {"comparison", v1::QUESTION_TYPE_COMPARISON},
  };
  for (const auto& [type, question_type] : kFiles) {
    const FileLayout layout{.context_column = "fact"};
    FTB_ASSIGN_OR_RETURN(auto items, ReadItems(CsvPath(root, name, type), layout));
    if (question_type == v1::QUESTION_TYPE_MEMORIZATION) SetTraining(items, dataset);
    AddTestSet(question_type, items, dataset);
  }
  return absl::OkStatus();
}

absl::Status LoadMedical(const std::string& root, v1::Dataset& dataset) {
  const std::string name = "medical";
  FTB_ASSIGN_OR_RETURN(auto mem, ReadItems(CsvPath(root, name, "memorization"),
                                           {.context_column = "updated_fact_description",
                                            .has_answer_before = true}));
  FTB_ASSIGN_OR_RETURN(auto vignettes, ReadItems(CsvPath(root, name, "generalization"),
                                                 {.has_answer_before = true}));
  // A vignette applies the updated fact with the same id; give judges and
  // reports that fact as context.
  absl::flat_hash_map<std::string, std::string> facts;
  for (const v1::QaItem& item : mem) facts.emplace(item.source_id(), item.context());
  for (v1::QaItem& item : vignettes) {
    auto it = facts.find(item.source_id());
    if (it != facts.end()) item.set_context(it->second);
  }
  dataset.set_updates_knowledge(true);
  SetTraining(mem, dataset);
  SetPrior(mem, dataset);
  AddTestSet(v1::QUESTION_TYPE_MEMORIZATION, mem, dataset);
  AddTestSet(v1::QUESTION_TYPE_VIGNETTE, vignettes, dataset);
  return absl::OkStatus();
}

absl::Status LoadCoding(const std::string& root, v1::Dataset& dataset) {
  const std::string name = "coding";
  dataset.set_updates_knowledge(true);
  const std::string mem_path = CsvPath(root, name, "memorization");
  std::error_code ec;
  if (fs::exists(mem_path, ec)) {
    // Not in our copy of the data, so its columns are assumed to follow
    // medical_memorization.csv; the fact column is optional.
    FTB_ASSIGN_OR_RETURN(auto mem,
                         ReadItems(mem_path, {.context_column = "updated_fact_description",
                                              .context_required = false,
                                              .has_answer_before = true}));
    SetTraining(mem, dataset);
    SetPrior(mem, dataset);
    AddTestSet(v1::QUESTION_TYPE_MEMORIZATION, mem, dataset);
  } else {
    dataset.add_notes(absl::StrCat(
        mem_path,
        " is missing: no training set, no prior and no memorization questions; only the code "
        "questions (",
        name, "_generalization.csv) are available"));
  }
  FTB_ASSIGN_OR_RETURN(
      auto code, ReadItems(CsvPath(root, name, "generalization"), {.has_answer_before = true}));
  AddTestSet(v1::QUESTION_TYPE_CODE, code, dataset);
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& FineTuneBenchDatasetNames() {
  static const auto* const kNames =
      new std::vector<std::string>{"latest_news", "fictional_people", "medical", "coding"};
  return *kNames;
}

absl::Status KeepPaperComparisonQuestions(v1::Dataset& dataset) {
  if (dataset.name() != "fictional_people") {
    return absl::InvalidArgumentError(
        absl::StrCat("comparison: paper applies to fictional_people only, not ", dataset.name()));
  }
  // The expanded file: the original 25 rows follow 125 new ones.
  constexpr int kExpandedRows = 150;
  for (v1::QuestionSet& set : *dataset.mutable_tests()) {
    if (set.type() != v1::QUESTION_TYPE_COMPARISON) continue;
    const int rows = set.items_size();
    if (rows != kExpandedRows && rows != kPaperComparisonQuestions) {
      return absl::FailedPreconditionError(absl::StrCat(
          "comparison: paper: fictional_people_comparison.csv has ", rows,
          " rows; the paper's ", kPaperComparisonQuestions, " questions are known in the ",
          kPaperComparisonQuestions, "-row original and the ", kExpandedRows,
          "-row expansion (its last ", kPaperComparisonQuestions,
          " rows) only; use comparison: all"));
    }
    if (rows == kExpandedRows) {
      set.mutable_items()->DeleteSubrange(0, kExpandedRows - kPaperComparisonQuestions);
    }
    dataset.add_notes(absl::StrCat(
        "comparison: paper: ", kPaperComparisonQuestions,
        " comparison questions kept (the set the paper's recorded responses answer",
        rows == kExpandedRows ? absl::StrCat("; rows ", kExpandedRows - kPaperComparisonQuestions + 1,
                                             "-", kExpandedRows, " of ", rows)
                              : "",
        ")"));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("comparison: paper: the dataset has no comparison questions");
}

absl::StatusOr<v1::Dataset> LoadFineTuneBench(const std::string& root, const std::string& name) {
  using Loader = absl::Status (*)(const std::string&, v1::Dataset&);
  Loader loader = nullptr;
  if (name == "latest_news") {
    loader = &LoadLatestNews;
  } else if (name == "fictional_people") {
    loader = &LoadFictionalPeople;
  } else if (name == "medical") {
    loader = &LoadMedical;
  } else if (name == "coding") {
    loader = &LoadCoding;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown FineTuneBench dataset \"", name,
                     "\"; valid names: ", absl::StrJoin(FineTuneBenchDatasetNames(), ", ")));
  }
  const std::string dir = (fs::path(root) / "datasets" / name).string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no such directory (is ", root, " a FineTuneBench checkout?)"));
  }
  v1::Dataset dataset;
  dataset.set_name(name);
  dataset.set_source(v1::DATASET_SOURCE_FINETUNEBENCH);
  FTB_RETURN_IF_ERROR(loader(root, dataset));
  return dataset;
}

}  // namespace ftb::datasets
