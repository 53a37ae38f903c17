// Time sources. Code that schedules, leases or backs off takes a Clock so
// tests can drive time by hand (FakeClock) and stay deterministic.
#ifndef FTB_COMMON_CLOCK_H_
#define FTB_COMMON_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ftb {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMs() const = 0;
};

class RealClock : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // Process-wide instance; never destroyed.
  static RealClock* Get() {
    static auto* clock = new RealClock;
    return clock;
  }
};

// A clock that moves only when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t NowMs() const override { return now_.load(); }
  void AdvanceMs(int64_t ms) { now_ += ms; }
  void SetMs(int64_t ms) { now_ = ms; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace ftb

#endif  // FTB_COMMON_CLOCK_H_
