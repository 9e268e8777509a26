// The placement core's side of lower-tier I/O: which records to write, read, move and drop,
// and the bookkeeping around the tier's transfers (which run with the core's lock released).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "cachestore/nvme/record.h"
#include "cachestore/placement/placement_core.h"

namespace strata::cachestore {

IndexEntry PlacementCore::IndexEntryOf(const ObjectKey& key, uint64_t fingerprint,
                                       uint64_t raw_size, const LowerLoc& at,
                                       uint64_t last_access) {
  IndexEntry ie;
  ie.key = key;
  ie.codec = at.codec;
  ie.fingerprint = fingerprint;
  ie.sequence = at.sequence;
  ie.offset = at.offset;
  ie.raw_size = raw_size;
  ie.stored_size = at.stored_size;
  ie.checksum = at.checksum;
  ie.last_access = last_access;
  return ie;
}

Status PlacementCore::WriteRecords(std::unique_lock<std::mutex>& lk,
                                   const std::vector<Entry*>& batch, WriteKind kind) {
  ++writes_inflight_;
  std::vector<RecordIo> ios(batch.size());
  std::vector<const CacheLayout*> thin(batch.size(), nullptr);
  std::vector<bool> covered(batch.size(), false);  // thinning found the checkpoint present
  // Host copies to verify before they are written (host_checksums): expected sums.
  std::vector<std::optional<uint64_t>> expect(batch.size());
  std::vector<bool> changed(batch.size(), false);  // the host copy failed verification
  for (size_t i = 0; i < batch.size(); ++i) {
    Entry& e = *batch[i];
    RecordIo& io = ios[i];
    io.key = e.key;
    io.fingerprint = e.fingerprint;
    io.raw_size = e.raw_size;
    io.host_offset = e.ext.offset;
    if (e.host_summed) expect[i] = e.host_sum;
    if (kind == WriteKind::kDemote) thin[i] = ThinLayout(e);
    if (thin[i]) {
      // The block's checkpoint, unless it has one already: then the SWA object just goes.
      Entry* have = Find(ObjectKey{e.key.ns, e.key.block, Family::kCheckpoint}, e.fingerprint);
      if (have) {
        covered[i] = true;
        io.status = Status::FailedPrecondition("the block's checkpoint is present");
        continue;
      }
      io.key.family = Family::kCheckpoint;
      io.raw_size = thin[i]->FamilyBlockBytes(Family::kCheckpoint);
      io.thin_from_swa = thin[i];
    }
  }
  lk.unlock();

  // 1. Verify and encode (no lock: the host copies of entries flagged `writing` do not move).
  // A copy changed since its checksum was taken (a client wrote into the shared arena after
  // Commit) is never written.
  for (size_t i = 0; i < ios.size(); ++i) {
    if (!expect[i] || !ios[i].status.ok()) continue;
    const Entry& e = *batch[i];
    if (HostSum(e.ext, e.raw_size) != *expect[i]) {
      changed[i] = true;
      ios[i].status = Status::Corruption("host copy changed after it was stored");
    }
  }
  opt_.lower->Encode(ios);

  // 2. Allocate space (reclaiming segments as needed) and sequence numbers.
  lk.lock();
  std::vector<bool> allocated(ios.size(), false);
  for (size_t i = 0; i < ios.size(); ++i) {
    RecordIo& io = ios[i];
    if (!io.status.ok()) continue;
    const uint64_t span = RecordSpan(io.stored_size);
    std::optional<uint64_t> off = log_->Allocate(span);
    while (!off) {
      Status r = ReclaimSegment();
      if (!r.ok()) break;
      off = log_->Allocate(span);
    }
    if (!off) {
      io.status = Status::NoSpace("NVMe tier full: no segment can be reclaimed");
      continue;
    }
    io.offset = *off;
    allocated[i] = true;
    io.sequence = next_sequence_++;
    log_->AddReader(io.offset);  // keeps the segment from being reclaimed under the write
  }
  lk.unlock();

  // 3. I/O.
  std::vector<RecordIo*> to_write;
  std::vector<RecordIo> writes;
  std::vector<size_t> write_of;
  for (size_t i = 0; i < ios.size(); ++i)
    if (allocated[i]) {
      writes.push_back(std::move(ios[i]));
      write_of.push_back(i);
    }
  if (!writes.empty()) (void)opt_.lower->Write(writes);
  for (size_t j = 0; j < writes.size(); ++j) ios[write_of[j]] = std::move(writes[j]);

  // 4. Publish: index entries first; only records the index accepted become visible.
  lk.lock();
  const uint64_t now = opt_.clock->NowSeconds();
  std::vector<IndexEntry> index_puts;
  for (size_t i = 0; i < ios.size(); ++i) {
    const RecordIo& io = ios[i];
    if (!allocated[i] || !io.status.ok() || batch[i]->doomed) continue;
    index_puts.push_back(
        IndexEntryOf(io.key, io.fingerprint, io.raw_size,
                     LowerLoc{io.offset, io.stored_size, io.checksum, io.sequence, io.codec},
                     thin[i] ? now : batch[i]->last_access));
  }
  if (!index_puts.empty()) {
    if (Status is = opt_.index->Put(index_puts); !is.ok()) {
      // Not findable after a restart, so not durable: the copies stay dirty.
      for (size_t i = 0; i < ios.size(); ++i)
        if (allocated[i] && ios[i].status.ok() && !batch[i]->doomed) ios[i].status = is;
    }
  }
  Status first;
  for (size_t i = 0; i < ios.size(); ++i) {
    Entry& e = *batch[i];
    RecordIo& io = ios[i];
    if (covered[i]) {
      e.dirty = false;  // the block's checkpoint covers it: nothing to write
      Log(DecisionKind::kThin, Tier::kHost, Tier::kNvme, e, 0);
      continue;
    }
    if (allocated[i]) log_->RemoveReader(io.offset);
    if (changed[i]) {
      // Not a write error: the object is dropped (demotion drops a copy still dirty; Flush
      // skips it), counted, and never served again.
      if (!e.host_bad) {
        counters_.host_copies_corrupt.fetch_add(1, std::memory_order_relaxed);
        Log(DecisionKind::kCorrupt, Tier::kHost, Tier::kNone, e, e.raw_size);
        spdlog::warn("strata: host copy of {}/{} changed after it was stored: dropped",
                     e.key.block.ToHex(), FamilyName(e.key.family));
      }
      e.host_bad = true;
      continue;
    }
    if (!io.status.ok()) {
      if (allocated[i]) log_->Release(io.offset, RecordSpan(io.stored_size));
      Log(DecisionKind::kWriteFailed, Tier::kHost, Tier::kNvme, e, io.raw_size);
      if (first.ok()) first = io.status;
      continue;
    }
    if (e.doomed) {  // replaced or deleted meanwhile: the record is garbage
      log_->Release(io.offset, RecordSpan(io.stored_size));
      continue;
    }
    counters_.nvme_records_written.fetch_add(1, std::memory_order_relaxed);
    counters_.nvme_bytes_written.fetch_add(RecordSpan(io.stored_size), std::memory_order_relaxed);
    Entry* target = &e;
    if (thin[i]) {
      // The record is the block's checkpoint: it becomes that object (lower tier only).
      Entry* have = Find(io.key, io.fingerprint);
      if (have) {  // put meanwhile: the newer object wins
        log_->Release(io.offset, RecordSpan(io.stored_size));
        e.dirty = false;
        continue;
      }
      Entry* c = NewEntry();
      c->key = io.key;
      c->fingerprint = io.fingerprint;
      c->raw_size = io.raw_size;
      c->last_access = now;
      c->depth = e.depth;
      c->value_per_byte = e.value_per_byte;
      target = c;
      blocks_.at(BlockId{io.key.ns, io.key.block}).fam[int(Family::kCheckpoint)] = c;
      e.dirty = false;  // its content lives on as the checkpoint; the caller drops it
      counters_.swa_thinned.fetch_add(1, std::memory_order_relaxed);
      Log(DecisionKind::kThin, Tier::kHost, Tier::kNvme, e, io.raw_size);
    } else {
      Log(kind == WriteKind::kDemote ? DecisionKind::kDemote : DecisionKind::kWriteBack,
          Tier::kHost, Tier::kNvme, e, e.raw_size);
    }
    if (target->on_nvme) DropNvmeCopy(*target, nullptr);  // the new index entry replaced it
    Account(*target, -1);
    target->on_nvme = true;
    Account(*target, +1);
    target->nv = LowerLoc{io.offset, io.stored_size, io.checksum, io.sequence, io.codec};
    SegInsert(target);
    target->dirty = false;
    target->hits = 0;
  }
  for (Entry* e : batch) e->writing = false;
  --writes_inflight_;
  io_cv_.notify_all();
  return first;
}

void PlacementCore::LoadRecords(std::unique_lock<std::mutex>& lk, const std::vector<Entry*>& batch,
                                std::vector<Status>& results) {
  std::vector<RecordIo> ios(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const Entry& e = *batch[i];
    RecordIo& io = ios[i];
    io.key = e.key;
    io.fingerprint = e.fingerprint;
    io.sequence = e.nv.sequence;
    io.raw_size = e.raw_size;
    io.host_offset = e.ext.offset;
    io.stored_size = e.nv.stored_size;
    io.codec = e.nv.codec;
    io.checksum = e.nv.checksum;
    io.offset = e.nv.offset;
  }
  lk.unlock();
  (void)opt_.lower->Read(ios);
  for (size_t i = 0; i < ios.size(); ++i) {
    results[i] = ios[i].status;
    if (results[i].ok()) {
      counters_.nvme_records_read.fetch_add(1, std::memory_order_relaxed);
      counters_.nvme_bytes_read.fetch_add(RecordSpan(ios[i].stored_size),
                                          std::memory_order_relaxed);
    }
  }
  lk.lock();
}

Status PlacementCore::ReclaimSegment() {
  auto victim = log_->PickVictim();
  if (!victim) return Status::NoSpace("NVMe tier full: every segment is active or in use");
  if (opt_.log) {
    Decision d;
    d.kind = DecisionKind::kReclaim;
    d.tier = Tier::kNvme;
    d.segment = *victim;
    opt_.log->Add(d);
  }
  // Members in a fixed order (by sequence), so that a simulation decides as the store does.
  std::vector<Entry*> members = SegMembers(*victim);

  // Records read since they were last written move to another segment (the reserve if need
  // be), byte for byte: header and payload are unchanged, so the copy verifies like the
  // original. Their read count starts again, so a record moves again only if it is read again.
  // This runs under the core's mutex: reclaim is rare and the moves are bounded.
  std::vector<Entry*> movers;
  std::vector<RecordMove> moves;
  uint64_t budget = log_->segment_bytes() / 2;
  for (Entry* e : members) {
    const uint64_t span = e->nv.span();
    if (e->hits == 0 || e->doomed || e->writing || span > budget) continue;
    auto to = log_->Allocate(span, /*use_reserve=*/true);
    if (!to) break;
    movers.push_back(e);
    moves.push_back(RecordMove{e->nv.offset, *to, span, false});
    budget -= span;
  }
  if (!moves.empty()) {
    opt_.lower->Copy(moves);
    std::vector<IndexEntry> puts;
    for (size_t i = 0; i < moves.size(); ++i) {
      Entry* e = movers[i];
      if (!moves[i].ok) continue;
      LowerLoc at = e->nv;
      at.offset = moves[i].to;
      puts.push_back(IndexEntryOf(e->key, e->fingerprint, e->raw_size, at, e->last_access));
    }
    if (!puts.empty() && !(opt_.index->Put(puts).ok() && opt_.index->Sync().ok()))
      for (RecordMove& m : moves) m.ok = false;
    for (size_t i = 0; i < moves.size(); ++i) {
      Entry* e = movers[i];
      if (!moves[i].ok) {
        log_->Release(moves[i].to, moves[i].span);
        continue;
      }
      log_->Release(e->nv.offset, e->nv.span());
      SegErase(e);
      e->nv.offset = moves[i].to;
      SegInsert(e);
      e->hits = 0;
      counters_.records_relocated.fetch_add(1, std::memory_order_relaxed);
      Log(DecisionKind::kRelocate, Tier::kNvme, Tier::kNvme, *e, e->raw_size);
    }
  }

  std::vector<Entry*> rest = SegMembers(*victim);
  std::vector<ObjectKey> deletes;
  for (Entry* e : rest) {
    const bool hot = e->hits > 0;
    DropNvmeCopy(*e, &deletes);
    if (e->resident && hot && !e->doomed) {
      // Hot, in DRAM, and no room left to move it: rewritten at the next flush or eviction.
      // Until then it is not durable (counted; FlushWrites writes it before it returns).
      e->dirty = true;
      ++unpersisted_by_reclaim_;
      counters_.records_unpersisted_by_reclaim.fetch_add(1, std::memory_order_relaxed);
      counters_.records_relocated.fetch_add(1, std::memory_order_relaxed);
      Log(DecisionKind::kRelocate, Tier::kNvme, Tier::kHost, *e, e->raw_size);
    } else {
      counters_.records_dropped_by_reclaim.fetch_add(1, std::memory_order_relaxed);
      Log(DecisionKind::kReclaimDrop, Tier::kNvme, Tier::kNone, *e, e->raw_size);
      EraseEntryIfEmpty(e);
    }
  }
  Status s = opt_.index->Delete(deletes);
  if (!s.ok()) return s.WithContext("reclaim");
  log_->FreeSegment(*victim);
  counters_.segments_reclaimed.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

// --- recovery --------------------------------------------------------------------------------

void PlacementCore::AddRecovered(const IndexEntry& ie) {
  std::lock_guard lk(mu_);
  Entry* e = NewEntry();
  e->key = ie.key;
  e->fingerprint = ie.fingerprint;
  e->raw_size = ie.raw_size;
  e->on_nvme = true;
  e->nv = LowerLoc{ie.offset, ie.stored_size, ie.checksum, ie.sequence, ie.codec};
  e->last_access = ie.last_access;
  e->hits = ie.hits;
  Account(*e, +1);
  log_->AddLive(ie.offset, e->nv.span());
  SegInsert(e);
  SlotFor(ie.key, PutHints{}).fam[int(ie.key.family)] = e;
  next_sequence_ = std::max(next_sequence_, ie.sequence + 1);
}

void PlacementCore::FinishRecovery(uint64_t recovered, uint64_t dropped) {
  std::lock_guard lk(mu_);
  log_->FinishRecovery();
  counters_.recovered_records.store(recovered);
  counters_.recovery_dropped.store(dropped);
}

void PlacementCore::ResetLower() {
  std::lock_guard lk(mu_);
  blocks_.clear();
  doomed_.clear();
  pool_.clear();
  free_slots_.clear();
  seg_members_.assign(seg_members_.size(), nullptr);
  stats_ = StoreStats{};
  log_ =
      std::make_unique<SegmentLog>(opt_.config.nvme.segment_bytes, uint32_t(seg_members_.size()));
  for (uint32_t seg : opt_.retired_segments) log_->Retire(seg);
  next_sequence_ = 1;
}

uint64_t PlacementCore::next_sequence() const {
  std::lock_guard lk(mu_);
  return next_sequence_;
}

void PlacementCore::RaiseNextSequence(uint64_t at_least) {
  std::lock_guard lk(mu_);
  next_sequence_ = std::max(next_sequence_, at_least);
}

}  // namespace strata::cachestore
