// The tiered store's NVMe half: writing records, loading them, recovery and segment reclaim.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>

#include "cachestore/codec.h"
#include "cachestore/record.h"
#include "cachestore/tiered_store.h"

namespace strata::cachestore {
namespace {

// The I/Os of a batch of records. Each record is split into I/Os of at most max_io bytes;
// `before(r)` runs just before the first I/O of record r is submitted and `done(r)` once all of
// its I/Os have completed, both on the submitting thread, so per-record CPU work (checksums,
// headers, decoding) overlaps the transfer of the records around it.
class RecordBatch final : public IoObserver {
 public:
  using Hook = std::function<void(size_t record)>;
  RecordBatch(size_t records, Hook before, Hook done)
      : started_(records, false),
        remaining_(records, 0),
        before_(std::move(before)),
        done_(std::move(done)) {}

  void Add(IoKind kind, uint64_t offset, std::byte* buf, uint64_t len, uint64_t max_io,
           size_t record) {
    for (uint64_t d = 0; d < len; d += max_io) {
      IoOp op{kind, offset + d, buf + d, size_t(std::min(max_io, len - d))};
      op.observer = this;
      op.tag = uint32_t(record);
      ops_.push_back(op);
      ++remaining_[record];
    }
  }

  // Submits every I/O (timing it into `micros`); afterwards Complete(r) tells whether all of
  // record r's I/Os succeeded.
  Status Submit(Device& dev, std::atomic<uint64_t>& micros) {
    if (ops_.empty()) return Status::Ok();
    const auto t0 = std::chrono::steady_clock::now();
    Status s = dev.Submit(ops_);
    micros.fetch_add(uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - t0)
                                  .count()),
                     std::memory_order_relaxed);
    return s;
  }
  bool Complete(size_t record) const { return started_[record] && remaining_[record] == 0; }

  void BeforeSubmit(IoOp& op) override {
    if (started_[op.tag]) return;
    started_[op.tag] = true;
    if (before_) before_(op.tag);
  }
  void OnComplete(IoOp& op) override {
    if (--remaining_[op.tag] == 0 && done_) done_(op.tag);
  }

 private:
  std::vector<IoOp> ops_;
  std::vector<bool> started_;
  std::vector<uint32_t> remaining_;
  Hook before_, done_;
};

Status CheckHeader(const RecordHeader& h, const ObjectKey& key, uint64_t fingerprint,
                   uint64_t sequence, uint64_t raw_size, uint64_t stored_size, CodecKind codec,
                   uint64_t checksum) {
  if (h.key != key) return Status::Corruption("record belongs to another key");
  if (h.sequence != sequence) return Status::Corruption("record sequence differs from index");
  if (h.fingerprint != fingerprint || h.raw_size != raw_size || h.stored_size != stored_size ||
      h.codec != codec || h.payload_checksum != checksum)
    return Status::Corruption("record header differs from index entry");
  return Status::Ok();
}

}  // namespace

