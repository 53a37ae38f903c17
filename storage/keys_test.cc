#include "storage/keys.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ftb::storage {
namespace {

using std::string_literals::operator""s;

TEST(KeysTest, EncodeUint64IsBigEndianFixedWidth) {
  EXPECT_EQ(EncodeUint64(0), "\0\0\0\0\0\0\0\0"s);
  EXPECT_EQ(EncodeUint64(1), "\0\0\0\0\0\0\0\x01"s);
  EXPECT_EQ(EncodeUint64(0x0102030405060708), "\x01\x02\x03\x04\x05\x06\x07\x08"s);
  EXPECT_EQ(EncodeUint64(std::numeric_limits<uint64_t>::max()), std::string(8, '\xff'));
}

TEST(KeysTest, EncodeUint64PreservesOrder) {
  const std::vector<uint64_t> values = {0,     1,          2,          255,
                                        256,   65535,      65536,      (1ull << 32) - 1,
                                        1ull << 32, (1ull << 63) - 1, 1ull << 63,
                                        std::numeric_limits<uint64_t>::max()};
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    EXPECT_LT(EncodeUint64(values[i]), EncodeUint64(values[i + 1])) << values[i];
  }
}

TEST(KeysTest, DecodeUint64RoundTripsAndRejectsWrongWidth) {
  for (uint64_t v : {uint64_t{0}, uint64_t{47}, uint64_t{0x8000000000000001}}) {
    EXPECT_EQ(DecodeUint64(EncodeUint64(v)), std::optional<uint64_t>(v));
  }
  EXPECT_EQ(DecodeUint64("1234567"), std::nullopt);
  EXPECT_EQ(DecodeUint64("123456789"), std::nullopt);
}

TEST(KeysTest, ConsumeUint64AdvancesOnlyOnSuccess) {
  std::string buf = EncodeUint64(9) + "rest";
  std::string_view in = buf;
  uint64_t v = 0;
  ASSERT_TRUE(ConsumeUint64(&in, &v));
  EXPECT_EQ(v, 9u);
  EXPECT_EQ(in, "rest");
  EXPECT_FALSE(ConsumeUint64(&in, &v));
  EXPECT_EQ(in, "rest");
  EXPECT_EQ(v, 9u);
}

TEST(KeysTest, JoinKeyAndKeyPrefix) {
  EXPECT_EQ(JoinKey({"c", "camp1"}), "c/camp1");
  EXPECT_EQ(JoinKey({"t"}), "t");
  EXPECT_EQ(JoinKey({}), "");
  EXPECT_EQ(KeyPrefix({"e", "ab"}), "e/ab/");
  // The prefix of campaign "ab" does not capture campaign "abc".
  EXPECT_FALSE(SequenceKey("e", "abc", 1).starts_with(KeyPrefix({"e", "ab"})));
  EXPECT_TRUE(SequenceKey("e", "ab", 1).starts_with(KeyPrefix({"e", "ab"})));
}

TEST(KeysTest, SequenceKeysSortBySequence) {
  EXPECT_EQ(SequenceKey("e", "c1", 258), "e/c1/\0\0\0\0\0\0\x01\x02"s);
  EXPECT_LT(SequenceKey("e", "c1", 255), SequenceKey("e", "c1", 256));
  EXPECT_LT(SequenceKey("e", "c1", 9), SequenceKey("e", "c1", 10));
}

TEST(KeysTest, IsValidKeyPart) {
  EXPECT_TRUE(IsValidKeyPart("camp-1"));
  EXPECT_FALSE(IsValidKeyPart(""));
  EXPECT_FALSE(IsValidKeyPart("a/b"));
}

TEST(KeysTest, PrefixSuccessor) {
  EXPECT_EQ(PrefixSuccessor("a"), std::optional<std::string>("b"));
  EXPECT_EQ(PrefixSuccessor("a/"), std::optional<std::string>("a0"));
  EXPECT_EQ(PrefixSuccessor("a\xff"), std::optional<std::string>("b"));
  EXPECT_EQ(PrefixSuccessor("a\xff\xff"), std::optional<std::string>("b"));
  EXPECT_EQ(PrefixSuccessor("\x7f"), std::optional<std::string>("\x80"));
  EXPECT_EQ(PrefixSuccessor("\xff\xff"), std::nullopt);
  EXPECT_EQ(PrefixSuccessor(""), std::nullopt);
}

}  // namespace
}  // namespace ftb::storage
