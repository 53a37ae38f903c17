// RocksDbStateStore-specific behaviour: persistence across reopen, the
// schema version record, group commit and crash durability. The StateStore
// contract itself is tested in state_store_contract_test.cc.

#include "storage/rocksdb_state_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/state_store.h"
#include "storage/test_util.h"

#ifndef FTB_STORAGE_CRASH_WRITER
#error "FTB_STORAGE_CRASH_WRITER must name the storage_crash_writer binary"
#endif

namespace ftb::storage {
namespace {

using ::ftb::storage::testing::IsOk;
using ::ftb::storage::testing::IsOkAndHolds;
using ::ftb::storage::testing::ScopedTempDir;
using ::ftb::storage::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

std::unique_ptr<RocksDbStateStore> OpenOrDie(
    const std::string& dir, const RocksDbStateStoreOptions& options = {}) {
  auto store = RocksDbStateStore::Open(dir, options);
  EXPECT_THAT(store, IsOk());
  return store.ok() ? *std::move(store) : nullptr;
}

// Opens `dir` with raw RocksDB, with the default and the given column
// families, and applies `fn` to the database and handles.
template <typename Fn>
void WithRawDb(const std::string& dir, const std::vector<std::string>& extra,
               Fn fn) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()}};
  for (const std::string& name : extra) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(options), dir,
                                        families, &handles, &db);
  ASSERT_TRUE(s.ok()) << s.ToString();
  fn(db, handles);
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }
  ASSERT_TRUE(db->Close().ok());
  delete db;
}

void SetRawSchemaVersion(const std::string& dir, const std::string& value) {
  WithRawDb(dir, {RocksDbStateStore::kMetaColumnFamily},
            [&](rocksdb::DB* db,
                const std::vector<rocksdb::ColumnFamilyHandle*>& cf) {
              rocksdb::WriteOptions sync;
              sync.sync = true;
              ASSERT_TRUE(
                  db->Put(sync, cf[1], RocksDbStateStore::kSchemaVersionKey,
                          value)
                      .ok());
            });
}

TEST(RocksDbStateStoreTest, ReopenReadsBackEverything) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  std::map<std::string, std::string> expected;
  {
    auto store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 300; ++i) {
      const std::string key = absl::StrCat("k/", i);
      if (i % 10 == 0) {
        WriteBatch batch;
        batch.Put(key, "batched");
        batch.Put(key + "/x", std::string("\0x", 2));
        batch.Delete(absl::StrCat("k/", i - 1));
        ASSERT_THAT(store->Write(batch), IsOk());
        expected[key] = "batched";
        expected[key + "/x"] = std::string("\0x", 2);
        expected.erase(absl::StrCat("k/", i - 1));
      } else {
        ASSERT_THAT(store->Put(key, absl::StrCat("v", i)), IsOk());
        expected[key] = absl::StrCat("v", i);
      }
    }
  }
  const std::vector<KeyValue> want(expected.begin(), expected.end());
  {
    auto store = OpenOrDie(dir);  // Replays the WAL.
    ASSERT_NE(store, nullptr);
    EXPECT_THAT(store->ScanAll(""), IsOkAndHolds(want));
    ASSERT_THAT(store->Flush(), IsOk());
  }
  auto store = OpenOrDie(dir);  // Reads SST files.
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->ScanAll(""), IsOkAndHolds(want));
  EXPECT_THAT(store->Get("k/5"), IsOkAndHolds("v5"));
  EXPECT_THAT(store->Get("k/9"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(RocksDbStateStoreTest, OpenCreatesMissingParentDirectories) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/a/b/c";
  auto store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->dir(), dir);
  EXPECT_TRUE(std::filesystem::exists(dir + "/CURRENT"));
}

TEST(RocksDbStateStoreTest, NewStoreRecordsCurrentSchemaVersion) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  ASSERT_NE(OpenOrDie(dir), nullptr);
  WithRawDb(dir, {RocksDbStateStore::kMetaColumnFamily},
            [](rocksdb::DB* db,
               const std::vector<rocksdb::ColumnFamilyHandle*>& cf) {
              std::string value;
              ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cf[1],
                                  RocksDbStateStore::kSchemaVersionKey, &value)
                              .ok());
              EXPECT_EQ(value, absl::StrCat(kSchemaVersion));
              // The user key space (default family) holds nothing.
              std::unique_ptr<rocksdb::Iterator> it(
                  db->NewIterator(rocksdb::ReadOptions(), cf[0]));
              it->SeekToFirst();
              EXPECT_FALSE(it->Valid());
            });
}

