#include "storage/memory_state_store.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace ftb::storage {
namespace {

// Debian's Abseil has its own absl::string_view, distinct from std's.
absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

absl::StatusOr<std::string> MemoryStateStore::Get(std::string_view key) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = data_.find(key);
  if (it == data_.end()) {
    return absl::NotFoundError(absl::StrCat("key not found: ", absl::CEscape(AbslView(key))));
  }
  return it->second;
}

absl::Status MemoryStateStore::Scan(std::string_view prefix,
                                    const ScanOptions& options,
                                    ScanCallback callback) const {
  std::vector<KeyValue> entries;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = data_.lower_bound(prefix);
    if (options.start_after.has_value() &&
        std::string_view(*options.start_after) >= prefix) {
      it = data_.upper_bound(std::string_view(*options.start_after));
    }
    for (; it != data_.end() && std::string_view(it->first).starts_with(prefix);
         ++it) {
      if (options.limit != 0 && entries.size() >= options.limit) break;
      entries.emplace_back(it->first, it->second);
    }
  }
  for (const auto& [key, value] : entries) {
    if (!callback(key, value)) break;
  }
  return absl::OkStatus();
}

absl::Status MemoryStateStore::Write(const WriteBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  for (const WriteBatch::Op& op : batch.ops()) {
    switch (op.type) {
      case WriteBatch::OpType::kPut:
        data_.insert_or_assign(op.key, op.value);
        break;
      case WriteBatch::OpType::kDelete: {
        auto it = data_.find(op.key);
        if (it != data_.end()) data_.erase(it);
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> MemoryStateStore::ApproximateSize(
    std::string_view prefix) const {
  absl::ReaderMutexLock lock(&mu_);
  uint64_t total = 0;
  for (auto it = data_.lower_bound(prefix);
       it != data_.end() && std::string_view(it->first).starts_with(prefix);
       ++it) {
    total += it->first.size() + it->second.size();
  }
  return total;
}

}  // namespace ftb::storage
