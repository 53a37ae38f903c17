#include "cost/price_table.h"

#include "cost/tokens.h"
#include "gtest/gtest.h"

namespace ftb::cost {
namespace {

TEST(TokensTest, EstimatesAndTrainingBilling) {
  EXPECT_EQ(EstimateTokens(""), 0u);
  EXPECT_EQ(EstimateTokens("a"), 1u);
  EXPECT_EQ(EstimateTokens("abcd"), 1u);
  EXPECT_EQ(EstimateTokens("abcde"), 2u);
  // 40-byte prompt (10) + 4-byte answer (1) + 9 tokens of chat overhead.
  EXPECT_EQ(ChatExampleTokens(std::string(40, 'x'), "1234"), 20u);
  EXPECT_EQ(TrainingTokens(150 * 20, 30), 90000u);
}

TEST(PriceTableTest, BuiltinHasThePaperModelsWithSources) {
  const PriceTable& t = PriceTable::Builtin();
  const ModelPrice* mini = t.Find("openai", "gpt-4o-mini-2024-07-18");
  ASSERT_NE(mini, nullptr);
  EXPECT_DOUBLE_EQ(mini->training_per_1m_tokens, 3.0);
  EXPECT_DOUBLE_EQ(mini->input_per_1m_tokens, 0.30);
  EXPECT_DOUBLE_EQ(mini->output_per_1m_tokens, 1.20);
  EXPECT_FALSE(mini->source.empty());
  EXPECT_EQ(mini->as_of, "2024-11-01");
  for (const char* m : {"gpt-3.5-turbo-0125", "gpt-4o-2024-08-06"}) {
    EXPECT_NE(t.Find("openai", m), nullptr) << m;
  }
  for (const char* m : {"gemini-1.5-flash-002", "gemini-1.5-pro-002"}) {
    const ModelPrice* p = t.Find("vertex", m);
    ASSERT_NE(p, nullptr) << m;
    EXPECT_FALSE(p->verified);
  }
  // Wildcards: local costs nothing for any model.
  const ModelPrice* local = t.Find("local", "tiny-transformer");
  ASSERT_NE(local, nullptr);
  EXPECT_DOUBLE_EQ(local->training_per_1m_tokens, 0);
  EXPECT_EQ(t.Find("openai", "no-such-model"), nullptr);
  EXPECT_EQ(t.Find("nobody", "x"), nullptr);
}

TEST(PriceTableTest, ErrorsNameFileLineAndField) {
  struct Case {
    const char* yaml;
    const char* error;
  };
  const Case cases[] = {
      {"backend: x\nmodels: {}\n", "p.yaml:1:1: version: required"},
      {"version: 1\nbackend: x\nmodels: [1]\n", "p.yaml:3:9: models: expected a mapping"},
      {"version: 1\nbackend: x\nmodels:\n  m: {training_per_1m_tokens: -1, "
       "input_per_1m_tokens: 0, output_per_1m_tokens: 0, source: s, as_of: d}\n",
       "p.yaml:4:31: models.m.training_per_1m_tokens: expected a non-negative number or unknown, got \"-1\""},
      {"version: 1\nbackend: x\nmodels:\n  m: {training_per_1m_tokens: 1, "
       "input_per_1m_tokens: 0, output_per_1m_tokens: 0}\n",
       "p.yaml:4:6: models.m: every price needs its source and as_of date"},
      {"version: 1\nbackend: x\nmodels:\n  m: {training_per_1m_tokens: 1, colour: red}\n",
       "p.yaml:4:34: models.m.colour: unknown field"},
      {"version: 1\nbackend: x\nmodels:\n  m: {input_per_1m_tokens: 1}\n",
       "p.yaml:4:6: models.m: missing training_per_1m_tokens"},
  };
  for (const Case& c : cases) {
    PriceTable t;
    absl::Status s = t.Add(c.yaml, "p.yaml");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_EQ(s.message(), c.error) << c.yaml;
  }
  PriceTable t;
  const char* entry = "version: 1\nbackend: x\nmodels:\n  m: {training_per_1m_tokens: 1, "
                      "input_per_1m_tokens: 0, output_per_1m_tokens: 0, source: s, as_of: d}\n";
  ASSERT_TRUE(t.Add(entry, "a.yaml").ok());
  EXPECT_EQ(t.Add(entry, "b.yaml").message(), "b.yaml:4:3: models.m: defined twice for backend x");
}

}  // namespace
}  // namespace ftb::cost
