#include "bench/store_bench.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <unordered_map>

#include "bench/v4_payload.h"
#include "cachestore/host/host_arena.h"
#include "cachestore/nvme/codec.h"
#include "cachestore/nvme/codec_rule.h"
#include "cachestore/nvme/device.h"
#include "cachestore/nvme/drives.h"
#include "cachestore/nvme/fsck.h"
#include "cachestore/nvme/index.h"
#include "cachestore/nvme/markers.h"
#include "cachestore/nvme/rebuild.h"
#include "cachestore/nvme/record.h"

extern char** environ;

namespace strata::bench {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Samples::Median() const {
  if (v.empty()) return 0;
  std::vector<double> s = v;
  std::sort(s.begin(), s.end());
  return s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
}
double Samples::Min() const { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
double Samples::Max() const { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

bool WantFigure(std::string_view only, std::string_view name) {
  return only.empty() || name.starts_with(only) ||
         (only.starts_with(name) && only.size() > name.size() && only[name.size()] == '.');
}

std::string FigureJson(std::string_view figure, const Samples& value, std::string_view unit,
                       std::string_view baseline, const Samples& base, bool higher_is_better) {
  const double v = value.Median(), b = base.Median();
  const double ratio = b > 0 && v > 0 ? (higher_is_better ? v / b : b / v) : 0.0;
  return fmt::format(
      R"({{"figure": "{}", "value": {:.6g}, "unit": "{}", "baseline": "{}", "baseline_value": {:.6g}, "ratio": {:.4f}, "value_min": {:.6g}, "value_max": {:.6g}, "baseline_min": {:.6g}, "baseline_max": {:.6g}, "rounds": {}}})",
      figure, v, unit, baseline, b, ratio, value.Min(), value.Max(), base.Min(), base.Max(),
      value.v.size());
}

namespace {

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void Progress(const std::string& what) {
  static const Clock::time_point start = Clock::now();
  std::cerr << fmt::format("bench store [{:6.1f} s]: ", Seconds(start)) << what << std::endl;
}

// The families of one block and their V4-shaped payloads (the codec and host figures reuse
// them; the NVMe figures write fresh random bytes per record instead, see FreshPayload).
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

// Every record the NVMe figures write gets bytes of its own: a virtual disk may compress or
// deduplicate repeated blocks (and then serve their reads from its cache), which would make
// the store look faster than a device written with random bytes. FP8/FP4 state is as
// incompressible as random bytes (codec figures: LZ4 1.00-1.02x), so this is the same kind of
// payload as V4 state, and the same kind fio writes (random buffers, see Fio::Write).
class FreshPayload {
 public:
  explicit FreshPayload(const BlockPayloads& blk) : seed_(std::random_device{}()) {
    for (const auto& b : blk.bytes) buf_.emplace_back(b.size());
  }
  // Refills family `i`'s buffer (not timed by the callers) and returns it.
  std::span<const std::byte> Next(size_t i) {
    FillPseudoRandom(buf_[i].data(), buf_[i].size(), (seed_ << 32) ^ ++count_);
    return buf_[i];
  }

 private:
  uint64_t seed_;
  uint64_t count_ = 0;
  std::vector<std::vector<std::byte>> buf_;
};

// The families and sizes only (the crash child writes fresh random bytes, not these).
BlockPayloads BlockSizes(const CacheLayout& layout) {
  BlockPayloads b;
  for (Family f : kAllFamilies) {
    if (layout.FamilyBlockBytes(f) == 0) continue;
    b.families.push_back(f);
    b.bytes.emplace_back(layout.FamilyBlockBytes(f));
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
  c.codec_rule = o.codec_rule;
  return c;
}

// Which figures run and print: --only PREFIX.
struct Out {
  const StoreBenchOptions& o;
  const std::function<void(const std::string&)>& emit;

  // Whether a section whose figures all start with `section` has any figure to print.
  bool Section(std::string_view section) const {
    return o.only.empty() || section.starts_with(o.only) || o.only.starts_with(section);
  }
  // `limit`: the baseline is a ceiling for the store (fio on the same file system).
  void Figure(const std::string& name, const Samples& value, std::string_view unit,
              std::string_view baseline, const Samples& base, bool higher_is_better,
              bool limit) const {
    if (!o.only.empty() && !name.starts_with(o.only)) return;
    emit(FigureJson(name, value, unit, baseline, base, higher_is_better));
    const double v = value.Median(), b = base.Median();
    const double ratio = higher_is_better ? v / b : b / v;
    if (limit && ratio > 1.0)
      Progress(fmt::format(
          "WARNING: {} is above its limit ({:.3f}): the limit is a ceiling, so the comparison "
          "is wrong somewhere (spread: store {:.4g}-{:.4g}, {} {:.4g}-{:.4g})",
          name, ratio, value.Min(), value.Max(), baseline, base.Min(), base.Max()));
  }
};

// ---------------------------------------------------------------------------------------------
// fio: the limit of the NVMe and recovery figures. A separate process on files of its own in
// the same file system (never the store's segments), O_DIRECT through io_uring with registered
// buffers, at the store's I/O size and queue depth; its JSON report is parsed with nlohmann.

struct FioRun {
  uint64_t bytes = 0;
  double seconds = 0;  // fio's own runtime of the job (process start-up excluded), 1 ms units
  // With --lat_percentiles=1: submission-to-completion latency percentiles, "50.000000" -> us.
  std::map<std::string, double> lat_us;
  double Gbps() const { return double(bytes) / seconds / 1e9; }
  double GiBps() const { return double(bytes) / seconds / double(1ull << 30); }
};

// fio's files mirror the store's segment files: files of segment_bytes each (fio-limit.N), the
// byte address A at offset A % segment_bytes of file A / segment_bytes, written and read in
// file order. (One big file instead measured ~8% slower on writes here: 2.07-2.15 against
// 2.2-2.5 GB/s for eight 256 MiB files.)
class Fio {
 public:
  Fio(std::string workdir, uint32_t queue_depth, uint64_t block_bytes, uint64_t file_bytes)
      : dir_(std::move(workdir)), qd_(queue_depth), bs_(block_bytes), file_bytes_(file_bytes) {}

  uint64_t block_bytes() const { return bs_; }

  // Sequential writes of `bytes` through the files, fsync at the end (the store's flush syncs
  // too). The buffers are random (incompressible) and every write's content is its own: fio
  // stamps each 512-byte sector with the write's offset and time (scramble_buffers), so no two
  // 4 KiB blocks are alike. Not --refill_buffers: that makes fio generate 1 MiB of random bytes
  // per write on its submit path, inside its timed run, while the store's payloads are
  // generated outside its timed region; on a loaded 2-vCPU VM that capped fio at ~1.0 GB/s (a
  // CPU limit, not the disk's) and put the store "above" it.
  Result<FioRun> Write(uint64_t bytes) {
    bytes = cachestore::AlignUp(bytes, bs_);
    return Run(Files(bytes, bs_),
               {"--rw=write", "--io_size=" + std::to_string(bytes),
                "--buffer_compress_percentage=0", "--scramble_buffers=1", "--end_fsync=1"},
               "write", bytes, bytes / bs_);
  }

  // Sequential reads of `bytes` through the files that hold `file_total` bytes (written before);
  // `extra`: more fio options (the io_uring set-up of the figure it is the limit of).
  Result<FioRun> Read(uint64_t file_total, uint64_t bytes, std::vector<std::string> extra = {}) {
    bytes = cachestore::AlignUp(bytes, bs_);
    extra.insert(extra.begin(), {"--rw=read", "--io_size=" + std::to_string(bytes)});
    return Run(Files(file_total, bs_), extra, "read", bytes, bytes / bs_);
  }

  // `ios` random reads of block_bytes through the files that hold `file_total` bytes, with
  // latency percentiles 50, 99 and 99.9 (FioRun::lat_us). Fresh offsets every run
  // (--randrepeat=0): a volume with a cache of its own serves a repeated sequence from it.
  Result<FioRun> RandomReads(uint64_t file_total, uint64_t ios) {
    return Run(Files(file_total, bs_),
               {"--rw=randread", "--number_ios=" + std::to_string(ios), "--randrepeat=0",
                "--lat_percentiles=1", "--percentile_list=50:99:99.9"},
               "read", ios * bs_, ios);
  }

  // Sequential I/O of `bytes` over groups of files (each file file_bytes long): one job per
  // group (a drive's files, as the store has a submitting thread per drive), each at the queue
  // depth and over its files in turn (round robin), reported as one group.
  Result<FioRun> OnFiles(const std::vector<std::vector<std::string>>& groups, bool write,
                         uint64_t bytes) {
    bytes = cachestore::AlignUp(bytes, bs_ * groups.size());
    std::vector<std::string> a = Common(bs_);
    a.erase(a.begin());  // --name: one per group below
    a.push_back("--filesize=" + std::to_string(file_bytes_));
    a.push_back("--file_service_type=roundrobin");
    a.push_back("--group_reporting=1");
    a.push_back(write ? "--rw=write" : "--rw=read");
    a.push_back("--io_size=" + std::to_string(bytes / groups.size()));
    if (write)
      a.insert(a.end(),
               {"--buffer_compress_percentage=0", "--scramble_buffers=1", "--end_fsync=1"});
    std::vector<std::string> jobs;
    for (size_t g = 0; g < groups.size(); ++g) {
      std::string names;
      for (size_t i = 0; i < groups[g].size(); ++i) names += (i ? ":" : "") + groups[g][i];
      jobs.push_back(fmt::format("--name=drive{}", g));
      jobs.push_back("--filename=" + names);
    }
    return Run(a, jobs, write ? "write" : "read", bytes, bytes / bs_);
  }

  // Reads exactly these (address, length) pieces, in this order, `queue_depth` in flight: an
  // iolog replayed without its timing.
  Result<FioRun> Replay(const std::vector<std::pair<uint64_t, uint64_t>>& ios) {
    const std::string log = (fs::path(dir_) / "fio-replay.log").string();
    uint64_t bytes = 0, largest = 0, end = 0;
    for (auto [off, len] : ios) {
      bytes += len;
      largest = std::max(largest, len);
      end = std::max(end, off + len);
    }
    const uint64_t nfiles = (end + file_bytes_ - 1) / file_bytes_;
    {
      std::ofstream out(log, std::ios::trunc);
      out << "fio version 2 iolog\n";
      for (uint64_t f = 0; f < nfiles; ++f) out << FileName(f) << " add\n";
      for (uint64_t f = 0; f < nfiles; ++f) out << FileName(f) << " open\n";
      for (auto [off, len] : ios)
        out << FileName(off / file_bytes_) << " read " << off % file_bytes_ << ' ' << len << '\n';
      for (uint64_t f = 0; f < nfiles; ++f) out << FileName(f) << " close\n";
      if (!out) return Status::IoError("cannot write " + log);
    }
    return Run(Common(largest), {"--read_iolog=" + log, "--replay_no_stall=1"}, "read", bytes,
               ios.size());
  }

 private:
  // Batched submission and reaping, as the store's device does (fill the queue, submit, reap
  // every completion that is ready): with fio's defaults (one I/O per submit, one completion
  // per wait) it read 0.7-1.1 GB/s where the batched job read 1.5-1.9 GB/s on the same file of
  // this loaded 2-vCPU VM, and fsck came out "above" it.
  std::vector<std::string> Common(uint64_t bs) const {
    return {"--name=limit",
            "--iodepth_batch_submit=" + std::to_string(qd_),
            "--iodepth_batch_complete_min=1",
            "--iodepth_batch_complete_max=" + std::to_string(qd_),
            "--ioengine=io_uring",
            "--direct=1",
            "--fixedbufs=1",
            "--iodepth=" + std::to_string(qd_),
            "--bs=" + std::to_string(bs)};
  }

  std::string FileName(uint64_t i) const {
    return (fs::path(dir_) / fmt::format("fio-limit.{:06}", i)).string();
  }

  // The files that hold `total` bytes, in order (':' separates them for fio).
  std::vector<std::string> Files(uint64_t total, uint64_t bs) const {
    std::vector<std::string> a = Common(bs);
    std::string names;
    const uint64_t n = std::max<uint64_t>(1, (total + file_bytes_ - 1) / file_bytes_);
    for (uint64_t i = 0; i < n; ++i) names += (i ? ":" : "") + FileName(i);
    a.push_back("--filename=" + names);
    a.push_back("--filesize=" + std::to_string(file_bytes_));
    a.push_back("--file_service_type=sequential");
    return a;
  }

  Result<FioRun> Run(std::vector<std::string> args, const std::vector<std::string>& more,
                     const char* ddir, uint64_t bytes, uint64_t ios) {
    const std::string json = (fs::path(dir_) / "fio-out.json").string();
    const std::string err = (fs::path(dir_) / "fio-err.txt").string();
    args.insert(args.begin(), {"fio", "--output-format=json", "--output=" + json, "--eta=never"});
    args.insert(args.end(), more.begin(), more.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid;
    const int rc = posix_spawnp(&pid, "fio", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
      return Status::NotSupported(
          fmt::format("cannot start fio ({}); it is the NVMe figures' limit: install it "
                      "(tools/install-deps.sh)",
                      strerror(rc)));
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
    }
    auto slurp = [](const std::string& path) {
      std::ifstream in(path);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
      return Status::Internal("fio failed: " + slurp(err) + slurp(json).substr(0, 2000) +
                              " (command: " + Joined(args) + ")");
    const auto j = nlohmann::json::parse(slurp(json), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("jobs") || j["jobs"].empty())
      return Status::Internal("fio: unreadable JSON report in " + json);
    const auto& job = j["jobs"][0];
    if (job.value("error", 0) != 0)
      return Status::Internal(fmt::format("fio: job error {}", job.value("error", 0)));
    const auto& d = job[ddir];
    const uint64_t done_ios = d.value("total_ios", uint64_t(0));
    const double ms = d.value("runtime", 0.0);
    // fio's io_bytes can leave out the last batch in flight; its I/O count is exact.
    if (done_ios != ios)
      return Status::Internal(fmt::format("fio: {} of {} I/Os done", done_ios, ios));
    if (ms <= 0) return Status::Internal("fio: job ran under 1 ms, too short to time");
    FioRun run{bytes, ms / 1000.0, {}};
    if (d.contains("lat_ns") && d["lat_ns"].contains("percentile"))
      for (const auto& [k, v] : d["lat_ns"]["percentile"].items())
        run.lat_us[k] = v.get<double>() / 1e3;
    return run;
  }

  static std::string Joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
    return s;
  }

  std::string dir_;
  uint32_t qd_;
  uint64_t bs_;
  uint64_t file_bytes_;
};

std::string FioName(const char* what, uint32_t qd, uint64_t bs) {
  return fmt::format("fio_{}_qd{}_{}KiB", what, qd, bs >> 10);
}

// (offset, length) of each I/O the store issues for a record: its span in pieces of max_io.
void AddRecordIos(std::vector<std::pair<uint64_t, uint64_t>>& ios, uint64_t offset, uint64_t span,
                  uint64_t max_io) {
  for (uint64_t d = 0; d < span; d += max_io)
    ios.push_back({offset + d, std::min(max_io, span - d)});
}

Result<std::vector<cachestore::IndexEntry>> ScanIndex(const std::string& data_dir) {
  STRATA_ASSIGN_OR_RETURN(auto index,
                          cachestore::Index::Open((fs::path(data_dir) / "index").string()));
  std::vector<cachestore::IndexEntry> entries;
  STRATA_RETURN_IF_ERROR(index->Scan([&](const cachestore::IndexEntry& e) {
    entries.push_back(e);
    return true;
  }));
  return entries;
}

// ---------------------------------------------------------------------------------------------

void CodecFigures(const StoreBenchOptions& o, const BlockPayloads& blk, const Out& out) {
  constexpr size_t kCodecs = 4;
  const CodecKind codecs[kCodecs] = {CodecKind::kLz4, CodecKind::kLz4Shuffle2,
                                     CodecKind::kLz4Shuffle4, CodecKind::kZstd};
  for (size_t i = 0; i < blk.families.size(); ++i) {
    const auto& raw = blk.bytes[i];
    const std::string fam(FamilyName(blk.families[i]));
    if (!out.Section("codec." + fam)) continue;
    std::vector<std::byte> enc(cachestore::MaxEncodedSize(raw.size())), dec(raw.size());
    const int reps = std::max<int>(1, int((16ull << 20) / raw.size()));
    Samples memcpy_mbps;
    std::array<Samples, kCodecs> enc_mbps, dec_mbps;
    std::array<double, kCodecs> size_ratio{};
    std::array<bool, kCodecs> compressed{};
    // Rounds alternate the order of memcpy and the codecs.
    for (uint32_t round = 0; round < o.rounds; ++round) {
      auto run_memcpy = [&] {
        const auto t0 = Clock::now();
        for (int r = 0; r < reps; ++r) std::memcpy(dec.data(), raw.data(), raw.size());
        memcpy_mbps.Add(double(raw.size()) * reps / Seconds(t0) / 1e6);
      };
      if (round % 2 == 0) run_memcpy();
      for (size_t k = 0; k < kCodecs; ++k) {
        cachestore::Encoded e{};
        auto t0 = Clock::now();
        for (int r = 0; r < reps; ++r) e = cachestore::EncodeRecord(codecs[k], raw, enc);
        enc_mbps[k].Add(double(raw.size()) * reps / Seconds(t0) / 1e6);
        size_ratio[k] = double(raw.size()) / double(e.size);
        compressed[k] = e.codec != CodecKind::kNone;
        if (compressed[k]) {
          t0 = Clock::now();
          for (int r = 0; r < reps; ++r)
            (void)cachestore::DecodeRecord(e.codec, {enc.data(), e.size}, dec);
          dec_mbps[k].Add(double(raw.size()) * reps / Seconds(t0) / 1e6);
        }
      }
      if (round % 2 == 1) run_memcpy();
    }
    for (size_t k = 0; k < kCodecs; ++k) {
      const std::string name = fmt::format("codec.{}.{}", fam, CodecKindName(codecs[k]));
      out.Figure(name + ".size_ratio", Samples{{size_ratio[k]}}, "raw/stored", "raw",
                 Samples{{1.0}}, true, false);
      out.Figure(name + ".encode", enc_mbps[k], "MB/s", "memcpy", memcpy_mbps, true, false);
      if (compressed[k])
        out.Figure(name + ".decode", dec_mbps[k], "MB/s", "memcpy", memcpy_mbps, true, false);
      // What the codec rule decides for this family on these figures
      // (cachestore/nvme/codec_rule.h).
      const std::string rule_name = fmt::format("codec.{}.rule", fam);
      if (codecs[k] == o.codec_rule.candidate &&
          (o.only.empty() || rule_name.starts_with(o.only))) {
        cachestore::CodecSample smp;
        smp.objects = 1;
        smp.raw_bytes = raw.size();
        smp.stored_bytes = uint64_t(double(raw.size()) / size_ratio[k]);
        smp.encode_seconds = double(raw.size()) / (enc_mbps[k].Median() * 1e6);
        if (compressed[k]) {
          smp.decoded_bytes = raw.size();
          smp.decode_seconds = double(raw.size()) / (dec_mbps[k].Median() * 1e6);
        }
        const cachestore::CodecDecision d = cachestore::DecideCodec(o.codec_rule, smp);
        nlohmann::json j;
        j["figure"] = rule_name;
        j["chosen"] = std::string(CodecKindName(d.codec));
        j["drive_read_gbps"] = o.codec_rule.drive_read_bytes_per_s / 1e9;
        j["decode_threads"] = o.codec_rule.decode_threads;
        j["why"] = d.why;
        out.emit(j.dump());
      }
    }
  }
}

Status HostFigures(const StoreBenchOptions& o, const BlockPayloads& blk, const Out& out) {
  const uint64_t volume = std::min<uint64_t>(o.nvme_bytes, 1ull << 30);
  const uint64_t nblocks = std::max<uint64_t>(1, volume / blk.total);
  const double bytes = double(nblocks * blk.total);
  if (out.Section("host.put") || out.Section("host.get")) {
    StoreConfig c;
    c.host.capacity_bytes = nblocks * (blk.total + blk.families.size() * 8192) * 5 / 4;
    STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));
    // Peer: memcpy of the same objects into a buffer of the same size.
    cachestore::AlignedBuffer dst(nblocks * blk.total);
    auto memcpy_pass = [&] {
      const auto t0 = Clock::now();
      uint64_t off = 0;
      for (uint64_t b = 0; b < nblocks; ++b)
        for (size_t i = 0; i < blk.families.size(); ++i) {
          std::memcpy(dst.data() + off, blk.bytes[i].data(), blk.bytes[i].size());
          off += blk.bytes[i].size();
        }
      return Seconds(t0);
    };
    auto put_pass = [&]() -> Result<double> {
      STRATA_RETURN_IF_ERROR(store->Delete(1));
      const auto t0 = Clock::now();
      for (uint64_t b = 0; b < nblocks; ++b)
        for (size_t i = 0; i < blk.families.size(); ++i)
          STRATA_RETURN_IF_ERROR(store->Put({1, KeyOf(b), blk.families[i]}, 9, blk.bytes[i]));
      return Seconds(t0);
    };
    memcpy_pass();  // unmeasured: faults the pages in
    STRATA_RETURN_IF_ERROR(put_pass().status());
    Samples put, cpy;
    for (uint32_t round = 0; round < o.rounds; ++round) {
      if (round % 2) cpy.Add(bytes / memcpy_pass() / 1e9);
      STRATA_ASSIGN_OR_RETURN(double s, put_pass());
      put.Add(bytes / s / 1e9);
      if (round % 2 == 0) cpy.Add(bytes / memcpy_pass() / 1e9);
    }
    out.Figure("host.put", put, "GB/s", "memcpy", cpy, true, false);

    // Get (pin + view) + Release of resident objects, against a hash-map find.
    const uint64_t nobj = nblocks * blk.families.size();
    const int reps = int(std::max<uint64_t>(1, 200000 / nobj));
    std::unordered_map<ObjectKey, const std::byte*, ObjectKeyHash> peer;
    for (uint64_t b = 0; b < nblocks; ++b)
      for (size_t i = 0; i < blk.families.size(); ++i)
        peer[{1, KeyOf(b), blk.families[i]}] = blk.bytes[i].data();
    Samples get, find;
    for (uint32_t round = 0; round < o.rounds; ++round) {
      auto peer_pass = [&] {
        size_t found = 0;
        const auto t0 = Clock::now();
        for (int r = 0; r < reps; ++r)
          for (uint64_t b = 0; b < nblocks; ++b)
            for (Family f : blk.families) found += peer.count({1, KeyOf(b), f});
        find.Add(double(found) / Seconds(t0));
      };
      if (round % 2) peer_pass();
      const auto t0 = Clock::now();
      for (int r = 0; r < reps; ++r)
        for (uint64_t b = 0; b < nblocks; ++b) {
          const BlockKey k = KeyOf(b);
          for (Family f : blk.families) {
            STRATA_ASSIGN_OR_RETURN(auto views, store->Get(1, 9, std::span(&k, 1), FamilyMask{f}));
            if (!views[0].found()) return Status::Internal("bench: resident object not found");
            store->Release(std::span(&views[0].pin, 1));
          }
        }
      get.Add(double(nobj) * reps / Seconds(t0));
      if (round % 2 == 0) peer_pass();
    }
    out.Figure("host.get_pin_release", get, "ops/s", "unordered_map_find", find, true, false);
  }

  // Lookup of a 64-block chain against an index of lookup_index_blocks blocks.
  const std::string lookup_name = "host.lookup_chain64_of_" + std::to_string(o.lookup_index_blocks);
  if (!out.Section(lookup_name)) return Status::Ok();
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
  Samples lookup, peer_lookup;
  for (uint32_t round = 0; round < o.rounds; ++round) {
    std::vector<size_t> starts(lookups);
    for (auto& s : starts) s = rng() % (o.lookup_index_blocks - 64);
    auto peer_pass = [&] {
      size_t hit = 0;
      const auto t0 = Clock::now();
      for (size_t s : starts)
        for (size_t k = s; k < s + 64; ++k) {
          auto it = lpeer.find(keys[k]);
          if (it == lpeer.end() || !it->second.Has(Family::kHca)) break;
          ++hit;
        }
      peer_lookup.Add(lookups / Seconds(t0));
      return hit;
    };
    if (round % 2 && peer_pass() != size_t(lookups) * 64)
      return Status::Internal("bench: peer lookup missed");
    size_t hit = 0;
    const auto t0 = Clock::now();
    for (size_t s : starts) {
      STRATA_ASSIGN_OR_RETURN(
          auto r, ls->Lookup(1, 9, std::span(keys).subspan(s, 64), FamilyMask{Family::kHca}));
      hit += r.hit_blocks;
    }
    lookup.Add(lookups / Seconds(t0));
    if (hit != size_t(lookups) * 64) return Status::Internal("bench: lookup missed");
    if (round % 2 == 0 && peer_pass() != size_t(lookups) * 64)
      return Status::Internal("bench: peer lookup missed");
  }
  out.Figure(lookup_name, lookup, "ops/s", "unordered_map_find_x64", peer_lookup, true, false);
  return Status::Ok();
}

// Put + flush and get of nvme_bytes of blocks, against fio writing and reading a file of the
// same size, rounds alternating (store first in even rounds, fio first in odd ones).
Status NvmeFigures(const StoreBenchOptions& o, const BlockPayloads& blk, const Out& out) {
  const std::string dir = (fs::path(o.dir) / "nvme").string();
  const std::string store_dir = (fs::path(dir) / "store").string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  const uint64_t nblocks = std::max<uint64_t>(1, o.nvme_bytes / blk.total);
  const uint64_t bytes = nblocks * blk.total;
  StoreConfig c = NvmeConfig(o, store_dir, bytes * 5 / 4 + (64ull << 20), bytes * 3 / 2);
  uint64_t disk_bytes = 0;  // what the store writes: record spans (header, payload, padding)
  for (const auto& p : blk.bytes) disk_bytes += nblocks * cachestore::RecordSpan(p.size());
  FamilyMask all;
  for (Family f : blk.families) all.Add(f);
  Fio fio(dir, o.queue_depth, c.nvme.max_io_bytes, c.nvme.segment_bytes);
  FreshPayload fresh(blk);
  const double gb = double(bytes) / 1e9;  // the store is credited with payload bytes only

  Samples flush_v, e2e_v, get_v, fio_w, fio_r;
  auto store_round = [&](bool measured) -> Status {
    fs::remove_all(fs::path(store_dir) / "index");  // an empty log: rewrites the same extents
    double put_s = 0, flush_s = 0, get_s = 0;
    {
      STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));  // the arena is prefaulted at open
      for (uint64_t b = 0; b < nblocks; ++b)
        for (size_t i = 0; i < blk.families.size(); ++i) {
          const auto payload = fresh.Next(i);  // not timed
          const auto t0 = Clock::now();
          STRATA_RETURN_IF_ERROR(store->Put({1, KeyOf(b), blk.families[i]}, 9, payload));
          put_s += Seconds(t0);
        }
      auto written = [&] {
        uint64_t n = 0;
        store->VisitCounters([&](std::string_view name, uint64_t v) {
          if (name == "device_write_bytes") n = v;
        });
        return n;
      };
      const uint64_t before = written();
      const auto t0 = Clock::now();
      STRATA_RETURN_IF_ERROR(store->Flush());
      flush_s = Seconds(t0);
      // The flush figure credits every record to the flush: none may have gone out earlier.
      if (before != 0 || written() != disk_bytes)
        return Status::Internal(
            fmt::format("bench: {} bytes written before the flush and {} by it, expected 0 and {}",
                        before, written() - before, disk_bytes));
    }
    {
      StoreConfig rc = c;
      // Room for a few blocks: every Get reads from NVMe, older copies are evicted (clean).
      rc.host.capacity_bytes =
          std::min<uint64_t>(c.host.capacity_bytes, 4 * blk.total + (64ull << 20));
      STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(rc));
      const auto t0 = Clock::now();
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
      get_s = Seconds(t0);
    }
    Progress(
        fmt::format("store: put {:.3f} s, flush {:.3f} s ({:.2f} GB/s), get {:.3f} s ({:.2f} "
                    "GB/s){}",
                    put_s, flush_s, gb / flush_s, get_s, gb / get_s, measured ? "" : " (warm-up)"));
    if (measured) {
      flush_v.Add(gb / flush_s);
      e2e_v.Add(gb / (put_s + flush_s));
      get_v.Add(gb / get_s);
    }
    return Status::Ok();
  };
  auto fio_round = [&](bool measured) -> Status {
    STRATA_ASSIGN_OR_RETURN(FioRun w, fio.Write(disk_bytes));
    STRATA_ASSIGN_OR_RETURN(FioRun r, fio.Read(disk_bytes, disk_bytes));
    Progress(fmt::format("fio: write {:.2f} GB/s, read {:.2f} GB/s{}", w.Gbps(), r.Gbps(),
                         measured ? "" : " (warm-up)"));
    if (measured) {
      fio_w.Add(w.Gbps());
      fio_r.Add(r.Gbps());
    }
    return Status::Ok();
  };
  // Warm-up: the first writes into preallocated extents convert them, on both sides.
  Progress(fmt::format("{} records of fresh random bytes per round, {:.2f} GB; fio on {}",
                       nblocks * blk.families.size(), gb, dir));
  STRATA_RETURN_IF_ERROR(store_round(false));
  STRATA_RETURN_IF_ERROR(fio_round(false));
  for (uint32_t round = 0; round < o.rounds; ++round) {
    Progress(fmt::format("nvme round {} of {}", round + 1, o.rounds));
    if (round % 2) STRATA_RETURN_IF_ERROR(fio_round(true));
    STRATA_RETURN_IF_ERROR(store_round(true));
    if (round % 2 == 0) STRATA_RETURN_IF_ERROR(fio_round(true));
  }
  const uint32_t qd = o.queue_depth;
  const uint64_t bs = c.nvme.max_io_bytes;
  out.Figure("nvme.put_flush", flush_v, "GB/s", FioName("write", qd, bs), fio_w, true, true);
  out.Figure("nvme.put_end_to_end", e2e_v, "GB/s", FioName("write", qd, bs), fio_w, true, true);
  out.Figure("nvme.get", get_v, "GB/s", FioName("read", qd, bs), fio_r, true, true);
  fs::remove_all(dir);
  return Status::Ok();
}

// Several drives (NvmeTierConfig::drives): the striped device over the first 1, 2 and all of
// the given directories (one per drive), sequential 1 MiB reads and writes in one batch, the
// store's queue depth per drive, consecutive I/Os on consecutive segments (so on different
// drives, as the store's records are), against fio on the same segment files: one job per drive
// at the same queue depth, round robin over that drive's files.
// Without --drives: two directories under the scratch directory, on one disk (the figures then
// say so: directories on one disk are not drives).
Status DriveFigures(const StoreBenchOptions& o, const Out& out) {
  if (o.device != DeviceKind::kIoUring || !cachestore::IoUringAvailable()) {
    Progress("nvme.drives: skipped (no io_uring)");
    return Status::Ok();
  }
  std::vector<std::string> dirs = o.drive_dirs;
  if (dirs.empty())
    for (int d = 0; d < 2; ++d)
      dirs.push_back((fs::path(o.dir) / fmt::format("drive{}", d)).string());
  std::set<std::string> sources;
  for (const std::string& d : dirs) {
    fs::create_directories(d);
    sources.insert(cachestore::MountSourceOf(d));
  }
  const bool distinct = sources.size() == dirs.size();
  const uint64_t max_io = 1u << 20, segment = 64ull << 20;
  const uint64_t bytes =
      std::clamp<uint64_t>(o.nvme_bytes / segment * segment, 2 * segment, 1ull << 30);
  const uint32_t nseg = uint32_t(bytes / segment);
  cachestore::AlignedBuffer buf(64 * max_io);
  if (!buf.data()) return Status::ResourceExhausted("bench: 64 MiB buffer");
  FillPseudoRandom(buf.data(), buf.size(), 13);
  std::vector<size_t> counts = {1, 2, dirs.size()};
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  Progress(fmt::format("nvme.drives: {} MiB over {} directories ({}), fio on the same files",
                       bytes >> 20, dirs.size(),
                       distinct ? "each on its own device" : "on one device: not separate drives"));
  for (size_t k : counts) {
    if (k > dirs.size() || k > nseg) continue;
    cachestore::FileDeviceOptions fo;
    const std::string base = (fs::path(dirs[0]) / fmt::format("striped{}", k)).string();
    fo.dir = base;
    fo.segment_bytes = segment;
    fo.segment_count = nseg;
    fo.queue_depth = o.queue_depth;
    std::vector<std::vector<std::string>> files(k);  // per drive
    if (k > 1) {
      fo.drive_dirs.push_back(base);
      for (size_t d = 1; d < k; ++d)
        fo.drive_dirs.push_back((fs::path(dirs[d]) / fmt::format("striped{}", k)).string());
    }
    for (uint32_t i = 0; i < nseg; ++i)
      files[i % k].push_back(
          (fs::path(k > 1 ? fo.drive_dirs[i % k] : base) / fmt::format("seg-{:06}.dat", i))
              .string());
    STRATA_ASSIGN_OR_RETURN(auto dev, cachestore::OpenFileDevice(DeviceKind::kIoUring, fo));
    dev->RegisterMemory(buf.span());
    std::vector<cachestore::IoOp> ops;
    auto pass = [&](cachestore::IoKind kind) -> Result<double> {
      const auto t0 = Clock::now();
      const uint64_t per_seg = segment / max_io;
      uint64_t n = 0;
      for (uint64_t c = 0; c < per_seg; ++c)
        for (uint32_t sg = 0; sg < nseg; ++sg) {
          ops.push_back(
              {kind, sg * segment + c * max_io, buf.data() + (n++ % 64) * max_io, size_t(max_io)});
        }
      // One batch: each drive's part keeps the queue depth in flight until it is done.
      STRATA_RETURN_IF_ERROR(dev->Submit(ops));
      ops.clear();
      if (kind == cachestore::IoKind::kWrite) STRATA_RETURN_IF_ERROR(dev->Sync());
      return double(bytes) / Seconds(t0) / 1e9;
    };
    Fio fio(base, o.queue_depth, max_io, segment);
    STRATA_RETURN_IF_ERROR(pass(cachestore::IoKind::kWrite).status());  // warm-up: the data
    Samples dw, dr, fw, fr;
    for (uint32_t round = 0; round < o.rounds; ++round) {
      auto side_dev = [&]() -> Status {
        STRATA_ASSIGN_OR_RETURN(double w, pass(cachestore::IoKind::kWrite));
        STRATA_ASSIGN_OR_RETURN(double r, pass(cachestore::IoKind::kRead));
        dw.Add(w);
        dr.Add(r);
        return Status::Ok();
      };
      auto side_fio = [&]() -> Status {
        STRATA_ASSIGN_OR_RETURN(FioRun w, fio.OnFiles(files, true, bytes));
        STRATA_ASSIGN_OR_RETURN(FioRun r, fio.OnFiles(files, false, bytes));
        fw.Add(w.Gbps());
        fr.Add(r.Gbps());
        return Status::Ok();
      };
      STRATA_RETURN_IF_ERROR(round % 2 ? side_fio() : side_dev());
      STRATA_RETURN_IF_ERROR(round % 2 ? side_dev() : side_fio());
      Progress(
          fmt::format("nvme.drives.{} round {} of {}: device write {:.2f} read {:.2f} GB/s, "
                      "fio write {:.2f} read {:.2f} GB/s",
                      k, round + 1, o.rounds, dw.v.back(), dr.v.back(), fw.v.back(), fr.v.back()));
    }
    const std::string tag = distinct ? "" : "_one_disk";
    out.Figure(fmt::format("nvme.drives.{}{}.write", k, tag), dw, "GB/s",
               FioName("write_roundrobin", o.queue_depth, max_io), fw, true, true);
    out.Figure(fmt::format("nvme.drives.{}{}.read", k, tag), dr, "GB/s",
               FioName("read_roundrobin", o.queue_depth, max_io), fr, true, true);
    dev.reset();
    fs::remove_all(base);
    for (size_t d = 1; d < k; ++d) fs::remove_all(fs::path(dirs[d]) / fmt::format("striped{}", k));
  }
  return Status::Ok();
}

// The io_uring set-up options (NvmeTierConfig registered_files, sqpoll), each measured: the same
// sequential O_DIRECT reads of max_io-byte I/Os at the store's queue depth through the device
// opened with each set-up, against fio with the same set-up (--registerfiles, --sqthread_poll)
// on its own files. Rounds alternate the order of the set-ups and of device and fio.
Status UringFigures(const StoreBenchOptions& o, const Out& out) {
  if (o.device != DeviceKind::kIoUring || !cachestore::IoUringAvailable()) {
    Progress("nvme.uring: skipped (no io_uring)");
    return Status::Ok();
  }
  const std::string dir = (fs::path(o.dir) / "uring").string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  const uint64_t max_io = 1u << 20, segment = 256ull << 20;
  const uint64_t bytes =
      std::clamp<uint64_t>(o.nvme_bytes / segment * segment, segment, 1ull << 30);
  struct Setup {
    const char* name;
    cachestore::UringOptions uring;
    std::vector<std::string> fio;
  };
  const std::vector<Setup> setups = {
      {"default", {}, {}},
      {"registered_files", {true, false, 50}, {"--registerfiles=1"}},
      {"sqpoll", {false, true, 50}, {"--sqthread_poll=1"}},
      {"registered_files_sqpoll", {true, true, 50}, {"--registerfiles=1", "--sqthread_poll=1"}}};
  cachestore::FileDeviceOptions fo;
  fo.dir = dir;
  fo.segment_bytes = segment;
  fo.segment_count = uint32_t(bytes / segment);
  fo.queue_depth = o.queue_depth;
  std::vector<std::unique_ptr<cachestore::Device>> devs;
  for (const Setup& st : setups) {
    fo.uring = st.uring;
    auto d = cachestore::OpenFileDevice(DeviceKind::kIoUring, fo);
    if (!d.ok()) {
      Progress(fmt::format("nvme.uring.{}: skipped ({})", st.name, d.status().ToString()));
      devs.push_back(nullptr);
      continue;
    }
    devs.push_back(std::move(d).value());
  }
  if (!devs[0]) return Status::Internal("bench: the default io_uring device did not open");
  cachestore::AlignedBuffer buf(64 * max_io);  // the reads land in 64 MiB, registered
  if (!buf.data()) return Status::ResourceExhausted("bench: 64 MiB read buffer");
  FillPseudoRandom(buf.data(), buf.size(), 11);
  for (auto& d : devs)
    if (d) d->RegisterMemory(buf.span());
  std::vector<cachestore::IoOp> ops;
  auto pass = [&](cachestore::Device& d, cachestore::IoKind kind) -> Result<double> {
    const auto t0 = Clock::now();
    for (uint64_t off = 0; off < bytes; off += 64 * max_io) {
      ops.clear();
      for (uint64_t i = 0; i < 64 && off + i * max_io < bytes; ++i)
        ops.push_back({kind, off + i * max_io, buf.data() + i * max_io, size_t(max_io)});
      STRATA_RETURN_IF_ERROR(d.Submit(ops));
    }
    if (kind == cachestore::IoKind::kWrite) STRATA_RETURN_IF_ERROR(d.Sync());
    return double(bytes) / Seconds(t0) / 1e9;
  };
  Progress(fmt::format("nvme.uring: {} MiB through {} set-ups, fio on {}", bytes >> 20,
                       setups.size(), dir));
  STRATA_RETURN_IF_ERROR(pass(*devs[0], cachestore::IoKind::kWrite).status());  // the data
  Fio fio(dir, o.queue_depth, max_io, segment);
  STRATA_RETURN_IF_ERROR(fio.Write(bytes).status());
  std::vector<Samples> dev_v(setups.size()), fio_v(setups.size());
  for (uint32_t round = 0; round < o.rounds; ++round) {
    for (size_t k = 0; k < setups.size(); ++k) {
      const size_t i = round % 2 ? setups.size() - 1 - k : k;
      if (!devs[i]) continue;
      auto side_dev = [&]() -> Status {
        STRATA_ASSIGN_OR_RETURN(double g, pass(*devs[i], cachestore::IoKind::kRead));
        dev_v[i].Add(g);
        return Status::Ok();
      };
      auto side_fio = [&]() -> Status {
        STRATA_ASSIGN_OR_RETURN(FioRun r, fio.Read(bytes, bytes, setups[i].fio));
        fio_v[i].Add(r.Gbps());
        return Status::Ok();
      };
      STRATA_RETURN_IF_ERROR(round % 2 ? side_fio() : side_dev());
      STRATA_RETURN_IF_ERROR(round % 2 ? side_dev() : side_fio());
    }
    Progress(fmt::format("nvme.uring round {} of {}", round + 1, o.rounds));
  }
  for (size_t i = 0; i < setups.size(); ++i)
    if (devs[i])
      out.Figure(fmt::format("nvme.uring.{}.read", setups[i].name), dev_v[i], "GB/s",
                 FioName((std::string("read_") + setups[i].name).c_str(), o.queue_depth, max_io),
                 fio_v[i], true, true);
  devs.clear();

  // Read latency at several queue depths: random 128 KiB reads (a csa_index record's size) over
  // the same bytes, each I/O timed from its submission to its completion (an IoObserver), against
  // fio's own submission-to-completion percentiles (lat_ns) of the same job on its files.
  struct Timer : cachestore::IoObserver {
    std::vector<Clock::time_point> start;
    std::vector<double> us;
    void BeforeSubmit(cachestore::IoOp& op) override { start[op.tag] = Clock::now(); }
    void OnComplete(cachestore::IoOp& op) override {
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start[op.tag]).count());
    }
  };
  constexpr uint64_t kLatIo = 128 << 10, kLatIos = 2000;
  const double pcts[] = {50, 99, 99.9};
  for (uint32_t qd : {1u, 4u, 16u, 32u}) {
    fo.uring = {};
    fo.queue_depth = qd;
    STRATA_ASSIGN_OR_RETURN(auto dev, cachestore::OpenFileDevice(DeviceKind::kIoUring, fo));
    dev->RegisterMemory(buf.span());
    Fio lat_fio(dir, qd, kLatIo, segment);
    std::array<Samples, 3> dev_p, fio_p;
    std::mt19937_64 rng(qd);
    for (uint32_t round = 0; round < o.rounds; ++round) {
      auto side_dev = [&]() -> Status {
        Timer t;
        t.start.resize(kLatIos);
        ops.clear();
        for (uint64_t i = 0; i < kLatIos; ++i) {
          const uint64_t off = rng() % (bytes / kLatIo) * kLatIo;
          cachestore::IoOp op{cachestore::IoKind::kRead, off,
                              buf.data() + (i % (buf.size() / kLatIo)) * kLatIo, size_t(kLatIo)};
          op.observer = &t;
          op.tag = uint32_t(i);
          ops.push_back(op);
        }
        STRATA_RETURN_IF_ERROR(dev->Submit(ops));
        std::sort(t.us.begin(), t.us.end());
        for (size_t k = 0; k < 3; ++k)
          dev_p[k].Add(
              t.us[std::min(t.us.size() - 1, size_t(pcts[k] / 100 * double(t.us.size())))]);
        return Status::Ok();
      };
      auto side_fio = [&]() -> Status {
        STRATA_ASSIGN_OR_RETURN(FioRun r, lat_fio.RandomReads(bytes, kLatIos));
        for (size_t k = 0; k < 3; ++k) {
          auto it = r.lat_us.find(fmt::format("{:.6f}", pcts[k]));
          if (it == r.lat_us.end()) return Status::Internal("fio: no latency percentiles");
          fio_p[k].Add(it->second);
        }
        return Status::Ok();
      };
      STRATA_RETURN_IF_ERROR(round % 2 ? side_fio() : side_dev());
      STRATA_RETURN_IF_ERROR(round % 2 ? side_dev() : side_fio());
    }
    for (size_t k = 0; k < 3; ++k)
      out.Figure(fmt::format("nvme.uring.read_latency.qd{}.p{}", qd,
                             k == 0   ? "50"
                             : k == 1 ? "99"
                                      : "999"),
                 dev_p[k], "us", FioName("randread_lat", qd, kLatIo), fio_p[k], false, true);
    Progress(fmt::format("nvme.uring.read_latency: queue depth {} done", qd));
  }
  fs::remove_all(dir);
  return Status::Ok();
}

