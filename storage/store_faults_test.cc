// The corruption matrix of docs/storage-faults.md, on a real RocksDB store:
// a closed store is damaged by editing its files (bit flip, truncation,
// zeroing, deletion of the write-ahead log; a flipped byte in an SST file and
// in the MANIFEST), then reopened. Every case must end in a refusal (kDataLoss
// naming the store and what to do, nothing on disk changed) or in a store
// that has lost none of the acknowledged records; a read-only directory and a
// directory made immutable while writing (chattr +i; skipped when that is not
// permitted) must give errors, never an abort. The read-only open used by
// `ftb report --state` must leave every byte of the store as it was.
//
// Each case prints one line of the matrix:
//   matrix: <case> | <outcome> | acknowledged lost: <n>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_state_store.h"
#include "storage/test_util.h"

namespace ftb::storage {
namespace {

namespace fs = std::filesystem;
using ::ftb::storage::testing::ScopedTempDir;
using ::ftb::storage::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int kRecords = 400;

std::string Key(int i) { return absl::StrFormat("rec/%06d", i); }
std::string Value(int i) { return absl::StrCat("value-", i, "-", std::string(80, 'a' + i % 26)); }

// Writes kRecords acknowledged records, one synced Write each; optionally
// flushes them to an SST file before closing.
void WriteRecords(const std::string& dir, bool flush) {
  auto store = RocksDbStateStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  for (int i = 0; i < kRecords; ++i) {
    WriteBatch b;
    b.Put(Key(i), Value(i));
    ASSERT_TRUE((*store)->Write(b).ok());
  }
  if (flush) {
    ASSERT_TRUE((*store)->Flush().ok());
  }
}

std::vector<fs::path> FilesWith(const std::string& dir, const std::string& what) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (what == "MANIFEST" ? name.rfind("MANIFEST-", 0) == 0 : e.path().extension() == what) {
      out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The largest file of a kind (the one holding the records).
fs::path Largest(const std::string& dir, const std::string& what) {
  fs::path best;
  uintmax_t size = 0;
  for (const fs::path& p : FilesWith(dir, what)) {
    if (fs::file_size(p) >= size) {
      size = fs::file_size(p);
      best = p;
    }
  }
  return best;
}

void FlipByte(const fs::path& p, uintmax_t offset) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x5a));
}

void ZeroFile(const fs::path& p) {
  const uintmax_t size = fs::file_size(p);
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << std::string(size, '\0');
}

std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    files[e.path().lexically_relative(dir).string()] = s.str();
  }
  return files;
}

bool Chattr(const std::string& flag, const std::string& dir) {
  std::string cmd = absl::StrCat("chattr -R ", flag, " '", dir, "' 2>/dev/null");
  return std::system(cmd.c_str()) == 0;
}

// Reopens `dir` and classifies the result; returns the matrix line.
std::string Outcome(const std::string& name, const std::string& dir) {
  auto store = RocksDbStateStore::Open(dir);
  std::string outcome;
  int lost = 0;
  if (!store.ok()) {
    EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << name << ": " << store.status();
    EXPECT_THAT(std::string(store.status().message()), HasSubstr(dir)) << name;
    EXPECT_THAT(std::string(store.status().message()), HasSubstr("docs/storage-faults.md"))
        << name;
    outcome = absl::StrCat("refuses to open: ", store.status().message());
  } else {
    absl::Status read_error;
    std::map<std::string, std::string> seen;
    absl::Status s = (*store)->Scan("rec/", {}, [&](std::string_view k, std::string_view v) {
      seen.emplace(k, v);
      return true;
    });
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << name << ": " << s;
      outcome = absl::StrCat("opens; reading the damaged records fails: ", s.message());
    } else {
      for (int i = 0; i < kRecords; ++i) {
        auto it = seen.find(Key(i));
        if (it == seen.end() || it->second != Value(i)) ++lost;
      }
      outcome = lost == 0 ? "opens with every record"
                          : absl::StrCat("opens; ", lost, " acknowledged records missing");
    }
  }
  EXPECT_EQ(lost, 0) << name;
  std::string line = absl::StrCat("matrix: ", name, " | ", outcome, " | acknowledged lost: ", lost);
  std::printf("%s\n", line.c_str());
  return line;
}

struct DamageCase {
  std::string name;
  bool flush;  // records in an SST file (else only in the WAL)
  std::function<void(const std::string& dir)> damage;
};

class StoreFaultsTest : public ::testing::TestWithParam<DamageCase> {};

