#include "cachestore/nvme/segment_log.h"

#include <cassert>

namespace strata::cachestore {

SegmentLog::SegmentLog(uint64_t segment_bytes, uint32_t segment_count)
    : segment_bytes_(segment_bytes),
      segs_(segment_count),
      reserve_(segment_count >= 4 ? 1 : 0),
      retired_(segment_count, false) {
  for (uint32_t i = 0; i < segment_count; ++i) free_.insert(free_.end(), i);
}

void SegmentLog::AddLive(uint64_t offset, uint64_t span) {
  Seg& s = segs_[SegmentOf(offset)];
  s.live += span;
  live_bytes_ += span;
  const uint64_t end = offset % segment_bytes_ + span;
  if (end > s.write_ptr) s.write_ptr = end;
}

void SegmentLog::FinishRecovery() {
  free_.clear();
  for (uint32_t i = 0; i < segs_.size(); ++i) {
    Seg& s = segs_[i];
    if (s.live > 0) {
      s.state = State::kSealed;
      s.sealed_at = ++seal_counter_;
    } else {
      s = Seg{};
      if (!retired_[i]) free_.insert(free_.end(), i);
    }
  }
  active_.reset();
}

std::optional<uint64_t> SegmentLog::Allocate(uint64_t span, bool use_reserve) {
  if (span > segment_bytes_) return std::nullopt;
  if (active_ && segs_[*active_].write_ptr + span > segment_bytes_) {
    segs_[*active_].state = State::kSealed;  // full: it becomes a reclaim candidate
    segs_[*active_].sealed_at = ++seal_counter_;
    active_.reset();
  }
  if (!active_) {
    if (!use_reserve && free_segments() <= reserve_) return std::nullopt;
    if (free_.empty()) return std::nullopt;
    const uint32_t i = *free_.begin();  // the lowest free segment
    free_.erase(free_.begin());
    segs_[i].state = State::kActive;
    segs_[i].write_ptr = 0;
    active_ = i;
  }
  Seg& s = segs_[*active_];
  const uint64_t offset = uint64_t(*active_) * segment_bytes_ + s.write_ptr;
  s.write_ptr += span;
  s.live += span;
  live_bytes_ += span;
  return offset;
}

void SegmentLog::Release(uint64_t offset, uint64_t span) {
  Seg& s = segs_[SegmentOf(offset)];
  assert(s.live >= span);
  s.live -= span;
  live_bytes_ -= span;
}

std::optional<uint32_t> SegmentLog::PickVictim() const {
  std::optional<uint32_t> best;
  for (uint32_t i = 0; i < segs_.size(); ++i) {
    const Seg& s = segs_[i];
    if (s.state != State::kSealed || s.readers > 0) continue;
    if (!best || s.live < segs_[*best].live ||
        (s.live == segs_[*best].live && s.sealed_at < segs_[*best].sealed_at))
      best = i;
  }
  return best;
}

void SegmentLog::FreeSegment(uint32_t seg) {
  Seg& s = segs_[seg];
  assert(s.live == 0 && s.readers == 0);
  if (active_ && *active_ == seg) active_.reset();
  live_bytes_ -= s.live;
  s = Seg{};
  if (!retired_[seg]) free_.insert(seg);
}

void SegmentLog::Retire(uint32_t seg) {
  if (seg >= segs_.size() || segs_[seg].state != State::kFree) return;
  retired_[seg] = true;
  free_.erase(seg);
}

}  // namespace strata::cachestore
