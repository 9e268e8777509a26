#include "cachestore/nvme/rebuild.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "cachestore/nvme/record.h"

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

// One window of a segment.
struct Window {
  uint64_t begin = 0;  // device address
  std::byte* data = nullptr;
  uint64_t len = 0;
};

Status ReadWindow(Device& dev, Window& w, uint64_t max_io) {
  std::vector<IoOp> ops;
  for (uint64_t d = 0; d < w.len; d += max_io)
    ops.push_back(
        IoOp{IoKind::kRead, w.begin + d, w.data + d, size_t(std::min(max_io, w.len - d))});
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
  bool sized = false;  // by the first segment whose file is there
  for (;; ++count) {
    char name[32];
    std::snprintf(name, sizeof name, "seg-%06u.dat", count);
    const fs::path p = seg_dir / name;
    const fs::file_status link = fs::symlink_status(p, ec);
    if (!fs::exists(link)) break;
    // A link whose drive is missing (a degraded open): counted, its size unknown.
    if (fs::is_symlink(link) && !fs::exists(p, ec)) continue;
    const uint64_t sz = fs::file_size(p, ec);
    if (ec) return Status::IoError("size of " + p.string() + ": " + ec.message());
    if (!sized) size = sz, sized = true;
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
  if (!sized) return Status::NotFound("no segment file of " + seg_dir.string() + " is there");
  if (size == 0 || size % kRecordAlign)
    return Status::Corruption("segment files of " + std::to_string(size) + " bytes");
  IndexMeta m;
  m.segment_bytes = size;
  m.segment_count = count;
  return m;
}

Status ReadDevice(Device& dev, uint64_t max_io,
                  const std::function<void(uint64_t, std::span<const std::byte>)>& visit,
                  std::span<const uint32_t> skip_segments) {
  // kMaxDepth windows are read at once, each by its own Submit of queue_depth / kMaxDepth I/Os,
  // so that the device has up to queue_depth I/Os in flight (no more) while one more window is
  // visited. Windows never cross a segment; records never do either.
  constexpr uint32_t kMaxDepth = 4;
  max_io = std::max<uint64_t>(kIoAlign, max_io / kIoAlign * kIoAlign);
  const uint64_t seg_bytes = dev.segment_bytes();
  const uint32_t depth = std::min(kMaxDepth, dev.queue_depth());
  const uint64_t window = std::min(uint64_t(dev.queue_depth() / depth) * max_io, seg_bytes);
  std::vector<uint64_t> starts;
  const std::set<uint32_t> skip(skip_segments.begin(), skip_segments.end());
  for (uint64_t s = 0; s < dev.segment_count(); ++s)
    if (!skip.contains(uint32_t(s)))
      for (uint64_t off = 0; off < seg_bytes; off += window) starts.push_back(s * seg_bytes + off);
  std::vector<AlignedBuffer> bufs;
  for (uint32_t i = 0; i <= depth; ++i) {
    bufs.emplace_back(window);
    if (!bufs.back().data()) return Status::ResourceExhausted("read device: window buffers");
  }
  std::vector<Window> windows(starts.size());
  for (size_t i = 0; i < starts.size(); ++i) {
    const uint64_t seg_end = (starts[i] / seg_bytes + 1) * seg_bytes;
    windows[i] =
        Window{starts[i], bufs[i % bufs.size()].data(), std::min(window, seg_end - starts[i])};
  }
  std::deque<std::future<Status>> reads;  // of windows i, i+1, ...
  size_t next = 0;
  auto launch = [&] {
    Window* w = &windows[next++];
    reads.push_back(
        std::async(std::launch::async, [&dev, w, max_io] { return ReadWindow(dev, *w, max_io); }));
  };
  while (next < windows.size() && next < depth) launch();
  for (size_t i = 0; i < windows.size(); ++i) {
    Status s = reads.front().get();
    reads.pop_front();
    if (!s.ok()) {
      for (auto& r : reads) r.wait();  // their buffers must outlive them
      return s;
    }
    if (next < windows.size()) launch();  // its buffer is neither in flight nor visited
    visit(windows[i].begin, {windows[i].data, windows[i].len});
  }
  return Status::Ok();
}

Result<RebuildStats> RebuildIndex(const RebuildOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  Device& dev = *o.device;
  const uint64_t seg_bytes = o.geometry.segment_bytes;
  const uint64_t total = seg_bytes * o.geometry.segment_count;
  if (dev.segment_bytes() != seg_bytes || dev.segment_count() != o.geometry.segment_count)
    return Status::InvalidArgument("rebuild: device geometry differs from the index's");
  const uint64_t max_io = std::max<uint64_t>(kIoAlign, o.max_io_bytes / kIoAlign * kIoAlign);
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
      if (b < e) PayloadChecksumUpdate(r.state.get(), {w.data + (b - wb), e - b});
    };
    for (OpenRecord& r : open) feed(r);
    for (uint64_t at = wb; at < we; at += kRecordAlign) {
      uint32_t magic;
      std::memcpy(&magic, w.data + (at - wb), sizeof magic);
      if (magic != kRecordMagic) continue;  // most blocks: payload or never written
      auto h = DecodeRecordHeader(
          std::span<const std::byte, kRecordHeaderSize>(w.data + (at - wb), kRecordHeaderSize));
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

  STRATA_RETURN_IF_ERROR(ReadDevice(
      dev, max_io,
      [&](uint64_t begin, std::span<const std::byte> b) {
        parse(Window{begin, const_cast<std::byte*>(b.data()), b.size()});
        st.bytes_read += b.size();
        if (o.progress) o.progress(st.bytes_read, total);
      },
      o.skip_segments));
  st.scan_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
