// RocksDbStateStore: the durable StateStore, one RocksDB 7.8 database in a
// directory. Thread-safe; the object owns the database.
//
// Durability: the write-ahead log is on and every Write() is synced
// (WriteOptions::sync) before it returns OK, so an acknowledged write
// survives kill -9 and power loss. The only damage a crash can leave is a
// torn record at the very end of the last log (a write that was never
// acknowledged); RocksDB replays with kTolerateCorruptedTailRecords, which
// drops such a tail and fails with Corruption on any other damaged record.
//
// Acknowledged-write witness. A log that is truncated at a record boundary,
// zeroed or deleted (and a truncated MANIFEST) opens "cleanly" at an earlier
// point in every RocksDB recovery mode. So after each successful synced write the store records the
// RocksDB sequence number it reached in the file kAckedSequenceFile (a plain
// write of a few bytes, no fsync: it can only lag the log, never lead it).
// Open() first replays the log read-only, in memory, and refuses with
// kDataLoss if the recovered sequence is below the recorded one, naming the
// log files and what to do, before anything on disk is touched. See
// docs/storage-faults.md for every damage case and its outcome.
//
// Group commit: an fsync costs ~0.1-10 ms, so one sync per Write() would cap
// the store at a few hundred writes/s. Concurrent Write() calls instead queue
// up; the writer at the head of the queue (the leader) takes every queued
// batch (up to options.max_group_bytes), merges them in queue order into ONE
// rocksdb::WriteBatch, writes it with sync while new writers queue behind it,
// then hands the shared status to every writer of its group and wakes the
// next head, which leads the next group. Each caller's batch stays atomic
// (the merged batch is atomic as a whole) and Write() stays linearizable in
// queue order. A failed group write fails every Write() in the group.
//
// Layout: user keys live in RocksDB's default column family, untouched, so
// the whole user key space (including keys starting with "\0") is free and
// `ldb scan` shows them as written. Store metadata lives in the column family
// kMetaColumnFamily; today that is only the schema version record
// (kSchemaVersionKey -> decimal ASCII, e.g. "1"). Besides RocksDB's files the
// directory holds kAckedSequenceFile and RocksDB's info log LOG (written by
// the store's own logger, which ignores write errors; RocksDB 7.8's aborts on
// the line after a failed one), the previous one kept as LOG.old.
//
// Error mapping (rocksdb::Status -> absl): IOError -> kUnavailable (or
// kResourceExhausted when the disk is full), Corruption -> kDataLoss,
// Busy/TryAgain/ShutdownInProgress -> kUnavailable, TimedOut ->
// kDeadlineExceeded, InvalidArgument -> kInvalidArgument, others -> kInternal.
// Messages name the store directory.
#ifndef FTB_STORAGE_ROCKSDB_STATE_STORE_H_
#define FTB_STORAGE_ROCKSDB_STATE_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "storage/state_store.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace ftb::storage {

// The on-disk schema version this binary reads and writes. Bump it when the
// meaning of stored keys or values changes incompatibly (and add a migration
// for the old version to RocksDbStateStore::Open).
inline constexpr int64_t kSchemaVersion = 1;

struct RocksDbStateStoreOptions {
  // Coalesce concurrent Write() calls into one synced RocksDB write (see the
  // file comment). When false every Write() goes to RocksDB on its own with
  // sync; RocksDB's internal write thread may still batch concurrent writers.
  // Kept switchable so bench/storage_bench.cc can compare the two.
  bool group_commit = true;
  // Upper bound on the bytes (keys + values) one group merges. A group whose
  // first batch is small is capped at first + 128 KiB, so small writes are
  // not delayed behind a large merge.
  size_t max_group_bytes = size_t{1} << 20;
  // RocksDB tuning; the defaults suit the coordinator (small values, mostly
  // point reads and short prefix scans, 2 cores).
  int max_background_jobs = 2;
  size_t write_buffer_bytes = size_t{64} << 20;
  size_t block_cache_bytes = size_t{32} << 20;
};

class RocksDbStateStore : public StateStore {
 public:
  // Column family holding store metadata, and the schema version key in it.
  static constexpr char kMetaColumnFamily[] = "ftb_meta";
  static constexpr char kSchemaVersionKey[] = "schema_version";
  // The acknowledged-write witness in the store directory (file comment):
  // "<seq> <seq>\n", the same decimal number twice so a torn write is seen.
  // Deleting it makes the next Open accept whatever the log recovers.
  static constexpr char kAckedSequenceFile[] = "FTB-ACKNOWLEDGED-SEQUENCE";

  // Opens the store in `dir`, creating the directory (and parents) and an
  // empty store with the current kSchemaVersion if missing. Returns
  //   kFailedPrecondition  the stored schema version is not kSchemaVersion
  //                        (the message names `dir` and both versions), the
  //                        directory cannot be created, or the database has
  //                        column families ftb does not know;
  //   kDataLoss            the version record is unreadable, or missing in a
  //                        store that holds data; RocksDB reports corruption
  //                        (a damaged log record, SST file or MANIFEST); or
  //                        the log recovers less than was acknowledged (file
  //                        comment). The store is then left exactly as found
  //                        and the message names the files and what to do;
  //   kUnavailable         I/O errors, including another process (or object)
  //                        holding the database lock.
  static absl::StatusOr<std::unique_ptr<RocksDbStateStore>> Open(
      const std::string& dir, const RocksDbStateStoreOptions& options = {});

