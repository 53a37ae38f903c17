#include "storage/rocksdb_state_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
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
  // Every acknowledged write was synced, so the only damage a crash leaves
  // is a torn record at the end of the last log, which was never
  // acknowledged: drop that, and fail with Corruption on anything else. (The
  // 7.x default, kPointInTimeRecovery, silently drops everything after the
  // first bad record; kAbsoluteConsistency would refuse to start after a
  // power loss that tore an unacknowledged write.) What no recovery mode can
  // see (a log cut at a record boundary, zeroed or deleted) the
  // acknowledged-sequence witness catches; see the header.
  options.wal_recovery_mode =
      rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
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

// Discards RocksDB's info log, so a read-only open writes no LOG file.
class NullLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

// RocksDB's info log in DIR/LOG (the previous one kept as LOG.old), written
// with plain write(2) whose errors are ignored. RocksDB 7.8's own file
// logger aborts the process (assertion `sync_without_flush_called_` in
// WritableFileWriter) on the next line after a failed write, e.g. once the
// directory has turned read-only or immutable: the store must answer such
// errors with a Status, never an abort.
class FileLogger : public rocksdb::Logger {
 public:
  explicit FileLogger(int fd) : fd_(fd) {}
  ~FileLogger() override { close(fd_); }

  // Nullptr if DIR/LOG cannot be created (then RocksDB logs nothing).
  static std::shared_ptr<rocksdb::Logger> Open(const std::string& dir) {
    const std::string path = (std::filesystem::path(dir) / "LOG").string();
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      std::filesystem::rename(path, path + ".old", ec);
    }
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return std::make_shared<NullLogger>();
    return std::make_shared<FileLogger>(fd);
  }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[4096];
    const absl::Time now = absl::Now();
    int n = absl::SNPrintF(line, sizeof(line), "%s ",
                           absl::FormatTime("%Y/%m/%d-%H:%M:%E6S", now, absl::UTCTimeZone()));
    if (n < 0 || n >= static_cast<int>(sizeof(line))) return;
    va_list copy;
    va_copy(copy, ap);
    int m = std::vsnprintf(line + n, sizeof(line) - n - 1, format, copy);
    va_end(copy);
    if (m < 0) return;
    size_t len = std::min(sizeof(line) - 2, static_cast<size_t>(n + m));
    if (len == 0 || line[len - 1] != '\n') line[len++] = '\n';
    ssize_t ignored = ::write(fd_, line, len);  // errors are not the store's
    (void)ignored;
  }

 private:
  const int fd_;
};

std::string AckedPath(const std::string& dir) {
  return (std::filesystem::path(dir) /
          RocksDbStateStore::kAckedSequenceFile)
      .string();
}

absl::Status ErrnoStatus(int err, std::string_view context) {
  std::string msg = absl::StrCat(AbslView(context), ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::UnavailableError(msg);
}

// The WAL files in `dir`, for messages ("none" if there are none).
std::string LogFiles(const std::string& dir) {
  std::vector<std::string> logs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".log") logs.push_back(e.path().string());
  }
  std::sort(logs.begin(), logs.end());
  return logs.empty() ? "none" : absl::StrJoin(logs, ", ");
}

constexpr char kWhatToDo[] =
    "Nothing in the directory was changed. Restore it from a backup; or, to "
    "continue from what survives (campaigns resume from there and lost work "
    "is redone, lost results are recomputed), copy the directory aside and "
    "follow docs/storage-faults.md";

// A kDataLoss from opening `dir`, with what to do; other errors unchanged.
absl::Status Damaged(const absl::Status& s, const std::string& dir) {
  if (s.code() != absl::StatusCode::kDataLoss) return s;
  return absl::DataLossError(absl::StrCat(
      "state store ", dir, " is damaged and was not opened: ", s.message(),
      " (write-ahead log files: ", LogFiles(dir), "). ", kWhatToDo));
}

// The witness: nullopt when the file is absent (a store written before the
// witness existed, or an operator accepted a loss by deleting it).
absl::StatusOr<std::optional<uint64_t>> ReadAcked(const std::string& dir) {
  const std::string path = AckedPath(dir);
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    if (errno == ENOENT || !std::filesystem::exists(path)) {
      return std::optional<uint64_t>();
    }
    return ErrnoStatus(errno, absl::StrCat("cannot read ", path));
  }
  std::stringstream text;
  text << f.rdbuf();
  std::vector<std::string> fields =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(text.str()), ' ');
  uint64_t a = 0, b = 0;
  if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &a) ||
      !absl::SimpleAtoi(fields[1], &b) || a != b) {
    return absl::DataLossError(absl::StrCat(
        path, " is unreadable (expected \"N N\", the same number twice; "
              "found \"", absl::CEscape(text.str().substr(0, 64)),
        "\"); it records how far acknowledged writes went, so the log cannot "
        "be checked against it. If the machine lost power while the "
        "coordinator ran, delete this file to accept what the log recovers "
        "(docs/storage-faults.md)"));
  }
  return std::optional<uint64_t>(a);
}

