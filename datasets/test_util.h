// Test-only helpers shared by the datasets tests: a scratch directory for
// fixture files and the location of the published FineTuneBench data.
#ifndef FTB_DATASETS_TEST_UTIL_H_
#define FTB_DATASETS_TEST_UTIL_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace ftb::datasets::testing {

// A fresh directory named after the running test, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("ftb_datasets_") + info->test_suite_name() + "_" + info->name() +
                       "_" + std::to_string(::getpid());
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = (std::filesystem::path(::testing::TempDir()) / name).string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes `content` (bytes as is) to path()/relative, creating directories.
  // Returns the full path.
  std::string Write(const std::string& relative, std::string_view content) const {
    const std::filesystem::path full = std::filesystem::path(path_) / relative;
    std::filesystem::create_directories(full.parent_path());
    std::ofstream out(full, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    EXPECT_TRUE(out.good()) << full;
    return full.string();
  }

 private:
  std::string path_;
};

// Where the published FineTuneBench data should be: $FTB_SOURCE_DIR (ctest
// sets it to the repository root; else the current directory) +
// "/../shared/finetunebench-data".
inline std::string SharedFineTuneBenchPath() {
  const char* source = std::getenv("FTB_SOURCE_DIR");
  const std::string root = (source != nullptr && *source != '\0') ? source : ".";
  return root + "/../shared/finetunebench-data";
}

// SharedFineTuneBenchPath(), or "" when it holds no datasets/ directory.
inline std::string SharedFineTuneBenchDir() {
  const std::string dir = SharedFineTuneBenchPath();
  std::error_code ec;
  return std::filesystem::is_directory(dir + "/datasets", ec) ? dir : "";
}

// Formats a status as "<code>: <message>" so one EXPECT_EQ checks both.
inline std::string CodeAndMessage(const absl::Status& status) {
  return std::string(absl::StatusCodeToString(status.code())) + ": " +
         std::string(status.message());
}

}  // namespace ftb::datasets::testing

#endif  // FTB_DATASETS_TEST_UTIL_H_
