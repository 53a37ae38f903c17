#include "common/rng.h"

#include "gtest/gtest.h"

namespace ftb {
namespace {

TEST(RngTest, SameSeedSameSequence) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

// Pinned output: the generators' byte-identical guarantee rests on this.
TEST(RngTest, SplitMix64ReferenceValues) {
  Rng r(0);
  EXPECT_EQ(r.Next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(r.Next(), 0x6e789e6aa1b965f4ULL);
}

TEST(RngTest, UniformStaysInRangeAndCoversIt) {
  Rng r(7);
  int seen[5] = {};
  for (int i = 0; i < 1000; ++i) {
    int64_t v = r.Uniform(3, 7);
    ASSERT_GE(v, 3);
    ASSERT_LE(v, 7);
    ++seen[v - 3];
  }
  for (int s : seen) EXPECT_GT(s, 100);
}

}  // namespace
}  // namespace ftb
