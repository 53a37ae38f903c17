#include "datasets/dataset.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "datasets/builtin.h"
#include "datasets/finetunebench.h"

namespace ftb::datasets {
namespace {

struct TypeName {
  v1::QuestionType type;
  absl::string_view name;
};

constexpr TypeName kTypeNames[] = {
    {v1::QUESTION_TYPE_MEMORIZATION, "memorization"},
    {v1::QUESTION_TYPE_REPHRASED, "rephrased"},
    {v1::QUESTION_TYPE_DATE_CHANGED, "date_changed"},
    {v1::QUESTION_TYPE_SECONDARY, "secondary"},
    {v1::QUESTION_TYPE_COMPARISON, "comparison"},
    {v1::QUESTION_TYPE_VIGNETTE, "vignette"},
    {v1::QUESTION_TYPE_CODE, "code"},
};

std::string AllTypeNames() {
  std::vector<absl::string_view> names;
  for (const TypeName& t : kTypeNames) names.push_back(t.name);
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<v1::Dataset> LoadUnfiltered(const v1::DatasetSpec& spec) {
  switch (spec.source()) {
    case v1::DATASET_SOURCE_BUILTIN:
      if (spec.name() == "people") return GeneratePeople(spec.size(), spec.seed());
      if (spec.name() == "updates") return GenerateUpdates(spec.size(), spec.seed());
      {
        std::vector<std::string> names;
        for (const BuiltinInfo& info : BuiltinDatasets()) names.push_back(info.name);
        return absl::InvalidArgumentError(
            absl::StrCat("unknown builtin dataset \"", spec.name(),
                         "\"; valid names: ", absl::StrJoin(names, ", ")));
      }
    case v1::DATASET_SOURCE_FINETUNEBENCH:
      if (spec.path().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("FineTuneBench dataset \"", spec.name(),
                         "\" needs the path of a FineTuneBench checkout"));
      }
      return LoadFineTuneBench(spec.path(), spec.name());
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("dataset \"", spec.name(), "\" has no source (builtin or finetunebench)"));
  }
}

void HashItems(const google::protobuf::RepeatedPtrField<v1::QaItem>& items, Sha256& hash) {
  hash.UpdateField(absl::StrCat(items.size()));
  for (const v1::QaItem& item : items) {
    hash.UpdateField(item.id());
    hash.UpdateField(item.prompt());
    hash.UpdateField(item.answer());
    hash.UpdateField(item.answer_before());
    hash.UpdateField(item.context());
    hash.UpdateField(item.source_id());
  }
}

}  // namespace

std::string QuestionTypeName(v1::QuestionType type) {
  for (const TypeName& t : kTypeNames) {
    if (t.type == type) return std::string(t.name);
  }
  if (type == v1::QUESTION_TYPE_UNSPECIFIED) return "unspecified";
  return absl::StrCat("question_type_", static_cast<int>(type));
}

std::optional<v1::QuestionType> ParseQuestionType(std::string_view name) {
  for (const TypeName& t : kTypeNames) {
    if (t.name == absl::string_view(name.data(), name.size())) return t.type;
  }
  return std::nullopt;
}

absl::StatusOr<v1::Dataset> LoadDataset(const v1::DatasetSpec& spec) {
  // Check the requested types before the (possibly slow) load.
  std::vector<v1::QuestionType> wanted;
  for (const std::string& name : spec.question_types()) {
    std::optional<v1::QuestionType> type = ParseQuestionType(name);
    if (!type.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown question type \"", name, "\"; valid types: ", AllTypeNames()));
    }
    wanted.push_back(*type);
  }
  if (!spec.comparison().empty() && spec.comparison() != "paper") {
    return absl::InvalidArgumentError(absl::StrCat("dataset \"", spec.name(),
                                                   "\": comparison must be all or paper, got \"",
                                                   spec.comparison(), "\""));
  }
  FTB_ASSIGN_OR_RETURN(v1::Dataset dataset, LoadUnfiltered(spec));
  if (spec.comparison() == "paper") {
    if (spec.source() != v1::DATASET_SOURCE_FINETUNEBENCH) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset \"", spec.name(),
                       "\": comparison: paper applies to FineTuneBench's fictional_people only"));
    }
    FTB_RETURN_IF_ERROR(KeepPaperComparisonQuestions(dataset));
  }
  if (wanted.empty()) return dataset;

  std::vector<std::string> available;
  for (const v1::QuestionSet& set : dataset.tests()) {
    available.push_back(QuestionTypeName(set.type()));
  }
  for (v1::QuestionType type : wanted) {
    bool found = false;
    for (const v1::QuestionSet& set : dataset.tests()) found = found || set.type() == type;
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset \"", dataset.name(), "\" has no ", QuestionTypeName(type),
                       " questions; available types: ", absl::StrJoin(available, ", ")));
    }
  }
  // Keep the dataset's own order of sets, whatever the order requested.
  google::protobuf::RepeatedPtrField<v1::QuestionSet> kept;
  for (v1::QuestionSet& set : *dataset.mutable_tests()) {
    for (v1::QuestionType type : wanted) {
      if (set.type() == type) {
        *kept.Add() = std::move(set);
        break;
      }
    }
  }
  dataset.mutable_tests()->Swap(&kept);
  return dataset;
}

std::string DatasetFingerprint(const v1::Dataset& dataset) {
  Sha256 hash;
  hash.UpdateField("ftb.dataset.v1");
  hash.UpdateField(dataset.name());
  hash.UpdateField(dataset.updates_knowledge() ? "updates" : "new");
  hash.UpdateField("training");
  HashItems(dataset.training(), hash);
  hash.UpdateField("prior");
  HashItems(dataset.prior(), hash);
  hash.UpdateField(absl::StrCat(dataset.tests_size()));
  for (const v1::QuestionSet& set : dataset.tests()) {
    hash.UpdateField(QuestionTypeName(set.type()));
    HashItems(set.items(), hash);
  }
  return DigestHex(hash.Finish());
}

int TestQuestionCount(const v1::Dataset& dataset) {
  int count = 0;
  for (const v1::QuestionSet& set : dataset.tests()) count += set.items_size();
  return count;
}

bool IsNameOnlyComparison(const v1::QaItem& item) {
  absl::string_view prompt = absl::StripAsciiWhitespace(item.prompt());
  const size_t newline = prompt.rfind('\n');
  absl::string_view question =
      absl::StripAsciiWhitespace(newline == absl::string_view::npos ? prompt
                                                                    : prompt.substr(newline + 1));
  if (!absl::ConsumeSuffix(&question, "?")) return false;
  const std::vector<absl::string_view> words = absl::StrSplit(question, ' ', absl::SkipEmpty());
  // Is <A> alphabetically <first|before|after> [than] <B>
  if (words.size() != 5 && words.size() != 6) return false;
  if (words[0] != "Is" || words[2] != "alphabetically") return false;
  if (words[3] != "first" && words[3] != "before" && words[3] != "after") return false;
  if (words.size() == 6 && words[4] != "than") return false;
  return true;
}

std::vector<BuiltinInfo> BuiltinDatasets() {
  return {
      {"people",
       "fictional people with six attributes each (new knowledge): memorization, rephrased, "
       "secondary and comparison questions"},
      {"updates",
       "renamed functions of a fictional library and revised thresholds of a fictional "
       "clinical guideline (updated knowledge): memorization and rephrased questions"},
  };
}

}  // namespace ftb::datasets