// Lookup + Get of a 64-block chain (the compressed families a prefix restore reads) with the
// payloads on NVMe only (the store just reopened: its host tier is empty), against fio reading
// the same pieces at the same offsets of its own file; then the same chain again from DRAM.
Status ChainFigures(const StoreBenchOptions& o, const BlockPayloads& blk, const Out& out) {
  const std::string dir = (fs::path(o.dir) / "chain").string();
  const std::string store_dir = (fs::path(dir) / "store").string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<size_t> fam;  // indexes into blk of the families read
  FamilyMask mask;
  uint64_t per_block = 0;
  for (size_t i = 0; i < blk.families.size(); ++i)
    if (blk.families[i] == Family::kCsa || blk.families[i] == Family::kCsaIndex ||
        blk.families[i] == Family::kHca) {
      fam.push_back(i);
      mask.Add(blk.families[i]);
      per_block += cachestore::RecordSpan(blk.bytes[i].size());
    }
  if (fam.empty()) return Status::Ok();
  constexpr uint64_t kChain = 64;
  const uint64_t chains = o.rounds;  // each round reads a chain no earlier round has read
  const uint64_t nb = kChain * chains;
  // Host tier: room for two chains (the written chain is flushed before the next one).
  StoreConfig c = NvmeConfig(o, store_dir, 2 * kChain * per_block * 5 / 4 + (64ull << 20),
                             nb * per_block * 3 / 2);
  {
    STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));
    FreshPayload fresh(blk);
    for (uint64_t b = 0; b < nb; ++b) {
      for (size_t i : fam)
        STRATA_RETURN_IF_ERROR(store->Put({1, KeyOf(b), blk.families[i]}, 9, fresh.Next(i)));
      if (b % kChain == kChain - 1) STRATA_RETURN_IF_ERROR(store->Flush());
    }
  }
  // The store's I/Os per chain, from its index: each record's span in pieces of max_io.
  STRATA_ASSIGN_OR_RETURN(auto entries, ScanIndex(store_dir));
  std::map<std::pair<uint64_t, int>, cachestore::IndexEntry> by_key;
  uint64_t end = 0;
  for (const auto& e : entries) {
    by_key[{e.key.block.lo, int(e.key.family)}] = e;
    end = std::max(end, e.offset + cachestore::RecordSpan(e.stored_size));
  }
  Fio fio(dir, o.queue_depth, c.nvme.max_io_bytes, c.nvme.segment_bytes);
  STRATA_RETURN_IF_ERROR(fio.Write(end).status());  // lays the file out, not timed
  const double chain_mb = double(kChain * per_block) / 1e6;
  Progress(fmt::format("chain of 64 blocks: {} families, {:.1f} MB per chain, {} chains",
                       fam.size(), chain_mb, chains));

  Samples cold, hot, limit, finds;
  for (uint32_t round = 0; round < o.rounds; ++round) {
    std::vector<BlockKey> keys;
    std::vector<std::pair<uint64_t, uint64_t>> ios;
    std::unordered_map<ObjectKey, uint64_t, ObjectKeyHash> peer;
    for (uint64_t b = round * kChain; b < (round + 1) * kChain; ++b) {
      keys.push_back(KeyOf(b));
      for (size_t i : fam) {
        auto it = by_key.find({b, int(blk.families[i])});
        if (it == by_key.end()) return Status::Internal("bench: chain record not in the index");
        AddRecordIos(ios, it->second.offset, cachestore::RecordSpan(it->second.stored_size),
                     c.nvme.max_io_bytes);
        peer[it->second.key] = it->second.offset;
      }
    }
    auto fio_pass = [&]() -> Status {
      STRATA_ASSIGN_OR_RETURN(FioRun r, fio.Replay(ios));
      limit.Add(r.seconds * 1e3);
      return Status::Ok();
    };
    if (round % 2) STRATA_RETURN_IF_ERROR(fio_pass());
    {
      STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));  // host tier empty: payloads on NVMe
      for (Tier want : {Tier::kNvme, Tier::kHost}) {
        const auto t0 = Clock::now();
        STRATA_ASSIGN_OR_RETURN(auto lr, store->Lookup(1, 9, keys, mask));
        if (lr.hit_blocks != kChain) return Status::Internal("bench: chain lookup missed");
        STRATA_ASSIGN_OR_RETURN(auto views, store->Get(1, 9, keys, mask));
        std::vector<uint64_t> pins;
        for (auto& v : views) {
          if (!v.found() || v.served_from != want)
            return Status::Internal("bench: chain object not found in the expected tier");
          pins.push_back(v.pin);
        }
        store->Release(pins);
        (want == Tier::kNvme ? cold : hot).Add(Seconds(t0) * 1e3);
      }
    }
    if (round % 2 == 0) STRATA_RETURN_IF_ERROR(fio_pass());
    {
      size_t found = 0;
      const auto t0 = Clock::now();
      for (const auto& k : keys)
        for (size_t i : fam) found += peer.count(ObjectKey{1, k, blk.families[i]});
      finds.Add(Seconds(t0) * 1e3);
      if (found != peer.size()) return Status::Internal("bench: chain peer missed");
    }
    Progress(fmt::format("chain round {}: cold {:.2f} ms, fio {:.0f} ms, hot {:.3f} ms", round + 1,
                         cold.v.back(), limit.v.back(), hot.v.back()));
  }
  out.Figure("nvme.lookup_get_chain64.cold", cold, "ms",
             fmt::format("fio_replay_same_ios_qd{}", o.queue_depth), limit, false, true);
  out.Figure("nvme.lookup_get_chain64.hot", hot, "ms",
             fmt::format("unordered_map_find_x{}", kChain * fam.size()), finds, false, false);
  fs::remove_all(dir);
  return Status::Ok();
}

