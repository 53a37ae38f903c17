#include "judge/grader.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "judge/llm_grader.h"
#include "judge/rules_grader.h"

namespace ftb::judge {

std::string_view VerdictName(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::kCorrect:
      return "correct";
    case VerdictKind::kIncorrect:
      return "incorrect";
    case VerdictKind::kStale:
      return "stale";
    case VerdictKind::kAbstained:
      return "abstained";
    case VerdictKind::kNoAnswer:
      return "no_answer";
    case VerdictKind::kError:
      return "error";
  }
  return "error";
}

absl::StatusOr<std::vector<Verdict>> Grader::GradeAll(
    absl::Span<const v1::JudgeItem* const> items, const GradeAllOptions& options) const {
  std::vector<Verdict> out;
  out.reserve(items.size());
  for (const v1::JudgeItem* item : items) {
    if (options.cancelled && options.cancelled()) return absl::CancelledError("judging cancelled");
    out.push_back(Grade(*item));
    if (options.on_verdict) options.on_verdict(out.size() - 1, out.back());
  }
  return out;
}

absl::Status GraderRegistry::Register(std::string kind, GraderFactory factory) {
  if (kind.empty()) return absl::InvalidArgumentError("grader kind must not be empty");
  if (!factory) {
    return absl::InvalidArgumentError(absl::StrCat("grader \"", kind, "\": factory is null"));
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = factories_.emplace(std::move(kind), std::move(factory));
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("grader \"", it->first, "\" is already registered"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Grader>> GraderRegistry::Create(const v1::GraderSpec& spec) const {
  GraderFactory factory;
  {
    absl::MutexLock lock(&mu_);
    auto it = factories_.find(spec.kind());
    if (it == factories_.end()) {
      std::vector<std::string> kinds;
      for (const auto& [known, unused] : factories_) kinds.push_back(known);
      return absl::NotFoundError(absl::StrCat(
          "unknown grader \"", spec.kind(),
          "\"; known graders: ", kinds.empty() ? "(none)" : absl::StrJoin(kinds, ", ")));
    }
    factory = it->second;
  }
  absl::StatusOr<std::unique_ptr<Grader>> grader = factory(spec);
  if (grader.ok() && *grader == nullptr) {
    return absl::InternalError(absl::StrCat("grader \"", spec.kind(), "\": factory returned null"));
  }
  return grader;
}

std::vector<std::string> GraderRegistry::Kinds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> kinds;
  for (const auto& [kind, unused] : factories_) kinds.push_back(kind);
  return kinds;
}

GraderRegistry& GraderRegistry::Global() {
  static GraderRegistry* registry = [] {
    auto* r = new GraderRegistry;
    absl::Status status = RegisterBuiltinGraders(*r);
    if (!status.ok()) {  // Two built-ins share a kind: a bug in this module.
      std::fprintf(stderr, "ftb: built-in graders: %s\n", status.ToString().c_str());
      std::abort();
    }
    return r;
  }();
  return *registry;
}

absl::Status RegisterBuiltinGraders(GraderRegistry& registry) {
  FTB_RETURN_IF_ERROR(registry.Register(
      "rules", [](const v1::GraderSpec& spec) -> absl::StatusOr<std::unique_ptr<Grader>> {
        if (!spec.options().fields().empty()) {
          // Report the first option in name order, so the message is stable.
          std::string first = spec.options().fields().begin()->first;
          for (const auto& [name, unused] : spec.options().fields()) first = std::min(first, name);
          return absl::InvalidArgumentError(
              absl::StrCat("grader \"rules\" takes no options, got \"", first, "\""));
        }
        return std::make_unique<RulesGrader>();
      }));
  FTB_RETURN_IF_ERROR(registry.Register(
      "llm", [](const v1::GraderSpec& spec) -> absl::StatusOr<std::unique_ptr<Grader>> {
        FTB_ASSIGN_OR_RETURN(LlmGraderOptions options, ParseLlmGraderOptions(spec.options()));
        FTB_ASSIGN_OR_RETURN(std::unique_ptr<LlmGrader> grader, LlmGrader::Create(options));
        return std::unique_ptr<Grader>(std::move(grader));
      }));
  FTB_RETURN_IF_ERROR(registry.Register(
      std::string(LlmGrader::kPaperKind),
      [](const v1::GraderSpec& spec) -> absl::StatusOr<std::unique_ptr<Grader>> {
        FTB_ASSIGN_OR_RETURN(
            LlmGraderOptions options,
            ParseLlmGraderOptions(spec.options(), LlmGrader::kPaperKind, PaperGraderDefaults()));
        FTB_ASSIGN_OR_RETURN(std::unique_ptr<LlmGrader> grader,
                             LlmGrader::Create(options, nullptr, nullptr, PaperGraderProtocol()));
        return std::unique_ptr<Grader>(std::move(grader));
      }));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Grader>> CreateGrader(std::string_view kind) {
  v1::GraderSpec spec;
  spec.set_kind(std::string(kind));
  return GraderRegistry::Global().Create(spec);
}

v1::Verdict ToProto(const v1::JudgeItem& item, const Verdict& verdict) {
  v1::Verdict out;
  out.set_cell_id(item.cell_id());
  out.set_question_type(item.question_type());
  out.set_question_id(item.question_id());
  out.set_verdict(std::string(verdict.name()));
  out.set_reason(verdict.reason);
  out.set_grader(verdict.grader);
  return out;
}

}  // namespace ftb::judge
