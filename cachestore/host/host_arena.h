// The host tier's memory: one arena created with memfd_create and mapped shared, so that a
// daemon can hand the descriptor to a client process and a GPU can DMA into it. Its space is
// managed by an ExtentAllocator (extent_allocator.h), which the arena only forwards to.
// A sealed arena (F_SEAL_FUTURE_WRITE, after the owner mapped it writable) can be mapped only
// read-only by whoever receives its descriptor: no writable shared mapping, no write(); the
// owner's own mapping stays writable.
// Thread safety: none; the owner (the tiered store) serialises calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "cachestore/host/extent_allocator.h"
#include "strata/status.h"

namespace strata::cachestore {

class HostArena {
 public:
  static Result<std::unique_ptr<HostArena>> Create(uint64_t capacity, bool prefault = false,
                                                   bool seal = false);
  ~HostArena();
  HostArena(const HostArena&) = delete;
  HostArena& operator=(const HostArena&) = delete;

  static uint64_t SizeClass(uint64_t size) { return ExtentAllocator::SizeClass(size); }

  // A free extent of SizeClass(size) bytes, or nullopt when none is free.
  std::optional<Extent> Allocate(uint64_t size) { return space_.Allocate(size); }
  void Free(const Extent& e) { space_.Free(e); }
  ExtentAllocator& space() { return space_; }

  std::byte* base() const { return base_; }
  std::span<std::byte> region() const { return {base_, capacity_}; }
  int fd() const { return fd_; }
  bool sealed() const { return sealed_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t used() const { return space_.used(); }
  uint64_t largest_free() const { return space_.largest_free(); }

 private:
  HostArena(int fd, std::byte* base, uint64_t capacity, bool sealed);

  int fd_;
  bool sealed_;
  std::byte* base_;
  uint64_t capacity_;
  ExtentAllocator space_;
};

}  // namespace strata::cachestore
