#include "cost/retirement_table.h"

#include "cost/price_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::cost {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(RetirementTableTest, BuiltinHasOpenAIFineTuningClosureAndGemini1p5) {
  const RetirementTable& t = RetirementTable::Builtin();
  // Any OpenAI model matches the backend-wide fine-tuning row.
  std::vector<const Retirement*> rows = t.Matching("openai", "gpt-4.1-mini-2025-04-14");
  ASSERT_THAT(rows, SizeIs(2));
  EXPECT_EQ(rows[0]->model, "*");
  EXPECT_EQ(rows[0]->kind, Retirement::Kind::kFineTuning);
  EXPECT_EQ(rows[0]->date, absl::CivilDay(2027, 1, 6));
  EXPECT_EQ(rows[0]->as_of, "2026-05-07");
  EXPECT_FALSE(rows[0]->source.empty());
  EXPECT_EQ(rows[1]->kind, Retirement::Kind::kInference);
  const std::vector<const Retirement*> pro = t.Matching("vertex", "gemini-1.5-pro-002");
  ASSERT_THAT(pro, SizeIs(1));
  EXPECT_EQ(pro[0]->date, absl::CivilDay(2025, 9, 24));
  EXPECT_TRUE(pro[0]->verified);
  EXPECT_THAT(t.Matching("vertex", "gemini-3.5-flash"), IsEmpty());
  EXPECT_THAT(t.Matching("together", "Qwen/Qwen3-8B"), IsEmpty());
  for (const Retirement& r : t.rows()) {
    EXPECT_FALSE(r.source.empty()) << r.model;
    EXPECT_FALSE(r.as_of.empty()) << r.model;
  }
}

// Past and within 30 days warn; further away is silent; the injected day
// decides, not the clock.
TEST(RetirementTableTest, WarningsDependOnTheInjectedDay) {
  RetirementTable t;
  ASSERT_TRUE(t.Add("version: 1\nretirements:\n"
                    "  - {backend: b, model: '*', kind: fine_tuning, date: 2027-01-06,"
                    " source: https://x/dep, as_of: 2026-05-07, verified: false}\n"
                    "  - {backend: b, model: m, kind: inference, date: 2026-10-23,"
                    " source: https://x/m, as_of: 2026-04-01, note: use n}\n",
                    "r.yaml")
                  .ok());
  EXPECT_THAT(t.Warnings("b", "other", absl::CivilDay(2026, 12, 6)), IsEmpty());
  EXPECT_THAT(t.Warnings("b", "other", absl::CivilDay(2026, 12, 7)),
              ElementsAre("other (b): new fine-tuning jobs on this backend stop on 2027-01-06, "
                          "in 30 days (source: https://x/dep, as of 2026-05-07; unverified)"));
  EXPECT_THAT(t.Warnings("b", "other", absl::CivilDay(2027, 1, 6)),
              ElementsAre(HasSubstr("stopped on 2027-01-06")));
  // A model past its date, and the backend row ahead.
  std::vector<std::string> w = t.Warnings("b", "m", absl::CivilDay(2026, 12, 4));
  EXPECT_THAT(w, ElementsAre("m (b): the model was retired on 2026-10-23 (source: https://x/m, "
                             "as of 2026-04-01). use n"));
  w = t.Warnings("b", "m", absl::CivilDay(2026, 10, 22));
  ASSERT_THAT(w, SizeIs(1));
  EXPECT_THAT(w[0], HasSubstr("will be retired on 2026-10-23, in 1 day"));
  EXPECT_THAT(t.Warnings("nobody", "m", absl::CivilDay(2030, 1, 1)), IsEmpty());
}

