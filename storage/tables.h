// The coordinator's tables over a StateStore: each table is a key prefix with
// its own key encoding, and its values are serialized protos (ftb.v1 state
// messages). Everything that knows a key's layout is here; the scheduler,
// reports and tools go through these functions.
//
//   table         key                          value (proto)
//   campaigns     c/<campaign>                 Campaign
//   task records  a/<campaign>/<task:BE32>     TaskRecord
//   results       r/<campaign>/<task:BE32>     TaskCompletion
//   judge tasks   j/<campaign>/<task:BE32>     JudgeTaskRecord
//   intents       i/<campaign>/<task:BE32>     TaskIntents
//   events        e/<campaign>/<seq:BE64>      EventRecord (append-only)
//   lease secret  k/lease_secret               32 raw bytes (one record)
//
// Indexes are big-endian so a prefix scan returns a campaign's rows in index
// order, and every per-campaign prefix ends in '/', so campaign "ab" never
// scans rows of campaign "abc". Cells are not stored: the planner derives
// them from the campaign's spec. Thread-safe (no state).
#ifndef FTB_STORAGE_TABLES_H_
#define FTB_STORAGE_TABLES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/message_lite.h"
#include "storage/state_store.h"

namespace ftb::storage::tables {

std::string Campaign(const std::string& id);
inline constexpr char kCampaignPrefix[] = "c/";
std::string TaskRecordPrefix(const std::string& campaign);
std::string TaskRecord(const std::string& campaign, uint32_t task);
std::string ResultPrefix(const std::string& campaign);
std::string Result(const std::string& campaign, uint32_t task);
std::string JudgeTaskPrefix(const std::string& campaign);
std::string JudgeTask(const std::string& campaign, uint32_t task);
std::string IntentPrefix(const std::string& campaign);
std::string Intent(const std::string& campaign, uint32_t task);
std::string EventPrefix(const std::string& campaign);
std::string Event(const std::string& campaign, uint64_t seq);
// The secret lease tokens are derived from (32 random bytes, written once;
// coordinator/scheduler.h). Never exported.
inline constexpr char kLeaseSecretKey[] = "k/lease_secret";
// Decodes the task index at the end of a task/result/judge/intent key.
// False for a key too short to hold one.
bool TaskIndexFromKey(std::string_view key, uint32_t* task);

// Adds `value`, serialized, under `key` to `batch`.
inline void PutProto(WriteBatch& batch, std::string_view key,
                     const google::protobuf::MessageLite& value) {
  batch.Put(key, value.SerializeAsString());
}

// Parses a stored value; kDataLoss naming the key when it is not a `Proto`.
template <typename Proto>
absl::StatusOr<Proto> ParseProto(std::string_view key, std::string_view value) {
  Proto out;
  if (!out.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("unreadable ", out.GetTypeName(), " at key \"",
                                            absl::CHexEscape(std::string(key)), "\""));
  }
  return out;
}

// The `Proto` stored under `key`: kNotFound when there is none (as
// StateStore::Get), kDataLoss when it does not parse.
template <typename Proto>
absl::StatusOr<Proto> GetProto(const StateStore& store, std::string_view key) {
  absl::StatusOr<std::string> raw = store.Get(key);
  if (!raw.ok()) return raw.status();
  return ParseProto<Proto>(key, *raw);
}

// Visits the rows of a per-task table (TaskRecordPrefix, ResultPrefix,
// JudgeTaskPrefix, IntentPrefix) in index order, decoded: `visit(task,
// row)`. Stops at the first error: kDataLoss naming the key for a row whose
// key or value does not decode, or whatever `visit` returns.
template <typename Proto, typename Visit>
absl::Status ScanTaskRows(const StateStore& store, std::string_view prefix, Visit visit) {
  absl::Status status;
  FTB_RETURN_IF_ERROR(store.Scan(prefix, {}, [&](std::string_view key,
                                                         std::string_view value) {
    uint32_t task = 0;
    if (key.size() != prefix.size() + 4 || !TaskIndexFromKey(key, &task)) {
      status = absl::DataLossError(
          absl::StrCat("malformed key \"", absl::CHexEscape(std::string(key)), "\""));
      return false;
    }
    absl::StatusOr<Proto> row = ParseProto<Proto>(key, value);
    status = row.ok() ? visit(task, *std::move(row)) : row.status();
    return status.ok();
  }));
  return status;
}

}  // namespace ftb::storage::tables

#endif  // FTB_STORAGE_TABLES_H_
