#include "cachestore/host/extent_allocator.h"

#include <bit>
#include <iterator>

namespace strata::cachestore {

ExtentAllocator::ExtentAllocator(uint64_t capacity) : capacity_(capacity) {
  if (capacity) InsertFree(0, capacity);
}

uint64_t ExtentAllocator::SizeClass(uint64_t size) {
  constexpr uint64_t kPage = 4096;
  if (size <= 8 * kPage) return size == 0 ? kPage : (size + kPage - 1) / kPage * kPage;
  // 8 classes per power of two.
  const int log2 = 63 - std::countl_zero(size);
  const uint64_t step = uint64_t(1) << (log2 - 3);
  return (size + step - 1) / step * step;
}

void ExtentAllocator::InsertFree(uint64_t off, uint64_t size) {
  free_by_offset_.emplace(off, size);
  free_by_size_.emplace(size, off);
}

void ExtentAllocator::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_by_offset_.erase(it);
}

std::optional<Extent> ExtentAllocator::Allocate(uint64_t size) {
  const uint64_t need = SizeClass(size);
  auto fit = free_by_size_.lower_bound({need, 0});
  if (fit == free_by_size_.end()) return std::nullopt;
  const auto [fsize, foff] = *fit;
  EraseFree(free_by_offset_.find(foff));
  if (fsize > need) InsertFree(foff + need, fsize - need);
  used_ += need;
  return Extent{foff, need};
}

void ExtentAllocator::Free(const Extent& e) {
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

uint64_t ExtentAllocator::largest_free() const {
  return free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
}

}  // namespace strata::cachestore
