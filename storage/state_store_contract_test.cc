// The StateStore contract (state_store.h), run against every implementation.
// A new implementation adds one entry to kFactories below.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/memory_state_store.h"
#include "storage/rocksdb_state_store.h"
#include "storage/state_store.h"
#include "storage/test_util.h"

namespace ftb::storage {
namespace {

using ::ftb::storage::testing::IsOk;
using ::ftb::storage::testing::IsOkAndHolds;
using ::ftb::storage::testing::ScopedTempDir;
using ::ftb::storage::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

struct StoreFactory {
  std::string name;
  // Makes an empty store; `dir` is a fresh directory it may use.
  std::function<std::unique_ptr<StateStore>(const std::string& dir)> make;
};

const StoreFactory kFactories[] = {
    {"Memory",
     [](const std::string&) -> std::unique_ptr<StateStore> {
       return std::make_unique<MemoryStateStore>();
     }},
    {"RocksDb",
     [](const std::string& dir) -> std::unique_ptr<StateStore> {
       auto store = RocksDbStateStore::Open(dir + "/db");
       EXPECT_THAT(store, IsOk());
       if (!store.ok()) return nullptr;
       return *std::move(store);
     }},
};

class StateStoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make(dir_.path());
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override { store_.reset(); }

  // Keys of ScanAll(prefix, options), in the order visited.
  std::vector<std::string> Keys(std::string_view prefix,
                                const ScanOptions& options = {}) {
    std::vector<std::string> keys;
    EXPECT_THAT(store_->Scan(prefix, options,
                             [&](std::string_view k, std::string_view) {
                               keys.emplace_back(k);
                               return true;
                             }),
                IsOk());
    return keys;
  }

