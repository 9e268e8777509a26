#pragma once
// Polling instead of sleeping, for the event loops of the daemon (ServerConfig::io_spin_us) and
// the cluster adapter (RedisClusterOptions::spin): on a VM, waking a thread that sleeps in epoll
// or on a futex costs 50-150 us, more than a request's own work. Header-only: both users already
// build with Boost.Asio, and neither links the other.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <thread>

namespace strata::cachestore {

// Runs `ioc`'s handlers; with `spin`, after each one it keeps polling (a non-blocking epoll, then
// yielding the core) until `spin` has passed without work, and only then sleeps in epoll.
inline void RunIoThread(boost::asio::io_context& ioc, std::chrono::microseconds spin) {
  if (spin.count() == 0) {
    ioc.run();
    return;
  }
  using C = std::chrono::steady_clock;
  while (ioc.run_one() > 0) {
    auto last = C::now();
    while (!ioc.stopped() && C::now() - last < spin) {
      if (ioc.poll() > 0)
        last = C::now();
      else
        std::this_thread::yield();  // a runnable thread (a client on this core) goes first
    }
  }
}

// Polls `done` (yielding the core between looks) for at most `spin`; true once it holds.
template <typename Pred>
bool SpinUntil(Pred done, std::chrono::microseconds spin) {
  if (done()) return true;
  if (spin.count() == 0) return false;
  const auto until = std::chrono::steady_clock::now() + spin;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::yield();
  }
  return done();
}

}  // namespace strata::cachestore
