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

// Both trees keep their nodes: an extent that shrinks or grows is re-keyed through a node
// handle instead of being erased and inserted again, so allocation and free do not call malloc.
std::optional<Extent> ExtentAllocator::Allocate(uint64_t size) {
  const uint64_t need = SizeClass(size);
  auto fit = free_by_size_.lower_bound({need, 0});
  if (fit == free_by_size_.end()) return std::nullopt;
  const auto [fsize, foff] = *fit;
  auto by_size = free_by_size_.extract(fit);
  auto by_off = free_by_offset_.extract(foff);
  if (fsize > need) {  // the rest stays free, in the same nodes
    by_size.value() = {fsize - need, foff + need};
    by_off.key() = foff + need;
    by_off.mapped() = fsize - need;
    free_by_size_.insert(std::move(by_size));
    free_by_offset_.insert(std::move(by_off));
  }
  used_ += need;
  return Extent{foff, need};
}

void ExtentAllocator::Free(const Extent& e) {
  used_ -= e.size;
  uint64_t off = e.offset, size = e.size;
  // Reuse the nodes of a neighbour that merges with the freed extent, if any.
  decltype(free_by_offset_)::node_type off_node;
  decltype(free_by_size_)::node_type size_node;
  auto take = [&](std::map<uint64_t, uint64_t>::iterator it) {
    auto sn = free_by_size_.extract({it->second, it->first});
    auto on = free_by_offset_.extract(it);
    if (!off_node) {
      off_node = std::move(on);
      size_node = std::move(sn);
    }
  };
  auto next = free_by_offset_.lower_bound(off);
  if (next != free_by_offset_.end() && next->first == off + size) {
    size += next->second;
    take(next);
  }
  auto after = free_by_offset_.lower_bound(off);
  if (after != free_by_offset_.begin()) {
    auto prev = std::prev(after);
    if (prev->first + prev->second == off) {
      off = prev->first;
      size += prev->second;
      take(prev);
    }
  }
  if (!off_node) {
    InsertFree(off, size);
    return;
  }
  off_node.key() = off;
  off_node.mapped() = size;
  size_node.value() = {size, off};
  free_by_offset_.insert(std::move(off_node));
  free_by_size_.insert(std::move(size_node));
}

uint64_t ExtentAllocator::largest_free() const {
  return free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
}

}  // namespace strata::cachestore
