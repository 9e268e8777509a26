#include "bench/store_bench.h"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <unordered_map>

#include "bench/v4_payload.h"
#include "cachestore/codec.h"
#include "cachestore/device.h"
#include "cachestore/fsck.h"
#include "cachestore/host_arena.h"
#include "cachestore/markers.h"
#include "cachestore/rebuild.h"
#include "cachestore/record.h"

extern char** environ;

namespace strata::bench {
namespace fs = std::filesystem;
using cachestore::AlignedBuffer;
using cachestore::IoKind;
using cachestore::IoOp;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void Progress(const std::string& what) { std::cerr << "bench store: " << what << std::endl; }

// The families of one block and their payloads (generated once, reused for every block).
struct BlockPayloads {
  std::vector<Family> families;
  std::vector<std::vector<std::byte>> bytes;
  uint64_t total = 0;
};

BlockPayloads MakeBlock(const CacheLayout& layout) {
  BlockPayloads b;
  for (Family f : kAllFamilies) {
    if (layout.FamilyBlockBytes(f) == 0) continue;
    b.families.push_back(f);
    b.bytes.push_back(MakeFamilyPayload(layout, f, 42 + int(f)));
    b.total += b.bytes.back().size();
  }
  return b;
}

BlockKey KeyOf(uint64_t i) { return BlockKey{0x5354524154414242ull, i}; }

StoreConfig NvmeConfig(const StoreBenchOptions& o, const std::string& dir, uint64_t host,
                       uint64_t nvme) {
  StoreConfig c;
  c.host.capacity_bytes = host;
  c.nvme.data_dir = dir;
  c.nvme.segment_bytes = 256ull << 20;
  c.nvme.capacity_bytes =
      std::max<uint64_t>(2, (nvme + c.nvme.segment_bytes - 1) / c.nvme.segment_bytes) *
      c.nvme.segment_bytes;
  c.nvme.device = o.device;
  c.nvme.queue_depth = o.queue_depth;
  c.codec = o.codec;
  return c;
}

// Opens the segment files of a store config's data directory directly, for the raw peers.
Result<std::unique_ptr<cachestore::Device>> OpenSegments(const StoreConfig& c, DeviceKind kind) {
  cachestore::FileDeviceOptions fo;
  fo.dir = (fs::path(c.nvme.data_dir) / "segments").string();
  fo.segment_bytes = c.nvme.segment_bytes;
  fo.segment_count = uint32_t(c.nvme.capacity_bytes / c.nvme.segment_bytes);
  fo.queue_depth = c.nvme.queue_depth;
  return cachestore::OpenFileDevice(kind, fo);
}

// Raw O_DIRECT I/O of the same record spans, in the same batches, at the same queue depth.
Result<double> RawIo(cachestore::Device& dev, IoKind kind, const std::vector<uint64_t>& spans,
                     size_t per_batch, uint64_t max_io) {
  // Records go to distinct buffer offsets, wrapping within 256 MiB (the DMA cost is the same).
  uint64_t largest = 0;
  for (uint64_t s : spans) largest = std::max(largest, s);
  const uint64_t cap = std::max<uint64_t>(largest, 256ull << 20);
  // The same kind of memory the store reads into and writes from: a prefaulted memfd arena.
  static std::unique_ptr<cachestore::HostArena> arena;
  if (!arena || arena->capacity() < cap) {
    STRATA_ASSIGN_OR_RETURN(arena, cachestore::HostArena::Create(cap, /*prefault=*/true));
    FillPseudoRandom(arena->base(), arena->capacity(), 7);
  }
  const std::span<std::byte> buf = arena->region();
  // The peer gets the same advantage the store has: registered (fixed) buffers.
  static const cachestore::Device* registered_with = nullptr;
  if (registered_with != &dev) {
    dev.RegisterMemory(buf);
    registered_with = &dev;
  }
  const auto t0 = Clock::now();
  uint64_t off = 0, boff = 0;
  for (size_t i = 0; i < spans.size(); i += per_batch) {
    std::vector<IoOp> ops;
    for (size_t k = i; k < std::min(spans.size(), i + per_batch); ++k) {
      if (off / dev.segment_bytes() != (off + spans[k] - 1) / dev.segment_bytes())
        off = (off / dev.segment_bytes() + 1) * dev.segment_bytes();
      if (boff + spans[k] > cap) boff = 0;
      for (uint64_t d = 0; d < spans[k]; d += max_io)
        ops.push_back(
            IoOp{kind, off + d, buf.data() + boff + d, size_t(std::min(max_io, spans[k] - d))});
      off += spans[k];
      boff += spans[k];
    }
    STRATA_RETURN_IF_ERROR(dev.Submit(ops));
  }
  if (kind == IoKind::kWrite) STRATA_RETURN_IF_ERROR(dev.Sync());
  return Seconds(t0);
}

}  // namespace

