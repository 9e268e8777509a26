#include "cachestore/nvme/device.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace strata::cachestore {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// --- memory --------------------------------------------------------------------------------

class MemoryDevice final : public Device {
 public:
  MemoryDevice(uint64_t segment_bytes, uint32_t segment_count)
      : Device(DeviceKind::kMemory, segment_bytes, segment_count, 1) {
    base_ = static_cast<std::byte*>(mmap(nullptr, size(), PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (base_ == MAP_FAILED) base_ = nullptr;
  }
  ~MemoryDevice() override {
    if (base_) munmap(base_, size());
  }

 protected:
  Status SubmitImpl(std::span<IoOp> ops) override {
    if (!base_) return Status::IoError("memory device: mmap failed");
    for (IoOp& op : ops) {
      if (op.observer) op.observer->BeforeSubmit(op);
      if (op.kind == IoKind::kRead)
        std::memcpy(op.buf, base_ + op.offset, op.len);
      else
        std::memcpy(base_ + op.offset, op.buf, op.len);
      if (op.observer) op.observer->OnComplete(op);
    }
    return Status::Ok();
  }
  Status SyncImpl() override { return Status::Ok(); }

 private:
  std::byte* base_ = nullptr;
};

// --- posix ---------------------------------------------------------------------------------

class PosixDevice final : public Device {
 public:
  PosixDevice(std::vector<int> fds, uint64_t segment_bytes, uint32_t queue_depth)
      : Device(DeviceKind::kPosix, segment_bytes, uint32_t(fds.size()), queue_depth),
        fds_(std::move(fds)) {}
  ~PosixDevice() override {
    for (int fd : fds_) close(fd);
  }

 protected:
  Status SubmitImpl(std::span<IoOp> ops) override {
    Status first;
    for (IoOp& op : ops) {
      if (op.observer) op.observer->BeforeSubmit(op);
      Status s = One(op);
      if (!s.ok()) {
        op.error = s.IsNoSpace() ? ENOSPC : EIO;
        if (first.ok()) first = s;
      } else if (op.observer) {
        op.observer->OnComplete(op);
      }
    }
    return first;
  }

  Status SyncImpl() override {
    for (int fd : fds_)
      if (fdatasync(fd) != 0) return Status::IoError("fdatasync: " + ErrnoText(errno));
    return Status::Ok();
  }

 private:
  Status One(const IoOp& op) {
    const int fd = fds_[op.offset / segment_bytes()];
    const uint64_t file_off = op.offset % segment_bytes();
    size_t done = 0;
    while (done < op.len) {
      ssize_t n = op.kind == IoKind::kRead
                      ? pread(fd, op.buf + done, op.len - done, off_t(file_off + done))
                      : pwrite(fd, op.buf + done, op.len - done, off_t(file_off + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        std::string what = std::string(op.kind == IoKind::kRead ? "pread" : "pwrite") + " at " +
                           std::to_string(op.offset) + ": " + ErrnoText(err);
        return err == ENOSPC ? Status::NoSpace(what) : Status::IoError(what);
      }
      if (n == 0) return Status::IoError("short read at " + std::to_string(op.offset));
      done += size_t(n);
    }
    return Status::Ok();
  }

  std::vector<int> fds_;
};

}  // namespace

// --- Device --------------------------------------------------------------------------------

Status Device::Submit(std::span<IoOp> ops) {
  for (const IoOp& op : ops) {
    if (op.offset % kIoAlign || op.len % kIoAlign || reinterpret_cast<uintptr_t>(op.buf) % kIoAlign)
      return Status::InvalidArgument("unaligned I/O at " + std::to_string(op.offset) + " len " +
                                     std::to_string(op.len));
    if (op.len == 0 || op.offset + op.len > size() ||
        op.offset / segment_bytes_ != (op.offset + op.len - 1) / segment_bytes_)
      return Status::InvalidArgument("I/O at " + std::to_string(op.offset) + " len " +
                                     std::to_string(op.len) + " out of bounds or across segments");
  }
  for (IoOp& op : ops) op.error = 0;
  Status s = SubmitImpl(ops);
  for (const IoOp& op : ops) {
    if (op.kind == IoKind::kRead) {
      counters_.reads.fetch_add(1, std::memory_order_relaxed);
      counters_.read_bytes.fetch_add(op.len, std::memory_order_relaxed);
    } else {
      counters_.writes.fetch_add(1, std::memory_order_relaxed);
      counters_.write_bytes.fetch_add(op.len, std::memory_order_relaxed);
    }
  }
  if (!s.ok()) counters_.errors.fetch_add(1, std::memory_order_relaxed);
  return s;
}

Status Device::Read(uint64_t offset, std::byte* buf, size_t len) {
  IoOp op{IoKind::kRead, offset, buf, len};
  return Submit(std::span(&op, 1));
}

Status Device::Write(uint64_t offset, const std::byte* buf, size_t len) {
  IoOp op{IoKind::kWrite, offset, const_cast<std::byte*>(buf), len};
  return Submit(std::span(&op, 1));
}

Status Device::Sync() {
  counters_.syncs.fetch_add(1, std::memory_order_relaxed);
  Status s = SyncImpl();
  if (!s.ok()) counters_.errors.fetch_add(1, std::memory_order_relaxed);
  return s;
}

std::unique_ptr<Device> NewMemoryDevice(uint64_t segment_bytes, uint32_t segment_count) {
  return std::make_unique<MemoryDevice>(segment_bytes, segment_count);
}

std::unique_ptr<Device> NewPosixDevice(std::vector<int> fds, uint64_t segment_bytes,
                                       uint32_t queue_depth) {
  return std::make_unique<PosixDevice>(std::move(fds), segment_bytes, queue_depth);
}

Result<std::unique_ptr<Device>> OpenFileDevice(DeviceKind kind, const FileDeviceOptions& o) {
  if (kind == DeviceKind::kMemory) return NewMemoryDevice(o.segment_bytes, o.segment_count);
  if (o.segment_bytes == 0 || o.segment_bytes % kIoAlign)
    return Status::InvalidArgument("segment size must be a positive multiple of 4096");
  if (o.segment_count == 0) return Status::InvalidArgument("no segments");
  if (o.drive_dirs.size() >= 2) return OpenStripedDevice(kind, o);
  // io_uring options asked for are never dropped silently: no posix fallback then.
  const bool uring_options = o.uring.registered_files || o.uring.sqpoll;
  const bool automatic = kind == DeviceKind::kAuto && !uring_options;
  if (kind == DeviceKind::kAuto)
    kind = IoUringAvailable() || uring_options ? DeviceKind::kIoUring : DeviceKind::kPosix;

  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec) return Status::IoError("create " + o.dir + ": " + ec.message());

  std::vector<int> fds;
  auto fail = [&](Status s) {
    for (int fd : fds) close(fd);
    return s;
  };
  for (uint32_t i = 0; i < o.segment_count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "seg-%06u.dat", o.first_segment + i * o.segment_stride);
    const std::string path = (std::filesystem::path(o.dir) / name).string();
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EINVAL)
      return fail(Status::NotSupported("open " + path + ": O_DIRECT not supported here"));
    if (fd < 0) return fail(Status::IoError("open " + path + ": " + ErrnoText(errno)));
    fds.push_back(fd);
    // Preallocate so that writes never run out of space and never extend the file.
    int rc = posix_fallocate(fd, 0, off_t(o.segment_bytes));
    if (rc != 0) {
      std::string what = "preallocate " + path + " (" + std::to_string(o.segment_bytes) +
                         " bytes): " + ErrnoText(rc);
      return fail(rc == ENOSPC || rc == EFBIG ? Status::NoSpace(what) : Status::IoError(what));
    }
  }
  if (kind == DeviceKind::kIoUring) {
    auto dev = NewUringDevice(fds, o.segment_bytes, o.queue_depth, o.uring);
    if (dev.ok()) return std::move(dev).value();
    if (!automatic) return fail(dev.status());  // asked for io_uring explicitly
  }
  return NewPosixDevice(std::move(fds), o.segment_bytes, o.queue_depth);
}

AlignedBuffer::AlignedBuffer(size_t size) : size_(size) {
  if (size == 0) return;
  void* p = std::aligned_alloc(kIoAlign, (size + kIoAlign - 1) / kIoAlign * kIoAlign);
  data_ = static_cast<std::byte*>(p);
  if (!data_) size_ = 0;
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

}  // namespace strata::cachestore
