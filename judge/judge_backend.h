// Runs JUDGE tasks in the worker runtime. For every grader kind of a
// GraderRegistry there is a workers::TuningBackend of the same name ("rules")
// that grades every item of the task's JudgeWork with that kind and returns
// the verdicts (TaskResult.verdicts, one per item, in item order).
//
// The worker runtime stays backend-agnostic and ftb_workers never links the
// judge: the binary registers these backends next to the tuning backends
// (cli/main.cc calls RegisterJudgeBackends on BackendRegistry::Global()), and
// `ftb worker --role judge` offers "rules" by default.
//
// Thread-safety: the backends are thread-safe (Run may be called from every
// worker slot at once); registration is as thread-safe as the registry.
#ifndef FTB_JUDGE_JUDGE_BACKEND_H_
#define FTB_JUDGE_JUDGE_BACKEND_H_

#include "absl/status/status.h"
#include "judge/grader.h"
#include "workers/backend.h"

namespace ftb::judge {

// Registers one backend per kind in `graders` (by default the built-in
// "rules", "llm" and "paper"). Creating a backend creates a grader of its kind with no
// options, so an unusable kind fails at worker start with the grader's error.
// Worker-level option (BackendOptions.params, `--backend-opt`):
//   verdict_cache=DIR  where verdicts of graders that cost money (`llm`) are
//                      cached (judge/verdict_cache.h); default
//                      $FTB_ARTIFACT_DIR/verdicts, else .ftb-artifacts/verdicts.
// The backend's Run():
//  - kInvalidArgument for a task that is not TASK_KIND_JUDGE, or whose
//    JudgeWork.grader names another kind (an empty kind means this one);
//  - the grader's creation error (e.g. kInvalidArgument for bad options)
//    when the task's GraderSpec has options (a grader is made once per
//    distinct options and kept for later tasks);
//  - kCancelled once ctx.cancelled();
//  - a batch error of Grader::GradeAll (e.g. kUnavailable when an `llm`
//    judge stayed unreachable; verdicts obtained before it are cached);
//  - otherwise OK with one v1::Verdict per item (cell_id, question_type and
//    question_id copied from the item, verdict, reason, grader id) and a
//    digest over the verdicts.
// Errors: kAlreadyExists if a kind's name is already a backend.
absl::Status RegisterJudgeBackends(workers::BackendRegistry& registry,
                                   const GraderRegistry& graders = GraderRegistry::Global());

}  // namespace ftb::judge

#endif  // FTB_JUDGE_JUDGE_BACKEND_H_