Status TieredStore::WriteRecords(std::unique_lock<std::mutex>& lk,
                                 const std::vector<Entry*>& batch) {
  struct Pending {
    Entry* e;
    std::byte* rec = nullptr;  // header + payload, 4 KiB aligned
    AlignedBuffer staging;     // used when the payload was compressed
    CodecKind codec = CodecKind::kNone;
    uint64_t stored = 0, checksum = 0, offset = 0, sequence = 0;
    bool allocated = false;
    Status st;
  };
  ++writes_inflight_;
  std::vector<Pending> pend(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    pend[i].e = batch[i];
  }
  lk.unlock();

  // 1. Encode (no lock: the host copies of entries flagged `writing` do not move).
  for (Pending& p : pend) {
    Entry& e = *p.e;
    std::byte* host = arena_->base() + e.ext.offset;
    const std::span<const std::byte> raw(host + kRecordHeaderSize, e.raw_size);
    const CodecKind want = config_.codec[int(e.key.family)];
    p.rec = host;
    p.stored = e.raw_size;
    if (want != CodecKind::kNone) {
      AlignedBuffer buf(RecordSpan(MaxEncodedSize(e.raw_size)));
      if (!buf.data()) {
        p.st = Status::ResourceExhausted("staging buffer");
        continue;
      }
      Encoded enc = EncodeRecord(want, raw, buf.span().subspan(kRecordHeaderSize));
      if (enc.codec != CodecKind::kNone) {
        p.codec = enc.codec;
        p.stored = enc.size;
        std::memset(buf.data() + kRecordHeaderSize + enc.size, 0,
                    RecordSpan(enc.size) - kRecordHeaderSize - enc.size);
        p.staging = std::move(buf);
        p.rec = p.staging.data();
      }
    }
  }

  // 2. Allocate space (reclaiming segments as needed) and sequence numbers.
  lk.lock();
  for (Pending& p : pend) {
    if (!p.st.ok()) continue;
    const uint64_t span = RecordSpan(p.stored);
    std::optional<uint64_t> off = log_->Allocate(span);
    while (!off) {
      Status r = ReclaimSegment();
      if (!r.ok()) break;
      off = log_->Allocate(span);
    }
    if (!off) {
      p.st = Status::NoSpace("NVMe tier full: no segment can be reclaimed");
      continue;
    }
    p.offset = *off;
    p.allocated = true;
    p.sequence = next_sequence_++;
    log_->AddReader(p.offset);  // keeps the segment from being reclaimed under the write
  }
  lk.unlock();

  // 3. I/O. Each record's checksum and header are made just before its first I/O goes out,
  // while earlier records are still in flight.
  RecordBatch io_batch(
      pend.size(),
      [&](size_t i) {
        Pending& p = pend[i];
        p.checksum = PayloadChecksum({p.rec + kRecordHeaderSize, p.stored});
        RecordHeader h;
        h.key = p.e->key;
        h.codec = p.codec;
        h.fingerprint = p.e->fingerprint;
        h.sequence = p.sequence;
        h.raw_size = p.e->raw_size;
        h.stored_size = p.stored;
        h.payload_checksum = p.checksum;
        EncodeRecordHeader(h, std::span<std::byte, kRecordHeaderSize>(p.rec, kRecordHeaderSize));
      },
      nullptr);
  for (size_t i = 0; i < pend.size(); ++i)
    if (pend[i].allocated)
      io_batch.Add(IoKind::kWrite, pend[i].offset, pend[i].rec, RecordSpan(pend[i].stored),
                   config_.nvme.max_io_bytes, i);
  Status io = io_batch.Submit(*device_, counters_.nvme_write_us);
  for (size_t i = 0; i < pend.size(); ++i)
    if (pend[i].allocated && pend[i].st.ok() && !io_batch.Complete(i))
      pend[i].st = io.ok() ? Status::IoError("write failed") : io;

  // 4. Publish: index entries first; only records the index accepted become visible.
  lk.lock();
  std::vector<IndexEntry> index_puts;
  for (Pending& p : pend) {
    if (!p.st.ok() || p.e->doomed) continue;
    IndexEntry ie;
    ie.key = p.e->key;
    ie.codec = p.codec;
    ie.fingerprint = p.e->fingerprint;
    ie.sequence = p.sequence;
    ie.offset = p.offset;
    ie.raw_size = p.e->raw_size;
    ie.stored_size = p.stored;
    ie.checksum = p.checksum;
    ie.last_access = p.e->last_access;
    index_puts.push_back(ie);
  }
  if (Status is = index_->Put(index_puts); !is.ok()) {
    // Not findable after a restart, so not durable: the copies stay dirty.
    for (Pending& p : pend)
      if (p.st.ok() && !p.e->doomed) p.st = is;
  }
  Status first;
  for (Pending& p : pend) {
    Entry& e = *p.e;
    if (p.allocated) log_->RemoveReader(p.offset);
    if (!p.st.ok()) {
      if (p.allocated) log_->Release(p.offset, RecordSpan(p.stored));
      if (first.ok()) first = p.st;
      continue;
    }
    if (e.doomed) {  // replaced or deleted meanwhile: the record is garbage
      log_->Release(p.offset, RecordSpan(p.stored));
      continue;
    }
    if (e.on_nvme) DropNvmeCopy(e, nullptr);  // the new index entry replaced the old one
    e.on_nvme = true;
    e.nv = NvmeLoc{p.offset, p.stored, p.checksum, p.sequence, p.codec};
    seg_members_[log_->SegmentOf(p.offset)].insert(&e);
    e.dirty = false;
    e.hits = 0;
    counters_.nvme_records_written.fetch_add(1, std::memory_order_relaxed);
    counters_.nvme_bytes_written.fetch_add(RecordSpan(p.stored), std::memory_order_relaxed);
  }
  for (Entry* e : batch) e->writing = false;
  --writes_inflight_;
  io_cv_.notify_all();
  return first;
}

