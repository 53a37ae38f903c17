// A small deterministic random number generator (SplitMix64). Unlike the
// <random> distributions, its output is specified here and identical on every
// platform and standard library, which the dataset generators rely on for
// byte-identical data from the same seed. Not thread-safe; one per user.
#ifndef FTB_COMMON_RNG_H_
#define FTB_COMMON_RNG_H_

#include <cstdint>

namespace ftb {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform integer in [lo, hi] (inclusive); hi >= lo. Rejection sampling,
  // so there is no modulo bias.
  int64_t Uniform(int64_t lo, int64_t hi) {
    uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    if (span == 0) return static_cast<int64_t>(Next());
    uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return lo + static_cast<int64_t>(x % span);
  }

  // Uniform double in [0, 1) with 53 random bits.
  double UniformDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace ftb

#endif  // FTB_COMMON_RNG_H_
