#include "storage/rocksdb_state_store.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "storage/keys.h"

namespace ftb::storage {
namespace {

// Debian's Abseil has its own absl::string_view, distinct from std's.
absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

absl::Status FromRocksDb(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(AbslView(context), ": ", s.ToString());
  switch (s.code()) {
    case rocksdb::Status::kNotFound:
      return absl::NotFoundError(msg);
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(msg);
    case rocksdb::Status::kNotSupported:
      return absl::UnimplementedError(msg);
    case rocksdb::Status::kInvalidArgument:
      return absl::InvalidArgumentError(msg);
    case rocksdb::Status::kIOError:
      if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
      return absl::UnavailableError(msg);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kIncomplete:
    case rocksdb::Status::kShutdownInProgress:
      return absl::UnavailableError(msg);
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kExpired:
      return absl::DeadlineExceededError(msg);
    case rocksdb::Status::kAborted:
      return absl::AbortedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

rocksdb::WriteOptions SyncedWrite() {
  rocksdb::WriteOptions options;
  options.sync = true;  // fsync the WAL before returning: the durability contract.
  options.disableWAL = false;
  return options;
}

bool CompressionSupported(rocksdb::CompressionType type) {
  static const std::vector<rocksdb::CompressionType>* const supported =
      new std::vector<rocksdb::CompressionType>(
          rocksdb::GetSupportedCompressions());
  return std::find(supported->begin(), supported->end(), type) !=
         supported->end();
}

// Groups keys by all but their last 4 bytes: the typed tables end their
// keys with a big-endian index or sequence number, and a batch writes runs of
// consecutive indexes under one prefix. RocksDB keeps the last insert
// position per prefix as a hint, so such runs insert into the memtable
// without a search from the top of the skiplist. Performance only.
class SequentialSuffixPrefix : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "ftb.SequentialSuffixPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 4);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > 4; }
};

rocksdb::Options MakeRocksDbOptions(const RocksDbStateStoreOptions& o) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  // Two cores: one flush and one compaction can run while the coordinator
  // keeps a core.
  options.max_background_jobs = o.max_background_jobs;
  options.write_buffer_size = o.write_buffer_bytes;
  options.level_compaction_dynamic_level_bytes = true;
  // Write SST files back incrementally instead of one large fsync that would
  // stall WAL syncs sharing the disk.
  options.bytes_per_sync = 1 << 20;
  // Explicit (it is the 7.x default): after a crash, recover every record up
  // to the first torn or missing one. Synced writes precede any torn tail.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  options.keep_log_file_num = 10;
  options.memtable_insert_with_hint_prefix_extractor =
      std::make_shared<SequentialSuffixPrefix>();
  // Values are serialized protos and ids: compressible, small, mostly hot.
  // LZ4 is the cheapest decent codec for hot levels; ZSTD for the bottommost
  // level, where most bytes sit and are rarely rewritten. Fall back if the
  // linked librocksdb lacks a codec (Debian's has snappy, lz4, zstd, zlib).
  if (CompressionSupported(rocksdb::kLZ4Compression)) {
    options.compression = rocksdb::kLZ4Compression;
  } else if (CompressionSupported(rocksdb::kSnappyCompression)) {
    options.compression = rocksdb::kSnappyCompression;
  } else {
    options.compression = rocksdb::kNoCompression;
  }
  options.bottommost_compression =
      CompressionSupported(rocksdb::kZSTD) ? rocksdb::kZSTD
                                           : options.compression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(o.block_cache_bytes);
  // Point Gets of absent keys (idempotency checks) skip SST reads.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

}  // namespace

struct RocksDbStateStore::Writer {
  explicit Writer(const WriteBatch* b) : batch(b) {}
  const WriteBatch* const batch;
  absl::Status status;  // Set by the leader that committed this batch.
  bool done = false;    // Guarded by write_mu_.
  absl::CondVar cv;     // Signalled when done or when this becomes the head.
};

RocksDbStateStore::RocksDbStateStore(std::string dir,
                                     const RocksDbStateStoreOptions& options,
                                     rocksdb::DB* db,
                                     rocksdb::ColumnFamilyHandle* data_cf,
                                     rocksdb::ColumnFamilyHandle* meta_cf)
    : dir_(std::move(dir)),
      options_(options),
      db_(db),
      data_cf_(data_cf),
      meta_cf_(meta_cf) {}

RocksDbStateStore::~RocksDbStateStore() {
  // RocksDB requires the handles to go before the database.
  db_->DestroyColumnFamilyHandle(data_cf_).PermitUncheckedError();
  db_->DestroyColumnFamilyHandle(meta_cf_).PermitUncheckedError();
  db_->Close().PermitUncheckedError();
  delete db_;
}

absl::StatusOr<std::unique_ptr<RocksDbStateStore>> RocksDbStateStore::Open(
    const std::string& dir, const RocksDbStateStoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create state store directory ", dir, ": ", ec.message()));
  }
  rocksdb::Options db_options = MakeRocksDbOptions(options);