void TieredStore::LoadRecords(std::unique_lock<std::mutex>& lk, const std::vector<Entry*>& batch,
                              std::vector<Status>& results) {
  struct Pending {
    Entry* e;
    NvmeLoc nv;
    std::byte* host;
    std::byte* rec;
    AlignedBuffer staging;
  };
  std::vector<Pending> pend;
  pend.reserve(batch.size());
  for (Entry* e : batch)
    pend.push_back(Pending{e, e->nv, arena_->base() + e->ext.offset, nullptr, {}});
  lk.unlock();

  // Each record is verified (and decoded) as soon as its own I/Os complete.
  RecordBatch io_batch(pend.size(), nullptr, [&](size_t i) {
    Pending& p = pend[i];
    auto h =
        DecodeRecordHeader(std::span<const std::byte, kRecordHeaderSize>(p.rec, kRecordHeaderSize));
    if (!h.ok()) {
      results[i] = Status::Corruption("record header: " + h.status().message());
      return;
    }
    Status s = CheckHeader(*h, p.e->key, p.e->fingerprint, p.nv.sequence, p.e->raw_size,
                           p.nv.stored_size, p.nv.codec, p.nv.checksum);
    if (s.ok() && PayloadChecksum({p.rec + kRecordHeaderSize, p.nv.stored_size}) != p.nv.checksum)
      s = Status::Corruption("payload checksum mismatch");
    if (s.ok() && p.nv.codec != CodecKind::kNone)
      s = DecodeRecord(p.nv.codec, {p.rec + kRecordHeaderSize, p.nv.stored_size},
                       {p.host + kRecordHeaderSize, p.e->raw_size});
    results[i] = s;
    if (s.ok()) {
      counters_.nvme_records_read.fetch_add(1, std::memory_order_relaxed);
      counters_.nvme_bytes_read.fetch_add(p.nv.span(), std::memory_order_relaxed);
    }
  });
  for (size_t i = 0; i < pend.size(); ++i) {
    Pending& p = pend[i];
    const uint64_t span = p.nv.span();
    if (p.nv.codec == CodecKind::kNone) {
      p.rec = p.host;  // straight into the arena
    } else {
      p.staging = AlignedBuffer(span);
      p.rec = p.staging.data();
      if (!p.rec) {
        results[i] = Status::ResourceExhausted("staging buffer");
        continue;
      }
    }
    io_batch.Add(IoKind::kRead, p.nv.offset, p.rec, span, config_.nvme.max_io_bytes, i);
  }
  Status io = io_batch.Submit(*device_, counters_.nvme_read_us);
  for (size_t i = 0; i < pend.size(); ++i)
    if (results[i].ok() && !io_batch.Complete(i))
      results[i] =
          Status::IoError("read failed: " + (io.ok() ? std::string("I/O error") : io.ToString()));
  lk.lock();
}

