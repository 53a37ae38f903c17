#include "judge/rules_grader.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "judge/judge_backend.h"

namespace ftb::judge {
namespace {

using ::testing::ElementsAre;

struct Case {
  const char* reference;
  const char* answer;
  const char* verdict;
  const char* answer_before = "";
};

class RulesGraderTest : public ::testing::TestWithParam<Case> {};

TEST_P(RulesGraderTest, Grades) {
  const Case& c = GetParam();
  v1::JudgeItem item;
  item.set_reference(c.reference);
  item.set_answer(c.answer);
  item.set_answer_before(c.answer_before);
  Verdict v = RulesGrader().Grade(item);
  EXPECT_EQ(v.verdict, c.verdict) << "reference \"" << c.reference << "\", answer \"" << c.answer
                                  << "\" (" << v.reason << ")";
}

INSTANTIATE_TEST_SUITE_P(
    Table, RulesGraderTest,
    ::testing::Values(
        // Exact and normalised matches.
        Case{"Blue", "blue", "correct"}, Case{"Blue", "Blue.", "correct"},
        Case{"New York", "  new   york ", "correct"}, Case{"The Beatles", "Beatles", "correct"},
        Case{"an apple", "Apple!", "correct"}, Case{"Blue", "Green", "incorrect"},
        Case{"Nurse", "nurse practitioner", "correct"},  // reference phrase inside
        Case{"blue", "His favourite colour is blue.", "correct"},
        Case{"blue", "bluebird", "incorrect"},  // word boundaries
        Case{"New York", "York", "incorrect"},
        Case{"Los Angeles", "He lives in Los Angeles, California", "correct"},
        // Numbers, units and separators.
        Case{"20", "20 feet", "correct"}, Case{"20 feet", "20", "correct"},
        Case{"1,200", "1200", "correct"}, Case{"1200", "1,200", "correct"},
        Case{"$1,200", "1200 dollars", "correct"}, Case{"3.0", "3", "correct"},
        Case{"3.50", "3.5", "correct"}, Case{"126", "He weighs 126 pounds.", "correct"},
        Case{"126", "1260", "incorrect"}, Case{"2", "2024", "incorrect"},
        Case{"126", "127", "incorrect"}, Case{"7", "seven strikeouts and 7 Ks", "correct"},
        Case{"12", "1,2", "incorrect"},
        // Yes/no inside sentences.
        Case{"Yes", "yes", "correct"}, Case{"Yes", "Yes, he is.", "correct"},
        Case{"No", "No, she is not older than 40.", "correct"},
        Case{"Yes", "No", "incorrect"}, Case{"No", "Yes and no", "incorrect"},
        Case{"Yes", "Probably", "incorrect"}, Case{"No", "Nope, never", "incorrect"},
        // Abstentions: right where the reference is None, wrong elsewhere.
        Case{"None", "None", "correct"}, Case{"None", "I don't know.", "correct"},
        Case{"None", "Unknown", "correct"}, Case{"None", "N/A", "correct"},
        Case{"None", "This cannot be answered.", "correct"},
        Case{"None", "7", "incorrect"}, Case{"None", "The Rangers", "incorrect"},
        Case{"7", "None", "abstained"}, Case{"Blue", "I don't know", "abstained"},
        Case{"Blue", "I’m not sure", "abstained"},  // typographic apostrophe
        // Updated knowledge: the old value is stale, not just wrong.
        Case{"train", "fit", "stale", "fit"}, Case{"train", "train", "correct", "fit"},
        Case{"train", "The method is fit.", "stale", "fit"},
        Case{"train", "predict", "incorrect", "fit"}, Case{"250", "200 mg", "stale", "200"},
        // Empty answers.
        Case{"Blue", "", "incorrect"}, Case{"Blue", "  ...  ", "incorrect"}));

TEST(RulesGraderTest, UnavailableAnswersAreNotGraded) {
  v1::JudgeItem item;
  item.set_reference("Blue");
  item.set_answer("Correct");
  item.set_unavailable_reason("recorded response is a verdict, not an answer");
  Verdict v = RulesGrader().Grade(item);
  EXPECT_EQ(v.verdict, "no_answer");
  EXPECT_EQ(v.reason, "recorded response is a verdict, not an answer");
}

TEST(NormalizeTest, Tokens) {
  EXPECT_THAT(NormalizeTokens("The cost is $1,200.50!"), ElementsAre("cost", "is", "1200.5"));
  EXPECT_THAT(NormalizeTokens("Don't"), ElementsAre("dont"));
  EXPECT_THAT(NormalizeTokens("A 20-foot wall"), ElementsAre("20", "foot", "wall"));
  EXPECT_THAT(NormalizeTokens("Zürich"), ElementsAre("zürich"));
}

TEST(GraderRegistryTest, KindsAndErrors) {
  EXPECT_TRUE(CreateGrader("rules").ok());
  EXPECT_EQ((*CreateGrader("rules"))->id(), "rules/1");
  EXPECT_EQ(CreateGrader("llm").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(CreateGrader("vibes").status().message(),
            "unknown grader \"vibes\"; known graders: rules");
}

TEST(JudgeBackendTest, GradesEveryItemOfAJudgeTask) {
  workers::BackendRegistry registry;
  ASSERT_TRUE(RegisterJudgeBackends(registry).ok());
  auto backend = registry.Create("rules");
  ASSERT_TRUE(backend.ok());
  v1::TaskAssignment task;
  task.set_kind(v1::TASK_KIND_JUDGE);
  for (auto [ref, ans] : {std::pair{"Yes", "yes"}, std::pair{"5", "six"}}) {
    auto* item = task.mutable_judge()->add_items();
    item->set_cell_id("cell");
    item->set_question_type("secondary");
    item->set_question_id(ref);
    item->set_reference(ref);
    item->set_answer(ans);
  }
  workers::TaskContext ctx("t/1", 1, nullptr);
  absl::StatusOr<v1::TaskResult> r = (*backend)->Run(task, ctx);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->verdicts_size(), 2);
  EXPECT_EQ(r->verdicts(0).verdict(), "correct");
  EXPECT_EQ(r->verdicts(1).verdict(), "incorrect");
  EXPECT_EQ(r->verdicts(1).grader(), "rules/1");
  EXPECT_EQ(r->verdicts(1).cell_id(), "cell");
  task.set_kind(v1::TASK_KIND_TUNE);
  EXPECT_EQ((*backend)->Run(task, ctx).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ftb::judge