TEST_P(StoreFaultsTest, RefusesOrLosesNothingAcknowledged) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WriteRecords(dir, GetParam().flush);
  GetParam().damage(dir);
  const auto before = Snapshot(dir);
  const std::string line = Outcome(GetParam().name, dir);
  // A refusal leaves every byte where it was (the loss stays recoverable
  // from a backup or by hand). RocksDB's own info LOG is the exception.
  auto after = Snapshot(dir);
  auto strip_logs = [](std::map<std::string, std::string>& m) {
    std::erase_if(m, [](const auto& kv) { return kv.first.rfind("LOG", 0) == 0; });
  };
  if (line.find("refuses to open") != std::string::npos) {
    auto b = before;
    strip_logs(b);
    strip_logs(after);
    EXPECT_EQ(b.size(), after.size());
    for (const auto& [name, bytes] : b) {
      EXPECT_TRUE(after.count(name) && after.at(name) == bytes) << name << " changed";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, StoreFaultsTest,
    ::testing::Values(
        DamageCase{"WAL bit flip (middle)", false,
                   [](const std::string& d) {
                     fs::path wal = Largest(d, ".log");
                     FlipByte(wal, fs::file_size(wal) / 2);
                   }},
        DamageCase{"WAL truncated to half", false,
                   [](const std::string& d) {
                     fs::path wal = Largest(d, ".log");
                     fs::resize_file(wal, fs::file_size(wal) / 2);
                   }},
        DamageCase{"WAL truncated to 0 bytes", false,
                   [](const std::string& d) { fs::resize_file(Largest(d, ".log"), 0); }},
        DamageCase{"WAL zeroed", false,
                   [](const std::string& d) { ZeroFile(Largest(d, ".log")); }},
        DamageCase{"WAL deleted", false,
                   [](const std::string& d) {
                     for (const fs::path& p : FilesWith(d, ".log")) fs::remove(p);
                   }},
        DamageCase{"SST byte flip (data block)", true,
                   [](const std::string& d) {
                     fs::path sst = Largest(d, ".sst");
                     FlipByte(sst, fs::file_size(sst) / 4);
                   }},
        DamageCase{"SST deleted", true,
                   [](const std::string& d) { fs::remove(Largest(d, ".sst")); }},
        DamageCase{"MANIFEST byte flip", true,
                   [](const std::string& d) {
                     fs::path m = Largest(d, "MANIFEST");
                     FlipByte(m, fs::file_size(m) / 2);
                   }},
        DamageCase{"MANIFEST truncated to half", true,
                   [](const std::string& d) {
                     fs::path m = Largest(d, "MANIFEST");
                     fs::resize_file(m, fs::file_size(m) / 2);
                   }},
        DamageCase{"acknowledged-sequence file torn", false,
                   [](const std::string& d) {
                     std::ofstream f(fs::path(d) / RocksDbStateStore::kAckedSequenceFile,
                                     std::ios::binary | std::ios::trunc);
                     f << "0000000123 00000001";
                   }}),
    [](const ::testing::TestParamInfo<DamageCase>& info) {
      std::string n;
      for (char c : info.param.name) n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

// What a power loss can leave after synced writes: a torn, never
// acknowledged record at the very end of the log. It must not stop a start.
TEST(StoreFaultsTest, TornUnacknowledgedTailIsDroppedAndTheStoreOpens) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WriteRecords(dir, false);
  {
    std::ofstream f(Largest(dir, ".log"), std::ios::binary | std::ios::app);
    f << std::string("\x12\x34\x56", 3);  // a partial record header
  }
  std::string line = Outcome("WAL torn tail (unacknowledged)", dir);
  EXPECT_THAT(line, HasSubstr("opens with every record"));
}

// Deleting the witness is the documented way to accept what the log
// recovers; the store then opens and records a new witness.
TEST(StoreFaultsTest, DeletingTheWitnessAcceptsTheRecoveredLog) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WriteRecords(dir, false);
  fs::resize_file(Largest(dir, ".log"), 0);
  EXPECT_THAT(RocksDbStateStore::Open(dir), StatusIs(absl::StatusCode::kDataLoss));
  fs::remove(fs::path(dir) / RocksDbStateStore::kAckedSequenceFile);
  auto store = RocksDbStateStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(fs::exists(fs::path(dir) / RocksDbStateStore::kAckedSequenceFile));
}

TEST(StoreFaultsTest, ImmutableDirectoryMidRunFailsWritesWithoutAbortAndLosesNothing) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  int acked = 0;
  {
    auto store = RocksDbStateStore::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    for (; acked < kRecords / 2; ++acked) {
      WriteBatch b;
      b.Put(Key(acked), Value(acked));
      ASSERT_TRUE((*store)->Write(b).ok());
    }
    if (!Chattr("+i", dir)) GTEST_SKIP() << "chattr +i not permitted here (needs root on ext4/xfs)";
    int failed = 0;
    std::string first_error;
    for (int i = acked; i < kRecords; ++i) {
      WriteBatch b;
      b.Put(Key(i), Value(i));
      absl::Status s = (*store)->Write(b);
      if (s.ok()) {
        ++acked;  // a write that still got through is acknowledged too
        continue;
      }
      if (failed++ == 0) first_error = std::string(s.message());
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
      EXPECT_THAT(std::string(s.message()), HasSubstr(dir));
    }
    EXPECT_GT(failed, 0);
    std::printf("matrix: immutable directory mid-run | %d writes fail, first with: %s | ",
                failed, first_error.c_str());
  }  // closes the store on an immutable directory: must not abort
  ASSERT_TRUE(Chattr("-i", dir));
  auto store = RocksDbStateStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  int lost = 0;
  for (int i = 0; i < acked; ++i) {
    auto v = (*store)->Get(Key(i));
    if (!v.ok() || *v != Value(i)) ++lost;
  }
  EXPECT_EQ(lost, 0);
  std::printf("acknowledged lost: %d (of %d)\n", lost, acked);
}

