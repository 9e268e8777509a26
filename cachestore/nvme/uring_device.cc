// The io_uring device: the only file that sees liburing.
//
// Rings live in a small pool; a Submit takes one, owns it for the whole batch (one thread per
// ring at a time), and gives it back. Within a batch up to queue_depth I/Os are in flight; a
// full submission queue is flushed in place and completions are reaped in batches. Short
// transfers are resubmitted for the remainder. Memory registered with RegisterMemory is used
// through fixed buffers (READ_FIXED / WRITE_FIXED) when the kernel accepts the registration.
// UringOptions: the segment files registered with every ring (SQEs name them by index), and
// SQPOLL rings (a kernel thread per ring polls its submission queue).
#include <liburing.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "cachestore/nvme/device.h"

namespace strata::cachestore {
namespace {

struct Region {
  std::byte* base;
  size_t len;
};

struct Ring {
  io_uring ring;
  size_t registered = 0;  // regions_[0, registered) are this ring's fixed buffers
  bool files = false;     // the segment files are registered: SQEs use their index
};

// Per-op progress within a batch; the SQE's user_data points here.
struct Inflight {
  IoOp* op = nullptr;
  size_t done = 0;
};

class UringDevice final : public Device {
 public:
  UringDevice(std::vector<int> fds, uint64_t segment_bytes, uint32_t queue_depth,
              const UringOptions& uring)
      : Device(DeviceKind::kIoUring, segment_bytes, uint32_t(fds.size()), queue_depth),
        fds_(std::move(fds)),
        uring_(uring) {}

  ~UringDevice() override {
    for (auto& r : pool_) io_uring_queue_exit(&r->ring);
    if (owns_fds_)
      for (int fd : fds_) close(fd);
  }

  void DisownFds() { owns_fds_ = false; }

  Status Init() {
    auto ring = NewRing();
    if (!ring.ok()) return ring.status();
    pool_.push_back(std::move(ring).value());
    return Status::Ok();
  }

  void RegisterMemory(std::span<std::byte> region) override {
    std::unique_lock rlk(regions_mu_);  // waits for running batches
    // io_uring limits one registered buffer to 1 GiB: split larger regions.
    constexpr size_t kMax = 1ull << 30;
    for (size_t off = 0; off < region.size(); off += kMax)
      regions_.push_back({region.data() + off, std::min(kMax, region.size() - off)});
    // Idle rings re-register now; a ring taken from the pool meanwhile keeps its older set,
    // which stays valid because regions are only appended.
    std::lock_guard lk(mu_);
    for (auto& r : pool_) RegisterBuffersLocked(*r);
  }

 protected:
  Status SubmitImpl(std::span<IoOp> ops) override {
    std::unique_ptr<Ring> ring;
    {
      std::lock_guard lk(mu_);
      if (!pool_.empty()) {
        ring = std::move(pool_.back());
        pool_.pop_back();
      }
    }
    if (!ring) {
      auto r = NewRing();
      if (!r.ok()) return r.status();
      ring = std::move(r).value();
    }
    Status s = RunBatch(*ring, ops);
    std::lock_guard lk(mu_);
    pool_.push_back(std::move(ring));
    return s;
  }

  Status SyncImpl() override {
    for (int fd : fds_)
      if (fdatasync(fd) != 0) return Status::IoError(std::string("fdatasync: ") + strerror(errno));
    return Status::Ok();
  }

 private:
  Result<std::unique_ptr<Ring>> NewRing() {
    auto r = std::make_unique<Ring>();
    io_uring_params p{};
    if (uring_.sqpoll) {
      p.flags |= IORING_SETUP_SQPOLL;
      p.sq_thread_idle = uring_.sqpoll_idle_ms;
    }
    int rc = io_uring_queue_init_params(queue_depth(), &r->ring, &p);
    if (rc < 0)
      return Status::NotSupported(
          std::string(uring_.sqpoll ? "io_uring_queue_init with SQPOLL (needs Linux 5.11+, or "
                                      "CAP_SYS_ADMIN before): "
                                    : "io_uring_queue_init: ") +
          strerror(-rc));
    if (uring_.registered_files) {
      rc = io_uring_register_files(&r->ring, fds_.data(), unsigned(fds_.size()));
      if (rc < 0) {
        io_uring_queue_exit(&r->ring);
        return Status::NotSupported(std::string("io_uring_register_files (") +
                                    std::to_string(fds_.size()) +
                                    " segment files): " + strerror(-rc));
      }
      r->files = true;
    }
    std::shared_lock lk(regions_mu_);
    RegisterBuffersLocked(*r);
    return r;
  }

  // Caller holds regions_mu_.
  void RegisterBuffersLocked(Ring& r) {
    if (r.registered == regions_.size()) return;
    if (r.registered) io_uring_unregister_buffers(&r.ring);
    r.registered = 0;
    std::vector<iovec> iov;
    for (const Region& g : regions_) iov.push_back({g.base, g.len});
    if (io_uring_register_buffers(&r.ring, iov.data(), unsigned(iov.size())) == 0)
      r.registered = regions_.size();
  }

