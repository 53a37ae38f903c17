#include "judge/rules_grader.h"

#include <atomic>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ftb::judge {
namespace {

struct Case {
  const char* reference;
  const char* answer;
  const char* verdict;
  const char* answer_before = "";
  const char* prompt = "";  // the question
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  os << "reference \"" << c.reference << "\", answer \"" << c.answer << "\"";
  if (*c.answer_before != '\0') os << ", before \"" << c.answer_before << "\"";
  if (*c.prompt != '\0') os << ", question \"" << c.prompt << "\"";
  return os;
}

class RulesGraderTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(RulesGraderTableTest, GivesTheExpectedVerdict) {
  const Case& c = GetParam();
  v1::JudgeItem item;
  item.set_reference(c.reference);
  item.set_answer(c.answer);
  item.set_answer_before(c.answer_before);
  item.set_prompt(c.prompt);
  const Verdict v = RulesGrader().Grade(item);
  EXPECT_EQ(v.name(), c.verdict) << c << " (reason: " << v.reason << ")";
  EXPECT_EQ(v.grader, "rules/2");
}

// Each block exercises one rule of rules_grader.h, with the cases that must
// not match next to the ones that must.
INSTANTIATE_TEST_SUITE_P(
    Rules, RulesGraderTableTest,
    ::testing::Values(
        // Rule 2: an empty answer is wrong.
        Case{"Blue", "", "incorrect"}, Case{"Blue", "  \n ", "incorrect"},
        Case{"Blue", "...", "incorrect"},
        // Rule 3: no reference.
        Case{"", "Blue", "error"}, Case{"?!", "Blue", "error"},
        // Rule 6a: normalised equality (case, punctuation, articles,
        // whitespace).
        Case{"Blue", "blue", "correct"}, Case{"Blue", "Blue.\n\n", "correct"},
        Case{"New York", "  new   york ", "correct"}, Case{"The Beatles", "Beatles", "correct"},
        Case{"an apple", "Apple!", "correct"}, Case{"police officer", "Police Officer.", "correct"},
        Case{"apply_transform", "apply_transform()", "correct"},
        Case{"Zürich", "zürich", "correct"}, Case{"A", "a", "correct"}, Case{"A", "(A)", "correct"},
        Case{"Blue", "Green", "incorrect"}, Case{"Nakanolaj", "Nakanol", "incorrect"},
        // Rule 6b: numbers, units, separators, decimals, words.
        Case{"20", "20 feet", "correct"}, Case{"20 feet", "20", "correct"},
        Case{"20 feet", "about 20 ft", "correct"}, Case{"1,200", "1200", "correct"},
        Case{"1200", "1,200", "correct"}, Case{"$1,200", "1200 dollars", "correct"},
        Case{"400,000 tons", "400000", "correct"}, Case{"3.0", "3", "correct"},
        Case{"3.50", "3.5", "correct"}, Case{"007", "7", "correct"},
        Case{"126", "He weighs 126 pounds.", "correct"}, Case{"185", "6'1\" (185 cm)", "correct"},
        Case{"18", "18 years old\n\n", "correct"}, Case{"four", "4", "correct"},
        Case{"4", "four", "correct"}, Case{"21", "twenty-one", "correct"},
        Case{"126", "1260", "incorrect"}, Case{"2", "2024", "incorrect"},
        Case{"126", "127", "incorrect"}, Case{"12", "1,2", "incorrect"},
        Case{"190", "6'7\"", "incorrect"}, Case{"1", "no one knows", "incorrect"},
        Case{"185", "185.5", "incorrect"},
        // Several numbers: matched as a phrase.
        Case{"7-0", "Japan won 7-0.", "correct"}, Case{"7-0", "7-1", "incorrect"},
        // Rule 6c: the reference as a whole phrase inside the answer.
        Case{"blue", "His favourite colour is blue.", "correct"},
        Case{"Nurse", "nurse practitioner", "correct"},
        Case{"Los Angeles", "He lives in Los Angeles, California", "correct"},
        Case{"Faqapi", "Faqapi's brother", "correct"}, Case{"blue", "bluebird", "incorrect"},
        Case{"New York", "York", "incorrect"}, Case{"Los Angeles", "Angeles Los", "incorrect"},
        // Guards: short words, negation, hedging.
        Case{"US", "the U.S.", "incorrect"}, Case{"US", "US", "correct"},
        Case{"US", "He served in the US army", "incorrect"},
        Case{"blue", "It is not blue.", "incorrect"},
        Case{"blue", "His favourite colour isn't blue", "incorrect"},
        Case{"blue", "Not red; blue.", "correct"}, Case{"blue", "red, blue or yellow", "incorrect"},
        Case{"126", "126 or 127", "incorrect"},
        // ... but an "or" the answer copies from the question is no hedge.
        Case{"40%", "40% rate it good or very good.", "correct", "",
             "What share rate the park good or very good?"},
        Case{"40%", "40% or 45% rate it good or very good.", "incorrect", "",
             "What share rate the park good or very good?"},
        Case{"40%", "40% rate it good or great.", "incorrect", "",
             "What share rate the park good or very good?"},
        // Rule 6d: a short answer stating the key fact of a long reference.
        Case{"21 days of twice-daily saline rinses", "21 days.", "correct"},
        Case{"21 days of twice-daily saline rinses", "Rinse for 21 days", "correct"},
        Case{"21 days of twice-daily saline rinses", "12 days.", "incorrect"},
        Case{"21 days of twice-daily saline rinses", "Saline rinses twice daily", "incorrect"},
        Case{"21 days of twice-daily saline rinses", "7 days.", "stale",
             "7 days of twice-daily saline rinses"},
        Case{"Start oral iron and recheck ferritin in eight weeks",
             "Oral iron, then recheck ferritin", "correct"},
        Case{"Start oral iron and recheck ferritin in eight weeks",
             "Do not start oral iron", "incorrect"},
        Case{"Start oral iron and recheck ferritin in eight weeks",
             "Start intravenous iron and recheck hemoglobin", "incorrect"},
        Case{"Start oral iron and recheck ferritin in eight weeks",
             "Oral iron or an iron infusion", "incorrect"},
        Case{"Start oral iron and recheck ferritin in eight weeks", "Iron", "incorrect"},
        // Words copied from the question count neither way.
        Case{"Refer to cardiology within two weeks for an echocardiogram",
             "Refer him within two weeks", "correct", "",
             "A man has a murmur. When should you refer him?"},
        Case{"Refer to cardiology within two weeks for an echocardiogram",
             "A man has a murmur, refer him", "incorrect", "",
             "A man has a murmur. When should you refer him?"},
        Case{"black or white", "Black or white.", "correct"},
        Case{"black or white", "It is black or white", "correct"},
        // Rule 5: yes/no inside a sentence.
        Case{"Yes", "yes", "correct"}, Case{"Yes", "Yes, he is.", "correct"},
        Case{"Yes", "Yes\n", "correct"}, Case{"No", "No.\n", "correct"},
        Case{"No", "No, she is not older than 40.", "correct"}, Case{"Yes", "No", "incorrect"},
        Case{"No", "Yes", "incorrect"}, Case{"No", "Yes and no", "incorrect"},
        Case{"Yes", "Probably", "incorrect"}, Case{"Yes", "red", "incorrect"},
        Case{"No", "No idea", "abstained"}, Case{"Yes", "I don't know", "abstained"},
        // Rule 4: reference None (date-changed questions).
        Case{"None", "None", "correct"}, Case{"None", "none.", "correct"},
        Case{"None", "I don't know.", "correct"}, Case{"None", "Unknown", "correct"},
        Case{"None", "N/A", "correct"}, Case{"None", "This cannot be answered.", "correct"},
        Case{"None", "I'm sorry, but I don't have information about events in 2025.", "correct"},
        Case{"None",
             "Unknown\n\nThere is no record of this event in any source I know of, "
             "and it may not have happened at all by that date.",
             "correct"},
        Case{"None", "7", "incorrect"}, Case{"None", "The Rangers", "incorrect"},
        Case{"None", "Rafael Nadal withdrew.", "incorrect"},
        // Rule 9: abstentions where an answer exists.
        Case{"7", "None", "abstained"}, Case{"Blue", "I don't know", "abstained"},
        Case{"Blue", "I\u2019m not sure", "abstained"},  // typographic apostrophe
        Case{"189", "Unknown\n\n", "abstained"},
        Case{"45",
             "Unknown\n\nZoqog Gewulu is a fictional character.  There is no established age.\n",
             "abstained"},
        Case{"Blue", "None of the colours I know of", "incorrect"},
        Case{"Blue", "I am not sure, but I think it is blue", "correct"},
        // Rule 7: updated knowledge; the old value is stale, not just wrong.
        Case{"train", "fit", "stale", "fit"}, Case{"train", "train", "correct", "fit"},
        Case{"train", "The method is fit.", "stale", "fit"},
        Case{"train", "predict", "incorrect", "fit"}, Case{"250", "200 mg", "stale", "200"},
        Case{"apply_transform", "transform", "stale", "transform"},
        Case{"apply_transform", "Use apply_transform(X).", "correct", "transform"},
        Case{"transform", "apply_transform", "stale", "apply_transform"},
        Case{"transform", "Call transform(X).", "correct", "apply_transform"},
        Case{"14 days", "10 days", "stale", "10 days"}, Case{"Yes", "No", "stale", "No"},
        Case{"fit", "fit", "correct", "fit"}, Case{"train", "I don't know", "abstained", "fit"}));

TEST(RulesGraderTest, UnavailableAnswersAreNotGraded) {
  v1::JudgeItem item;
  item.set_reference("Blue");
  item.set_answer("Blue");
  item.set_unavailable_reason("recorded response is a verdict (\"Correct\"), not an answer");
  const Verdict v = RulesGrader().Grade(item);
  EXPECT_EQ(v.kind, VerdictKind::kNoAnswer);
  EXPECT_EQ(v.reason, "recorded response is a verdict (\"Correct\"), not an answer");
  EXPECT_EQ(v.grader, "rules/2");
}

TEST(RulesGraderTest, Reasons) {
  auto reason = [](const char* reference, const char* answer, const char* before = "") {
    v1::JudgeItem item;
    item.set_reference(reference);
    item.set_answer(answer);
    item.set_answer_before(before);
    return RulesGrader().Grade(item).reason;
  };
  EXPECT_EQ(reason("Blue", "blue"), "matches the reference");
  EXPECT_EQ(reason("126", "126 pounds"), "the reference's number is in the answer");
  EXPECT_EQ(reason("blue", "It is blue"), "the reference is in the answer");
  EXPECT_EQ(reason("blue", "not blue"), "the reference appears only negated");
  EXPECT_EQ(reason("blue", "blue or red"), "hedges between alternatives");
  EXPECT_EQ(reason("Yes", "Yes and no"), "ambiguous: both yes and no");
  EXPECT_EQ(reason("Yes", "Maybe"), "no yes or no in the answer");
  EXPECT_EQ(reason("Yes", "No"), "yes/no differs from the reference");
  EXPECT_EQ(reason("train", "fit", "fit"), "gives the answer from before the update");
  EXPECT_EQ(reason("None", "N/A"), "abstained; the question has no answer");
  EXPECT_EQ(reason("None", "5"), "answered a question that has no answer");
  EXPECT_EQ(reason("Blue", ""), "empty answer");
  EXPECT_EQ(reason("", "Blue"), "no reference answer");
}

// Graders are shared by all worker slots.
TEST(RulesGraderTest, ConcurrentGradingAgrees) {
  const RulesGrader grader;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      v1::JudgeItem item;
      for (int i = 0; i < 2000; ++i) {
        item.set_reference(std::to_string(i));
        item.set_answer(i % 2 == 0 ? std::to_string(i) + " pounds" : "unknown");
        const VerdictKind want = i % 2 == 0 ? VerdictKind::kCorrect : VerdictKind::kAbstained;
        if (grader.Grade(item).kind != want) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// Truncated UTF-8, lone separators, long digit runs: never out of bounds
// (run under ASan in CI), and grading stays deterministic.
TEST(RulesGraderTest, ArbitraryBytes) {
  const RulesGrader grader;
  const std::string alphabet = std::string("aZ09 ,.'-$\n\r\"or no yes none") + "\xe2\x80\x99" +
                               "\xe2\x80" + "\xc2\xa0" + "\xc3\xbc" + "\xff";
  uint64_t state = 7;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  auto random_text = [&] {
    std::string text;
    const uint32_t n = next() % 24;
    for (uint32_t i = 0; i < n; ++i) text.push_back(alphabet[next() % alphabet.size()]);
    return text;
  };
  int graded = 0;
  for (int i = 0; i < 20000; ++i) {
    v1::JudgeItem item;
    item.set_reference(random_text());
    item.set_answer(random_text());
    if (i % 3 == 0) item.set_answer_before(random_text());
    const Verdict first = grader.Grade(item);
    const Verdict second = grader.Grade(item);
    ASSERT_EQ(first.kind, second.kind) << item.ShortDebugString();
    ASSERT_EQ(first.reason, second.reason);
    graded += first.kind != VerdictKind::kError && first.kind != VerdictKind::kNoAnswer;
  }
  EXPECT_GT(graded, 10000);
}

TEST(NormalizeForGradingTest, Examples) {
  EXPECT_EQ(NormalizeForGrading("The cost is $1,200.50!"), "cost is 1200.5");
  EXPECT_EQ(NormalizeForGrading("Don't"), "dont");
  EXPECT_EQ(NormalizeForGrading("Faqapi's"), "faqapi");
  EXPECT_EQ(NormalizeForGrading("A 20-foot wall"), "20 foot wall");
  EXPECT_EQ(NormalizeForGrading("20mg"), "20 mg");
  EXPECT_EQ(NormalizeForGrading("covid19"), "covid19");
  EXPECT_EQ(NormalizeForGrading("6'1\" (185 cm)"), "6 1 185 cm");
  EXPECT_EQ(NormalizeForGrading("1,2 and 1,234,567 and 1234,567"), "1 2 and 1234567 and 1234 567");
  EXPECT_EQ(NormalizeForGrading("0.50 3.0 007 0"), "0.5 3 7 0");
  EXPECT_EQ(NormalizeForGrading("twenty-one, forty two, one, zero"), "21 42 one 0");
  EXPECT_EQ(NormalizeForGrading("The"), "the");
  EXPECT_EQ(NormalizeForGrading("N/A"), "n");
  EXPECT_EQ(NormalizeForGrading("Zürich\u2014the \u201ccity\u201d"), "zürich city");
  EXPECT_EQ(NormalizeForGrading("  \n\t "), "");
  EXPECT_EQ(NormalizeForGrading("It is 3."), "it is 3");
}

}  // namespace
}  // namespace ftb::judge