std::string FigureJson(std::string_view figure, double value, std::string_view unit,
                       std::string_view baseline, double baseline_value, bool higher_is_better) {
  const double ratio = baseline_value > 0 && value > 0
                           ? (higher_is_better ? value / baseline_value : baseline_value / value)
                           : 0.0;
  return fmt::format(
      R"({{"figure": "{}", "value": {:.6g}, "unit": "{}", "baseline": "{}", "baseline_value": {:.6g}, "ratio": {:.4f}}})",
      figure, value, unit, baseline, baseline_value, ratio);
}

namespace {

void CodecFigures(const StoreBenchOptions& o, const BlockPayloads& blk,
                  const std::function<void(const std::string&)>& emit) {
  for (size_t i = 0; i < blk.families.size(); ++i) {
    const auto& raw = blk.bytes[i];
    const std::string fam(FamilyName(blk.families[i]));
    std::vector<std::byte> enc(cachestore::MaxEncodedSize(raw.size())), dec(raw.size());
    const int reps = std::max<int>(1, int((64ull << 20) / raw.size()));
    auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) std::memcpy(dec.data(), raw.data(), raw.size());
    const double memcpy_mbps = double(raw.size()) * reps / Seconds(t0) / 1e6;
    for (CodecKind c : {CodecKind::kLz4, CodecKind::kLz4Shuffle2, CodecKind::kLz4Shuffle4}) {
      cachestore::Encoded e{};
      t0 = Clock::now();
      for (int r = 0; r < reps; ++r) e = cachestore::EncodeRecord(c, raw, enc);
      const double enc_mbps = double(raw.size()) * reps / Seconds(t0) / 1e6;
      double dec_mbps = 0;
      if (e.codec != CodecKind::kNone) {
        t0 = Clock::now();
        for (int r = 0; r < reps; ++r)
          (void)cachestore::DecodeRecord(e.codec, {enc.data(), e.size}, dec);
        dec_mbps = double(raw.size()) * reps / Seconds(t0) / 1e6;
      }
      const std::string name = fmt::format("codec.{}.{}", fam, CodecKindName(c));
      emit(FigureJson(name + ".size_ratio", double(raw.size()) / double(e.size), "raw/stored",
                      "raw", 1.0));
      emit(FigureJson(name + ".encode", enc_mbps, "MB/s", "memcpy", memcpy_mbps));
      if (dec_mbps > 0) emit(FigureJson(name + ".decode", dec_mbps, "MB/s", "memcpy", memcpy_mbps));
    }
  }
  (void)o;
}