Status SpawnCrashChild(const StoreBenchOptions& o, const StoreConfig& c, uint64_t nblocks) {
  std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> args = {self,
                                   "bench-crash-child",
                                   "--dir",
                                   c.nvme.data_dir,
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
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
  }
  if (!(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL))
    return Status::Internal("bench: crash child did not end by SIGKILL");
  return Status::Ok();
}

// Open after SIGKILL (headers read), open with every payload verified, and fsck, each against
// fio doing the same I/O on a file of its own: the same 4 KiB header reads at the same offsets,
// and sequential reads of the same byte count.
Status RecoveryFigures(const StoreBenchOptions& o, const BlockPayloads& blk, const Out& out) {
  const std::string dir = (fs::path(o.dir) / "recovery").string();
  const std::string store_dir = (fs::path(dir) / "store").string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  const uint64_t nblocks = std::max<uint64_t>(1, o.recovery_bytes / blk.total);
  const uint64_t bytes = nblocks * blk.total;
  const uint64_t records = nblocks * blk.families.size();
  StoreConfig c = NvmeConfig(o, store_dir, 256ull << 20, bytes * 5 / 4 + (512ull << 20));
  Fio fio(dir, o.queue_depth, c.nvme.max_io_bytes, c.nvme.segment_bytes);
  // A child process writes and flushes the records, then is killed with SIGKILL. Before each
  // round another child opens the store, rewrites block 0, flushes and is killed: every
  // measured open is an open after a crash, of the same records.
  Progress(fmt::format("child writes {:.2f} GB of records, then is killed", bytes / 1e9));
  STRATA_RETURN_IF_ERROR(SpawnCrashChild(o, c, nblocks));

  std::vector<std::pair<uint64_t, uint64_t>> header_ios;
  uint64_t span_bytes = 0, fio_size = 0;
  Samples open_s, header_fio_s, verify_s, verify_fio_s, fsck_rate, fsck_fio_rate;
  auto open_store = [&](bool verify, Samples& into) -> Status {
    StoreConfig oc = c;
    oc.nvme.verify_payloads_on_open = verify;
    const auto t0 = Clock::now();
    STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(oc));
    const double s = Seconds(t0);
    uint64_t recovered = 0;
    store->VisitCounters([&](std::string_view n, uint64_t v) {
      if (n == "recovered_records") recovered = v;
    });
    if (recovered != records)
      return Status::Internal(fmt::format("bench: recovered {} of {} records", recovered, records));
    into.Add(s);
    return Status::Ok();
  };
  auto scan = [&]() -> Status {  // the records' offsets, for fio (after the store closed)
    STRATA_ASSIGN_OR_RETURN(auto entries, ScanIndex(store_dir));
    header_ios.clear();
    span_bytes = 0;
    for (const auto& e : entries) {
      header_ios.push_back({e.offset, cachestore::kRecordAlign});
      span_bytes += cachestore::RecordSpan(e.stored_size);
    }
    if (fio_size == 0) {
      // As many bytes as the store's segments: each round's child writes block 0 anew, past
      // the records of the first scan.
      fio_size = c.nvme.capacity_bytes;
      Progress(fmt::format("fio lays out {:.2f} GB of random bytes in {}", fio_size / 1e9, dir));
      STRATA_RETURN_IF_ERROR(fio.Write(fio_size).status());
    }
    return Status::Ok();
  };
  auto fio_headers = [&]() -> Status {
    STRATA_ASSIGN_OR_RETURN(FioRun r, fio.Replay(header_ios));
    header_fio_s.Add(r.seconds);
    return Status::Ok();
  };
  auto fio_read = [&](uint64_t n, Samples* secs, Samples* rate) -> Status {
    STRATA_ASSIGN_OR_RETURN(FioRun r, fio.Read(fio_size, n));
    if (secs) secs->Add(r.seconds);
    if (rate) rate->Add(r.GiBps());
    return Status::Ok();
  };
  auto fsck = [&]() -> Status {
    cachestore::FsckOptions fo;
    fo.device = o.device;
    fo.queue_depth = o.queue_depth;
    STRATA_ASSIGN_OR_RETURN(auto rep, cachestore::Fsck(store_dir, fo));
    if (!rep.clean()) return Status::Internal("bench: fsck found problems after the crash");
    fsck_rate.Add(double(rep.bytes_read) / double(1ull << 30) / rep.seconds);
    return Status::Ok();
  };
  for (uint32_t round = 0; round < o.rounds; ++round) {
    if (round > 0) STRATA_RETURN_IF_ERROR(SpawnCrashChild(o, c, 1));
    const bool store_first = round % 2 == 0;  // round 0: fio needs the offsets from the store
    if (store_first) {
      STRATA_RETURN_IF_ERROR(open_store(false, open_s));
      STRATA_RETURN_IF_ERROR(scan());
      STRATA_RETURN_IF_ERROR(fio_headers());
      STRATA_RETURN_IF_ERROR(open_store(true, verify_s));
      STRATA_RETURN_IF_ERROR(fio_read(span_bytes, &verify_fio_s, nullptr));
      STRATA_RETURN_IF_ERROR(fsck());
      STRATA_RETURN_IF_ERROR(fio_read(span_bytes, nullptr, &fsck_fio_rate));
    } else {  // the offsets of the previous round's scan: only block 0's records moved
      STRATA_RETURN_IF_ERROR(fio_headers());
      STRATA_RETURN_IF_ERROR(open_store(false, open_s));
      STRATA_RETURN_IF_ERROR(fio_read(span_bytes, &verify_fio_s, nullptr));
      STRATA_RETURN_IF_ERROR(open_store(true, verify_s));
      STRATA_RETURN_IF_ERROR(fio_read(span_bytes, nullptr, &fsck_fio_rate));
      STRATA_RETURN_IF_ERROR(fsck());
      STRATA_RETURN_IF_ERROR(scan());
    }
    Progress(fmt::format(
        "recovery round {}: open {:.3f} s (fio headers {:.3f} s), verifying open {:.2f} s (fio "
        "{:.2f} s), fsck {:.2f} GiB/s (fio {:.2f} GiB/s)",
        round + 1, open_s.v.back(), header_fio_s.v.back(), verify_s.v.back(), verify_fio_s.v.back(),
        fsck_rate.v.back(), fsck_fio_rate.v.back()));
  }
  const double gib = double(bytes) / double(1ull << 30);
  const uint32_t qd = o.queue_depth;
  out.Figure(fmt::format("recovery.open_after_crash_{:.1f}GiB", gib), open_s, "s",
             fmt::format("fio_replay_header_reads_qd{}_4KiB", qd), header_fio_s, false, true);
  out.Figure(fmt::format("recovery.open_verify_payloads_{:.1f}GiB", gib), verify_s, "s",
             FioName("read_same_bytes", qd, c.nvme.max_io_bytes), verify_fio_s, false, true);
  out.Figure("fsck.rate", fsck_rate, "GiB/s", FioName("read_same_bytes", qd, c.nvme.max_io_bytes),
             fsck_fio_rate, true, true);
  fs::remove_all(dir);
  return Status::Ok();
}

