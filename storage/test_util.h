// Test helpers for storage tests: the shared status matchers
// (common/testing/status_matchers.h) and a self-deleting temporary directory.
// Test-only; not part of ftb_storage.
#ifndef FTB_STORAGE_TEST_UTIL_H_
#define FTB_STORAGE_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <ostream>
#include <string>
#include <system_error>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ftb::storage::testing {

// The status matchers are the tree's shared ones (common/testing/).
using ::ftb::testing::IsOk;
using ::ftb::testing::IsOkAndHolds;
using ::ftb::testing::StatusIs;

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
