#include "coordinator/rate_limiter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::coordinator {
namespace {

using ::testing::HasSubstr;

TEST(RateLimiterTest, AdmitsABurstThenRefusesUntilRefilled) {
  FakeClock clock;
  RateLimiter limiter(&clock, /*per_minute=*/6, /*burst=*/3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Acquire("alice").ok()) << i;
  absl::Status refused = limiter.Acquire("alice", "submissions");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("too many submissions"));
  EXPECT_THAT(refused.message(), HasSubstr("6 per minute"));
  EXPECT_THAT(refused.message(), HasSubstr("retry in 10.0 s"));
  // 6 a minute = one every 10 s.
  clock.AdvanceMs(9'999);
  EXPECT_EQ(limiter.Acquire("alice").code(), absl::StatusCode::kResourceExhausted);
  clock.AdvanceMs(1);
  EXPECT_TRUE(limiter.Acquire("alice").ok());
  EXPECT_EQ(limiter.Acquire("alice").code(), absl::StatusCode::kResourceExhausted);
}

TEST(RateLimiterTest, RefillIsCappedAtTheBurst) {
  FakeClock clock;
  RateLimiter limiter(&clock, 60, 2);
  EXPECT_TRUE(limiter.Acquire("k").ok());
  clock.AdvanceMs(3'600'000);  // an hour idle earns no more than `burst`
  EXPECT_TRUE(limiter.Acquire("k").ok());
  EXPECT_TRUE(limiter.Acquire("k").ok());
  EXPECT_EQ(limiter.Acquire("k").code(), absl::StatusCode::kResourceExhausted);
}

TEST(RateLimiterTest, KeysHaveSeparateBuckets) {
  FakeClock clock;
  RateLimiter limiter(&clock, 1, 1);
  EXPECT_TRUE(limiter.Acquire("a").ok());
  EXPECT_EQ(limiter.Acquire("a").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(limiter.Acquire("b").ok());
  EXPECT_EQ(limiter.Acquire("b").code(), absl::StatusCode::kResourceExhausted);
}

TEST(RateLimiterTest, ClockGoingBackwardsEarnsNothing) {
  FakeClock clock(1'000'000);
  RateLimiter limiter(&clock, 60, 1);
  EXPECT_TRUE(limiter.Acquire("k").ok());
  clock.SetMs(0);
  EXPECT_EQ(limiter.Acquire("k").code(), absl::StatusCode::kResourceExhausted);
  clock.SetMs(1'000'000 + 999);
  EXPECT_EQ(limiter.Acquire("k").code(), absl::StatusCode::kResourceExhausted);
  clock.SetMs(1'000'000 + 1'000);
  EXPECT_TRUE(limiter.Acquire("k").ok());
}

TEST(RateLimiterTest, MemoryIsBoundedAndFullBucketsGoFirst) {
  FakeClock clock;
  RateLimiter limiter(&clock, 60, 1, /*max_keys=*/3);
  EXPECT_TRUE(limiter.Acquire("a").ok());
  clock.AdvanceMs(10);
  EXPECT_TRUE(limiter.Acquire("b").ok());
  clock.AdvanceMs(10);
  EXPECT_TRUE(limiter.Acquire("c").ok());
  EXPECT_EQ(limiter.keys(), 3u);
  // All three are empty: a fourth key evicts the least recently used ("a").
  EXPECT_TRUE(limiter.Acquire("d").ok());
  EXPECT_EQ(limiter.keys(), 3u);
  EXPECT_EQ(limiter.Acquire("b").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(limiter.Acquire("c").code(), absl::StatusCode::kResourceExhausted);
  // After a second every bucket is full again; a new key drops them all.
  clock.AdvanceMs(1'000);
  EXPECT_TRUE(limiter.Acquire("e").ok());
  EXPECT_EQ(limiter.keys(), 1u);
}

}  // namespace
}  // namespace ftb::coordinator
