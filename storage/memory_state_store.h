// MemoryStateStore: a StateStore kept in a std::map, for tests and
// benchmarks. Thread-safe (one absl::Mutex; readers share it). Nothing is
// persisted: the contents live exactly as long as the object. Never returns
// an error other than Get's kNotFound.
#ifndef FTB_STORAGE_MEMORY_STATE_STORE_H_
#define FTB_STORAGE_MEMORY_STATE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "storage/state_store.h"

namespace ftb::storage {

class MemoryStateStore : public StateStore {
 public:
  MemoryStateStore() = default;
  MemoryStateStore(const MemoryStateStore&) = delete;
  MemoryStateStore& operator=(const MemoryStateStore&) = delete;

  absl::StatusOr<std::string> Get(std::string_view key) const override;
  // Copies the visited entries under a shared lock, then runs the callback
  // with no lock held (so the callback may write to the store). Cost is
  // O(entries visited) memory; fine for the sizes tests use.
  absl::Status Scan(std::string_view prefix, const ScanOptions& options,
                    ScanCallback callback) const override;
  absl::Status Write(const WriteBatch& batch) override;
  absl::StatusOr<uint64_t> ApproximateSize(
      std::string_view prefix) const override;

 private:
  mutable absl::Mutex mu_;
  // std::less<> for heterogeneous lookup by string_view; std::string compares
  // as unsigned chars, matching RocksDB's BytewiseComparator.
  std::map<std::string, std::string, std::less<>> data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ftb::storage

#endif  // FTB_STORAGE_MEMORY_STATE_STORE_H_