TEST(StoreFaultsTest, ReadWriteOpenOfAnImmutableDirectoryIsAnError) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WriteRecords(dir, false);
  if (!Chattr("+i", dir)) GTEST_SKIP() << "chattr +i not permitted here (needs root on ext4/xfs)";
  auto store = RocksDbStateStore::Open(dir);
  Chattr("-i", dir);
  ASSERT_THAT(store, StatusIs(absl::StatusCode::kUnavailable, HasSubstr(dir)));
  std::printf("matrix: read-only (immutable) directory at start | refuses to open: %s | "
              "acknowledged lost: 0\n",
              std::string(store.status().message()).c_str());
}

// --- read-only open (ftb report --state) --------------------------------------

TEST(StoreReadOnlyTest, ReadsEverythingAndChangesNoByte) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WriteRecords(dir, false);  // records only in the WAL: a writer would replay and delete it
  const auto before = Snapshot(dir);
  {
    auto store = RocksDbStateStore::OpenReadOnly(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < kRecords; ++i) EXPECT_EQ(*(*store)->Get(Key(i)), Value(i));
    WriteBatch b;
    b.Put("x", "y");
    EXPECT_THAT((*store)->Write(b), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT((*store)->Flush(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  EXPECT_EQ(Snapshot(dir), before);
}

TEST(StoreReadOnlyTest, WorksOnAnImmutableDirectory) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WriteRecords(dir, false);
  const auto before = Snapshot(dir);
  if (!Chattr("+i", dir)) GTEST_SKIP() << "chattr +i not permitted here (needs root on ext4/xfs)";
  auto store = RocksDbStateStore::OpenReadOnly(dir);
  absl::Status status = store.status();
  int found = 0;
  if (store.ok()) {
    for (int i = 0; i < kRecords; ++i) found += (*store)->Get(Key(i)).ok();
    store->reset();
  }
  Chattr("-i", dir);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(found, kRecords);
  EXPECT_EQ(Snapshot(dir), before);
}

TEST(StoreReadOnlyTest, RefusesADamagedLogToo) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WriteRecords(dir, false);
  ZeroFile(Largest(dir, ".log"));
  EXPECT_THAT(RocksDbStateStore::OpenReadOnly(dir), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(StoreReadOnlyTest, MissingStoreIsNotFoundAndCreatesNothing) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/none";
  EXPECT_THAT(RocksDbStateStore::OpenReadOnly(dir), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(fs::exists(dir));
}

#ifdef FTB_STORAGE_CRASH_WRITER
TEST(StoreReadOnlyTest, StoreHeldByAnotherProcessIsUnavailable) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WriteRecords(dir, false);
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    execl(FTB_STORAGE_CRASH_WRITER, FTB_STORAGE_CRASH_WRITER, dir.c_str(), "held", "1",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  char c;
  ASSERT_EQ(read(out[0], &c, 1), 1);  // the writer has the store open
  auto store = RocksDbStateStore::OpenReadOnly(dir);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  close(out[0]);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kUnavailable));
  if (!store.ok()) {
    EXPECT_THAT(std::string(store.status().message()), HasSubstr("running"));
  }
}
#endif

}  // namespace
}  // namespace ftb::storage