  // Refuse databases with column families we would not know how to open
  // (not an ftb store, or one from a future layout) before touching them.
  // ListColumnFamilies fails when there is no database yet; Open creates it.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, dir, &existing).ok()) {
    for (const std::string& name : existing) {
      if (name != rocksdb::kDefaultColumnFamilyName &&
          name != kMetaColumnFamily) {
        return absl::FailedPreconditionError(absl::StrCat(
            "state store ", dir, " has column family \"", absl::CEscape(name),
            "\", which this ftb does not know; is it an ftb state store?"));
      }
    }
  }

  rocksdb::ColumnFamilyOptions cf_options(db_options);
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {kMetaColumnFamily, cf_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(db_options), dir,
                                        families, &handles, &db);
  FTB_RETURN_IF_ERROR(
      FromRocksDb(s, absl::StrCat("cannot open state store ", dir)));
  auto store = absl::WrapUnique(
      new RocksDbStateStore(dir, options, db, handles[0], handles[1]));
  FTB_RETURN_IF_ERROR(store->CheckOrInitSchemaVersion());
  return store;
}

absl::Status RocksDbStateStore::CheckOrInitSchemaVersion() {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_cf_, kSchemaVersionKey, &value);
  if (s.IsNotFound()) {
    // A new store, or one whose creation crashed before this record was
    // written: both are empty. Data without a version is not ours to guess.
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), data_cf_));
    it->SeekToFirst();
    FTB_RETURN_IF_ERROR(FromRocksDb(
        it->status(), absl::StrCat("cannot read state store ", dir_)));
    if (it->Valid()) {
      return absl::DataLossError(absl::StrCat(
          "state store ", dir_,
          " holds data but has no schema version record; refusing to guess "
          "its format"));
    }
    FTB_RETURN_IF_ERROR(FromRocksDb(
        db_->Put(SyncedWrite(), meta_cf_, kSchemaVersionKey,
                 absl::StrCat(kSchemaVersion)),
        absl::StrCat("cannot write schema version of state store ", dir_)));
    // Flush the tiny meta memtable now, so it never pins old WAL files.
    return FromRocksDb(
        db_->Flush(rocksdb::FlushOptions(), meta_cf_),
        absl::StrCat("cannot flush schema version of state store ", dir_));
  }
  FTB_RETURN_IF_ERROR(FromRocksDb(
      s, absl::StrCat("cannot read schema version of state store ", dir_)));
  int64_t stored = 0;
  if (!absl::SimpleAtoi(value, &stored) || stored < 1) {
    return absl::DataLossError(absl::StrCat(
        "state store ", dir_, " has an unreadable schema version record \"",
        absl::CEscape(value), "\" (expected a positive integer)"));
  }
  if (stored > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state store ", dir_, " has schema version ", stored,
        ", newer than this binary's schema version ", kSchemaVersion,
        "; run a newer ftb or use another state directory"));
  }
  if (stored < kSchemaVersion) {
    // No older layout exists yet; a migration would go here.
    return absl::FailedPreconditionError(absl::StrCat(
        "state store ", dir_, " has schema version ", stored,
        ", older than this binary's schema version ", kSchemaVersion,
        ", and no migration exists"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RocksDbStateStore::Get(std::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), data_cf_,
                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(
        absl::StrCat("key not found: ", absl::CEscape(AbslView(key))));
  }
  FTB_RETURN_IF_ERROR(
      FromRocksDb(s, absl::StrCat("state store ", dir_, ": get")));
  return value;
}

absl::Status RocksDbStateStore::Scan(std::string_view prefix,
                                     const ScanOptions& options,
                                     ScanCallback callback) const {
  rocksdb::ReadOptions read_options;
  const std::optional<std::string> upper = PrefixSuccessor(prefix);
  rocksdb::Slice upper_slice;
  if (upper.has_value()) {
    upper_slice = rocksdb::Slice(*upper);
    read_options.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(read_options, data_cf_));
  const rocksdb::Slice prefix_slice(prefix.data(), prefix.size());
  if (options.start_after.has_value() &&
      std::string_view(*options.start_after) >= prefix) {
    const rocksdb::Slice after(*options.start_after);
    it->Seek(after);
    if (it->Valid() && it->key() == after) it->Next();
  } else {
    it->Seek(prefix_slice);
  }
  size_t visited = 0;
  for (; it->Valid() && it->key().starts_with(prefix_slice); it->Next()) {
    if (options.limit != 0 && visited >= options.limit) break;
    ++visited;
    const rocksdb::Slice k = it->key();
    const rocksdb::Slice v = it->value();
    if (!callback(std::string_view(k.data(), k.size()),
                  std::string_view(v.data(), v.size()))) {
      break;
    }
  }
  return FromRocksDb(it->status(),
                     absl::StrCat("state store ", dir_, ": scan"));
}

absl::Status RocksDbStateStore::Write(const WriteBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  constexpr size_t kMaxSliceBytes = std::numeric_limits<uint32_t>::max();
  for (const WriteBatch::Op& op : batch.ops()) {
    if (op.key.size() >= kMaxSliceBytes || op.value.size() >= kMaxSliceBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("state store ", dir_,
                       ": keys and values must be smaller than 4 GiB"));
    }
  }

  Writer self(&batch);
  if (!options_.group_commit) {
    const Writer* one = &self;
    return CommitGroup(&one, 1);
  }

  write_mu_.Lock();
  writers_.push_back(&self);
  while (!self.done && writers_.front() != &self) self.cv.Wait(&write_mu_);
  if (self.done) {  // A leader committed our batch.
    absl::Status status = self.status;
    write_mu_.Unlock();
    return status;
  }

  // We lead. Take the queue (bounded), so the queued writers share our sync.
  size_t max_bytes = options_.max_group_bytes;
  if (batch.byte_size() <= (size_t{128} << 10)) {
    max_bytes = std::min(max_bytes, batch.byte_size() + (size_t{128} << 10));
  }
  std::vector<Writer*> group;
  size_t group_bytes = 0;
  for (Writer* w : writers_) {
    if (!group.empty() && group_bytes + w->batch->byte_size() > max_bytes) {
      break;
    }
    group.push_back(w);
    group_bytes += w->batch->byte_size();
  }
  std::function<void()> hook = before_commit_hook_;
  // The group's writers stay at the head of the queue, blocked, until we pop
  // them below; writers arriving meanwhile queue behind them.
  write_mu_.Unlock();
  if (hook) hook();
  absl::Status status = CommitGroup(group.data(), group.size());
  write_mu_.Lock();
  for (Writer* w : group) {
    writers_.pop_front();
    if (w != &self) {
      w->status = status;
      w->done = true;
      w->cv.Signal();
    }
  }
  if (!writers_.empty()) writers_.front()->cv.Signal();  // The next leader.
  write_mu_.Unlock();
  return status;
}

