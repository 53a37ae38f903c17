#include "storage/tables.h"

#include "storage/keys.h"

namespace ftb::storage::tables {
namespace {

std::string WithIndex(std::string prefix, uint32_t index) {
  for (int i = 3; i >= 0; --i) prefix.push_back(static_cast<char>(index >> (8 * i)));
  return prefix;
}

}  // namespace

std::string Campaign(const std::string& id) { return absl::StrCat(kCampaignPrefix, id); }
std::string TaskRecordPrefix(const std::string& c) { return absl::StrCat("a/", c, "/"); }
std::string TaskRecord(const std::string& c, uint32_t task) {
  return WithIndex(TaskRecordPrefix(c), task);
}
std::string ResultPrefix(const std::string& c) { return absl::StrCat("r/", c, "/"); }
std::string Result(const std::string& c, uint32_t task) { return WithIndex(ResultPrefix(c), task); }
std::string JudgeTaskPrefix(const std::string& c) { return absl::StrCat("j/", c, "/"); }
std::string JudgeTask(const std::string& c, uint32_t task) {
  return WithIndex(JudgeTaskPrefix(c), task);
}
std::string IntentPrefix(const std::string& c) { return absl::StrCat("i/", c, "/"); }
std::string Intent(const std::string& c, uint32_t task) { return WithIndex(IntentPrefix(c), task); }
std::string EventPrefix(const std::string& c) { return absl::StrCat("e/", c, "/"); }
std::string Event(const std::string& c, uint64_t seq) {
  std::string k = EventPrefix(c);
  AppendUint64(&k, seq);
  return k;
}

bool TaskIndexFromKey(std::string_view key, uint32_t* task) {
  if (key.size() < 4) return false;
  uint32_t v = 0;
  for (size_t i = key.size() - 4; i < key.size(); ++i) {
    v = (v << 8) | static_cast<uint8_t>(key[i]);
  }
  *task = v;
  return true;
}

}  // namespace ftb::storage::tables
