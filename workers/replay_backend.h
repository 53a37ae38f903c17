// The "replay" backend: a model that answers with responses someone already
// recorded, so a campaign can re-grade published results (the FineTuneBench
// paper's five fine-tuned models) without training or calling a provider.
//
// WHERE THE RESPONSES COME FROM. The FineTuneBench repository layout:
//   <responses_path>/model_responses/<dataset>/<dataset>_<type>_w_responses.csv
// with columns id, prompt, ..., and one "<model>_response" column per
// recorded model. <type> is the question type name (datasets/dataset.h
// QuestionTypeName), except that the memorization set is stored as
// "original".
//
// MODEL OPTIONS (TuneWork.model.options):
//   responses_path   required string: the directory holding model_responses/.
//   recorded_model   optional string: the column to replay is
//                    "<recorded_model>_response"; defaults to model.name.
// Any other option is an error.
//
// WHAT RUN() DOES. Loads the task's dataset (datasets::LoadDataset on
// TuneWork.dataset, so question_types filters apply) and, for each of its
// test sets, the recorded file of that type:
//  - No file for the type (or no model_responses/<dataset>/ at all): the set
//    is skipped, logged as a note ("no recorded responses for ...; skipped");
//    not an error.
//  - Matching: a recorded row answers the question with the same source id
//    (the CSV id column; QaItem.source_id) AND the same prompt text (compared
//    after dropping '\r' and surrounding whitespace). Not by row order: the
//    published comparison file holds the 25 rows of an older 25-question
//    set, while the dataset's comparison file now has 150 questions (the 25
//    are its last 25), so rows do not line up; matching by text leaves the
//    other 125 unanswered instead of answering them with wrong rows. Ids
//    repeat within a file (one per person), so the id alone is no key; the
//    prompt names the person, and the pair guards against a prompt reused
//    under another id. When a key repeats, the k-th recorded row with it
//    answers the k-th question with it. Recorded rows that answer no
//    question are counted in a note.
//  - Every question of the set becomes one JudgeItem (question_type = type
//    name, question_id = QaItem.id, prompt, reference = answer,
//    answer_before, context) with, for a matched row:
//      answer = the recorded response, verbatim;
//    or, with answer left empty, unavailable_reason saying why there is
//    nothing to grade (the judge then records `no_answer` with that reason):
//      "no recorded response for this question in <file>"     (unmatched);
//      "recorded response is empty (<file>:<line>)";
//      "recorded response is a verdict (\"Incorrect\"), not an answer
//       (<file>:<line>)" when the cell, trimmed and without a final '.', is
//       "Correct" or "Incorrect" in any case (both Gemini columns of
//       fictional_people_rephrased_w_responses.csv hold such verdicts).
//    <file> is the file name without directories.
//  - A replayed model has no training: every cell of the run (one per epoch
//    count) gets the same answers. The published files have one response
//    column per fine-tuned model and none for the untuned base model, so a
//    cell at epochs 0 is refused (kInvalidArgument; the spec refuses it at
//    plan time, naming the field). tokens and cost_usd are 0; digest is a
//    SHA-256 hex over the model, dataset and every item's id, answer and
//    unavailable_reason.
// Errors (none retryable):
//   kInvalidArgument  the task is not TASK_KIND_TUNE; responses_path missing
//                     or not a string; an unknown option; a recorded file
//                     without the id, prompt or "<model>_response" column
//                     ("<file>:1:1: ...", listing the recorded models) or
//                     with malformed CSV ("<file>:<line>:<col>: ...");
//                     whatever datasets::LoadDataset rejects;
//   kNotFound         <responses_path>/model_responses is not a directory;
//                     a missing dataset (as LoadDataset);
//   kCancelled        ctx.cancelled() (checked after loading the dataset and
//                     after reading the responses).
//
// Thread-safe and stateless: every Run reads the files again.
#ifndef FTB_WORKERS_REPLAY_BACKEND_H_
#define FTB_WORKERS_REPLAY_BACKEND_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ftb/v1/dataset.pb.h"
#include "workers/backend.h"

namespace ftb::workers {

class ReplayBackend : public TuningBackend {
 public:
  static constexpr char kName[] = "replay";

  absl::StatusOr<v1::TaskResult> Run(const v1::TaskAssignment& task, TaskContext& ctx) override;
};

// The answers of one recorded model to one dataset's test sets, as described
// above, with cell_id left empty; plus the notes Run() logs.
struct ReplayedAnswers {
  std::vector<v1::JudgeItem> items;
  std::vector<std::string> notes;
};

// The matching step of Run() on an already loaded dataset, for tests and
// tools. Errors as for Run() (minus the option and task checks).
absl::StatusOr<ReplayedAnswers> ReplayRecordedResponses(const v1::Dataset& dataset,
                                                        const std::string& responses_path,
                                                        const std::string& model);

// Registers "replay". Errors: kAlreadyExists if the name is taken.
absl::Status RegisterReplayBackend(BackendRegistry& registry);

}  // namespace ftb::workers

#endif  // FTB_WORKERS_REPLAY_BACKEND_H_
