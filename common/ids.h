// Identifier sources. The scheduler takes one so tests get predictable ids.
#ifndef FTB_COMMON_IDS_H_
#define FTB_COMMON_IDS_H_

#include <atomic>
#include <cstdint>
#include <string>

namespace ftb {

// Thread-safe.
class IdSource {
 public:
  virtual ~IdSource() = default;
  // A new identifier: `prefix` followed by [0-9a-z] characters, never
  // containing '/'. Unique for the life of the deployment.
  virtual std::string NewId(const std::string& prefix) = 0;
};

// 12 random base-36 characters (62 bits) seeded from the OS.
class RandomIdSource : public IdSource {
 public:
  RandomIdSource();
  std::string NewId(const std::string& prefix) override;

 private:
  std::atomic<uint64_t> state_;
};

// prefix + "1", "2", ... for tests.
class SequentialIdSource : public IdSource {
 public:
  std::string NewId(const std::string& prefix) override {
    return prefix + std::to_string(++next_);
  }

 private:
  std::atomic<uint64_t> next_{0};
};

}  // namespace ftb

#endif  // FTB_COMMON_IDS_H_