Status HostFigures(const StoreBenchOptions& o, const BlockPayloads& blk,
                   const std::function<void(const std::string&)>& emit) {
  const uint64_t volume = std::min<uint64_t>(o.nvme_bytes, 1ull << 30);
  const uint64_t nblocks = std::max<uint64_t>(1, volume / blk.total);
  StoreConfig c;
  c.host.capacity_bytes = nblocks * (blk.total + blk.families.size() * 8192) * 5 / 4;
  STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));
  // Peer: memcpy of the same objects into a buffer of the same size.
  AlignedBuffer dst(nblocks * blk.total);
  double put_s = 0, memcpy_s = 0;
  for (int pass = 0; pass < 2; ++pass) {  // pass 0 faults the pages in, pass 1 is measured
    auto t0 = Clock::now();
    uint64_t off = 0;
    for (uint64_t b = 0; b < nblocks; ++b)
      for (size_t i = 0; i < blk.families.size(); ++i) {
        std::memcpy(dst.data() + off, blk.bytes[i].data(), blk.bytes[i].size());
        off += blk.bytes[i].size();
      }
    memcpy_s = Seconds(t0);
    if (pass == 1) STRATA_RETURN_IF_ERROR(store->Delete(1));
    t0 = Clock::now();
    for (uint64_t b = 0; b < nblocks; ++b)
      for (size_t i = 0; i < blk.families.size(); ++i)
        STRATA_RETURN_IF_ERROR(store->Put({1, KeyOf(b), blk.families[i]}, 9, blk.bytes[i]));
    put_s = Seconds(t0);
  }
  const double bytes = double(nblocks * blk.total);
  emit(FigureJson("host.put", bytes / put_s / 1e9, "GB/s", "memcpy", bytes / memcpy_s / 1e9));

  // Get (pin + view) + Release of resident objects, against a hash-map find.
  const uint64_t nobj = nblocks * blk.families.size();
  const int reps = int(std::max<uint64_t>(1, 200000 / nobj));
  auto t0 = Clock::now();
  for (int r = 0; r < reps; ++r)
    for (uint64_t b = 0; b < nblocks; ++b) {
      const BlockKey k = KeyOf(b);
      for (Family f : blk.families) {
        STRATA_ASSIGN_OR_RETURN(auto views, store->Get(1, 9, std::span(&k, 1), FamilyMask{f}));
        if (!views[0].found()) return Status::Internal("bench: resident object not found");
        store->Release(std::span(&views[0].pin, 1));
      }
    }
  const double get_ops = double(nobj) * reps / Seconds(t0);
  std::unordered_map<ObjectKey, const std::byte*, ObjectKeyHash> peer;
  for (uint64_t b = 0; b < nblocks; ++b)
    for (size_t i = 0; i < blk.families.size(); ++i)
      peer[{1, KeyOf(b), blk.families[i]}] = blk.bytes[i].data();
  size_t found = 0;
  t0 = Clock::now();
  for (int r = 0; r < reps; ++r)
    for (uint64_t b = 0; b < nblocks; ++b)
      for (Family f : blk.families) found += peer.count({1, KeyOf(b), f});
  const double peer_ops = double(found) / Seconds(t0);
  emit(FigureJson("host.get_pin_release", get_ops, "ops/s", "unordered_map_find", peer_ops));
  store.reset();

  // Lookup of a 64-block chain against an index of lookup_index_blocks blocks.
  StoreConfig lc;
  lc.host.capacity_bytes = o.lookup_index_blocks * 4096 + (64ull << 20);
  STRATA_ASSIGN_OR_RETURN(auto ls, OpenStore(lc));
  Progress(fmt::format("filling an index of {} blocks", o.lookup_index_blocks));
  const std::byte tiny[64] = {};
  std::vector<BlockKey> keys(o.lookup_index_blocks);
  for (uint64_t i = 0; i < o.lookup_index_blocks; ++i) {
    keys[i] = BlockKey{i * 0x9E3779B97F4A7C15ull, i};
    STRATA_RETURN_IF_ERROR(ls->Put({1, keys[i], Family::kHca}, 9, tiny));
  }
  std::unordered_map<BlockKey, FamilyMask, BlockKeyHash> lpeer;
  for (const auto& k : keys) lpeer[k] = FamilyMask{Family::kHca};
  std::mt19937_64 rng(1);
  const int lookups = 20000;
  std::vector<size_t> starts(lookups);
  for (auto& s : starts) s = rng() % (o.lookup_index_blocks - 64);
  size_t hit = 0;
  t0 = Clock::now();
  for (size_t s : starts) {
    STRATA_ASSIGN_OR_RETURN(
        auto r, ls->Lookup(1, 9, std::span(keys).subspan(s, 64), FamilyMask{Family::kHca}));
    hit += r.hit_blocks;
  }
  const double lookup_ops = lookups / Seconds(t0);
  if (hit != size_t(lookups) * 64) return Status::Internal("bench: lookup missed");
  hit = 0;
  t0 = Clock::now();
  for (size_t s : starts)
    for (size_t k = s; k < s + 64; ++k) {
      auto it = lpeer.find(keys[k]);
      if (it == lpeer.end() || !it->second.Has(Family::kHca)) break;
      ++hit;
    }
  const double peer_lookup = lookups / Seconds(t0);
  emit(FigureJson("host.lookup_chain64_of_" + std::to_string(o.lookup_index_blocks), lookup_ops,
                  "ops/s", "unordered_map_find_x64", peer_lookup));
  return Status::Ok();
}