// Refuses a database whose replayed log ends before the witness.
absl::Status CheckRecovered(const std::string& dir, rocksdb::DB* db) {
  FTB_ASSIGN_OR_RETURN(std::optional<uint64_t> acked, ReadAcked(dir));
  if (!acked.has_value()) return absl::OkStatus();
  const uint64_t recovered = db->GetLatestSequenceNumber();
  if (recovered >= *acked) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      "state store ", dir, " lost acknowledged writes: its write-ahead log (",
      LogFiles(dir), ") recovers up to sequence number ", recovered,
      ", but writes up to ", *acked, " were acknowledged (recorded in ",
      AckedPath(dir),
      "); the log was truncated, zeroed or deleted. ", kWhatToDo));
}

// The column families of an existing store, checked; nullopt if `dir` holds
// no database yet.
absl::StatusOr<std::optional<std::vector<std::string>>> ExistingFamilies(
    const rocksdb::Options& options, const std::string& dir) {
  std::vector<std::string> existing;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, dir, &existing);
  if (!s.ok()) {
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec)) {
      return std::optional<std::vector<std::string>>();  // no database yet
    }
    return Damaged(
        FromRocksDb(s, absl::StrCat("cannot read the MANIFEST of ", dir)), dir);
  }
  for (const std::string& name : existing) {
    if (name != rocksdb::kDefaultColumnFamilyName &&
        name != RocksDbStateStore::kMetaColumnFamily) {
      return absl::FailedPreconditionError(absl::StrCat(
          "state store ", dir, " has column family \"", absl::CEscape(name),
          "\", which this ftb does not know; is it an ftb state store?"));
    }
  }
  return std::optional<std::vector<std::string>>(std::move(existing));
}

// Opens `dir` read-only (in-memory log replay, no file touched) with the
// column families it has (`families`, as ExistingFamilies checked them) and
// checks the replay against the witness. On success the caller owns *db and
// the handles, in the order of `families`.
absl::Status OpenCheckedReadOnly(const rocksdb::Options& base,
                                 const std::string& dir,
                                 const std::vector<std::string>& families_present,
                                 rocksdb::DB** db,
                                 std::vector<rocksdb::ColumnFamilyHandle*>* handles) {
  rocksdb::Options options = base;
  options.create_if_missing = false;
  options.create_missing_column_families = false;
  options.info_log = std::make_shared<NullLogger>();
  rocksdb::ColumnFamilyOptions cf_options(options);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : families_present) families.emplace_back(name, cf_options);
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(
      rocksdb::DBOptions(options), dir, families, handles, db);
  FTB_RETURN_IF_ERROR(
      Damaged(FromRocksDb(s, absl::StrCat("cannot open state store ", dir)), dir));
  absl::Status checked = CheckRecovered(dir, *db);
  if (!checked.ok()) {
    for (auto* h : *handles) (*db)->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    (*db)->Close().PermitUncheckedError();
    delete *db;
    *db = nullptr;
    handles->clear();
  }
  return checked;
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
                                     rocksdb::ColumnFamilyHandle* meta_cf,
                                     bool read_only)
    : dir_(std::move(dir)),
      options_(options),
      db_(db),
      data_cf_(data_cf),
      meta_cf_(meta_cf),
      read_only_(read_only) {}

