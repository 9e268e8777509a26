#include "kernels/thread_pool.h"

#include <cstdlib>

namespace strata::kernels {

ThreadPool::ThreadPool(size_t threads) {
  for (size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { Worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

ThreadPool& ThreadPool::Default() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("STRATA_THREADS")) {
      const long v = std::strtol(env, nullptr, 10);
      if (v > 0) return size_t(v);
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return size_t(hw ? hw : 1);
  }());
  return pool;
}

// Claims and runs tasks until none are left. Caller holds no lock.
void ThreadPool::RunTasks() {
  for (;;) {
    size_t i;
    const std::function<void(size_t)>* task;
    {
      std::lock_guard lk(mu_);
      if (!task_ || next_ >= n_) return;
      i = next_++;
      task = task_;
    }
    (*task)(i);
    std::lock_guard lk(mu_);
    if (++done_ == n_) done_cv_.notify_all();
  }
}

void ThreadPool::Worker() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      work_cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    RunTasks();
  }
}

void ThreadPool::ParallelFor(size_t n, const std::function<void(size_t)>& task) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    for (size_t i = 0; i < n; ++i) task(i);
    return;
  }
  std::lock_guard call(call_mu_);
  {
    std::lock_guard lk(mu_);
    task_ = &task;
    n_ = n;
    next_ = 0;
    done_ = 0;
    ++generation_;
  }
  work_cv_.notify_all();
  RunTasks();
  std::unique_lock lk(mu_);
  done_cv_.wait(lk, [&] { return done_ == n_; });
  task_ = nullptr;
}

}  // namespace strata::kernels
