// StateStore: the raw, ordered key-value store under all coordinator state.
//
// Keys and values are arbitrary byte strings (embedded zeros allowed, the
// empty key included). Keys are ordered bytewise as unsigned chars. Tables
// are key prefixes owned by the typed layer above (see keys.h); this layer
// knows nothing about them.
//
// Implementations:
//   MemoryStateStore   (memory_state_store.h)  std::map, for tests/benchmarks.
//   RocksDbStateStore  (rocksdb_state_store.h) durable, group-committed.
// Both pass the one contract suite in state_store_contract_test.cc; a
// behaviour not pinned there is not part of the contract.
//
// Thread-safety: every method of every implementation may be called
// concurrently from any number of threads without external locking.
//
// Ordering and atomicity: Write() calls are linearizable. A WriteBatch is
// applied all-or-nothing: no Get or Scan, in this process or after a crash and
// reopen, ever observes part of a batch. Within one batch, operations apply
// in the order they were added (a later Put/Delete of the same key wins).
//
// Durability: when Write() (or Put/Delete) returns OK, the change is as
// durable as the implementation promises, and callers may acknowledge it to
// the outside world. RocksDbStateStore: synced to the write-ahead log
// (fsync), so it survives kill -9 and power loss. MemoryStateStore: lives as
// long as the object.
//
// Errors: Get returns kNotFound for an absent key. Everything else returns a
// code from the implementation's I/O mapping, documented on the
// implementation (for RocksDB: kUnavailable for I/O errors, kDataLoss for
// corruption, kResourceExhausted for a full disk).
#ifndef FTB_STORAGE_STATE_STORE_H_
#define FTB_STORAGE_STATE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ftb::storage {

// An ordered list of puts and deletes that Write() applies atomically.
// A plain value type: not thread-safe, cheap to move; the store does not keep
// a reference to it after Write() returns.
class WriteBatch {
 public:
  enum class OpType { kPut, kDelete };
  struct Op {
    OpType type;
    std::string key;
    std::string value;  // Empty for kDelete.
  };

  void Put(std::string_view key, std::string_view value) {
    byte_size_ += key.size() + value.size();
    ops_.push_back(Op{OpType::kPut, std::string(key), std::string(value)});
  }
  // Deleting an absent key is not an error.
  void Delete(std::string_view key) {
    byte_size_ += key.size();
    ops_.push_back(Op{OpType::kDelete, std::string(key), std::string()});
  }
  void Clear() {
    ops_.clear();
    byte_size_ = 0;
  }

  bool empty() const { return ops_.empty(); }
  // Number of operations.
  size_t size() const { return ops_.size(); }
  // Sum of key and value sizes; used to bound group-commit sizes.
  size_t byte_size() const { return byte_size_; }
  // In the order they were added.
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
  size_t byte_size_ = 0;
};

struct ScanOptions {
  // If set, only keys strictly greater than *start_after are visited. For
  // pagination pass the last key of the previous page. May lie outside the
  // prefix: before it means "from the start", after it means "nothing".
  std::optional<std::string> start_after;
  // Maximum number of entries visited; 0 means no limit.
  size_t limit = 0;
};

// Receives one entry of a Scan. The views are valid only during the call.
// Return true to continue, false to stop the scan (Scan still returns OK).
// The callback runs without store locks held and may call back into the
// store, including writes; those writes are not visible to the running scan.
using ScanCallback =
    absl::FunctionRef<bool(std::string_view key, std::string_view value)>;

using KeyValue = std::pair<std::string, std::string>;

class StateStore {
 public:
  virtual ~StateStore() = default;

  // The value stored under `key`, or kNotFound if there is none.
  virtual absl::StatusOr<std::string> Get(std::string_view key) const = 0;

  // Calls `callback` for each entry whose key starts with `prefix` (every
  // entry if `prefix` is empty), in increasing key order, subject to
  // `options`. The scan reads one consistent snapshot taken when it starts:
  // it sees every Write that returned before the call, none that started
  // after it, and each concurrent batch entirely or not at all.
  // Returns OK when the range is exhausted, the limit is reached or the
  // callback returns false; an I/O error otherwise (entries before the error
  // may already have been delivered).
  virtual absl::Status Scan(std::string_view prefix, const ScanOptions& options,
                            ScanCallback callback) const = 0;

  // Applies `batch` atomically (see the file comment). An empty batch returns
  // OK without doing I/O. On a non-OK return none of the batch was applied
  // (RocksDB: except after kUnavailable from a failed fsync, where the batch
  // may or may not be applied on restart — the caller must not acknowledge
  // it, and retrying an idempotent write is safe).
  virtual absl::Status Write(const WriteBatch& batch) = 0;

  // Approximate bytes used by keys starting with `prefix` (exact for
  // MemoryStateStore: the sum of key and value sizes). Cheap enough for
  // metrics scrapes, not for hot paths.
  virtual absl::StatusOr<uint64_t> ApproximateSize(
      std::string_view prefix) const = 0;

  // A one-operation Write().
  absl::Status Put(std::string_view key, std::string_view value) {
    WriteBatch batch;
    batch.Put(key, value);
    return Write(batch);
  }
  absl::Status Delete(std::string_view key) {
    WriteBatch batch;
    batch.Delete(key);
    return Write(batch);
  }

  // Scan() collecting the visited entries, in key order.
  absl::StatusOr<std::vector<KeyValue>> ScanAll(
      std::string_view prefix, const ScanOptions& options = {}) const {
    std::vector<KeyValue> out;
    absl::Status status =
        Scan(prefix, options, [&out](std::string_view k, std::string_view v) {
          out.emplace_back(std::string(k), std::string(v));
          return true;
        });
    if (!status.ok()) return status;
    return out;
  }
};

}  // namespace ftb::storage

#endif  // FTB_STORAGE_STATE_STORE_H_
