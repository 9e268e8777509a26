// The host tier's space: extents of 4 KiB pages, sizes rounded up to a size class (4 KiB steps
// up to 32 KiB, then 8 classes per power of two: at most 12.5% internal waste), best fit over
// free extents with coalescing, so freed space is reused by objects of the same class first.
// Pure bookkeeping: it maps nothing, so the simulator uses it as the real store does.
// Thread safety: none; the owner serialises calls.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>

namespace strata::cachestore {

struct Extent {
  uint64_t offset = 0;  // from the arena base
  uint64_t size = 0;    // a size class
};

class ExtentAllocator {
 public:
  explicit ExtentAllocator(uint64_t capacity);

  static uint64_t SizeClass(uint64_t size);

  // A free extent of SizeClass(size) bytes, or nullopt when none is free.
  std::optional<Extent> Allocate(uint64_t size);
  void Free(const Extent& e);

  uint64_t capacity() const { return capacity_; }
  uint64_t used() const { return used_; }
  uint64_t largest_free() const;

 private:
  void InsertFree(uint64_t off, uint64_t size);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it);

  uint64_t capacity_;
  uint64_t used_ = 0;
  std::map<uint64_t, uint64_t> free_by_offset_;           // offset -> size
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;  // (size, offset)
};

}  // namespace strata::cachestore
