// Block devices under the NVMe tier. A Device is one flat address space of `size()` bytes made
// of `segment_count()` segments of `segment_bytes()` each; for file devices every segment is a
// preallocated file `seg-NNNNNN.dat` opened with O_DIRECT. No I/O crosses a segment boundary.
//
// Device::Submit is the non-virtual entry point (Navy's pattern): it checks alignment and
// bounds, keeps the counters, and hands the batch to SubmitImpl, which runs up to
// queue_depth() I/Os in flight. Backends: memory (tests), posix (pread/pwrite), io_uring (in
// uring_device.cc, the only file that sees liburing).
//
// Thread safety: Submit, Sync and the counters are safe for concurrent use.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "strata/status.h"
#include "strata/store.h"

namespace strata::cachestore {

inline constexpr size_t kIoAlign = 4096;  // offset, length and buffer alignment (O_DIRECT)

enum class IoKind : uint8_t { kRead, kWrite };

struct IoOp;

// Optional per-op hooks, called on the submitting thread: BeforeSubmit just before an op is
// handed to the device, OnComplete once it has fully and successfully completed. They let a
// caller checksum record i while the I/O of records i+1.. is still in flight. A device may run
// the hooks of a batch in any interleaving with its I/O; an op that fails gets no OnComplete.
class IoObserver {
 public:
  virtual ~IoObserver() = default;
  virtual void BeforeSubmit(IoOp& op) = 0;
  virtual void OnComplete(IoOp& op) = 0;
};

struct IoOp {
  IoKind kind = IoKind::kRead;
  uint64_t offset = 0;  // device address
  std::byte* buf = nullptr;
  size_t len = 0;
  int error = 0;  // set by Submit: 0, or the errno of this op's failure
  IoObserver* observer = nullptr;
  uint32_t tag = 0;  // the observer's own (e.g. which record this op belongs to)
};

struct DeviceCounters {
  std::atomic<uint64_t> reads{0}, writes{0}, read_bytes{0}, write_bytes{0}, errors{0}, syncs{0};
  // I/Os submitted through registered (fixed) buffers: io_uring READ_FIXED / WRITE_FIXED. Stays
  // 0 when RegisterMemory was not called, failed, or the backend has no fixed buffers.
  std::atomic<uint64_t> fixed_ios{0};
};

class Device {
 public:
  Device(DeviceKind kind, uint64_t segment_bytes, uint32_t segment_count, uint32_t queue_depth)
      : kind_(kind),
        segment_bytes_(segment_bytes),
        segment_count_(segment_count),
        queue_depth_(queue_depth ? queue_depth : 1) {}
  virtual ~Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Runs every op; returns the first failure (the others still run to completion).
  Status Submit(std::span<IoOp> ops);
  Status Read(uint64_t offset, std::byte* buf, size_t len);
  Status Write(uint64_t offset, const std::byte* buf, size_t len);
  // Makes every completed write durable.
  Status Sync();

  // Registers memory that I/O buffers will come from (io_uring fixed buffers). Call before
  // the first Submit; other backends ignore it. Failure to register is not an error: I/O then
  // uses unregistered buffers.
  virtual void RegisterMemory(std::span<std::byte> region) { (void)region; }

  DeviceKind kind() const { return kind_; }
  uint64_t segment_bytes() const { return segment_bytes_; }
  uint32_t segment_count() const { return segment_count_; }
  uint64_t size() const { return segment_bytes_ * segment_count_; }
  uint32_t queue_depth() const { return queue_depth_; }
  const DeviceCounters& counters() const { return counters_; }

 protected:
  virtual Status SubmitImpl(std::span<IoOp> ops) = 0;
  virtual Status SyncImpl() = 0;
  void CountFixedIo() { counters_.fixed_ios.fetch_add(1, std::memory_order_relaxed); }

 private:
  const DeviceKind kind_;
  const uint64_t segment_bytes_;
  const uint32_t segment_count_;
  const uint32_t queue_depth_;
  DeviceCounters counters_;
};

// io_uring set-up options (NvmeTierConfig: "registered_files", "sqpoll", "sqpoll_idle_ms"):
// registered files let SQEs name segments by index (no fget/fput per I/O); SQPOLL lets a kernel
// thread per ring poll the submission queue (no io_uring_enter per batch, one core spinning up to
// the idle time). Either one the kernel refuses is an error at open, never a silent fallback.
struct UringOptions {
  bool registered_files = false;
  bool sqpoll = false;
  uint32_t sqpoll_idle_ms = 50;
};

struct FileDeviceOptions {
  std::string dir;  // segment files live here (created if missing)
  uint64_t segment_bytes = 256ull << 20;
  uint32_t segment_count = 1;
  uint32_t queue_depth = 32;
  UringOptions uring;  // io_uring only
  // Several drives (cachestore/nvme/striped_device.cc): segment i is the file seg-i.dat in
  // drive_dirs[i % D] (D = drive_dirs.size() >= 2; drive_dirs[0] is `dir`), linked from `dir`
  // under the same name; each drive gets its own device (its own io_uring ring) and submitting
  // thread. drive_alive[d] false: drive d is missing; its segments fail every I/O with ENODEV
  // and it is not touched. Empty: one drive, every segment file in `dir`.
  std::vector<std::string> drive_dirs;
  std::vector<bool> drive_alive;
  // The device's segment j is the file seg-(first_segment + j * segment_stride).dat (one drive
  // of several holds every D-th segment).
  uint32_t first_segment = 0, segment_stride = 1;
};

// Opens (creating and preallocating as needed) the segment files of `dir`. kAuto picks
// io_uring when the kernel allows it, else posix.
Result<std::unique_ptr<Device>> OpenFileDevice(DeviceKind kind, const FileDeviceOptions& options);
// OpenFileDevice with two or more drive_dirs: one device per drive behind one address space.
Result<std::unique_ptr<Device>> OpenStripedDevice(DeviceKind kind,
                                                  const FileDeviceOptions& options);

std::unique_ptr<Device> NewMemoryDevice(uint64_t segment_bytes, uint32_t segment_count);

// Whether io_uring can be used in this process (kernel support, not disabled by policy).
bool IoUringAvailable();

// Backend factories used by OpenFileDevice; `fds` are O_DIRECT descriptors, one per segment,
// owned by the returned device.
std::unique_ptr<Device> NewPosixDevice(std::vector<int> fds, uint64_t segment_bytes,
                                       uint32_t queue_depth);
Result<std::unique_ptr<Device>> NewUringDevice(std::vector<int> fds, uint64_t segment_bytes,
                                               uint32_t queue_depth,
                                               const UringOptions& uring = {});

// Aligned heap buffer for O_DIRECT I/O.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> span() const { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace strata::cachestore
