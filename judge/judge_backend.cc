#include "judge/judge_backend.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "judge/grader.h"

namespace ftb::judge {
namespace {

class GraderBackend : public workers::TuningBackend {
 public:
  explicit GraderBackend(std::unique_ptr<Grader> grader) : grader_(std::move(grader)) {}

  absl::StatusOr<v1::TaskResult> Run(const v1::TaskAssignment& task,
                                     workers::TaskContext& ctx) override {
    if (task.kind() != v1::TASK_KIND_JUDGE) {
      return absl::InvalidArgumentError(
          absl::StrCat("grader ", std::string(grader_->id()), " runs JUDGE tasks only"));
    }
    v1::TaskResult result;
    for (const v1::JudgeItem& item : task.judge().items()) {
      if (ctx.cancelled()) return absl::CancelledError("judging cancelled");
      Verdict v = grader_->Grade(item);
      v1::Verdict* out = result.add_verdicts();
      out->set_cell_id(item.cell_id());
      out->set_question_type(item.question_type());
      out->set_question_id(item.question_id());
      out->set_verdict(v.verdict);
      out->set_reason(v.reason);
      out->set_grader(std::string(grader_->id()));
    }
    return result;
  }

 private:
  std::unique_ptr<Grader> grader_;
};

}  // namespace

absl::Status RegisterJudgeBackends(workers::BackendRegistry& registry) {
  return registry.Register(
      "rules",
      [](const workers::BackendOptions&) -> absl::StatusOr<std::unique_ptr<workers::TuningBackend>> {
        absl::StatusOr<std::unique_ptr<Grader>> g = CreateGrader("rules");
        if (!g.ok()) return g.status();
        return std::make_unique<GraderBackend>(*std::move(g));
      });
}

}  // namespace ftb::judge