TEST(RetirementTableTest, ErrorsNameFileLineAndField) {
  struct Case {
    const char* yaml;
    const char* error;
  };
  const Case cases[] = {
      {"retirements: []\n", "r.yaml:1:1: version: required"},
      {"version: 1\nretirements: {}\n", "r.yaml:2:14: retirements: expected a list"},
      {"version: 1\nretirements:\n  - {backend: b, model: m, kind: inference, source: s, "
       "as_of: d}\n",
       "r.yaml:3:5: retirements[0].date: required"},
      {"version: 1\nretirements:\n  - {backend: b, model: m, kind: sunset, date: 2027-01-01, "
       "source: s, as_of: d}\n",
       "r.yaml:3:34: retirements[0].kind: expected fine_tuning or inference, got \"sunset\""},
      {"version: 1\nretirements:\n  - {backend: b, model: m, kind: inference, date: 2027-1-6, "
       "source: s, as_of: d}\n",
       "r.yaml:3:51: retirements[0].date: expected a date YYYY-MM-DD, got \"2027-1-6\""},
      {"version: 1\nretirements:\n  - {backend: b, model: m, kind: inference, date: 2027-02-30, "
       "source: s, as_of: d}\n",
       "r.yaml:3:51: retirements[0].date: expected a date YYYY-MM-DD, got \"2027-02-30\""},
      {"version: 1\nretirements:\n  - {backend: b, model: m, kind: inference, date: 2027-01-01, "
       "source: s, as_of: d, colour: red}\n",
       "r.yaml:3:84: retirements[0].colour: unknown field"},
  };
  for (const Case& c : cases) {
    RetirementTable t;
    absl::Status s = t.Add(c.yaml, "r.yaml");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_EQ(s.message(), c.error) << c.yaml;
  }
  RetirementTable t;
  const char* row = "version: 1\nretirements:\n  - {backend: b, model: m, kind: inference, "
                    "date: 2027-01-01, source: s, as_of: d}\n";
  ASSERT_TRUE(t.Add(row, "a.yaml").ok());
  EXPECT_EQ(t.Add(row, "b.yaml").message(),
            "b.yaml:3:5: retirements[0]: b/m inference defined twice");
}

TEST(StalePriceTest, RowsOverAYearOldAreFlagged) {
  ModelPrice p;
  p.source = "https://example/pricing";
  p.as_of = "2024-11-01";
  EXPECT_EQ(StalePriceWarning(p, "openai", "gpt-x", absl::CivilDay(2025, 11, 1)), "");
  EXPECT_EQ(StalePriceWarning(p, "openai", "gpt-x", absl::CivilDay(2025, 11, 2)),
            "price of gpt-x (openai) from 2024-11-01 is over a year old; check "
            "https://example/pricing");
  p.as_of = "last spring";
  EXPECT_THAT(StalePriceWarning(p, "openai", "gpt-x", absl::CivilDay(2025, 1, 1)),
              HasSubstr("as_of \"last spring\" is not a date"));
}

// `unknown` is a price: counted as 0 and flagged.
TEST(PriceTableTest, UnknownFiguresAreFlagged) {
  PriceTable t;
  ASSERT_TRUE(t.Add("version: 1\nbackend: x\nmodels:\n  m: {training_per_1m_tokens: 0.5, "
                    "input_per_1m_tokens: unknown, output_per_1m_tokens: unknown, source: s, "
                    "as_of: 2026-01-01, note: endpoint billed by the minute}\n"
                    "  n: {training_per_1m_tokens: unknown, input_per_1m_tokens: 1, "
                    "output_per_1m_tokens: 2, base_input_per_1m_tokens: 1, "
                    "base_output_per_1m_tokens: unknown, source: s, as_of: 2026-01-01}\n",
                    "p.yaml")
                  .ok());
  const ModelPrice* m = t.Find("x", "m");
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->training_unknown);
  EXPECT_TRUE(m->inference_unknown);
  EXPECT_TRUE(m->base_inference_unknown);  // inherits input/output
  EXPECT_EQ(m->input_per_1m_tokens, 0);
  EXPECT_EQ(m->note, "endpoint billed by the minute");
  const ModelPrice* n = t.Find("x", "n");
  ASSERT_NE(n, nullptr);
  EXPECT_TRUE(n->training_unknown);
  EXPECT_FALSE(n->inference_unknown);
  EXPECT_TRUE(n->base_inference_unknown);
  // A quoted "unknown" is a string, not the keyword.
  PriceTable bad;
  EXPECT_THAT(std::string(bad.Add("version: 1\nbackend: x\nmodels:\n  m: "
                                  "{training_per_1m_tokens: 'unknown', input_per_1m_tokens: 0, "
                                  "output_per_1m_tokens: 0, source: s, as_of: d}\n",
                                  "p.yaml")
                                  .message()),
              HasSubstr("expected a non-negative number or unknown"));
}

}  // namespace
}  // namespace ftb::cost
