#include "workers/backoff.h"

#include "gtest/gtest.h"

namespace ftb::workers {
namespace {

TEST(BackoffTest, DoublesWithJitterUpToTheCap) {
  Backoff backoff(absl::Milliseconds(10), absl::Milliseconds(80), 42);
  const int64_t expected_base_ms[] = {10, 20, 40, 80, 80, 80};
  for (int64_t base : expected_base_ms) {
    absl::Duration d = backoff.Next();
    EXPECT_GE(d, absl::Milliseconds(base) / 2);
    EXPECT_LE(d, absl::Milliseconds(base));
  }
  EXPECT_EQ(backoff.failures(), 6);
  backoff.Reset();
  EXPECT_EQ(backoff.failures(), 0);
  EXPECT_LE(backoff.Next(), absl::Milliseconds(10));
}

TEST(BackoffTest, JitterSpreadsDelays) {
  Backoff a(absl::Seconds(1), absl::Seconds(1), 1);
  Backoff b(absl::Seconds(1), absl::Seconds(1), 2);
  EXPECT_NE(a.Next(), b.Next());
}

}  // namespace
}  // namespace ftb::workers
