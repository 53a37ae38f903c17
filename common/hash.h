// Content hashing for stable identifiers (cell ids, dataset fingerprints,
// artifact keys). SHA-256, so ids are stable across machines, builds and
// library versions. Thread-safe (no shared state).
#ifndef FTB_COMMON_HASH_H_
#define FTB_COMMON_HASH_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ftb {

// Incremental SHA-256 (FIPS 180-4).
class Sha256 {
 public:
  Sha256();
  void Update(std::string_view data);
  // Adds `data` prefixed by its length, so concatenations of fields cannot
  // collide ("ab"+"c" vs "a"+"bc").
  void UpdateField(std::string_view data);
  std::array<uint8_t, 32> Finish();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  uint64_t total_ = 0;
  size_t used_ = 0;
};

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// Lower-case hex of the first `bytes` bytes of a digest.
std::string DigestHex(const std::array<uint8_t, 32>& digest, size_t bytes = 32);

}  // namespace ftb

#endif  // FTB_COMMON_HASH_H_
