// Test helpers for storage tests: a status matcher and a self-deleting
// temporary directory. Test-only; not part of ftb_storage.
#ifndef FTB_STORAGE_TEST_UTIL_H_
#define FTB_STORAGE_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <ostream>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::storage::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

// Matches an absl::Status or absl::StatusOr<T> whose code is `code` and whose
// message matches `message` (any message by default).
MATCHER_P2(StatusIsImpl, code, message,
           "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = GetStatus(arg);
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

// A fresh directory under testing::TempDir(), removed with its contents on
// destruction.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string tmpl = ::testing::TempDir() + "ftb_storage_XXXXXX";
    char* made = mkdtemp(tmpl.data());
    if (made == nullptr) ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    path_ = tmpl;
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace ftb::storage::testing

#endif  // FTB_STORAGE_TEST_UTIL_H_
