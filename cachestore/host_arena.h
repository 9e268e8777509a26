// The host tier's memory: one arena created with memfd_create and mapped shared, so that a
// daemon can hand the descriptor to a client process and a GPU can DMA into it.
//
// Allocation: extents of 4 KiB pages, sizes rounded up to a size class (4 KiB steps up to
// 32 KiB, then 8 classes per power of two: at most 12.5% internal waste), best fit over free
// extents with coalescing, so freed space is reused by objects of the same class first.
// Thread safety: none; the owner (the tiered store) serialises calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>

#include "strata/status.h"

namespace strata::cachestore {

struct Extent {
  uint64_t offset = 0;  // from the arena base
  uint64_t size = 0;    // a size class
};

class HostArena {
 public:
  static Result<std::unique_ptr<HostArena>> Create(uint64_t capacity, bool prefault = false);
  ~HostArena();
  HostArena(const HostArena&) = delete;
  HostArena& operator=(const HostArena&) = delete;

  static uint64_t SizeClass(uint64_t size);

  // A free extent of SizeClass(size) bytes, or nullopt when none is free.
  std::optional<Extent> Allocate(uint64_t size);
  void Free(const Extent& e);

  std::byte* base() const { return base_; }
  std::span<std::byte> region() const { return {base_, capacity_}; }
  int fd() const { return fd_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t used() const { return used_; }
  uint64_t largest_free() const;

 private:
  HostArena(int fd, std::byte* base, uint64_t capacity);
  void InsertFree(uint64_t off, uint64_t size);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it);

  int fd_;
  std::byte* base_;
  uint64_t capacity_;
  uint64_t used_ = 0;
  std::map<uint64_t, uint64_t> free_by_offset_;           // offset -> size
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;  // (size, offset)
};

}  // namespace strata::cachestore
