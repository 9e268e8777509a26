// Several drives behind one Device (FileDeviceOptions::drive_dirs): segment i lives on drive
// i mod D as the file seg-i.dat in that drive's directory, linked from the first directory under
// the same name (so everything that opens "the segments" of a data directory, recovery's
// geometry check and fsck among them, sees one numbered set). Each drive is its own device (its
// own io_uring ring, or posix) with its own submitting thread: a batch is split by drive, the
// parts run at once, and each op's result is copied back. Observers of a batch spread over
// several drives are called under one lock (their hooks are written for one thread).
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "cachestore/nvme/device.h"

namespace strata::cachestore {
namespace {

namespace fs = std::filesystem;

// A drive that is missing: every I/O fails with ENODEV; there is nothing to sync.
class MissingDrive final : public Device {
 public:
  MissingDrive(uint64_t segment_bytes, uint32_t segment_count)
      : Device(DeviceKind::kPosix, segment_bytes, segment_count, 1) {}

 protected:
  Status SubmitImpl(std::span<IoOp> ops) override {
    for (IoOp& op : ops) op.error = ENODEV;
    return Status::IoError("the drive holding this segment is missing");
  }
  Status SyncImpl() override { return Status::Ok(); }
};

// One thread that runs the jobs handed to it, in order.
class Worker {
 public:
  Worker() : thread_([this] { Loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> l(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is initialised
};

// Serialises the hooks of one observer whose ops run on several threads.
class LockedObserver final : public IoObserver {
 public:
  LockedObserver(IoObserver* inner, std::mutex* mu) : inner_(inner), mu_(mu) {}
  void BeforeSubmit(IoOp& op) override {
    std::lock_guard<std::mutex> l(*mu_);
    inner_->BeforeSubmit(op);
  }
  void OnComplete(IoOp& op) override {
    std::lock_guard<std::mutex> l(*mu_);
    inner_->OnComplete(op);
  }

 private:
  IoObserver* inner_;
  std::mutex* mu_;
};

class StripedDevice final : public Device {
 public:
  StripedDevice(DeviceKind kind, uint64_t segment_bytes, uint32_t segment_count,
                uint32_t queue_depth, std::vector<std::unique_ptr<Device>> drives)
      : Device(kind, segment_bytes, segment_count, queue_depth), drives_(std::move(drives)) {
    for (size_t d = 0; d < drives_.size(); ++d) workers_.push_back(std::make_unique<Worker>());
  }

  void RegisterMemory(std::span<std::byte> region) override {
    for (auto& d : drives_) d->RegisterMemory(region);
  }

 protected:
  Status SubmitImpl(std::span<IoOp> ops) override {
    const size_t D = drives_.size();
    const uint64_t sb = segment_bytes();
    std::vector<std::vector<IoOp>> part(D);
    std::vector<std::vector<size_t>> index(D);
    for (size_t i = 0; i < ops.size(); ++i) {
      const uint64_t seg = ops[i].offset / sb;
      const size_t d = size_t(seg % D);
      IoOp op = ops[i];
      op.offset = (seg / D) * sb + ops[i].offset % sb;
      part[d].push_back(op);
      index[d].push_back(i);
    }
    size_t busy = 0;
    for (size_t d = 0; d < D; ++d) busy += !part[d].empty();
    std::mutex hooks;
    std::deque<LockedObserver> locked;  // stable addresses
    if (busy > 1)
      for (auto& p : part)
        for (IoOp& op : p)
          if (op.observer) op.observer = &locked.emplace_back(op.observer, &hooks);
    std::vector<Status> status(D);
    std::mutex mu;
    std::condition_variable cv;
    size_t left = busy;
    size_t inline_drive = D;
    for (size_t d = 0; d < D; ++d) {
      if (part[d].empty()) continue;
      if (inline_drive == D) {
        inline_drive = d;  // the calling thread runs one part itself
        continue;
      }
      workers_[d]->Post([&, d] {
        Status s = drives_[d]->Submit(part[d]);
        std::lock_guard<std::mutex> l(mu);
        status[d] = std::move(s);
        if (--left == 0) cv.notify_one();
      });
    }
    if (inline_drive < D) {
      Status s = drives_[inline_drive]->Submit(part[inline_drive]);
      std::lock_guard<std::mutex> l(mu);
      status[inline_drive] = std::move(s);
      --left;
    }
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return left == 0; });
    }
    Status first;
    for (size_t d = 0; d < D; ++d) {
      for (size_t k = 0; k < part[d].size(); ++k) ops[index[d][k]].error = part[d][k].error;
      if (first.ok() && !status[d].ok()) first = status[d];
    }
    return first;
  }