// Opens the segment files of a store config's data directory directly, for the rebuild's peer.
Result<std::unique_ptr<cachestore::Device>> OpenSegments(const StoreConfig& c, DeviceKind kind) {
  cachestore::FileDeviceOptions fo;
  fo.dir = (fs::path(c.nvme.data_dir) / "segments").string();
  fo.segment_bytes = c.nvme.segment_bytes;
  fo.segment_count = uint32_t(c.nvme.capacity_bytes / c.nvme.segment_bytes);
  fo.queue_depth = c.nvme.queue_depth;
  return cachestore::OpenFileDevice(kind, fo);
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
  const Samples rb{rebuild_v}, rw{raw_v}, sc{scan_v};
  std::string line =
      FigureJson(fmt::format("rebuild.index_from_segments_{}records_{:.1f}GiB", records,
                             double(dev->size()) / (1ull << 30)),
                 rb, "s", "read_whole_device_same_ios_s", rw, /*higher_is_better=*/false);
  line.pop_back();
  line += fmt::format(R"(, "scan_median": {:.6g}, "scan_min": {:.6g}, "scan_max": {:.6g}}})",
                      sc.Median(), sc.Min(), sc.Max());
  emit(line);
  fs::remove_all(dir);
  return Status::Ok();
}
}  // namespace