Status NvmeFigures(const StoreBenchOptions& o, const BlockPayloads& blk,
                   const std::function<void(const std::string&)>& emit) {
  const std::string dir = (fs::path(o.dir) / "nvme").string();
  fs::remove_all(dir);
  const uint64_t nblocks = std::max<uint64_t>(1, o.nvme_bytes / blk.total);
  const uint64_t bytes = nblocks * blk.total;
  StoreConfig c = NvmeConfig(o, dir, bytes * 5 / 4 + (64ull << 20), bytes * 3 / 2);
  std::vector<uint64_t> spans;
  for (uint64_t b = 0; b < nblocks; ++b)
    for (const auto& p : blk.bytes) spans.push_back(cachestore::RecordSpan(p.size()));
  FamilyMask all;
  for (Family f : blk.families) all.Add(f);

  // Rounds alternate the peer and the store on the same segment files, and each figure is the
  // median over the rounds: a virtual disk's speed drifts by tens of percent within a minute.
  constexpr int kRounds = 3;
  std::vector<double> raw_w, raw_r, flush_v, e2e_v, get_v;
  const double gb = double(bytes) / 1e9;
  for (int round = 0; round < kRounds; ++round) {
    {
      // Peer: raw O_DIRECT writes and reads of the same record spans, batched like the store
      // (one flush batch; one read batch per block), same queue depth, registered buffers.
      STRATA_ASSIGN_OR_RETURN(auto dev, OpenSegments(c, o.device));
      Progress(fmt::format("round {}: raw {} writes and reads, {} records", round + 1,
                           DeviceKindName(dev->kind()), spans.size()));
      if (round == 0)  // first writes into preallocated extents convert them: not measured
        STRATA_RETURN_IF_ERROR(
            RawIo(*dev, IoKind::kWrite, spans, spans.size(), c.nvme.max_io_bytes).status());
      STRATA_ASSIGN_OR_RETURN(
          double w, RawIo(*dev, IoKind::kWrite, spans, spans.size(), c.nvme.max_io_bytes));
      STRATA_ASSIGN_OR_RETURN(
          double r, RawIo(*dev, IoKind::kRead, spans, blk.families.size(), c.nvme.max_io_bytes));
      raw_w.push_back(gb / w);
      raw_r.push_back(gb / r);
    }
    fs::remove_all(fs::path(dir) / "index");
    {
      STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));
      // Warm-up: a running cache's arena pages have been written before.
      for (uint64_t b = 0; b < nblocks; ++b)
        for (size_t i = 0; i < blk.families.size(); ++i)
          STRATA_RETURN_IF_ERROR(store->Put({2, KeyOf(b), blk.families[i]}, 9, blk.bytes[i]));
      STRATA_RETURN_IF_ERROR(store->Delete(2));
      auto t0 = Clock::now();
      for (uint64_t b = 0; b < nblocks; ++b)
        for (size_t i = 0; i < blk.families.size(); ++i)
          STRATA_RETURN_IF_ERROR(store->Put({1, KeyOf(b), blk.families[i]}, 9, blk.bytes[i]));
      const double put_s = Seconds(t0);
      t0 = Clock::now();
      STRATA_RETURN_IF_ERROR(store->Flush());
      const double flush_s = Seconds(t0);
      Progress(fmt::format("round {}: store put {:.3f} s, flush {:.3f} s ({:.2f} GB)", round + 1,
                           put_s, flush_s, gb));
      flush_v.push_back(gb / flush_s);
      e2e_v.push_back(gb / (put_s + flush_s));
    }
    {
      StoreConfig rc = c;
      rc.host.capacity_bytes = std::min<uint64_t>(c.host.capacity_bytes, 512ull << 20);
      STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(rc));
      auto t0 = Clock::now();
      for (uint64_t b = 0; b < nblocks; ++b) {
        const BlockKey k = KeyOf(b);
        STRATA_ASSIGN_OR_RETURN(auto views, store->Get(1, 9, std::span(&k, 1), all));
        std::vector<uint64_t> pins;
        for (auto& v : views) {
          if (!v.found() || v.served_from != Tier::kNvme)
            return Status::Internal("bench: object not served from NVMe");
          pins.push_back(v.pin);
        }
        store->Release(pins);
      }
      const double get_s = Seconds(t0);
      uint64_t read_us = 0;
      store->VisitCounters([&](std::string_view n, uint64_t v) {
        if (n == "nvme_read_us") read_us = v;
      });
      Progress(fmt::format("round {}: store get {:.3f} s, of which {:.3f} s inside device reads",
                           round + 1, get_s, read_us / 1e6));
      get_v.push_back(gb / get_s);
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  emit(FigureJson("nvme.put_flush", median(flush_v), "GB/s", "raw_o_direct_write", median(raw_w)));
  emit(FigureJson("nvme.put_end_to_end", median(e2e_v), "GB/s", "raw_o_direct_write",
                  median(raw_w)));
  emit(FigureJson("nvme.get", median(get_v), "GB/s", "raw_o_direct_read", median(raw_r)));
  fs::remove_all(dir);
  return Status::Ok();
}