Status TieredStore::ReclaimSegment() {
  auto victim = log_->PickVictim();
  if (!victim) return Status::NoSpace("NVMe tier full: every segment is active or in use");
  std::vector<Entry*> members(seg_members_[*victim].begin(), seg_members_[*victim].end());

  // Records read since they were last written move to another segment (the reserve if need
  // be), byte for byte: header and payload are unchanged, so the copy verifies like the
  // original. Their read count starts again, so a record moves again only if it is read again.
  // This runs under the store's mutex: reclaim is rare and the moves are bounded.
  struct Move {
    Entry* e;
    uint64_t to;
  };
  std::vector<Move> moves;
  uint64_t budget = log_->segment_bytes() / 2, total = 0;
  for (Entry* e : members) {
    const uint64_t span = e->nv.span();
    if (e->hits == 0 || e->doomed || e->writing || span > budget) continue;
    auto to = log_->Allocate(span, /*use_reserve=*/true);
    if (!to) break;
    moves.push_back({e, *to});
    budget -= span;
    total += span;
  }
  std::vector<bool> moved(moves.size(), false);
  if (!moves.empty()) {
    AlignedBuffer buf(total);
    std::vector<uint64_t> at(moves.size());
    RecordBatch reads(moves.size(), nullptr, nullptr), writes(moves.size(), nullptr, nullptr);
    uint64_t off = 0;
    for (size_t i = 0; i < moves.size(); ++i) {
      at[i] = off;
      reads.Add(IoKind::kRead, moves[i].e->nv.offset, buf.data() + off, moves[i].e->nv.span(),
                config_.nvme.max_io_bytes, i);
      writes.Add(IoKind::kWrite, moves[i].to, buf.data() + off, moves[i].e->nv.span(),
                 config_.nvme.max_io_bytes, i);
      off += moves[i].e->nv.span();
    }
    if (buf.data()) {
      (void)reads.Submit(*device_, counters_.nvme_read_us);
      (void)writes.Submit(*device_, counters_.nvme_write_us);
    }
    // Durable at the new place before the old one can be overwritten.
    const bool synced = buf.data() && device_->Sync().ok();
    std::vector<IndexEntry> puts;
    for (size_t i = 0; i < moves.size(); ++i) {
      Entry* e = moves[i].e;
      moved[i] = synced && reads.Complete(i) && writes.Complete(i);
      if (!moved[i]) continue;
      IndexEntry ie;
      ie.key = e->key;
      ie.codec = e->nv.codec;
      ie.fingerprint = e->fingerprint;
      ie.sequence = e->nv.sequence;
      ie.offset = moves[i].to;
      ie.raw_size = e->raw_size;
      ie.stored_size = e->nv.stored_size;
      ie.checksum = e->nv.checksum;
      ie.last_access = e->last_access;
      puts.push_back(ie);
    }
    if (!puts.empty() && !(index_->Put(puts).ok() && index_->Sync().ok()))
      std::fill(moved.begin(), moved.end(), false);
    for (size_t i = 0; i < moves.size(); ++i) {
      Entry* e = moves[i].e;
      if (!moved[i]) {
        log_->Release(moves[i].to, e->nv.span());
        continue;
      }
      log_->Release(e->nv.offset, e->nv.span());
      seg_members_[*victim].erase(e);
      e->nv.offset = moves[i].to;
      seg_members_[log_->SegmentOf(e->nv.offset)].insert(e);
      e->hits = 0;
      counters_.records_relocated.fetch_add(1, std::memory_order_relaxed);
    }
  }

  std::vector<ObjectKey> deletes;
  for (Entry* e : std::vector<Entry*>(seg_members_[*victim].begin(), seg_members_[*victim].end())) {
    const bool hot = e->hits > 0;
    DropNvmeCopy(*e, &deletes);
    if (e->resident && hot && !e->doomed) {
      // Hot, in DRAM, and no room left to move it: rewritten at the next flush or eviction.
      e->dirty = true;
      counters_.records_relocated.fetch_add(1, std::memory_order_relaxed);
    } else {
      counters_.records_dropped_by_reclaim.fetch_add(1, std::memory_order_relaxed);
      EraseEntryIfEmpty(e);
    }
  }
  Status s = index_->Delete(deletes);
  if (!s.ok()) return s.WithContext("reclaim");
  log_->FreeSegment(*victim);
  counters_.segments_reclaimed.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status TieredStore::Recover(bool verify_payloads) {
  std::vector<IndexEntry> entries;
  std::vector<ObjectKey> drop;
  STRATA_RETURN_IF_ERROR(index_->Scan([&](const IndexEntry& e) {
    // The index's namespace deletes are not synced; the delete log is.
    if (deletes_ && e.sequence < deletes_->DeletedBelow(e.key.ns))
      drop.push_back(e.key);
    else
      entries.push_back(e);
    return true;
  }));
  const uint64_t seg = config_.nvme.segment_bytes, dev_size = device_->size();
  uint64_t max_seq = 0, recovered = 0;
  constexpr size_t kChunk = 256;
  for (size_t base = 0; base < entries.size(); base += kChunk) {
    const size_t n = std::min(kChunk, entries.size() - base);
    std::vector<AlignedBuffer> bufs(n);
    std::vector<Status> st(n);
    RecordBatch io_batch(n, nullptr, nullptr);
    for (size_t i = 0; i < n; ++i) {
      const IndexEntry& ie = entries[base + i];
      const uint64_t span = RecordSpan(ie.stored_size);
      if (ie.offset % kRecordAlign || ie.offset + span > dev_size ||
          ie.offset / seg != (ie.offset + span - 1) / seg ||
          (ie.codec == CodecKind::kNone && ie.stored_size != ie.raw_size)) {
        st[i] = Status::Corruption("index entry points outside a segment");
        continue;
      }
      const uint64_t len = verify_payloads ? span : kRecordAlign;
      bufs[i] = AlignedBuffer(len);
      io_batch.Add(IoKind::kRead, ie.offset, bufs[i].data(), len, config_.nvme.max_io_bytes, i);
    }
    std::atomic<uint64_t> unused_us{0};
    Status io = io_batch.Submit(*device_, unused_us);
    for (size_t i = 0; i < n; ++i)
      if (st[i].ok() && !io_batch.Complete(i))
        st[i] = io.ok() ? Status::IoError("read failed") : io;
    for (size_t i = 0; i < n; ++i) {
      const IndexEntry& ie = entries[base + i];
      if (st[i].ok()) {
        auto h = DecodeRecordHeader(
            std::span<const std::byte, kRecordHeaderSize>(bufs[i].data(), kRecordHeaderSize));
        st[i] = h.ok() ? CheckHeader(*h, ie.key, ie.fingerprint, ie.sequence, ie.raw_size,
                                     ie.stored_size, ie.codec, ie.checksum)
                       : h.status();
        if (st[i].ok() && verify_payloads &&
            PayloadChecksum({bufs[i].data() + kRecordHeaderSize, ie.stored_size}) != ie.checksum)
          st[i] = Status::Corruption("payload checksum mismatch");
      }
      if (!st[i].ok()) {
        drop.push_back(ie.key);
        continue;
      }
      auto e = std::make_unique<Entry>();
      e->id = next_id_++;
      e->key = ie.key;
      e->fingerprint = ie.fingerprint;
      e->raw_size = ie.raw_size;
      e->on_nvme = true;
      e->nv = NvmeLoc{ie.offset, ie.stored_size, ie.checksum, ie.sequence, ie.codec};
      e->last_access = ie.last_access;
      e->hits = ie.hits;
      log_->AddLive(ie.offset, e->nv.span());
      seg_members_[log_->SegmentOf(ie.offset)].insert(e.get());
      by_id_[e->id] = e.get();
      blocks_[BlockId{ie.key.ns, ie.key.block}].fam[int(ie.key.family)] = std::move(e);
      max_seq = std::max(max_seq, ie.sequence);
      ++recovered;
    }
  }
  log_->FinishRecovery();
  next_sequence_ = max_seq + 1;
  counters_.recovered_records.store(recovered);
  counters_.recovery_dropped.store(drop.size());
  if (!drop.empty()) {
    spdlog::warn(
        "strata: recovery dropped {} index entries whose records are missing, corrupt or deleted",
        drop.size());
    STRATA_RETURN_IF_ERROR(index_->Delete(drop));
    STRATA_RETURN_IF_ERROR(index_->Sync());
  }
  return Status::Ok();
}

}  // namespace strata::cachestore
