// Runs JUDGE tasks in the worker runtime: a workers::TuningBackend per grader
// kind that grades every item of the task's JudgeWork and returns verdicts.
// The worker runtime stays backend-agnostic: the binary registers these next
// to the tuning backends (RegisterJudgeBackends). Thread-safe.
#ifndef FTB_JUDGE_JUDGE_BACKEND_H_
#define FTB_JUDGE_JUDGE_BACKEND_H_

#include "absl/status/status.h"
#include "workers/backend.h"

namespace ftb::judge {

// Registers "rules" (more graders as they are built). kAlreadyExists if a
// name is taken.
absl::Status RegisterJudgeBackends(workers::BackendRegistry& registry);

}  // namespace ftb::judge

#endif  // FTB_JUDGE_JUDGE_BACKEND_H_