Status RunCrashChild(const StoreBenchOptions& o, const std::string& dir, uint64_t capacity,
                     uint64_t nblocks) {
  const BlockPayloads blk = BlockSizes(o.layout);
  // The host tier holds what is dirty between two flushes (16 blocks).
  StoreConfig c = NvmeConfig(
      o, dir,
      std::min<uint64_t>(1ull << 30,
                         std::min<uint64_t>(nblocks, 16) * blk.total * 5 / 4 + (64ull << 20)),
      capacity);
  c.nvme.capacity_bytes = capacity;
  STRATA_ASSIGN_OR_RETURN(auto store, OpenStore(c));
  FreshPayload fresh(blk);
  for (uint64_t b = 0; b < nblocks; ++b) {
    for (size_t i = 0; i < blk.families.size(); ++i)
      STRATA_RETURN_IF_ERROR(store->Put({1, KeyOf(b), blk.families[i]}, 9, fresh.Next(i)));
    if (b % 16 == 15) STRATA_RETURN_IF_ERROR(store->Flush());
  }
  STRATA_RETURN_IF_ERROR(store->Flush());
  raise(SIGKILL);  // no clean shutdown: the parent measures recovery after a crash
  return Status::Internal("still alive after SIGKILL");
}

Status RunStoreBench(const StoreBenchOptions& o,
                     const std::function<void(const std::string&)>& emit) {
  if (o.rounds < 1) return Status::InvalidArgument("bench: rounds must be >= 1");
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) return Status::IoError("create " + o.dir + ": " + ec.message());
  Progress("generating V4-shaped payloads for " + o.layout.shape().name);
  const BlockPayloads blk = MakeBlock(o.layout);
  const Out out{o, emit};
  if (out.Section("codec")) {
    Progress("codec figures");
    CodecFigures(o, blk, out);
  }
  if (out.Section("host")) {
    Progress("host figures");
    STRATA_RETURN_IF_ERROR(HostFigures(o, blk, out));
  }
  if (out.Section("nvme.put") || out.Section("nvme.get"))
    STRATA_RETURN_IF_ERROR(NvmeFigures(o, blk, out));
  if (out.Section("nvme.lookup_get")) STRATA_RETURN_IF_ERROR(ChainFigures(o, blk, out));
  if (out.Section("nvme.uring")) STRATA_RETURN_IF_ERROR(UringFigures(o, out));
  if (out.Section("nvme.drives")) STRATA_RETURN_IF_ERROR(DriveFigures(o, out));
  if (out.Section("recovery") || out.Section("fsck"))
    STRATA_RETURN_IF_ERROR(RecoveryFigures(o, blk, out));
  if (out.Section("rebuild")) STRATA_RETURN_IF_ERROR(RebuildFigures(o, blk, emit));
  return Status::Ok();
}

}  // namespace strata::bench
