// Loader for a checkout of the FineTuneBench repository
// (kevinwu23/StanfordFineTuneBench): datasets/<name>/<name>_<type>.csv with
// the columns as published. Thread-safe.
#ifndef FTB_DATASETS_FINETUNEBENCH_H_
#define FTB_DATASETS_FINETUNEBENCH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ftb/v1/dataset.pb.h"

namespace ftb::datasets {

// The four published datasets: latest_news, fictional_people, medical, coding.
const std::vector<std::string>& FineTuneBenchDatasetNames();

// Loads dataset `name` from the checkout at `root`.
// Every row becomes a QaItem with prompt = the `prompt` column (the text sent
// to the model), answer, answer_before (where the file has it), source_id =
// `id`, and id = "<id>#<0-based row index in the file>" (the published ids
// repeat within a file). Columns not listed here are ignored; the ones used
// are required.
// - latest_news: rows with used_in_analysis == True only (True/False, any
//   case); training and the memorization set come from _memorization.csv,
//   tests also from _rephrased.csv and _date_changed.csv (answer "None").
//   context = `fact`.
// - fictional_people: _memorization.csv trains; tests memorization,
//   rephrased, secondary, comparison. context = `fact`.
// - medical: _memorization.csv trains (answer, answer_before);
//   _generalization.csv is the vignette set. context =
//   `updated_fact_description` (for a vignette: that of the memorization row
//   with the same id). Leading unnamed index column. prior = the training
//   questions answered with answer_before.
// - coding: _generalization.csv is the code set; _memorization.csv may be
//   absent (it is not in every copy of the data): then training, prior and
//   the memorization set are empty and Dataset.notes says which file is
//   missing. Not an error. When present it is read like medical's (its
//   context column optional).
// medical and coding set updates_knowledge.
// Errors: kInvalidArgument for an unknown name (listing the valid ones);
// kNotFound (no such dataset directory, or a required file missing, naming
// the path); kInvalidArgument ("<file>:<line>:<col>: ..." for malformed CSV,
// "<file>:1:1: missing required column \"x\"", or the location of a bad
// used_in_analysis value).
absl::StatusOr<v1::Dataset> LoadFineTuneBench(const std::string& root, const std::string& name);

// Number of comparison questions the FineTuneBench paper evaluated.
inline constexpr int kPaperComparisonQuestions = 25;

// Keeps only the comparison questions the paper evaluated (spec
// `comparison: paper`) in a loaded fictional_people dataset, and adds a note
// saying so. HOW THEY ARE IDENTIFIED: the paper's recorded responses
// (model_responses/fictional_people/fictional_people_comparison_w_responses.csv)
// answer 25 questions, those of the original 25-row comparison file
// (upstream commit 04f6b0d); the file was later expanded to 150 rows (commit
// 193a76e) by putting 125 new rows BEFORE the original 25, so the paper's set
// is the file's last 25 rows. Matching the recorded file's (id, prompt)
// pairs against the 150 rows finds exactly rows 126-150 (checked by
// finetunebench_test against the published data). So: a 150-row file keeps
// its last 25 rows, a 25-row file (the original) is kept whole, any other
// size is kFailedPrecondition naming the file (an unknown version of the
// data). kInvalidArgument when the dataset is not fictional_people or has no
// comparison set.
absl::Status KeepPaperComparisonQuestions(v1::Dataset& dataset);

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_FINETUNEBENCH_H_
