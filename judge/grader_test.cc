#include "judge/grader.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace ftb::judge {
namespace {

TEST(GraderRegistryTest, BuiltinKinds) {
  EXPECT_EQ(GraderRegistry::Global().Kinds(), (std::vector<std::string>{"llm", "paper", "rules"}));
  absl::StatusOr<std::unique_ptr<Grader>> rules = CreateGrader("rules");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ((*rules)->kind(), "rules");
  EXPECT_EQ((*rules)->id(), "rules/2");
}

TEST(GraderRegistryTest, LlmIsBuiltIn) {
  // Creating it makes no call and needs no key (grading would).
  absl::StatusOr<std::unique_ptr<Grader>> llm = CreateGrader("llm");
  ASSERT_TRUE(llm.ok()) << llm.status();
  EXPECT_EQ((*llm)->kind(), "llm");
  EXPECT_EQ((*llm)->id(), "llm/gpt-4o-mini-2024-07-18/r1");
  EXPECT_TRUE((*llm)->cache_verdicts());

  v1::GraderSpec spec;
  spec.set_kind("llm");
  (*spec.mutable_options()->mutable_fields())["model"].set_string_value("judge-1");
  (*spec.mutable_options()->mutable_fields())["concurrency"].set_number_value(8);
  absl::StatusOr<std::unique_ptr<Grader>> configured = GraderRegistry::Global().Create(spec);
  ASSERT_TRUE(configured.ok()) << configured.status();
  EXPECT_EQ((*configured)->id(), "llm/judge-1/r1");

  (*spec.mutable_options()->mutable_fields())["temperature"].set_number_value(0);
  EXPECT_TRUE(GraderRegistry::Global().Create(spec).ok());
  (*spec.mutable_options()->mutable_fields())["temperature"].set_number_value(0.7);
  EXPECT_EQ(GraderRegistry::Global().Create(spec).status().message(),
            "grader \"llm\": options.temperature: expected 0 (the judge always grades at "
            "temperature 0)");
  spec.mutable_options()->mutable_fields()->erase("temperature");
  (*spec.mutable_options()->mutable_fields())["top_p"].set_number_value(1);
  absl::StatusOr<std::unique_ptr<Grader>> bad = GraderRegistry::Global().Create(spec);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "grader \"llm\": unknown option \"top_p\"; known: api_key_env, api_key_file, "
            "base_url, concurrency, http_backoff_ms, http_max_attempts, max_attempts, max_tokens, "
            "model, requests_per_minute, seed, temperature");
}

TEST(GraderRegistryTest, UnknownKindNamesTheKnownOnes) {
  absl::StatusOr<std::unique_ptr<Grader>> g = CreateGrader("vibes");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(g.status().message(), "unknown grader \"vibes\"; known graders: llm, paper, rules");
}

TEST(GraderRegistryTest, RulesTakesNoOptions) {
  v1::GraderSpec spec;
  spec.set_kind("rules");
  (*spec.mutable_options()->mutable_fields())["zeta"].set_number_value(1);
  (*spec.mutable_options()->mutable_fields())["model"].set_string_value("x");
  absl::StatusOr<std::unique_ptr<Grader>> g = GraderRegistry::Global().Create(spec);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.status().message(), "grader \"rules\" takes no options, got \"model\"");
}

TEST(GraderRegistryTest, RegisterErrors) {
  GraderRegistry registry;
  EXPECT_EQ(registry.Kinds(), std::vector<std::string>{});
  EXPECT_EQ(registry
                .Register("",
                          [](const v1::GraderSpec&) {
                            return absl::StatusOr<std::unique_ptr<Grader>>(nullptr);
                          })
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Register("x", nullptr).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(RegisterBuiltinGraders(registry).ok());
  EXPECT_EQ(RegisterBuiltinGraders(registry).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry
                  .Register("null",
                            [](const v1::GraderSpec&) {
                              return absl::StatusOr<std::unique_ptr<Grader>>(nullptr);
                            })
                  .ok());
  v1::GraderSpec spec;
  spec.set_kind("null");
  EXPECT_EQ(registry.Create(spec).status().code(), absl::StatusCode::kInternal);
}

TEST(VerdictTest, NamesAndProto) {
  EXPECT_EQ(VerdictName(VerdictKind::kCorrect), "correct");
  EXPECT_EQ(VerdictName(VerdictKind::kIncorrect), "incorrect");
  EXPECT_EQ(VerdictName(VerdictKind::kStale), "stale");
  EXPECT_EQ(VerdictName(VerdictKind::kAbstained), "abstained");
  EXPECT_EQ(VerdictName(VerdictKind::kNoAnswer), "no_answer");
  EXPECT_EQ(VerdictName(VerdictKind::kError), "error");
  v1::JudgeItem item;
  item.set_cell_id("cell");
  item.set_question_type("secondary");
  item.set_question_id("q#3");
  v1::Verdict v = ToProto(item, Verdict{VerdictKind::kStale, "old", "rules/2"});
  EXPECT_EQ(v.cell_id(), "cell");
  EXPECT_EQ(v.question_type(), "secondary");
  EXPECT_EQ(v.question_id(), "q#3");
  EXPECT_EQ(v.verdict(), "stale");
  EXPECT_EQ(v.reason(), "old");
  EXPECT_EQ(v.grader(), "rules/2");
}

}  // namespace
}  // namespace ftb::judge