Status RecoveryFigures(const StoreBenchOptions& o, const BlockPayloads& blk,
                       const std::function<void(const std::string&)>& emit) {
  const std::string dir = (fs::path(o.dir) / "recovery").string();
  fs::remove_all(dir);
  const uint64_t nblocks = std::max<uint64_t>(1, o.recovery_bytes / blk.total);
  const uint64_t bytes = nblocks * blk.total;
  // A child process writes and flushes the records, then is killed with SIGKILL.
  Progress(fmt::format("child writes {:.2f} GB of records, then is killed", bytes / 1e9));
  StoreConfig c = NvmeConfig(o, dir, 256ull << 20, bytes * 5 / 4 + (512ull << 20));
  std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> args = {self,
                                   "bench-crash-child",
                                   "--dir",
                                   dir,
                                   "--blocks",
                                   std::to_string(nblocks),
                                   "--device",
                                   std::string(DeviceKindName(o.device)),
                                   "--queue-depth",
                                   std::to_string(o.queue_depth),
                                   "--capacity",
                                   std::to_string(c.nvme.capacity_bytes),
                                   "--model",
                                   o.model_path,
                                   "--block-size",
                                   std::to_string(o.layout.block_size())};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
    return Status::Internal("bench: cannot spawn the crash child");
  int wst = 0;
  waitpid(pid, &wst, 0);
  if (!(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL))
    return Status::Internal("bench: crash child did not end by SIGKILL");

  auto t0 = Clock::now();
  uint64_t recovered = 0;
  {
    STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));
    store->VisitCounters([&](std::string_view n, uint64_t v) {
      if (n == "recovered_records") recovered = v;
    });
  }
  const double open_s = Seconds(t0);
  if (recovered != nblocks * blk.families.size())
    return Status::Internal(
        fmt::format("bench: recovered {} of {} records", recovered, nblocks * blk.families.size()));
  cachestore::FsckOptions fo;
  fo.device = o.device;
  fo.queue_depth = o.queue_depth;
  STRATA_ASSIGN_OR_RETURN(auto rep, cachestore::Fsck(dir, fo));
  if (!rep.clean()) return Status::Internal("bench: fsck found problems after the crash");
  // Peer: a raw read of every record span, as a full-scan recovery or fsck must do.
  std::vector<uint64_t> spans;
  for (uint64_t b = 0; b < nblocks; ++b)
    for (const auto& p : blk.bytes) spans.push_back(cachestore::RecordSpan(p.size()));
  STRATA_ASSIGN_OR_RETURN(auto dev, OpenSegments(c, o.device));
  STRATA_ASSIGN_OR_RETURN(double raw_s, RawIo(*dev, IoKind::kRead, spans, 64, c.nvme.max_io_bytes));
  const double gib = double(rep.bytes_read) / double(1ull << 30);
  emit(FigureJson(fmt::format("recovery.open_after_crash_{:.1f}GiB", double(bytes) / (1ull << 30)),
                  open_s, "s", "raw_read_all_records_s", raw_s, /*higher_is_better=*/false));
  emit(FigureJson("fsck.rate", gib / rep.seconds, "GiB/s", "raw_o_direct_read",
                  double(rep.bytes_read) / double(1ull << 30) / raw_s));
  fs::remove_all(dir);
  return Status::Ok();
}

