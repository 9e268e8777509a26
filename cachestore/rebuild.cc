#include "cachestore/rebuild.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <unordered_map>
#include <vector>

#include "cachestore/record.h"

namespace strata::cachestore {
namespace {

namespace fs = std::filesystem;

struct XxhFree {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

// A record whose header verified and whose payload is being checksummed as it streams by.
struct OpenRecord {
  RecordHeader h;
  uint64_t offset = 0;         // device address of the header
  uint64_t payload_begin = 0;  // device addresses
  uint64_t payload_end = 0;
  std::unique_ptr<XXH3_state_t, XxhFree> state;
};

// Per key: the highest sequence whose header verified, and the verified record at it (if any).
struct Best {
  bool seen = false;
  uint64_t max_sequence = 0;
  bool have = false;
  IndexEntry entry;
};

// One window of a segment, read with up to queue_depth I/Os in flight.
struct Window {
  uint64_t begin = 0;  // device address
  AlignedBuffer buf;
  uint64_t len = 0;
};

Status ReadWindow(Device& dev, Window& w, uint64_t max_io) {
  std::vector<IoOp> ops;
  for (uint64_t d = 0; d < w.len; d += max_io)
    ops.push_back(
        IoOp{IoKind::kRead, w.begin + d, w.buf.data() + d, size_t(std::min(max_io, w.len - d))});
  Status s = dev.Submit(ops);
  if (!s.ok()) return s.WithContext("rebuild: read at " + std::to_string(w.begin));
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("open " + dir + ": " + std::strerror(errno));
  const int rc = fsync(fd);
  const int e = errno;
  close(fd);
  if (rc != 0) return Status::IoError("fsync " + dir + ": " + std::strerror(e));
  return Status::Ok();
}

// Writes `entries` as a new index at `dir` (replacing whatever is there).
Status WriteIndex(const std::string& dir, const IndexMeta& geometry,
                  const std::vector<IndexEntry>& entries, uint64_t durable, rocksdb::Env* env) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return Status::IoError("remove " + dir + ": " + ec.message());
  STRATA_ASSIGN_OR_RETURN(auto index, Index::Open(dir, env));
  STRATA_RETURN_IF_ERROR(index->PutMeta(geometry));
  constexpr size_t kBatch = 4096;
  for (size_t i = 0; i < entries.size(); i += kBatch)
    STRATA_RETURN_IF_ERROR(
        index->Put(std::span(entries.data() + i, std::min(kBatch, entries.size() - i))));
  STRATA_RETURN_IF_ERROR(index->PutDurableSequence(durable));
  STRATA_RETURN_IF_ERROR(index->FlushMemtables());
  return index->Sync();
}

}  // namespace

bool IndexPresent(const std::string& data_dir) {
  std::error_code ec;
  return fs::exists(fs::path(data_dir) / "index" / "CURRENT", ec);
}

bool SegmentsPresent(const std::string& data_dir) {
  std::error_code ec;
  return fs::exists(fs::path(data_dir) / "segments" / "seg-000000.dat", ec);
}

bool SegmentsUsed(const std::string& data_dir) {
  if (!SegmentsPresent(data_dir)) return false;
  std::error_code ec;
  if (fs::exists(fs::path(data_dir) / kSequenceMarkerFile, ec)) return true;
  const std::string first = (fs::path(data_dir) / "segments" / "seg-000000.dat").string();
  int fd = open(first.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // cannot tell: the rebuild will say what is wrong
  uint32_t magic = 0;
  const bool read = pread(fd, &magic, sizeof magic, 0) == ssize_t(sizeof magic);
  close(fd);
  return !read || magic == kRecordMagic;
}

Result<IndexMeta> GeometryFromSegments(const std::string& data_dir) {
  const fs::path seg_dir = fs::path(data_dir) / "segments";
  std::error_code ec;
  uint32_t count = 0;
  uint64_t size = 0;
  for (;; ++count) {
    char name[32];
    std::snprintf(name, sizeof name, "seg-%06u.dat", count);
    const fs::path p = seg_dir / name;
    if (!fs::exists(p, ec)) break;
    const uint64_t sz = fs::file_size(p, ec);
    if (ec) return Status::IoError("size of " + p.string() + ": " + ec.message());
    if (count == 0) size = sz;
    if (sz != size)
      return Status::Corruption(p.string() + " has " + std::to_string(sz) + " bytes, " +
                                (seg_dir / "seg-000000.dat").string() + " " + std::to_string(size));
  }
  if (count == 0) return Status::NotFound("no segment files in " + seg_dir.string());
  uint32_t files = 0;
  for (const auto& e : fs::directory_iterator(seg_dir, ec))
    files += e.path().filename().string().starts_with("seg-");
  if (files != count)
    return Status::Corruption(seg_dir.string() + " holds " + std::to_string(files) +
                              " segment files but they are not numbered 0.." +
                              std::to_string(files - 1));
  if (size == 0 || size % kRecordAlign)
    return Status::Corruption("segment files of " + std::to_string(size) + " bytes");
  IndexMeta m;
  m.segment_bytes = size;
  m.segment_count = count;
  return m;
}

Result<RebuildStats> RebuildIndex(const RebuildOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  Device& dev = *o.device;
  const uint64_t seg_bytes = o.geometry.segment_bytes;
  const uint64_t total = seg_bytes * o.geometry.segment_count;
  if (dev.segment_bytes() != seg_bytes || dev.segment_count() != o.geometry.segment_count)
    return Status::InvalidArgument("rebuild: device geometry differs from the index's");
  const uint64_t max_io = std::max<uint64_t>(kIoAlign, o.max_io_bytes / kIoAlign * kIoAlign);
  // Windows never cross a segment; records never do either.
  uint64_t window =
      std::clamp<uint64_t>(uint64_t(dev.queue_depth()) * max_io, 4ull << 20, 64ull << 20);
  window = std::min(window / kRecordAlign * kRecordAlign, seg_bytes);

  RebuildStats st;
  std::unordered_map<ObjectKey, Best, ObjectKeyHash> best;
  std::vector<OpenRecord> open;  // payloads still streaming by

  auto finish = [&](OpenRecord& r, bool ok) {
    const RecordHeader& h = r.h;
    if (ok) ok = XXH3_64bits_digest(r.state.get()) == h.payload_checksum;
    if (!ok) ++st.corrupt_payloads;
    Best& b = best[h.key];
    if (!b.seen || h.sequence > b.max_sequence) {
      b.seen = true;
      b.max_sequence = h.sequence;
      b.have = false;
    }
    if (h.sequence != b.max_sequence || !ok || b.have) return;
    b.have = true;
    IndexEntry& e = b.entry;
    e.key = h.key;
    e.codec = h.codec;
    e.fingerprint = h.fingerprint;
    e.sequence = h.sequence;
    e.offset = r.offset;
    e.raw_size = h.raw_size;
    e.stored_size = h.stored_size;
    e.checksum = h.payload_checksum;
    e.last_access = 0;
    e.hits = 0;
  };

  // Parses window `w`: feeds the open payloads, then finds the headers that begin in it.
  auto parse = [&](const Window& w) {
    const uint64_t wb = w.begin, we = w.begin + w.len;
    auto feed = [&](OpenRecord& r) {
      const uint64_t b = std::max(r.payload_begin, wb), e = std::min(r.payload_end, we);
      if (b < e) XXH3_64bits_update(r.state.get(), w.buf.data() + (b - wb), e - b);
    };
    for (OpenRecord& r : open) feed(r);
    for (uint64_t at = wb; at < we; at += kRecordAlign) {
      auto h = DecodeRecordHeader(std::span<const std::byte, kRecordHeaderSize>(
          w.buf.data() + (at - wb), kRecordHeaderSize));
      if (!h.ok()) {
        if (!h.status().IsNotFound()) ++st.bad_headers;
        continue;
      }
      ++st.headers;
      st.max_sequence = std::max(st.max_sequence, h->sequence);
      if (o.deletes && h->sequence < o.deletes->DeletedBelow(h->key.ns)) {
        ++st.deleted;
        continue;
      }
      OpenRecord r;
      r.h = *h;
      r.offset = at;
      r.payload_begin = at + kRecordHeaderSize;
      r.payload_end = r.payload_begin + h->stored_size;
      const uint64_t seg_end = (at / seg_bytes + 1) * seg_bytes;
      r.state.reset(XXH3_createState());
      XXH3_64bits_reset(r.state.get());
      if (h->stored_size > seg_bytes || at + RecordSpan(h->stored_size) > seg_end) {
        finish(r, false);  // cannot be a whole record
        continue;
      }
      feed(r);
      open.push_back(std::move(r));
    }
    // Records whose payload ended in this window are complete.
    for (size_t i = 0; i < open.size();) {
      if (open[i].payload_end <= we) {
        finish(open[i], true);
        open[i] = std::move(open.back());
        open.pop_back();
      } else {
        ++i;
      }
    }
  };

  // The next window's reads run while the current one is parsed.
  std::vector<uint64_t> starts;
  for (uint64_t s = 0; s < o.geometry.segment_count; ++s)
    for (uint64_t off = 0; off < seg_bytes; off += window) starts.push_back(s * seg_bytes + off);
  auto make = [&](uint64_t begin) {
    Window w;
    w.begin = begin;
    const uint64_t seg_end = (begin / seg_bytes + 1) * seg_bytes;
    w.len = std::min(window, seg_end - begin);
    w.buf = AlignedBuffer(w.len);
    return w;
  };
  Window cur = make(starts.empty() ? 0 : starts[0]);
  if (!starts.empty() && !cur.buf.data()) return Status::ResourceExhausted("rebuild buffer");
  Status first = starts.empty() ? Status::Ok() : ReadWindow(dev, cur, max_io);
  for (size_t i = 0; i < starts.size(); ++i) {
    STRATA_RETURN_IF_ERROR(first);
    std::future<Status> ahead;
    Window next;
    if (i + 1 < starts.size()) {
      next = make(starts[i + 1]);
      if (!next.buf.data()) return Status::ResourceExhausted("rebuild buffer");
      ahead = std::async(std::launch::async,
                         [&dev, &next, max_io] { return ReadWindow(dev, next, max_io); });
    }
    parse(cur);
    st.bytes_read += cur.len;
    if (o.progress) o.progress(st.bytes_read, total);
    if (ahead.valid()) first = ahead.get();
    cur = std::move(next);
  }
  // Every record fits its segment, so none is left open; be safe anyway.
  for (OpenRecord& r : open) finish(r, false);
  open.clear();

  std::vector<IndexEntry> entries;
  entries.reserve(best.size());
  for (auto& [key, b] : best) {
    if (b.have) {
      entries.push_back(b.entry);
    } else {
      ++st.dropped_keys;
    }
  }
  st.records = entries.size();
  const uint64_t considered = st.headers - st.deleted;
  st.superseded = considered - st.corrupt_payloads - st.records;
  std::sort(entries.begin(), entries.end(),
            [](const IndexEntry& a, const IndexEntry& b) { return a.offset < b.offset; });

  const fs::path dir(o.data_dir);
  const std::string tmp = (dir / "index.rebuild").string(), live = (dir / "index").string(),
                    old = (dir / "index.old").string();
  STRATA_RETURN_IF_ERROR(
      WriteIndex(tmp, o.geometry, entries, std::max(o.durable_floor, st.max_sequence), o.env)
          .WithContext("rebuild: write index"));
  std::error_code ec;
  fs::remove_all(old, ec);
  if (fs::exists(live, ec)) {
    fs::rename(live, old, ec);
    if (ec) return Status::IoError("rename " + live + ": " + ec.message());
  }
  fs::rename(tmp, live, ec);
  if (ec) return Status::IoError("rename " + tmp + ": " + ec.message());
  STRATA_RETURN_IF_ERROR(SyncDir(dir.string()));
  fs::remove_all(old, ec);
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace strata::cachestore
