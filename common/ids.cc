#include "common/ids.h"

#include <chrono>
#include <random>

#include <unistd.h>

namespace ftb {

RandomIdSource::RandomIdSource() {
  std::random_device rd;
  uint64_t seed = (uint64_t{rd()} << 32) ^ rd();
  seed ^= static_cast<uint64_t>(
      std::chrono::steady_clock::now().time_since_epoch().count());
  seed ^= static_cast<uint64_t>(getpid()) << 17;
  state_ = seed;
}

std::string RandomIdSource::NewId(const std::string& prefix) {
  // SplitMix64 step on a shared atomic state.
  uint64_t z = state_.fetch_add(0x9e3779b97f4a7c15ULL) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out = prefix;
  for (int i = 0; i < 12; ++i) {
    out.push_back(kDigits[z % 36]);
    z /= 36;
  }
  return out;
}

}  // namespace ftb
