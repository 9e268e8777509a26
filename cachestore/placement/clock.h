// The placement core's only notion of time. The real store reads the system clock; the
// simulator moves a virtual one with the trace it replays. Times are microseconds since the
// Unix epoch (the index stores last-access times in seconds).
// Thread safety: NowMicros may be called concurrently with Set.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace strata::cachestore {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t NowMicros() const = 0;
  uint64_t NowSeconds() const { return NowMicros() / 1000000; }
};

class SystemClock final : public Clock {
 public:
  uint64_t NowMicros() const override {
    return uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
  }
};

// A clock that moves only when told (simulation, tests).
class ManualClock final : public Clock {
 public:
  uint64_t NowMicros() const override { return now_.load(std::memory_order_relaxed); }
  void Set(uint64_t micros) { now_.store(micros, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> now_{0};
};

}  // namespace strata::cachestore