absl::Status RocksDbStateStore::CommitGroup(const Writer* const* writers,
                                            size_t n) {
  rocksdb::WriteBatch merged;
  for (size_t i = 0; i < n; ++i) {
    for (const WriteBatch::Op& op : writers[i]->batch->ops()) {
      rocksdb::Status s;
      switch (op.type) {
        case WriteBatch::OpType::kPut:
          s = merged.Put(data_cf_, op.key, op.value);
          break;
        case WriteBatch::OpType::kDelete:
          s = merged.Delete(data_cf_, op.key);
          break;
      }
      FTB_RETURN_IF_ERROR(FromRocksDb(
          s, absl::StrCat("state store ", dir_, ": building write batch")));
    }
  }
  rocksdb::Status s = db_->Write(SyncedWrite(), &merged);
  writes_.fetch_add(n, std::memory_order_relaxed);
  commits_.fetch_add(1, std::memory_order_relaxed);
  return FromRocksDb(s, absl::StrCat("state store ", dir_, ": write"));
}

absl::StatusOr<uint64_t> RocksDbStateStore::ApproximateSize(
    std::string_view prefix) const {
  // Without a successor the range is unbounded above; 64 0xff bytes stands
  // in for "the end" (keys sorting after it count as zero; it's approximate).
  const std::string start(prefix);
  const std::string limit =
      PrefixSuccessor(prefix).value_or(std::string(64, '\xff'));
  rocksdb::Range range(start, limit);
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  uint64_t size = 0;
  FTB_RETURN_IF_ERROR(FromRocksDb(
      db_->GetApproximateSizes(options, data_cf_, &range, 1, &size),
      absl::StrCat("state store ", dir_, ": approximate size")));
  return size;
}

absl::Status RocksDbStateStore::Flush() {
  rocksdb::FlushOptions options;
  options.wait = true;
  return FromRocksDb(db_->Flush(options, {data_cf_, meta_cf_}),
                     absl::StrCat("state store ", dir_, ": flush"));
}

void RocksDbStateStore::SetBeforeCommitHookForTesting(
    std::function<void()> hook) {
  absl::MutexLock lock(&write_mu_);
  before_commit_hook_ = std::move(hook);
}

size_t RocksDbStateStore::QueuedWritersForTesting() {
  absl::MutexLock lock(&write_mu_);
  return writers_.size();
}

RocksDbStateStore::WriteStats RocksDbStateStore::write_stats() const {
  return WriteStats{writes_.load(std::memory_order_relaxed),
                    commits_.load(std::memory_order_relaxed)};
}

}  // namespace ftb::storage