  Status SyncImpl() override {
    Status first;
    for (auto& d : drives_) {
      Status s = d->Sync();
      if (first.ok() && !s.ok()) first = s;
    }
    return first;
  }

 private:
  std::vector<std::unique_ptr<Device>> drives_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace

Result<std::unique_ptr<Device>> OpenStripedDevice(DeviceKind kind, const FileDeviceOptions& o) {
  const size_t D = o.drive_dirs.size();
  if (D < 2) return Status::InvalidArgument("a striped device needs two or more drives");
  if (o.segment_count < D) return Status::InvalidArgument("fewer segments than drives");
  if (!o.drive_alive.empty() && o.drive_alive.size() != D)
    return Status::InvalidArgument("drive_alive: one flag per drive");
  if (o.drive_dirs[0] != o.dir)
    return Status::InvalidArgument("drive_dirs[0] must be the segment directory itself");
  std::error_code ec;
  std::vector<std::unique_ptr<Device>> drives;
  DeviceKind kind_used = kind;
  for (size_t d = 0; d < D; ++d) {
    const uint32_t count = uint32_t((o.segment_count - d + D - 1) / D);  // segments d, d+D, ...
    if (!o.drive_alive.empty() && !o.drive_alive[d]) {
      drives.push_back(std::make_unique<MissingDrive>(o.segment_bytes, count));
      continue;
    }
    // The drive's segment files, under their global numbers; then links to them from `dir`.
    FileDeviceOptions one = o;
    one.dir = o.drive_dirs[d];
    one.drive_dirs.clear();
    one.drive_alive.clear();
    one.segment_count = count;
    fs::create_directories(one.dir, ec);
    if (ec) return Status::IoError("create " + one.dir + ": " + ec.message());
    std::vector<fs::path> files;
    for (uint32_t j = 0; j < count; ++j) {
      char name[32];
      std::snprintf(name, sizeof name, "seg-%06u.dat", uint32_t(j * D + d));
      files.push_back(fs::path(one.dir) / name);
    }
    one.first_segment = uint32_t(d);
    one.segment_stride = uint32_t(D);
    auto dev = OpenFileDevice(kind, one);
    if (!dev.ok()) return dev.status().WithContext("drive " + std::to_string(d));
    kind_used = (*dev)->kind();
    drives.push_back(std::move(dev).value());
    if (d == 0) continue;  // drive 0's files are in `dir` already
    for (uint32_t j = 0; j < count; ++j) {
      const fs::path link = fs::path(o.dir) / files[j].filename();
      const fs::path target = fs::absolute(files[j], ec);
      if (fs::is_symlink(link, ec)) {
        if (fs::read_symlink(link, ec) != target)
          return Status::FailedPrecondition(link.string() + " does not point at " +
                                            target.string() + " (drive " + std::to_string(d) + ")");
        continue;
      }
      if (fs::exists(link, ec))
        return Status::FailedPrecondition(link.string() + " is a file, but segment " +
                                          files[j].filename().string() + " belongs on drive " +
                                          std::to_string(d));
      fs::create_symlink(target, link, ec);
      if (ec) return Status::IoError("link " + link.string() + ": " + ec.message());
    }
  }
  return std::unique_ptr<Device>(new StripedDevice(kind_used, o.segment_bytes, o.segment_count,
                                                   o.queue_depth, std::move(drives)));
}

}  // namespace strata::cachestore
