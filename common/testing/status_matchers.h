// gMock matchers for absl::Status and absl::StatusOr<T>, shared by every C++
// test in the tree (test-only: include from *_test.cc files, never from a
// library). Header-only; the test binary links GTest::gmock.
//
//   EXPECT_THAT(store->Get(key), StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(spec, StatusIs(absl::StatusCode::kInvalidArgument,
//                              HasSubstr("grid.epochs")));
//   EXPECT_THAT(plan, IsOkAndHolds(Property(&Plan::size, 4)));
#ifndef FTB_COMMON_TESTING_STATUS_MATCHERS_H_
#define FTB_COMMON_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace ftb::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

// Matches an absl::Status or absl::StatusOr<T> whose code is `code` and whose
// message matches `message` (any message by default). On a mismatch the
// failure prints the whole status, message included.
MATCHER_P2(StatusIsImpl, code, message,
           "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = ::ftb::testing::GetStatus(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message, std::string(status.message()),
                                       result_listener);
}
inline auto StatusIs(absl::StatusCode code) {
  return StatusIsImpl(code, ::testing::_);
}
template <typename M>
auto StatusIs(absl::StatusCode code, M message) {
  return StatusIsImpl(code, message);
}
inline auto IsOk() { return StatusIs(absl::StatusCode::kOk); }

// Matches an OK absl::StatusOr<T> whose value matches `value`.
MATCHER_P(IsOkAndHolds, value, "is OK and holds a value that matches") {
  if (!arg.ok()) {
    *result_listener << "whose status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value, *arg, result_listener);
}

}  // namespace ftb::testing

#endif  // FTB_COMMON_TESTING_STATUS_MATCHERS_H_
