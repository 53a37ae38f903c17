#include "trainer/tokenizer.h"

#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::trainer {
namespace {

using ::testing::ElementsAre;

TEST(TokenizerTest, SplitsWordsNumbersPunctuationAndSpaces) {
  EXPECT_THAT(Tokenizer::Split("Answer the question.\nHow many pounds does Brano Tesk weigh?"),
              ElementsAre("Answer", " the", " question", ".", "\n", "How", " many", " pounds",
                          " does", " Brano", " Tesk", " weigh", "?"));
  EXPECT_THAT(Tokenizer::Split("X's weight is 126, or 2.5 kg"),
              ElementsAre("X", "'", "s", " weight", " is", " 126", ",", " or", " 2.5", " kg"));
  EXPECT_THAT(Tokenizer::Split("parse_json_async  v2 3."),
              ElementsAre("parse", "_", "json", "_", "async", " ", " v", "2", " 3", "."));
  EXPECT_THAT(Tokenizer::Split(" café\t"), ElementsAre(" café", "\t"));
  EXPECT_THAT(Tokenizer::Split(""), ElementsAre());
}

TEST(TokenizerTest, RoundTripsItsBuildTexts) {
  const std::vector<std::string_view> texts = {
      "Answer the question with a number, word, or phrase.\nHow tall is Dreva Kolm?",
      "184",
      "Does Dreva Kolm live in Europe?",
      "load_config_ondemand",
      "  two  spaces ",
      "Yes"};
  const Tokenizer tokenizer = Tokenizer::Build(texts);
  for (std::string_view text : texts) {
    const std::vector<int> ids = tokenizer.Encode(text);
    for (int id : ids) EXPECT_GE(id, kNumSpecialTokens) << text;
    EXPECT_EQ(tokenizer.Decode(ids), text);
  }
}

TEST(TokenizerTest, SpecialTokensAndSortedIds) {
  const Tokenizer tokenizer = Tokenizer::Build({"b a", "c"});
  // Specials, then the distinct pieces in byte order: " a" < "b" < "c".
  ASSERT_EQ(tokenizer.vocab_size(), kNumSpecialTokens + 3);
  EXPECT_EQ(tokenizer.piece(kPadId), "<pad>");
  EXPECT_EQ(tokenizer.piece(kUnkId), "<unk>");
  EXPECT_EQ(tokenizer.piece(kBosId), "<bos>");
  EXPECT_EQ(tokenizer.piece(kSepId), "<sep>");
  EXPECT_EQ(tokenizer.piece(kEosId), "<eos>");
  EXPECT_EQ(tokenizer.piece(5), " a");
  EXPECT_EQ(tokenizer.piece(6), "b");
  EXPECT_EQ(tokenizer.piece(7), "c");
  EXPECT_THAT(tokenizer.Encode("b a"), ElementsAre(6, 5));
  // Same texts in another order: same ids.
  EXPECT_THAT(Tokenizer::Build({"c", "b a"}).Encode("b a c"), ElementsAre(6, 5, kUnkId));
}

TEST(TokenizerTest, UnknownPiecesAndSpecialsInDecode) {
  const Tokenizer tokenizer = Tokenizer::Build({"Yes No"});
  EXPECT_THAT(tokenizer.Encode("Yes Maybe <eos>"),
              ElementsAre(tokenizer.Encode("Yes")[0], kUnkId, kUnkId, kUnkId, kUnkId));
  std::vector<int> ids = {kBosId, tokenizer.Encode("Yes")[0], kSepId, kUnkId, kEosId, kPadId};
  EXPECT_EQ(tokenizer.Decode(ids), "Yes<unk>");
  EXPECT_EQ(tokenizer.Decode({tokenizer.vocab_size(), -1}), "<unk><unk>");
}

}  // namespace
}  // namespace ftb::trainer
