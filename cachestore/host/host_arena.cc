#include "cachestore/host/host_arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace strata::cachestore {
namespace {

#ifdef MADV_POPULATE_WRITE
constexpr int kMadvPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kMadvPopulateWrite = 23;  // Linux 5.14; older kernels fail it and we touch pages
#endif

}  // namespace

Result<std::unique_ptr<HostArena>> HostArena::Create(uint64_t capacity, bool prefault, bool seal) {
  capacity = capacity / 4096 * 4096;
  if (capacity == 0) return Status::InvalidArgument("host tier capacity must be >= 4096 bytes");
  int fd = memfd_create("strata-host-arena", MFD_CLOEXEC | (seal ? MFD_ALLOW_SEALING : 0));
  if (fd < 0) return Status::IoError(std::string("memfd_create: ") + std::strerror(errno));
  if (ftruncate(fd, off_t(capacity)) != 0) {
    int err = errno;
    close(fd);
    return Status::ResourceExhausted("host arena of " + std::to_string(capacity) +
                                     " bytes: " + std::strerror(err));
  }
  void* p = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd);
    return Status::ResourceExhausted("mmap host arena: " + std::string(std::strerror(err)));
  }
  if (prefault) {
    // Allocate every page now, then touch each from user space. Measured on the development
    // VM: first user-mode touches of a page cost a fault each even after the kernel populated
    // it, which made the first fill of the arena (and the checksum of the first records read
    // into it) ~10x slower than later ones.
    (void)madvise(p, capacity, kMadvPopulateWrite);  // older kernels: the loop faults them in
    auto* bytes = static_cast<volatile std::byte*>(p);
    for (uint64_t off = 0; off < capacity; off += 4096) bytes[off] = std::byte{0};
  }
  if (seal) {
    // Linux 5.1. From here on nobody maps the file writable or write()s it; the mapping above,
    // made before the seal, stays the only way to change its bytes.
    const int seals = F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    if (fcntl(fd, F_ADD_SEALS, seals) != 0) {
      int err = errno;
      munmap(p, capacity);
      close(fd);
      return Status::IoError("sealing the host arena (F_SEAL_FUTURE_WRITE, Linux 5.1): " +
                             std::string(std::strerror(err)));
    }
  }
  return std::unique_ptr<HostArena>(new HostArena(fd, static_cast<std::byte*>(p), capacity, seal));
}

HostArena::HostArena(int fd, std::byte* base, uint64_t capacity, bool sealed)
    : fd_(fd), sealed_(sealed), base_(base), capacity_(capacity), space_(capacity) {}

HostArena::~HostArena() {
  munmap(base_, capacity_);
  close(fd_);
}

}  // namespace strata::cachestore