  ScopedTempDir dir_;
  std::unique_ptr<StateStore> store_;
};

TEST_P(StateStoreContractTest, GetMissingKeyIsNotFound) {
  EXPECT_THAT(store_->Get("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StateStoreContractTest, PutThenGetReturnsValue) {
  ASSERT_THAT(store_->Put("k", "v"), IsOk());
  EXPECT_EQ(store_->Get("k").value(), "v");
}

TEST_P(StateStoreContractTest, PutOverwritesValue) {
  ASSERT_THAT(store_->Put("k", "v1"), IsOk());
  ASSERT_THAT(store_->Put("k", "v2"), IsOk());
  EXPECT_EQ(store_->Get("k").value(), "v2");
  EXPECT_THAT(store_->ScanAll(""),
              IsOkAndHolds(ElementsAre(Pair("k", "v2"))));
}

TEST_P(StateStoreContractTest, DeleteRemovesKey) {
  ASSERT_THAT(store_->Put("k", "v"), IsOk());
  ASSERT_THAT(store_->Put("l", "w"), IsOk());
  ASSERT_THAT(store_->Delete("k"), IsOk());
  EXPECT_THAT(store_->Get("k"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(store_->Get("l").value(), "w");
}

TEST_P(StateStoreContractTest, DeleteMissingKeyIsOk) {
  EXPECT_THAT(store_->Delete("never-written"), IsOk());
  EXPECT_THAT(store_->ScanAll("").value(), IsEmpty());
}

TEST_P(StateStoreContractTest, BinaryKeysAndValuesRoundTrip) {
  using std::string_literals::operator""s;
  const std::vector<std::pair<std::string, std::string>> entries = {
      {""s, "empty key"s},
      {"\0"s, "\0"s},
      {"\0\0"s, ""s},
      {"a\0b"s, "x\0y\0z"s},
      {"\xff\0\xff"s, std::string(1 << 20, '\0') + "\xff"s},
  };
  for (const auto& [k, v] : entries) ASSERT_THAT(store_->Put(k, v), IsOk());
  for (const auto& [k, v] : entries) {
    auto got = store_->Get(k);
    ASSERT_THAT(got, IsOk());
    EXPECT_EQ(*got, v) << absl::CEscape(k);
  }
  // Already in unsigned bytewise order.
  EXPECT_EQ(store_->ScanAll("").value(), entries);
  EXPECT_THAT(store_->ScanAll("\0"s).value(),
              ElementsAre(Pair("\0"s, "\0"s), Pair("\0\0"s, ""s)));
}

TEST_P(StateStoreContractTest, ScanVisitsOnlyPrefixInKeyOrder) {
  for (const char* k :
       {"b/1", "a/2", "a", "ab", "a\xff", "`z", "b", "a/10", "\x80"}) {
    ASSERT_THAT(store_->Put(k, absl::StrCat("v:", k)), IsOk());
  }
  EXPECT_THAT(Keys("a"), ElementsAre("a", "a/10", "a/2", "ab", "a\xff"));
  EXPECT_THAT(Keys("a/"), ElementsAre("a/10", "a/2"));
  EXPECT_THAT(Keys("b"), ElementsAre("b", "b/1"));
  EXPECT_THAT(Keys("c"), IsEmpty());
  EXPECT_THAT(Keys(""), ElementsAre("`z", "a", "a/10", "a/2", "ab", "a\xff",
                                    "b", "b/1", "\x80"));
  EXPECT_THAT(store_->ScanAll("b").value(),
              ElementsAre(Pair("b", "v:b"), Pair("b/1", "v:b/1")));
}

TEST_P(StateStoreContractTest, ScanOfAllFfPrefixIsUnboundedAbove) {
  for (const char* k : {"\xfe", "\xff", "\xff\xff", "\xff\xff\x01"}) {
    ASSERT_THAT(store_->Put(k, "v"), IsOk());
  }
  EXPECT_THAT(Keys("\xff\xff"), ElementsAre("\xff\xff", "\xff\xff\x01"));
  EXPECT_THAT(Keys("\xff"), ElementsAre("\xff", "\xff\xff", "\xff\xff\x01"));
}

TEST_P(StateStoreContractTest, ScanStartsStrictlyAfterStartAfter) {
  for (const char* k : {"o", "p/1", "p/2", "p/3", "p/4", "p/5", "q"}) {
    ASSERT_THAT(store_->Put(k, "v"), IsOk());
  }
  auto after = [](std::string key) {
    ScanOptions options;
    options.start_after = std::move(key);
    return options;
  };
  EXPECT_THAT(Keys("p/", after("p/2")), ElementsAre("p/3", "p/4", "p/5"));
  EXPECT_THAT(Keys("p/", after("p/25")), ElementsAre("p/3", "p/4", "p/5"));
  EXPECT_THAT(Keys("p/", after("")),
              ElementsAre("p/1", "p/2", "p/3", "p/4", "p/5"));
  EXPECT_THAT(Keys("p/", after("o")),
              ElementsAre("p/1", "p/2", "p/3", "p/4", "p/5"));
  EXPECT_THAT(Keys("p/", after("p/5")), IsEmpty());
  EXPECT_THAT(Keys("p/", after("q")), IsEmpty());
}

TEST_P(StateStoreContractTest, ScanStopsAtLimit) {
  for (const char* k : {"p/1", "p/2", "p/3", "q"}) {
    ASSERT_THAT(store_->Put(k, "v"), IsOk());
  }
  auto limit = [](size_t n) {
    ScanOptions options;
    options.limit = n;
    return options;
  };
  EXPECT_THAT(Keys("p/", limit(2)), ElementsAre("p/1", "p/2"));
  EXPECT_THAT(Keys("p/", limit(0)), ElementsAre("p/1", "p/2", "p/3"));
  EXPECT_THAT(Keys("p/", limit(100)), ElementsAre("p/1", "p/2", "p/3"));
  ScanOptions both = limit(1);
  both.start_after = "p/1";
  EXPECT_THAT(Keys("p/", both), ElementsAre("p/2"));
}

TEST_P(StateStoreContractTest, PaginationVisitsEveryKeyOnce) {
  std::vector<std::string> all;
  for (int i = 0; i < 25; ++i) {
    all.push_back(absl::StrCat("page/", 100 + i));
    ASSERT_THAT(store_->Put(all.back(), "v"), IsOk());
  }
  std::vector<std::string> seen;
  ScanOptions options;
  options.limit = 7;
  int pages = 0;
  while (true) {
    std::vector<std::string> page = Keys("page/", options);
    if (page.empty()) break;
    ++pages;
    seen.insert(seen.end(), page.begin(), page.end());
    options.start_after = page.back();
  }
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen, all);
}

TEST_P(StateStoreContractTest, ScanStopsWhenCallbackReturnsFalse) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_THAT(store_->Put(absl::StrCat("s/", i), "v"), IsOk());
  }
  std::vector<std::string> keys;
  EXPECT_THAT(store_->Scan("s/", {},
                           [&](std::string_view k, std::string_view) {
                             keys.emplace_back(k);
                             return keys.size() < 3;
                           }),
              IsOk());
  EXPECT_THAT(keys, ElementsAre("s/0", "s/1", "s/2"));
}

TEST_P(StateStoreContractTest, ScanCallbackMayWriteAndScanSeesItsSnapshot) {
  for (const char* k : {"s/1", "s/2", "s/3"}) {
    ASSERT_THAT(store_->Put(k, "old"), IsOk());
  }
  std::vector<KeyValue> seen;
  EXPECT_THAT(
      store_->Scan("s/", {},
                   [&](std::string_view k, std::string_view v) {
                     seen.emplace_back(std::string(k), std::string(v));
                     if (k == "s/1") {
                       WriteBatch batch;
                       batch.Put("s/2", "new");
                       batch.Delete("s/3");
                       batch.Put("s/4", "new");
                       EXPECT_THAT(store_->Write(batch), IsOk());
                     }
                     return true;
                   }),
      IsOk());
  EXPECT_THAT(seen, ElementsAre(Pair("s/1", "old"), Pair("s/2", "old"),
                                Pair("s/3", "old")));
  EXPECT_THAT(store_->ScanAll("s/").value(),
              ElementsAre(Pair("s/1", "old"), Pair("s/2", "new"),
                          Pair("s/4", "new")));
}

TEST_P(StateStoreContractTest, WriteBatchAppliesPutsAndDeletes) {
  ASSERT_THAT(store_->Put("x", "1"), IsOk());
  ASSERT_THAT(store_->Put("y", "2"), IsOk());
  WriteBatch batch;
  batch.Put("z", "3");
  batch.Delete("x");
  batch.Put("y", "22");
  batch.Delete("absent");
  ASSERT_THAT(store_->Write(batch), IsOk());
  EXPECT_THAT(store_->ScanAll("").value(),
              ElementsAre(Pair("y", "22"), Pair("z", "3")));
}

TEST_P(StateStoreContractTest, LaterOperationInBatchWins) {
  ASSERT_THAT(store_->Put("j", "0"), IsOk());
  WriteBatch batch;
  batch.Put("k", "1");
  batch.Delete("k");
  batch.Delete("j");
  batch.Put("j", "2");
  batch.Put("m", "1");
  batch.Put("m", "2");
  ASSERT_THAT(store_->Write(batch), IsOk());
  EXPECT_THAT(store_->ScanAll("").value(),
              ElementsAre(Pair("j", "2"), Pair("m", "2")));
}

TEST_P(StateStoreContractTest, EmptyBatchIsOk) {
  ASSERT_THAT(store_->Put("k", "v"), IsOk());
  EXPECT_THAT(store_->Write(WriteBatch()), IsOk());
  EXPECT_THAT(store_->ScanAll("").value(), ElementsAre(Pair("k", "v")));
}

// Batch i (even): puts g/0..g/9 = i. Batch i (odd): deletes g/0..g/4 and
// puts g/5..g/9 = i. A scan must see exactly one of those two shapes, with a
// single value throughout.
TEST_P(StateStoreContractTest, ConcurrentReadersNeverSeeHalfABatch) {
  constexpr int kBatches = 200;
  constexpr int kReaders = 3;
  std::atomic<bool> writer_done{false};
  std::atomic<int> violations{0};
  std::atomic<int> scans{0};

  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      // At least one scan per reader even if the writer finishes first.
      do {
        auto entries = store_->ScanAll("g/");
        if (!entries.ok()) {
          ++violations;
          ADD_FAILURE() << entries.status();
          return;
        }
        ++scans;
        if (entries->empty()) continue;  // Before the first batch.
        const std::string& value = entries->front().second;
        const int i = std::stoi(value);
        bool ok = entries->size() == (i % 2 == 0 ? 10u : 5u);
        for (size_t e = 0; ok && e < entries->size(); ++e) {
          const int key_index = static_cast<int>(e) + (i % 2 == 0 ? 0 : 5);
          ok = (*entries)[e].first == absl::StrCat("g/", key_index) &&
               (*entries)[e].second == value;
        }
        if (!ok) {
          if (violations.fetch_add(1) == 0) {
            ADD_FAILURE() << "torn batch: " << entries->size()
                          << " entries, first value " << value;
          }
        }
      } while (!writer_done.load());
    });
  }
  for (int i = 0; i < kBatches; ++i) {
    WriteBatch batch;
    for (int k = 0; k < 10; ++k) {
      if (i % 2 == 1 && k < 5) {
        batch.Delete(absl::StrCat("g/", k));
      } else {
        batch.Put(absl::StrCat("g/", k), absl::StrCat(i));
      }
    }
    ASSERT_THAT(store_->Write(batch), IsOk());
  }
  writer_done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GE(scans.load(), kReaders);
  EXPECT_EQ(store_->ScanAll("g/").value().size(), 5u);  // Last batch is odd.
}