  // Index of the ring's fixed buffer holding [p, p+len), or -1.
  int RegionOf(const Ring& r, const std::byte* p, size_t len) const {
    for (size_t i = 0; i < r.registered; ++i)
      if (p >= regions_[i].base && p + len <= regions_[i].base + regions_[i].len) return int(i);
    return -1;
  }

  void Prep(Ring& r, io_uring_sqe* sqe, Inflight& f) {
    IoOp& op = *f.op;
    if (f.done == 0 && op.observer) op.observer->BeforeSubmit(op);
    const size_t seg = op.offset / segment_bytes();
    const int fd = r.files ? int(seg) : fds_[seg];  // a registered file is named by its index
    const uint64_t off = op.offset % segment_bytes() + f.done;
    std::byte* buf = op.buf + f.done;
    const unsigned len = unsigned(op.len - f.done);
    const int region = RegionOf(r, buf, len);
    if (region >= 0) CountFixedIo();
    if (op.kind == IoKind::kRead) {
      if (region >= 0)
        io_uring_prep_read_fixed(sqe, fd, buf, len, off, region);
      else
        io_uring_prep_read(sqe, fd, buf, len, off);
    } else {
      if (region >= 0)
        io_uring_prep_write_fixed(sqe, fd, buf, len, off, region);
      else
        io_uring_prep_write(sqe, fd, buf, len, off);
    }
    if (r.files) sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data(sqe, &f);
  }

  Status RunBatch(Ring& r, std::span<IoOp> ops) {
    std::vector<Inflight> st(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) st[i].op = &ops[i];
    Status first;
    size_t next = 0, inflight = 0;
    std::vector<Inflight*> resubmit;
    std::shared_lock regions_lk(regions_mu_);  // regions stay registered while SQEs use them
    while (next < st.size() || inflight > 0 || !resubmit.empty()) {
      // Fill the queue up to queue_depth.
      while (inflight < queue_depth() && (!resubmit.empty() || next < st.size())) {
        io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
        if (!sqe) break;  // SQ full: flush below
        Inflight* f;
        if (!resubmit.empty()) {
          f = resubmit.back();
          resubmit.pop_back();
        } else {
          f = &st[next++];
        }
        Prep(r, sqe, *f);
        ++inflight;
      }
      int rc = io_uring_submit_and_wait(&r.ring, 1);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return Status::IoError(std::string("io_uring_submit: ") + strerror(-rc));
      // Reap every completion that is ready.
      io_uring_cqe* cqe;
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&r.ring, head, cqe) {
        ++seen;
        --inflight;
        auto* f = static_cast<Inflight*>(io_uring_cqe_get_data(cqe));
        const int res = cqe->res;
        if (res < 0) {
          if (res == -EINTR || res == -EAGAIN) {
            resubmit.push_back(f);
            continue;
          }
          f->op->error = -res;
          std::string what = std::string(f->op->kind == IoKind::kRead ? "read" : "write") + " at " +
                             std::to_string(f->op->offset) + ": " + strerror(-res);
          if (first.ok()) first = res == -ENOSPC ? Status::NoSpace(what) : Status::IoError(what);
        } else if (res == 0) {
          f->op->error = EIO;
          if (first.ok())
            first = Status::IoError("short transfer at " + std::to_string(f->op->offset));
        } else {
          f->done += size_t(res);
          if (f->done < f->op->len)
            resubmit.push_back(f);
          else if (f->op->observer)
            f->op->observer->OnComplete(*f->op);
        }
      }
      io_uring_cq_advance(&r.ring, seen);
    }
    return first;
  }

  std::vector<int> fds_;
  const UringOptions uring_;
  std::mutex mu_;  // guards pool_
  std::vector<std::unique_ptr<Ring>> pool_;
  // Guards regions_ and buffer (re)registration. Batches hold it shared while they run, so
  // RegisterMemory waits for them. Lock order: regions_mu_, then mu_.
  std::shared_mutex regions_mu_;
  bool owns_fds_ = true;
  std::vector<Region> regions_;
};

}  // namespace

bool IoUringAvailable() {
  static const bool available = [] {
    io_uring ring;
    if (io_uring_queue_init(2, &ring, 0) != 0) return false;
    io_uring_queue_exit(&ring);
    return true;
  }();
  return available;
}

Result<std::unique_ptr<Device>> NewUringDevice(std::vector<int> fds, uint64_t segment_bytes,
                                               uint32_t queue_depth, const UringOptions& uring) {
  auto dev = std::make_unique<UringDevice>(std::move(fds), segment_bytes, queue_depth, uring);
  Status s = dev->Init();
  if (!s.ok()) {
    dev->DisownFds();  // the caller still owns the descriptors on failure
    return s;
  }
  return std::unique_ptr<Device>(std::move(dev));
}

}  // namespace strata::cachestore
