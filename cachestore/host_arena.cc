#include "cachestore/host_arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <bit>
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

Result<std::unique_ptr<HostArena>> HostArena::Create(uint64_t capacity, bool prefault) {
  capacity = capacity / 4096 * 4096;
  if (capacity == 0) return Status::InvalidArgument("host tier capacity must be >= 4096 bytes");
  int fd = memfd_create("strata-host-arena", MFD_CLOEXEC);
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
  return std::unique_ptr<HostArena>(new HostArena(fd, static_cast<std::byte*>(p), capacity));
}

HostArena::HostArena(int fd, std::byte* base, uint64_t capacity)
    : fd_(fd), base_(base), capacity_(capacity) {
  InsertFree(0, capacity);
}

HostArena::~HostArena() {
  munmap(base_, capacity_);
  close(fd_);
}

uint64_t HostArena::SizeClass(uint64_t size) {
  constexpr uint64_t kPage = 4096;
  if (size <= 8 * kPage) return size == 0 ? kPage : (size + kPage - 1) / kPage * kPage;
  // 8 classes per power of two.
  const int log2 = 63 - std::countl_zero(size);
  const uint64_t step = uint64_t(1) << (log2 - 3);
  return (size + step - 1) / step * step;
}

void HostArena::InsertFree(uint64_t off, uint64_t size) {
  free_by_offset_.emplace(off, size);
  free_by_size_.emplace(size, off);
}

void HostArena::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_by_offset_.erase(it);
}

std::optional<Extent> HostArena::Allocate(uint64_t size) {
  const uint64_t need = SizeClass(size);
  auto fit = free_by_size_.lower_bound({need, 0});
  if (fit == free_by_size_.end()) return std::nullopt;
  const auto [fsize, foff] = *fit;
  EraseFree(free_by_offset_.find(foff));
  if (fsize > need) InsertFree(foff + need, fsize - need);
  used_ += need;
  return Extent{foff, need};
}

void HostArena::Free(const Extent& e) {
  used_ -= e.size;
  uint64_t off = e.offset, size = e.size;
  auto next = free_by_offset_.lower_bound(off);
  if (next != free_by_offset_.end() && next->first == off + size) {
    size += next->second;
    EraseFree(next);
  }
  auto after = free_by_offset_.lower_bound(off);
  if (after != free_by_offset_.begin()) {
    auto prev = std::prev(after);
    if (prev->first + prev->second == off) {
      off = prev->first;
      size += prev->second;
      EraseFree(prev);
    }
  }
  InsertFree(off, size);
}

uint64_t HostArena::largest_free() const {
  return free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
}

}  // namespace strata::cachestore