// Rebuilding the index from the segments reads the whole device once and checksums every
// record: its limit is the same O_DIRECT reads (cachestore::ReadDevice: same windows, same I/Os
// in flight) with nothing parsed and no index written. Rounds alternate which goes first (5
// rounds; median, min and max).
Status RebuildFigures(const StoreBenchOptions& o, const BlockPayloads& blk,
                      const std::function<void(const std::string&)>& emit) {
  const std::string dir = (fs::path(o.dir) / "rebuild").string();
  fs::remove_all(dir);
  const uint64_t nblocks = std::max<uint64_t>(1, o.recovery_bytes / blk.total);
  const uint64_t bytes = nblocks * blk.total;
  StoreConfig c = NvmeConfig(o, dir, 256ull << 20, bytes * 5 / 4 + (512ull << 20));
  Progress(fmt::format("rebuild: writing {:.2f} GB of records", bytes / 1e9));
  {
    STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));
    for (uint64_t b = 0; b < nblocks; ++b) {
      for (size_t i = 0; i < blk.families.size(); ++i)
        STRATA_RETURN_IF_ERROR(store->Put({1, KeyOf(b), blk.families[i]}, 9, blk.bytes[i]));
      if (b % 16 == 15) STRATA_RETURN_IF_ERROR(store->Flush());
    }
    STRATA_RETURN_IF_ERROR(store->Flush());
  }
  const uint64_t records = nblocks * blk.families.size();
  STRATA_ASSIGN_OR_RETURN(auto dev, OpenSegments(c, o.device));
  STRATA_ASSIGN_OR_RETURN(auto deletes, cachestore::DeleteLog::Load(dir));
  cachestore::RebuildOptions ro;
  ro.data_dir = dir;
  ro.geometry.segment_bytes = c.nvme.segment_bytes;
  ro.geometry.segment_count = dev->segment_count();
  ro.device = dev.get();
  ro.max_io_bytes = c.nvme.max_io_bytes;
  ro.deletes = &deletes;
  // The limit: the rebuild's own reads (same windows, same I/Os in flight), nothing parsed.
  auto raw_read = [&]() -> Result<double> {
    const auto t0 = Clock::now();
    STRATA_RETURN_IF_ERROR(cachestore::ReadDevice(*dev, c.nvme.max_io_bytes,
                                                  [](uint64_t, std::span<const std::byte>) {}));
    return Seconds(t0);
  };
  constexpr int kRounds = 5;
  std::vector<double> raw_v, rebuild_v, scan_v;
  // A B B A ...: each goes first in half of the rounds (the disk's cache favours the second).
  for (int round = 0; round < kRounds; ++round) {
    Progress(fmt::format("rebuild: round {}", round + 1));
    for (int k = 0; k < 2; ++k) {
      if ((k == 0) == (round % 2 == 0)) {
        STRATA_ASSIGN_OR_RETURN(double raw, raw_read());
        raw_v.push_back(raw);
      } else {
        STRATA_ASSIGN_OR_RETURN(auto st, cachestore::RebuildIndex(ro));
        if (st.records != records)
          return Status::Internal(
              fmt::format("bench: rebuilt {} of {} records", st.records, records));
        rebuild_v.push_back(st.seconds);
        scan_v.push_back(st.scan_seconds);
      }
    }
  }
  auto stats = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return std::array<double, 3>{v[v.size() / 2], v.front(), v.back()};
  };
  const auto rb = stats(rebuild_v), rw = stats(raw_v), sc = stats(scan_v);
  std::string line =
      FigureJson(fmt::format("rebuild.index_from_segments_{}records_{:.1f}GiB", records,
                             double(dev->size()) / (1ull << 30)),
                 rb[0], "s", "read_whole_device_same_ios_s", rw[0], /*higher_is_better=*/false);
  line.pop_back();
  line += fmt::format(
      R"(, "rounds": {}, "min": {:.6g}, "max": {:.6g}, "baseline_min": {:.6g}, "baseline_max": {:.6g}, "scan_median": {:.6g}, "scan_min": {:.6g}, "scan_max": {:.6g}}})",
      kRounds, rb[1], rb[2], rw[1], rw[2], sc[0], sc[1], sc[2]);
  emit(line);
  fs::remove_all(dir);
  return Status::Ok();
}
}  // namespace

