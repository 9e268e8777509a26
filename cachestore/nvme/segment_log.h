// Space management of the NVMe tier: the device is cut into segments; records are appended to
// the active segment, and space is reclaimed a whole segment at a time. This class does no I/O
// and keeps no record contents: it tracks per segment its state, write pointer, live bytes and
// in-flight readers.
// Thread safety: none; the tiered store serialises calls.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

namespace strata::cachestore {

class SegmentLog {
 public:
  SegmentLog(uint64_t segment_bytes, uint32_t segment_count);

  // Recovery: marks [offset, offset+span) as live. Call FinishRecovery once afterwards; then
  // segments holding live records are sealed and the others free.
  void AddLive(uint64_t offset, uint64_t span);
  void FinishRecovery();

  // Space for a record of `span` bytes (a multiple of 4 KiB, <= segment size) in the active
  // segment, opening a free segment when it is full. nullopt when no free segment is left. With
  // four or more segments, one free segment is held in reserve for records that reclaim moves
  // (use_reserve), so that reclaiming never needs the space it is about to free.
  std::optional<uint64_t> Allocate(uint64_t span, bool use_reserve = false);
  // A record at `offset` is no longer live.
  void Release(uint64_t offset, uint64_t span);

  // The sealed segment to reclaim next: least live bytes, then oldest; never one with readers.
  std::optional<uint32_t> PickVictim() const;
  // Returns a segment to the free list (its records must all have been released).
  void FreeSegment(uint32_t seg);
  // Takes a free segment out of use for good (it is on a drive that is missing): it is never
  // allocated, reclaimed or freed again, also across FinishRecovery.
  void Retire(uint32_t seg);
  bool retired(uint32_t seg) const { return retired_[seg]; }

  void AddReader(uint64_t offset) { ++segs_[SegmentOf(offset)].readers; }
  void RemoveReader(uint64_t offset) { --segs_[SegmentOf(offset)].readers; }

  uint32_t SegmentOf(uint64_t offset) const { return uint32_t(offset / segment_bytes_); }
  uint64_t segment_bytes() const { return segment_bytes_; }
  uint32_t segment_count() const { return uint32_t(segs_.size()); }
  uint32_t free_segments() const { return uint32_t(free_.size()); }
  uint64_t live_bytes() const { return live_bytes_; }

 private:
  enum class State : uint8_t { kFree, kActive, kSealed };
  struct Seg {
    State state = State::kFree;
    uint64_t write_ptr = 0;  // bytes used from the segment start
    uint64_t live = 0;       // bytes of live records
    uint64_t sealed_at = 0;  // order in which segments were sealed
    uint32_t readers = 0;
  };

  uint64_t segment_bytes_;
  std::vector<Seg> segs_;
  std::optional<uint32_t> active_;
  uint64_t seal_counter_ = 0;
  uint64_t live_bytes_ = 0;
  uint32_t reserve_ = 0;
  std::set<uint32_t> free_;  // free segments; the lowest is opened next
  std::vector<bool> retired_;
};

}  // namespace strata::cachestore