TEST(RocksDbStateStoreTest, NewerSchemaVersionIsFailedPrecondition) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  {
    auto store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    ASSERT_THAT(store->Put("k", "v"), IsOk());
  }
  SetRawSchemaVersion(dir, absl::StrCat(kSchemaVersion + 1));
  EXPECT_THAT(
      RocksDbStateStore::Open(dir),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               AllOf(HasSubstr(dir),
                     HasSubstr(absl::StrCat("schema version ",
                                            kSchemaVersion + 1)),
                     HasSubstr(absl::StrCat("this binary's schema version ",
                                            kSchemaVersion)))));
  // Refusing to open changed nothing: the current version opens it again.
  SetRawSchemaVersion(dir, absl::StrCat(kSchemaVersion));
  auto store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Get("k"), IsOkAndHolds("v"));
}

TEST(RocksDbStateStoreTest, UnreadableSchemaVersionIsDataLoss) {
  for (const std::string bad : {"abc", "", "0", "-3", "1x"}) {
    SCOPED_TRACE(bad);
    ScopedTempDir tmp;
    const std::string dir = tmp.path() + "/db";
    ASSERT_NE(OpenOrDie(dir), nullptr);
    SetRawSchemaVersion(dir, bad);
    EXPECT_THAT(RocksDbStateStore::Open(dir),
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr(dir),
                               HasSubstr("unreadable schema version"))));
  }
}

TEST(RocksDbStateStoreTest, DataWithoutSchemaVersionIsDataLoss) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WithRawDb(dir, {},
            [](rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>&) {
              ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());
            });
  EXPECT_THAT(RocksDbStateStore::Open(dir),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(dir), HasSubstr("no schema version"))));
}

TEST(RocksDbStateStoreTest, UnknownColumnFamilyIsFailedPrecondition) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  WithRawDb(dir, {"someone_elses"},
            [](rocksdb::DB*, const std::vector<rocksdb::ColumnFamilyHandle*>&) {});
  EXPECT_THAT(RocksDbStateStore::Open(dir),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(dir), HasSubstr("someone_elses"))));
}

TEST(RocksDbStateStoreTest, SecondOpenWhileOpenIsUnavailable) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  auto first = OpenOrDie(dir);
  ASSERT_NE(first, nullptr);
  EXPECT_THAT(RocksDbStateStore::Open(dir),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(dir)));
}

TEST(RocksDbStateStoreTest, ApproximateSizeSeesFlushedData) {
  ScopedTempDir tmp;
  auto store = OpenOrDie(tmp.path() + "/db");
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  for (int i = 0; i < 2000; ++i) {
    batch.Put(absl::StrCat("z/", i), absl::StrCat(i, std::string(200, 'x')));
  }
  ASSERT_THAT(store->Write(batch), IsOk());
  ASSERT_THAT(store->Flush(), IsOk());
  auto size = store->ApproximateSize("z/");
  ASSERT_THAT(size, IsOk());
  EXPECT_GT(*size, 0u);
  EXPECT_THAT(store->ApproximateSize("zz"), IsOkAndHolds(0u));
}

TEST(RocksDbStateStoreTest, EmptyWriteDoesNoIo) {
  ScopedTempDir tmp;
  auto store = OpenOrDie(tmp.path() + "/db");
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->Write(WriteBatch()), IsOk());
  EXPECT_EQ(store->write_stats().writes, 0u);
  EXPECT_EQ(store->write_stats().commits, 0u);
}

// The first leader blocks in its commit until ten more writers have queued;
// the next leader must take all ten in one synced write.
TEST(RocksDbStateStoreTest, GroupCommitMergesQueuedWritersIntoOneWrite) {
  ScopedTempDir tmp;
  auto store = OpenOrDie(tmp.path() + "/db");
  ASSERT_NE(store, nullptr);
  constexpr int kFollowers = 10;
  absl::Notification first_in_commit;
  absl::Notification release_first;
  std::atomic<int> hook_calls{0};
  store->SetBeforeCommitHookForTesting([&] {
    if (hook_calls.fetch_add(1) == 0) {
      first_in_commit.Notify();
      release_first.WaitForNotification();
    }
  });
  std::thread leader([&] { EXPECT_THAT(store->Put("lead", "v"), IsOk()); });
  first_in_commit.WaitForNotification();
  std::vector<std::thread> followers;
  for (int i = 0; i < kFollowers; ++i) {
    followers.emplace_back([&, i] {
      WriteBatch batch;
      batch.Put(absl::StrCat("f/", i), "v");
      batch.Delete(absl::StrCat("f/", i, "/gone"));
      EXPECT_THAT(store->Write(batch), IsOk());
    });
  }
  while (store->QueuedWritersForTesting() < kFollowers + 1) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  release_first.Notify();
  leader.join();
  for (std::thread& t : followers) t.join();

  EXPECT_EQ(hook_calls.load(), 2);
  EXPECT_EQ(store->write_stats().writes, uint64_t{kFollowers + 1});
  EXPECT_EQ(store->write_stats().commits, 2u);
  EXPECT_EQ(store->QueuedWritersForTesting(), 0u);
  EXPECT_THAT(store->ScanAll("f/"), IsOk());
  EXPECT_EQ(store->ScanAll("f/")->size(), size_t{kFollowers});
}