  // Opens an existing store for reading only (RocksDB OpenForReadOnly, with
  // RocksDB's own info log discarded): nothing in `dir` is created, written,
  // renamed or deleted, so it works on a read-only directory. The log is
  // replayed in memory and checked as in Open. Write() and Flush() return
  // kFailedPrecondition. Errors as Open, plus kNotFound when `dir` holds no
  // store and kUnavailable when a coordinator has the store open (its reads
  // would race the writer; read through the coordinator instead).
  static absl::StatusOr<std::unique_ptr<RocksDbStateStore>> OpenReadOnly(
      const std::string& dir, const RocksDbStateStoreOptions& options = {});

  // Closes the database. Callers must ensure no other method is running or
  // will start. Nothing acknowledged can be lost: every Write was synced to
  // the WAL, which the next Open replays. The memtable is NOT flushed (that
  // would only make shutdown slower); call Flush() first to make the next
  // Open skip the replay. Errors while closing cannot be reported here.
  ~RocksDbStateStore() override;

  RocksDbStateStore(const RocksDbStateStore&) = delete;
  RocksDbStateStore& operator=(const RocksDbStateStore&) = delete;

  absl::StatusOr<std::string> Get(std::string_view key) const override;
  // Iterates a RocksDB iterator bounded by PrefixSuccessor(prefix)
  // (iterate_upper_bound), so a scan never reads past its prefix, not even
  // over tombstones. The iterator pins an implicit snapshot.
  absl::Status Scan(std::string_view prefix, const ScanOptions& options,
                    ScanCallback callback) const override;
  // Group-committed, synced. Returns kInvalidArgument (before any I/O) if a
  // key or value is 4 GiB or larger. After a write has failed (disk full,
  // permission or I/O error) every later Write and Flush returns that first
  // error without touching RocksDB again: RocksDB 7.8 aborts (an assertion
  // in WritableFileWriter) if a log writer that has failed is written
  // again. Reads keep working. Reopen the store to recover.
  absl::Status Write(const WriteBatch& batch) override;
  // Includes files and memtables; rough (RocksDB estimates).
  absl::StatusOr<uint64_t> ApproximateSize(
      std::string_view prefix) const override;

  // Flushes memtables to SST files and waits for it. Not needed for
  // durability (the WAL already is); shortens the next Open and releases old
  // WAL files.
  absl::Status Flush();

  // Counters since Open: `writes` non-empty Write() calls that reached
  // RocksDB, `commits` synced RocksDB writes they took. writes / commits is
  // the average group size.
  struct WriteStats {
    uint64_t writes = 0;
    uint64_t commits = 0;
  };
  WriteStats write_stats() const;

  const std::string& dir() const { return dir_; }

  // Test-only (group commit): `hook` runs in every group leader right before
  // its commit, with no lock held; it may block so writers pile up behind.
  void SetBeforeCommitHookForTesting(std::function<void()> hook);
  // Test-only: Write() calls queued, including a group being committed.
  size_t QueuedWritersForTesting();

 private:
  struct Writer;

  RocksDbStateStore(std::string dir, const RocksDbStateStoreOptions& options,
                    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* data_cf,
                    rocksdb::ColumnFamilyHandle* meta_cf, bool read_only);

  // Records the sequence the database has reached in kAckedSequenceFile.
  absl::Status RecordAcknowledged();

  // Verifies the schema version record, or writes it into a new empty store.
  absl::Status CheckOrInitSchemaVersion();
  // One synced RocksDB write of the writers' batches, merged in order.
  absl::Status CommitGroup(const Writer* const* writers, size_t n);

  const std::string dir_;
  const RocksDbStateStoreOptions options_;
  rocksdb::DB* const db_;                         // Owned.
  rocksdb::ColumnFamilyHandle* const data_cf_;    // Owned; default family.
  rocksdb::ColumnFamilyHandle* const meta_cf_;    // Owned.
  const bool read_only_;

  // The first failed write (see Write); OK while none has failed.
  mutable absl::Mutex failure_mu_;
  absl::Status failure_ ABSL_GUARDED_BY(failure_mu_);

  // The witness file, open for writing (read-write stores only), and the
  // highest sequence written to it.
  absl::Mutex ack_mu_;
  int ack_fd_ ABSL_GUARDED_BY(ack_mu_) = -1;
  uint64_t acked_ ABSL_GUARDED_BY(ack_mu_) = 0;

  // Group-commit queue. The head is the current or next leader; only the
  // leader calls CommitGroup, with write_mu_ released.
  absl::Mutex write_mu_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(write_mu_);
  std::function<void()> before_commit_hook_ ABSL_GUARDED_BY(write_mu_);

  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> commits_{0};
};

}  // namespace ftb::storage

#endif  // FTB_STORAGE_ROCKSDB_STATE_STORE_H_
