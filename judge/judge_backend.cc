#include "judge/judge_backend.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/status_macros.h"

namespace ftb::judge {
namespace {

class GraderBackend : public workers::TuningBackend {
 public:
  GraderBackend(std::string kind, std::unique_ptr<Grader> grader, const GraderRegistry* graders)
      : kind_(std::move(kind)), grader_(std::move(grader)), graders_(graders) {}

  absl::StatusOr<v1::TaskResult> Run(const v1::TaskAssignment& task,
                                     workers::TaskContext& ctx) override {
    if (task.kind() != v1::TASK_KIND_JUDGE) {
      return absl::InvalidArgumentError(
          absl::StrCat("judge backend \"", kind_, "\" runs JUDGE tasks only; task ", task.task_id(),
                       " is ", v1::TaskKind_Name(task.kind())));
    }
    const v1::GraderSpec& spec = task.judge().grader();
    if (!spec.kind().empty() && spec.kind() != kind_) {
      return absl::InvalidArgumentError(absl::StrCat("task ", task.task_id(), " asks for grader \"",
                                                     spec.kind(), "\" but this backend runs \"",
                                                     kind_, "\""));
    }
    // Graders without options are shared; a spec with options gets its own.
    const Grader* grader = grader_.get();
    std::unique_ptr<Grader> configured;
    if (!spec.options().fields().empty()) {
      v1::GraderSpec with_kind = spec;
      with_kind.set_kind(kind_);
      FTB_ASSIGN_OR_RETURN(configured, graders_->Create(with_kind));
      grader = configured.get();
    }

    v1::TaskResult result;
    result.mutable_verdicts()->Reserve(task.judge().items_size());
    Sha256 digest;
    digest.UpdateField("ftb.judge.verdicts.v1");
    digest.UpdateField(grader->id());
    for (const v1::JudgeItem& item : task.judge().items()) {
      if (ctx.cancelled()) return absl::CancelledError("judging cancelled");
      Verdict verdict = grader->Grade(item);
      v1::Verdict* out = result.add_verdicts();
      out->set_cell_id(item.cell_id());
      out->set_question_type(item.question_type());
      out->set_question_id(item.question_id());
      out->set_verdict(std::string(verdict.name()));
      out->set_reason(std::move(verdict.reason));
      out->set_grader(std::move(verdict.grader));
      for (const std::string* field :
           {&out->cell_id(), &out->question_type(), &out->question_id(), &out->verdict()}) {
        digest.UpdateField(*field);
      }
    }
    result.set_digest(DigestHex(digest.Finish()));
    return result;
  }

 private:
  const std::string kind_;
  const std::unique_ptr<Grader> grader_;
  const GraderRegistry* const graders_;
};

}  // namespace

absl::Status RegisterJudgeBackends(workers::BackendRegistry& registry,
                                   const GraderRegistry& graders) {
  for (const std::string& kind : graders.Kinds()) {
    FTB_RETURN_IF_ERROR(registry.Register(
        kind,
        [kind, &graders](const workers::BackendOptions&)
            -> absl::StatusOr<std::unique_ptr<workers::TuningBackend>> {
          v1::GraderSpec spec;
          spec.set_kind(kind);
          FTB_ASSIGN_OR_RETURN(std::unique_ptr<Grader> grader, graders.Create(spec));
          return std::make_unique<GraderBackend>(kind, std::move(grader), &graders);
        }));
  }
  return absl::OkStatus();
}

}  // namespace ftb::judge
