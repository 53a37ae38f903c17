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
// - latest_news: rows with used_in_analysis == True only; training and the
//   memorization set come from _memorization.csv, tests also from
//   _rephrased.csv and _date_changed.csv (answer "None").
// - fictional_people: _memorization.csv trains; tests memorization,
//   rephrased, secondary, comparison.
// - medical: _memorization.csv trains (answer, answer_before);
//   _generalization.csv is the vignette set. Leading unnamed index column.
// - coding: _generalization.csv is the code set; _memorization.csv may be
//   absent (it is not in every copy of the data): then training is empty and
//   Dataset.notes says which file is missing. Not an error.
// Errors: kNotFound (no such dataset directory, or a required file missing,
// naming the path), kInvalidArgument ("<file>:<line>:<col>: ..." for
// malformed CSV, missing columns, bad used_in_analysis values).
absl::StatusOr<v1::Dataset> LoadFineTuneBench(const std::string& root,
                                              const std::string& name);

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_FINETUNEBENCH_H_