RocksDbStateStore::~RocksDbStateStore() {
  {
    absl::MutexLock lock(&ack_mu_);
    if (ack_fd_ >= 0) close(ack_fd_);
  }
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
  FTB_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> existing,
                       ExistingFamilies(db_options, dir));
  if (existing.has_value()) {
    // Replay the log in memory first and check it against the witness: a
    // read-write open would write the replayed state to a new SST file and
    // delete the old log, making a loss permanent.
    rocksdb::DB* check = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> check_handles;
    FTB_RETURN_IF_ERROR(
        OpenCheckedReadOnly(db_options, dir, *existing, &check, &check_handles));
    for (auto* h : check_handles) {
      check->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    check->Close().PermitUncheckedError();
    delete check;
  }

  rocksdb::ColumnFamilyOptions cf_options(db_options);
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {kMetaColumnFamily, cf_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  db_options.info_log = FileLogger::Open(dir);
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(db_options), dir,
                                        families, &handles, &db);
  FTB_RETURN_IF_ERROR(Damaged(
      FromRocksDb(s, absl::StrCat("cannot open state store ", dir)), dir));
  auto store = absl::WrapUnique(new RocksDbStateStore(
      dir, options, db, handles[0], handles[1], /*read_only=*/false));
  FTB_RETURN_IF_ERROR(store->CheckOrInitSchemaVersion());
  {
    absl::MutexLock lock(&store->ack_mu_);
    store->ack_fd_ = open(AckedPath(dir).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (store->ack_fd_ < 0) {
      return ErrnoStatus(errno, absl::StrCat("cannot open ", AckedPath(dir)));
    }
  }
  FTB_RETURN_IF_ERROR(store->RecordAcknowledged());
  return store;
}

absl::StatusOr<std::unique_ptr<RocksDbStateStore>> RocksDbStateStore::OpenReadOnly(
    const std::string& dir, const RocksDbStateStoreOptions& options) {
  rocksdb::Options db_options = MakeRocksDbOptions(options);
  FTB_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> existing,
                       ExistingFamilies(db_options, dir));
  if (!existing.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no state store in ", dir, " (no RocksDB CURRENT file)"));
  }
  // A read-only instance beside a live writer has undefined behaviour
  // (rocksdb/db.h). RocksDB's writer holds a POSIX write lock on LOCK;
  // F_GETLK only tests for it. (Locks of this same process are invisible
  // to F_GETLK; in-process readers go through the store object instead.)
  const std::string lock_path = (std::filesystem::path(dir) / "LOCK").string();
  int lock_fd = open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (lock_fd >= 0) {
    struct flock probe = {};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    const bool held = fcntl(lock_fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
    close(lock_fd);
    if (held) {
      return absl::UnavailableError(absl::StrCat(
          "state store ", dir, " is open in a running coordinator (pid ", probe.l_pid,
          "); read it through that coordinator (e.g. ftb report --coordinator "
          "HOST:PORT) or stop it first"));
    }
  }
  // Default first, then the meta family (a read-only open cannot create it;
  // a store without it is handled below).
  std::vector<std::string> families = {rocksdb::kDefaultColumnFamilyName};
  const bool has_meta = std::find(existing->begin(), existing->end(),
                                  std::string(kMetaColumnFamily)) != existing->end();
  if (has_meta) families.push_back(kMetaColumnFamily);
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  FTB_RETURN_IF_ERROR(OpenCheckedReadOnly(db_options, dir, families, &db, &handles));
  if (!has_meta) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[0]));
    it->SeekToFirst();
    const bool has_data = it->Valid();
    it.reset();
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db->Close().PermitUncheckedError();
    delete db;
    if (has_data) {
      return absl::DataLossError(absl::StrCat(
          "state store ", dir,
          " holds data but has no schema version record; refusing to guess its format"));
    }
    return absl::NotFoundError(absl::StrCat("state store ", dir, " is empty"));
  }
  auto store = absl::WrapUnique(new RocksDbStateStore(
      dir, options, db, handles[0], handles[1], /*read_only=*/true));
  FTB_RETURN_IF_ERROR(store->CheckOrInitSchemaVersion());
  return store;
}

absl::Status RocksDbStateStore::RecordAcknowledged() {
  absl::MutexLock lock(&ack_mu_);
  if (ack_fd_ < 0) return absl::OkStatus();
  const uint64_t seq = db_->GetLatestSequenceNumber();
  if (seq <= acked_ && acked_ != 0) return absl::OkStatus();
  // Fixed width: the file never shrinks, so no stale tail survives.
  const std::string text = absl::StrFormat("%020d %020d\n", seq, seq);
  ssize_t n = pwrite(ack_fd_, text.data(), text.size(), 0);
  if (n != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(n < 0 ? errno : EIO,
                       absl::StrCat("state store ", dir_, ": cannot record the "
                                    "acknowledged sequence in ", AckedPath(dir_)));
  }
  acked_ = seq;
  return absl::OkStatus();
}

absl::Status RocksDbStateStore::CheckOrInitSchemaVersion() {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_cf_, kSchemaVersionKey, &value);
  if (s.IsNotFound()) {
    // A new store, or one whose creation crashed before this record was
    // written: both are empty. Data without a version is not ours to guess.
    // (A read-only store checks the same but cannot write the record.)
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
    if (read_only_) return absl::OkStatus();
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
  if (read_only_) {
    return absl::FailedPreconditionError(
        absl::StrCat("state store ", dir_, " was opened read-only"));
  }
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
  {
    absl::MutexLock lock(&failure_mu_);
    if (!failure_.ok()) return failure_;
  }
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
  absl::Status status = FromRocksDb(s, absl::StrCat("state store ", dir_, ": write"));
  // Durable now; the witness may lag it but never lead it.
  if (status.ok()) status = RecordAcknowledged();
  if (!status.ok()) {
    absl::MutexLock lock(&failure_mu_);
    if (failure_.ok()) {
      failure_ = absl::Status(
          status.code(), absl::StrCat(status.message(),
                                      " (the store refuses writes from now on; "
                                      "restart to recover from what is on disk)"));
    }
    return failure_;
  }
  return status;
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
  if (read_only_) {
    return absl::FailedPreconditionError(
        absl::StrCat("state store ", dir_, " was opened read-only"));
  }
  {
    absl::MutexLock lock(&failure_mu_);
    if (!failure_.ok()) return failure_;
  }
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
