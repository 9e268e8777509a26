// A small fixed pool of worker threads for kernels: ParallelFor runs tasks 0..n-1 on the pool
// and the calling thread, and returns when all are done. Which thread runs a task never changes
// the task's arithmetic, so kernels stay batch-invariant.
// Thread safety: ParallelFor may be called from several threads; calls are serialised.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace strata::kernels {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);  // total threads including the caller
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size() + 1; }
  void ParallelFor(size_t n, const std::function<void(size_t)>& task);

  // One pool per process, sized to the hardware (STRATA_THREADS overrides).
  static ThreadPool& Default();

 private:
  void Worker();
  void RunTasks();

  std::mutex call_mu_;  // one ParallelFor at a time
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  const std::function<void(size_t)>* task_ = nullptr;  // GUARDED_BY(mu_)
  size_t n_ = 0, next_ = 0, done_ = 0;                 // GUARDED_BY(mu_)
  uint64_t generation_ = 0;                            // GUARDED_BY(mu_)
  bool stop_ = false;                                  // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
};

}  // namespace strata::kernels
