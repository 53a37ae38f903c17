// Built-in datasets generated procedurally from a seed: our own content, no
// download. The same (size, seed) gives byte-identical datasets on every
// machine (common/rng.h). Thread-safe.
#ifndef FTB_DATASETS_BUILTIN_H_
#define FTB_DATASETS_BUILTIN_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "ftb/v1/dataset.pb.h"

namespace ftb::datasets {

// `people`: `size` fictional people with six attributes each (weight in
// pounds, height in cm, age, occupation, favourite colour, city): training =
// one question per attribute; tests: memorization, rephrased, secondary
// (yes/no inferred from one fact), comparison (yes/no across two people).
// kInvalidArgument if size is 0 or above 10000.
absl::StatusOr<v1::Dataset> GeneratePeople(uint32_t size, uint64_t seed);

// `updates`: `size` facts of a fictional software library and a fictional
// clinical guideline, each with an old and a new value (renamed functions,
// revised thresholds). prior = the old facts; training = the new facts;
// tests: memorization and rephrased ask for the new value with
// answer_before = the old one. kInvalidArgument if size is 0 or above 10000.
absl::StatusOr<v1::Dataset> GenerateUpdates(uint32_t size, uint64_t seed);

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_BUILTIN_H_
