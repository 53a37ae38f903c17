// Built-in datasets generated procedurally from a seed: our own content, no
// download. The same (size, seed) gives byte-identical datasets on every
// machine (common/rng.h; no <random> distributions, no floating point, no
// hash-order iteration); the tests pin a fingerprint of each. Thread-safe (no
// shared state).
//
// Prompts carry an instruction line in the style of FineTuneBench:
// "Answer the question with a number, word, or phrase.\n" for open questions,
// "Answer the question with Yes or No.\n" for yes/no ones. Answers are short:
// a number, a word or identifier, "Yes" or "No".
#ifndef FTB_DATASETS_BUILTIN_H_
#define FTB_DATASETS_BUILTIN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ftb/v1/dataset.pb.h"

namespace ftb::datasets {

// `people`: `size` fictional people with invented, unique names and six
// attributes each (weight in pounds, height in cm, age, occupation, favourite
// colour, city). training = one question per attribute (6 x size items, id
// "<name-slug>-<attribute>", e.g. "How many pounds does X weigh?" -> "126");
// tests, in this order:
//   memorization  the training items again;
//   rephrased     other wording, same answers and ids;
//   secondary     one yes/no question per fact, inferred from it ("Is X over
//                 150 pounds?", "Does X work in healthcare?", "Does X live in
//                 Europe?");
//   comparison    one yes/no question per person and attribute against
//                 another person ("Is X taller than Y?", "Do X and Y work in
//                 the same field?"), never the same pair twice per attribute.
// Yes and No are balanced by construction (about half each). With size 1
// there is no comparison set, and Dataset.notes says so.
// kInvalidArgument if size is 0 or above 10000.
absl::StatusOr<v1::Dataset> GeneratePeople(uint32_t size, uint64_t seed);

// `background`: the world knowledge a pretrained model would bring, for the
// local backend's pretraining stage (workers/local_backend.h). Not a
// benchmark dataset: everything is in `training`, there are no tests. Items
// ("background-..." ids, source_id "background", context = the fact):
//   general facts  per colour "Is red a warm or a cool color?" -> "warm" and
//                  "Is red a warm color?" / "... a cool color?"; per city
//                  "On which continent is Lisbon?" -> "Europe", "Is Lisbon in
//                  Europe?" -> Yes and the same with another continent -> No;
//                  per occupation "In which field does a nurse work?" ->
//                  "healthcare" and "Does a nurse work in healthcare?" -> Yes,
//                  another field -> No (the colours, cities and occupations
//                  are `people`'s);
//   `size` background people (invented names, drawn like `people`'s) with,
//                  per attribute, the fact in `people`'s training wording and
//                  in one of its rephrasings, a secondary question in
//                  `people`'s wording answered Yes and one answered No, and a
//                  comparison question in `people`'s wording with another
//                  background person answered Yes and its counterpart
//                  answered No (the pair is skipped when no partner qualifies).
// So every yes/no item has a counterpart and exactly half are "Yes". No name
// part of a background person (first or last name, compared in lower case)
// is in `reserved_words`: pass the words of a dataset's texts to keep its
// entities out. Deterministic in (size, seed, reserved_words).
// kInvalidArgument if size is above 10000 (0 gives the general facts only).
absl::StatusOr<v1::Dataset> GenerateBackground(uint32_t size, uint64_t seed,
                                               const std::vector<std::string>& reserved_words = {});

// `updates`: `size` facts, each with an old and a new value: the first
// ceil(size/2) are renamed functions of a fictional library ("What is the name
// of the function that parses a JSON document in the latest version of
// <Lib>?" -> new name; ids "library-..."), the rest revised recommendations
// of a fictional clinical guideline (screening ages, thresholds, intervals,
// first-line drugs, doses; ids "guideline-..."). Function names are unique
// across old and new names.
// prior = the same questions answered with the old value (no answer_before);
// training = the questions with answer = new value, answer_before = old;
// tests: memorization (the training items) and rephrased (other wording,
// same answers). updates_knowledge is true.
// kInvalidArgument if size is 0 or above 10000.
absl::StatusOr<v1::Dataset> GenerateUpdates(uint32_t size, uint64_t seed);

}  // namespace ftb::datasets

#endif  // FTB_DATASETS_BUILTIN_H_
