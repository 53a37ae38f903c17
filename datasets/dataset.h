// Loading datasets named by a campaign spec, whatever their source, and the
// helpers every consumer of ftb::v1::Dataset shares. Thread-safe.
#ifndef FTB_DATASETS_DATASET_H_
#define FTB_DATASETS_DATASET_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ftb/v1/campaign.pb.h"
#include "ftb/v1/dataset.pb.h"

namespace ftb::datasets {

// "memorization", "rephrased", ... (lower case, no prefix).
std::string QuestionTypeName(v1::QuestionType type);
// Inverse of QuestionTypeName; nullopt for an unknown name.
std::optional<v1::QuestionType> ParseQuestionType(std::string_view name);

// Loads (builtin: generates) the dataset a spec entry names, then keeps only
// the question types the entry lists. Errors name the file and line
// (kInvalidArgument for malformed data, kNotFound for a missing directory or
// required file).
absl::StatusOr<v1::Dataset> LoadDataset(const v1::DatasetSpec& spec);

// SHA-256 hex of the dataset's content (training, prior and test items in
// order), stable across runs and machines.
std::string DatasetFingerprint(const v1::Dataset& dataset);

// Total number of test questions over all sets.
int TestQuestionCount(const v1::Dataset& dataset);

// Builtin dataset names with a one-line description each.
struct BuiltinInfo {
  std::string name;
  std::string description;
};
std::vector<BuiltinInfo> BuiltinDatasets();

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_DATASET_H_