Status RunCrashChild(const StoreBenchOptions& o, const std::string& dir, uint64_t capacity,
                     uint64_t nblocks) {
  const BlockPayloads blk = MakeBlock(o.layout);
  StoreConfig c = NvmeConfig(o, dir, 1ull << 30, capacity);
  c.nvme.capacity_bytes = capacity;
  STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));
  for (uint64_t b = 0; b < nblocks; ++b) {
    for (size_t i = 0; i < blk.families.size(); ++i)
      STRATA_RETURN_IF_ERROR(store->Put({1, KeyOf(b), blk.families[i]}, 9, blk.bytes[i]));
    if (b % 16 == 15) STRATA_RETURN_IF_ERROR(store->Flush());
  }
  STRATA_RETURN_IF_ERROR(store->Flush());
  raise(SIGKILL);  // no clean shutdown: the parent measures recovery after a crash
  return Status::Internal("still alive after SIGKILL");
}

Status RunStoreBench(const StoreBenchOptions& o,
                     const std::function<void(const std::string&)>& emit) {
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) return Status::IoError("create " + o.dir + ": " + ec.message());
  Progress("generating V4-shaped payloads for " + o.layout.shape().name);
  const BlockPayloads blk = MakeBlock(o.layout);
  auto want = [&](std::string_view name) { return o.only.empty() || name.starts_with(o.only); };
  if (want("codec")) CodecFigures(o, blk, emit);
  if (want("host")) STRATA_RETURN_IF_ERROR(HostFigures(o, blk, emit));
  if (want("nvme")) STRATA_RETURN_IF_ERROR(NvmeFigures(o, blk, emit));
  if (want("recovery") || want("fsck")) STRATA_RETURN_IF_ERROR(RecoveryFigures(o, blk, emit));
  if (want("rebuild")) STRATA_RETURN_IF_ERROR(RebuildFigures(o, blk, emit));
  return Status::Ok();
}

}  // namespace strata::bench
