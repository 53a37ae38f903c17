#include "judge/grader.h"

#include "absl/strings/str_cat.h"
#include "judge/rules_grader.h"

namespace ftb::judge {

absl::StatusOr<std::unique_ptr<Grader>> CreateGrader(std::string_view kind) {
  if (kind == "rules") return std::make_unique<RulesGrader>();
  if (kind == "llm") {
    return absl::UnimplementedError(
        "grader llm (LLM-as-judge) is not available in this build yet; use rules");
  }
  return absl::NotFoundError(
      absl::StrCat("unknown grader \"", std::string(kind), "\"; known graders: rules"));
}

}  // namespace ftb::judge
