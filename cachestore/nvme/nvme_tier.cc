#include "cachestore/nvme/nvme_tier.h"

#include <chrono>
#include <cstring>
#include <vector>

#include "cachestore/nvme/codec.h"
#include "cachestore/nvme/record.h"
#include "cachestore/nvme/record_batch.h"
#include "cachestore/placement/thin_swa.h"

namespace strata::cachestore {

Status CheckRecordHeader(const RecordHeader& h, const ObjectKey& key, uint64_t fingerprint,
                         uint64_t sequence, uint64_t raw_size, uint64_t stored_size,
                         CodecKind codec, uint64_t checksum) {
  if (h.key != key) return Status::Corruption("record belongs to another key");
  if (h.sequence != sequence) return Status::Corruption("record sequence differs from index");
  if (h.fingerprint != fingerprint || h.raw_size != raw_size || h.stored_size != stored_size ||
      h.codec != codec || h.payload_checksum != checksum)
    return Status::Corruption("record header differs from index entry");
  return Status::Ok();
}

NvmeTier::NvmeTier(Device& device, const StoreConfig& config, std::byte* host_base)
    : device_(device), config_(config), host_base_(host_base), codecs_(config) {}

namespace {

std::byte* RecordBytes(const RecordIo& io, std::byte* host_base) {
  if (io.scratch) return static_cast<AlignedBuffer*>(io.scratch.get())->data();
  return host_base + io.host_offset;
}

}  // namespace

void NvmeTier::Encode(std::span<RecordIo> ios) {
  for (RecordIo& io : ios) {
    if (!io.status.ok()) continue;
    std::byte* host = host_base_ + io.host_offset;
    std::span<const std::byte> raw(host + kRecordHeaderSize, io.raw_size);
    io.stored_size = io.raw_size;
    io.codec = CodecKind::kNone;
    if (io.thin_from_swa) {
      // The checkpoint is derived into a staging record of its own.
      auto buf = std::make_shared<AlignedBuffer>(RecordSpan(io.raw_size));
      if (!buf->data()) {
        io.status = Status::ResourceExhausted("staging buffer");
        continue;
      }
      const std::span<const std::byte> swa(host + kRecordHeaderSize,
                                           io.thin_from_swa->FamilyBlockBytes(Family::kSwa));
      io.status = ThinSwaToCheckpoint(*io.thin_from_swa, swa,
                                      buf->span().subspan(kRecordHeaderSize, io.raw_size));
      if (!io.status.ok()) continue;
      std::memset(buf->data() + kRecordHeaderSize + io.raw_size, 0,
                  RecordSpan(io.raw_size) - kRecordHeaderSize - io.raw_size);
      raw = std::span<const std::byte>(buf->data() + kRecordHeaderSize, io.raw_size);
      io.scratch = buf;
    }
    bool sample = false;
    const CodecKind want = codecs_.Want(io.key.family, &sample);
    if (want == CodecKind::kNone) continue;
    AlignedBuffer buf(RecordSpan(MaxEncodedSize(io.raw_size)));
    if (!buf.data()) {
      io.status = Status::ResourceExhausted("staging buffer");
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    Encoded enc = EncodeRecord(want, raw, buf.span().subspan(kRecordHeaderSize));
    if (sample) {
      // Timed both ways on the family's own bytes for the codec rule; written raw meanwhile.
      const auto t1 = std::chrono::steady_clock::now();
      double decode_s = 0;
      if (enc.codec != CodecKind::kNone) {
        std::vector<std::byte> back(io.raw_size);
        if (DecodeRecord(enc.codec, buf.span().subspan(kRecordHeaderSize, enc.size), back).ok())
          decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
      }
      codecs_.AddSample(io.key.family, io.raw_size,
                        enc.codec == CodecKind::kNone ? io.raw_size : enc.size,
                        std::chrono::duration<double>(t1 - t0).count(), decode_s);
      continue;
    }
    if (enc.codec == CodecKind::kNone) continue;
    io.codec = enc.codec;
    io.stored_size = enc.size;
    std::memset(buf.data() + kRecordHeaderSize + enc.size, 0,
                RecordSpan(enc.size) - kRecordHeaderSize - enc.size);
    io.scratch = std::make_shared<AlignedBuffer>(std::move(buf));
  }
}

// Each record's checksum and header are made just before its first I/O goes out, while
// earlier records are still in flight.
Status NvmeTier::Write(std::span<RecordIo> ios) {
  RecordBatch batch(
      ios.size(),
      [&](size_t i) {
        RecordIo& io = ios[i];
        std::byte* rec = RecordBytes(io, host_base_);
        io.checksum = PayloadChecksum({rec + kRecordHeaderSize, io.stored_size});
        RecordHeader h;
        h.key = io.key;
        h.codec = io.codec;
        h.fingerprint = io.fingerprint;
        h.sequence = io.sequence;
        h.raw_size = io.raw_size;
        h.stored_size = io.stored_size;
        h.payload_checksum = io.checksum;
        EncodeRecordHeader(h, std::span<std::byte, kRecordHeaderSize>(rec, kRecordHeaderSize));
      },
      nullptr);
  for (size_t i = 0; i < ios.size(); ++i)
    if (ios[i].status.ok())
      batch.Add(IoKind::kWrite, ios[i].offset, RecordBytes(ios[i], host_base_),
                RecordSpan(ios[i].stored_size), config_.nvme.max_io_bytes, i);
  Status io = batch.Submit(device_, write_us);
  for (size_t i = 0; i < ios.size(); ++i)
    if (ios[i].status.ok() && !batch.Complete(i))
      ios[i].status = io.ok() ? Status::IoError("write failed") : io;
  return io;
}

// Each record is verified (and decoded) as soon as its own I/Os complete.
Status NvmeTier::Read(std::span<RecordIo> ios) {
  std::vector<AlignedBuffer> staging(ios.size());
  std::vector<std::byte*> rec(ios.size(), nullptr);
  RecordBatch batch(ios.size(), nullptr, [&](size_t i) {
    RecordIo& io = ios[i];
    std::byte* host = host_base_ + io.host_offset;
    auto h = DecodeRecordHeader(
        std::span<const std::byte, kRecordHeaderSize>(rec[i], kRecordHeaderSize));
    if (!h.ok()) {
      io.status = Status::Corruption("record header: " + h.status().message());
      return;
    }
    Status s = CheckRecordHeader(*h, io.key, io.fingerprint, io.sequence, io.raw_size,
                                 io.stored_size, io.codec, io.checksum);
    if (s.ok() && PayloadChecksum({rec[i] + kRecordHeaderSize, io.stored_size}) != io.checksum)
      s = Status::Corruption("payload checksum mismatch");
    if (s.ok() && io.codec != CodecKind::kNone)
      s = DecodeRecord(io.codec, {rec[i] + kRecordHeaderSize, io.stored_size},
                       {host + kRecordHeaderSize, io.raw_size});
    io.status = s;
  });
  for (size_t i = 0; i < ios.size(); ++i) {
    RecordIo& io = ios[i];
    io.status = Status::Ok();
    const uint64_t span = RecordSpan(io.stored_size);
    if (io.codec == CodecKind::kNone) {
      rec[i] = host_base_ + io.host_offset;  // straight into the arena
    } else {
      staging[i] = AlignedBuffer(span);
      rec[i] = staging[i].data();
      if (!rec[i]) {
        io.status = Status::ResourceExhausted("staging buffer");
        continue;
      }
    }
    batch.Add(IoKind::kRead, io.offset, rec[i], span, config_.nvme.max_io_bytes, i);
  }
  Status st = batch.Submit(device_, read_us);
  for (size_t i = 0; i < ios.size(); ++i)
    if (ios[i].status.ok() && !batch.Complete(i))
      ios[i].status =
          Status::IoError("read failed: " + (st.ok() ? std::string("I/O error") : st.ToString()));
  return st;
}

void NvmeTier::Copy(std::span<RecordMove> moves) {
  uint64_t total = 0;
  for (const RecordMove& m : moves) total += m.span;
  AlignedBuffer buf(total);
  RecordBatch reads(moves.size(), nullptr, nullptr), writes(moves.size(), nullptr, nullptr);
  uint64_t off = 0;
  for (size_t i = 0; i < moves.size(); ++i) {
    reads.Add(IoKind::kRead, moves[i].from, buf.data() + off, moves[i].span,
              config_.nvme.max_io_bytes, i);
    writes.Add(IoKind::kWrite, moves[i].to, buf.data() + off, moves[i].span,
               config_.nvme.max_io_bytes, i);
    off += moves[i].span;
  }
  if (buf.data()) {
    (void)reads.Submit(device_, read_us);
    (void)writes.Submit(device_, write_us);
  }
  // Durable at the new place before the old one can be overwritten.
  const bool synced = buf.data() && device_.Sync().ok();
  for (size_t i = 0; i < moves.size(); ++i)
    moves[i].ok = synced && reads.Complete(i) && writes.Complete(i);
}

}  // namespace strata::cachestore
