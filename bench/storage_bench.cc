// StateStore write throughput: what group commit buys.
//
//   storage_bench [--benchmark_filter=...]   (FTB_BENCH_DIR: where stores go,
//                                             default /tmp; use the real disk)
//
// Every RocksDB write here is synced (the store has no unsynced mode).
// items_per_second is acknowledged Write() calls per second (for the batch
// benchmark: keys per second). Modes of BM_RocksDbPut:
//   serialized    one Write at a time (a mutex around it), one fsync each:
//                 the cost of "synced single writes".
//   rocksdb       group_commit = false: threads call RocksDB directly, whose
//                 own write thread may batch concurrent writers.
//   group_commit  RocksDbStateStore's leader/follower queue (the default).
// writes_per_commit is the average number of Write() calls per synced write.

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "storage/memory_state_store.h"
#include "storage/rocksdb_state_store.h"
#include "storage/state_store.h"

namespace ftb::storage {
namespace {

enum Mode : int64_t { kSerialized = 0, kRocksDb = 1, kGroupCommit = 2 };

const char* ModeName(int64_t mode) {
  switch (mode) {
    case kSerialized:
      return "serialized";
    case kRocksDb:
      return "rocksdb";
    default:
      return "group_commit";
  }
}

// Set up by thread 0 before the timed loop and torn down by it after; all
// threads meet at barriers at the start and end of the loop.
struct Shared {
  std::string dir;
  std::unique_ptr<RocksDbStateStore> store;
  absl::Mutex serialize_mu;
};
Shared* shared = nullptr;

std::string MakeDir() {
  const char* base = getenv("FTB_BENCH_DIR");
  std::string tmpl =
      absl::StrCat(base != nullptr ? base : "/tmp", "/ftb_storage_bench_XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  return tmpl;
}

void SetUpShared(benchmark::State& state, bool group_commit) {
  shared = new Shared;
  shared->dir = MakeDir();
  RocksDbStateStoreOptions options;
  options.group_commit = group_commit;
  auto store = RocksDbStateStore::Open(shared->dir + "/db", options);
  if (!store.ok()) {
    state.SkipWithError(store.status().ToString().c_str());
    return;
  }
  shared->store = *std::move(store);
}

void TearDownShared(benchmark::State& state, bool group_commit) {
  // Without our group commit every Write() is one RocksDB write (which
  // RocksDB may still group internally, invisibly to these counters).
  if (group_commit && shared->store != nullptr) {
    const RocksDbStateStore::WriteStats stats = shared->store->write_stats();
    if (stats.commits > 0) {
      state.counters["writes_per_commit"] =
          static_cast<double>(stats.writes) / static_cast<double>(stats.commits);
    }
  }
  shared->store.reset();
  std::error_code ec;
  std::filesystem::remove_all(shared->dir, ec);
  delete shared;
  shared = nullptr;
}

const std::string& Value() {
  static const std::string* const value = new std::string(100, 'v');
  return *value;
}

void BM_RocksDbPut(benchmark::State& state) {
  const int64_t mode = state.range(0);
  if (state.thread_index() == 0) SetUpShared(state, mode == kGroupCommit);
  int64_t i = 0;
  for (auto _ : state) {
    if (shared->store == nullptr) {  // Open failed in thread 0.
      state.SkipWithError("store not open");
      break;
    }
    WriteBatch batch;
    batch.Put(absl::StrCat("b/", state.thread_index(), "/", i++), Value());
    absl::Status status;
    if (mode == kSerialized) {
      absl::MutexLock lock(&shared->serialize_mu);
      status = shared->store->Write(batch);
    } else {
      status = shared->store->Write(batch);
    }
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(ModeName(mode));
  if (state.thread_index() == 0) TearDownShared(state, mode == kGroupCommit);
}
BENCHMARK(BM_RocksDbPut)
    ->ArgNames({"mode"})
    ->Args({kSerialized})
    ->Args({kRocksDb})
    ->Args({kGroupCommit})
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->Threads(64)
    ->UseRealTime()
    ->MinTime(0.5);

// One thread, synced batches of 100 puts: keys/s when the caller batches.
void BM_RocksDbBatch100(benchmark::State& state) {
  if (state.thread_index() == 0) SetUpShared(state, /*group_commit=*/true);
  int64_t i = 0;
  for (auto _ : state) {
    if (shared->store == nullptr) {
      state.SkipWithError("store not open");
      break;
    }
    WriteBatch batch;
    for (int k = 0; k < 100; ++k) {
      batch.Put(absl::StrCat("b/", state.thread_index(), "/", i++), Value());
    }
    absl::Status status = shared->store->Write(batch);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * 100);
  if (state.thread_index() == 0) TearDownShared(state, /*group_commit=*/true);
}
BENCHMARK(BM_RocksDbBatch100)->Threads(1)->UseRealTime()->MinTime(0.5);

// Reference point: the in-memory store (no I/O at all).
void BM_MemoryPut(benchmark::State& state) {
  static MemoryStateStore* store = nullptr;
  if (state.thread_index() == 0) store = new MemoryStateStore;
  int64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        store->Put(absl::StrCat("b/", state.thread_index(), "/", i++), Value()));
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete store;
    store = nullptr;
  }
}
BENCHMARK(BM_MemoryPut)->Threads(1)->Threads(4)->UseRealTime()->MinTime(0.2);

}  // namespace
}  // namespace ftb::storage

BENCHMARK_MAIN();