TEST_P(StateStoreContractTest, ConcurrentWritersLoseNoKeys) {
  constexpr int kThreads = 8;
  constexpr int kKeysPerThread = 1000;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([this, t] {
      for (int i = 0; i < kKeysPerThread; ++i) {
        const std::string key = absl::StrCat("w/", t, "/", i);
        ASSERT_THAT(store_->Put(key, absl::StrCat("v", t * 100000 + i)),
                    IsOk());
      }
    });
  }
  for (std::thread& t : writers) t.join();
  auto entries = store_->ScanAll("w/");
  ASSERT_THAT(entries, IsOk());
  EXPECT_EQ(entries->size(), size_t{kThreads * kKeysPerThread});
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kKeysPerThread; ++i) {
      auto value = store_->Get(absl::StrCat("w/", t, "/", i));
      ASSERT_THAT(value, IsOk());
      ASSERT_EQ(*value, absl::StrCat("v", t * 100000 + i));
    }
  }
}

TEST_P(StateStoreContractTest, ApproximateSizeCountsOnlyThePrefix) {
  for (int i = 0; i < 1000; ++i) {
    ASSERT_THAT(store_->Put(absl::StrCat("z/", i), std::string(100, 'x')),
                IsOk());
  }
  auto size = store_->ApproximateSize("z/");
  ASSERT_THAT(size, IsOk());
  EXPECT_GT(*size, 0u);
  EXPECT_THAT(store_->ApproximateSize("y/"), IsOkAndHolds(0u));
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, StateStoreContractTest, ::testing::ValuesIn(kFactories),
    [](const ::testing::TestParamInfo<StoreFactory>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace ftb::storage