TEST(RocksDbStateStoreTest, WithoutGroupCommitEveryWriteCommitsAlone) {
  ScopedTempDir tmp;
  RocksDbStateStoreOptions options;
  options.group_commit = false;
  auto store = OpenOrDie(tmp.path() + "/db", options);
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_THAT(store->Put(absl::StrCat("k", i), "v"), IsOk());
  }
  EXPECT_EQ(store->write_stats().writes, 10u);
  EXPECT_EQ(store->write_stats().commits, 10u);
  EXPECT_THAT(store->ScanAll("k"), IsOk());
  EXPECT_EQ(store->ScanAll("k")->size(), 10u);
}

// What one child run acknowledged, parsed from its stdout.
struct Acknowledged {
  std::vector<std::string> keys;  // Every key of every acknowledged write.
  int lines = 0;
};

// Runs storage_crash_writer on `dir` and SIGKILLs it once it has reported
// `kill_after` acknowledged writes. Returns everything it reported before it
// died (including lines written between our kill() and its death).
Acknowledged RunAndKillWriter(const std::string& dir, const std::string& tag,
                              int kill_after) {
  Acknowledged acked;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed";
    return acked;
  }
  const std::string binary = FTB_STORAGE_CRASH_WRITER;
  std::vector<std::string> args = {binary, dir, tag, "4"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid == 0) {  // Child: only async-signal-safe calls until exec.
    if (dup2(fds[1], STDOUT_FILENO) < 0) _exit(126);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    ADD_FAILURE() << "fork failed";
    return acked;
  }

  std::string pending;
  char buf[4096];
  bool killed = false;
  while (true) {
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is gone.
    pending.append(buf, static_cast<size_t>(n));
    size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, pos);
      pending.erase(0, pos + 1);
      ++acked.lines;
      if (line.starts_with("P ")) {
        acked.keys.push_back(line.substr(2));
      } else if (line.starts_with("B ")) {
        for (const char* part : {"/a", "/b", "/c"}) {
          acked.keys.push_back(line.substr(2) + part);
        }
      } else {
        ADD_FAILURE() << "unexpected line from child: " << line;
      }
    }
    if (!killed && acked.lines >= kill_after) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  close(fds[0]);
  EXPECT_TRUE(pending.empty()) << "torn line: " << pending;  // write(2) < PIPE_BUF.
  int wstatus = 0;
  EXPECT_EQ(waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
      << "child did not die by SIGKILL; wait status " << wstatus;
  return acked;
}

// A child writes (puts and 3-key batches, 4 threads, group commit) and
// reports each acknowledged write; we SIGKILL it at a random point. After
// reopening, every acknowledged key must be there, and every batch must be
// entirely present or entirely absent. Several rounds share one directory,
// so earlier rounds' writes must also survive later crashes and recoveries.
TEST(RocksDbStateStoreCrashTest, CrashKeepsEveryAcknowledgedWrite) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path() + "/db";
  const unsigned seed = std::random_device()();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> kill_after(1, 1500);
  std::vector<std::string> all_acked;
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string tag = absl::StrCat("r", round);
    Acknowledged acked = RunAndKillWriter(dir, tag, kill_after(rng));
    ASSERT_GT(acked.lines, 0);
    all_acked.insert(all_acked.end(), acked.keys.begin(), acked.keys.end());

    auto store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    for (const std::string& key : all_acked) {
      ASSERT_THAT(store->Get(key), IsOkAndHolds("v:" + key)) << key;
    }
    // Batches are all-or-nothing, acknowledged or not.
    std::map<std::string, int> batch_parts;
    ASSERT_THAT(store->Scan(tag + "/", {},
                            [&](std::string_view k, std::string_view v) {
                              EXPECT_EQ(v, absl::StrCat("v:", std::string(k)));
                              if (k.ends_with("/a") || k.ends_with("/b") ||
                                  k.ends_with("/c")) {
                                ++batch_parts[std::string(
                                    k.substr(0, k.size() - 2))];
                              }
                              return true;
                            }),
                IsOk());
    for (const auto& [batch, parts] : batch_parts) {
      EXPECT_EQ(parts, 3) << "torn batch " << batch;
    }
  }
}

}  // namespace
}  // namespace ftb::storage
