#include "judge/judge_backend.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "cost/price_table.h"
#include "absl/synchronization/mutex.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "judge/verdict_cache.h"

namespace ftb::judge {
namespace {

class GraderBackend : public workers::TuningBackend {
 public:
  GraderBackend(std::string kind, std::unique_ptr<Grader> grader, const GraderRegistry* graders,
                std::string cache_dir)
      : kind_(std::move(kind)),
        grader_(std::move(grader)),
        graders_(graders),
        cache_(std::move(cache_dir)) {}

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
    FTB_ASSIGN_OR_RETURN(std::shared_ptr<const Grader> grader, GraderFor(spec));

    std::vector<const v1::JudgeItem*> items;
    items.reserve(task.judge().items_size());
    for (const v1::JudgeItem& item : task.judge().items()) items.push_back(&item);
    Grader::GradeAllOptions options;
    options.cancelled = [&ctx] { return ctx.cancelled(); };
    CachedGradeStats stats;
    absl::Status store_error;
    FTB_ASSIGN_OR_RETURN(std::vector<Verdict> verdicts,
                         GradeWithCache(*grader, &cache_, items, options, &stats, &store_error));
    if (ctx.cancelled()) return absl::CancelledError("judging cancelled");
    if (grader->cache_verdicts()) {
      ctx.Log(absl::StrCat("judge ", std::string(grader->id()), ": ", stats.hits, " verdicts from the cache ",
                           cache_.dir(), ", ", stats.graded, " graded, ", stats.stored, " stored"));
      if (!store_error.ok()) ctx.Log(absl::StrCat("judge: ", store_error.message()));
    }

    v1::TaskResult result;
    result.mutable_verdicts()->Reserve(task.judge().items_size());
    Sha256 digest;
    digest.UpdateField("ftb.judge.verdicts.v1");
    digest.UpdateField(grader->id());
    uint64_t prompt_tokens = 0, completion_tokens = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      const v1::JudgeItem& item = *items[i];
      Verdict& verdict = verdicts[i];
      prompt_tokens += verdict.prompt_tokens;
      completion_tokens += verdict.completion_tokens;
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
    // What this attempt was billed (cached verdicts cost nothing again).
    result.set_tokens(prompt_tokens + completion_tokens);
    if (prompt_tokens + completion_tokens > 0) {
      const auto [backend, model] = grader->price_key();
      const cost::ModelPrice* price =
          backend.empty() ? nullptr : cost::PriceTable::Builtin().Find(backend, model);
      if (price == nullptr) {
        ctx.Log(absl::StrCat("judge: no price for ", backend, "/", model,
                             " in the price tables; cost recorded as 0"));
      } else {
        // A judge asks the base model, so it pays base-model rates, not the
        // fine-tuned-inference rates of the same row.
        result.set_cost_usd(
            (static_cast<double>(prompt_tokens) * price->base_input_per_1m_tokens +
             static_cast<double>(completion_tokens) * price->base_output_per_1m_tokens) /
            1e6);
      }
    }
    return result;
  }

 private:
  // Graders without options are the one made at start; a spec with options
  // gets its own, made once per distinct options and kept, so an `llm`
  // grader's client (rate limits, connections) outlives one task.
  absl::StatusOr<std::shared_ptr<const Grader>> GraderFor(const v1::GraderSpec& spec) {
    if (spec.options().fields().empty()) return grader_;
    std::string key;
    {
      google::protobuf::io::StringOutputStream stream(&key);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);
      spec.options().SerializeToCodedStream(&coded);
    }
    absl::MutexLock lock(&mu_);
    auto it = configured_.find(key);
    if (it != configured_.end()) return it->second;
    v1::GraderSpec with_kind = spec;
    with_kind.set_kind(kind_);
    FTB_ASSIGN_OR_RETURN(std::unique_ptr<Grader> made, graders_->Create(with_kind));
    std::shared_ptr<const Grader> shared = std::move(made);
    configured_.emplace(std::move(key), shared);
    return shared;
  }

  const std::string kind_;
  const std::shared_ptr<const Grader> grader_;
  const GraderRegistry* const graders_;
  const VerdictCache cache_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const Grader>> configured_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status RegisterJudgeBackends(workers::BackendRegistry& registry,
                                   const GraderRegistry& graders) {
  for (const std::string& kind : graders.Kinds()) {
    FTB_RETURN_IF_ERROR(registry.Register(
        kind,
        [kind, &graders](const workers::BackendOptions& options)
            -> absl::StatusOr<std::unique_ptr<workers::TuningBackend>> {
          v1::GraderSpec spec;
          spec.set_kind(kind);
          FTB_ASSIGN_OR_RETURN(std::unique_ptr<Grader> grader, graders.Create(spec));
          auto dir = options.params.find("verdict_cache");
          return std::make_unique<GraderBackend>(
              kind, std::move(grader), &graders,
              dir != options.params.end() && !dir->second.empty() ? dir->second
                                                                   : DefaultVerdictCacheDir());
        }));
  }
  return absl::OkStatus();
}

}  // namespace ftb::judge
