#include "tools/commands.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>

#include "bench/store_bench.h"
#include "bench/v4_payload.h"
#include "cachestore/nvme/fsck.h"
#include "engine/model_config.h"
#include "strata/keys.h"
#include "strata/layout.h"
#include "strata/store.h"
#include "tools/store_config.h"

namespace strata::tools {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Result<CacheLayout> LayoutFrom(const std::string& model, uint32_t block_size) {
  STRATA_ASSIGN_OR_RETURN(auto shape, engine::LoadModelShape(model));
  LayoutOptions lo;
  lo.block_size = block_size;
  return CacheLayout::Make(shape, lo);
}

bool StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

}  // namespace

// Parses `args` (args[0] is the command's name); prints help / errors. nullopt: exit with *rc.
std::optional<cxxopts::ParseResult> Parse(cxxopts::Options& opts, std::vector<std::string>& args,
                                          int* rc) {
  opts.add_options()("h,help", "show this help");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  try {
    auto r = opts.parse(int(argv.size()), argv.data());
    if (r.count("help")) {
      std::cout << opts.help() << std::endl;
      *rc = 0;
      return std::nullopt;
    }
    if (!r.unmatched().empty()) {
      std::cerr << args[0] << ": unexpected argument '" << r.unmatched()[0] << "'\n";
      *rc = 2;
      return std::nullopt;
    }
    return r;
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << args[0] << ": " << e.what() << "\n(" << args[0] << " --help for the options)\n";
    *rc = 2;
    return std::nullopt;
  }
}

int Fail(const std::string& cmd, const Status& s) {
  std::cerr << cmd << ": " << s.ToString() << std::endl;
  return 1;
}

// --- layout ----------------------------------------------------------------------------------

int CmdLayout(std::vector<std::string> args) {
  cxxopts::Options opts(args[0], "Bytes per block and per token of every state family.");
  opts.add_options()(
      "model", "model config (JSON)",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-pro.json")))(
      "block-size", "tokens per block (multiple of 128)",
      cxxopts::value<uint32_t>()->default_value("256"))("json", "print JSON");
  int rc;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  auto layout = LayoutFrom((*r)["model"].as<std::string>(), (*r)["block-size"].as<uint32_t>());
  if (!layout.ok()) return Fail(args[0], layout.status());
  const CacheLayout& l = *layout;
  if (r->count("json")) {
    std::string fams;
    for (Family f : kAllFamilies)
      fams += fmt::format(R"({}"{}": {{"block_bytes": {}, "bytes_per_token": {:.4f}}})",
                          fams.empty() ? "" : ", ", FamilyName(f), l.FamilyBlockBytes(f),
                          l.BytesPerToken(f));
    fmt::print(
        R"({{"model": "{}", "block_size": {}, "fingerprint": "{:016x}", "csa_layers": {}, "hca_layers": {}, "swa_layers": {}, "main_entry_bytes": {}, "index_entry_bytes": {}, "families": {{{}}}}})"
        "\n",
        l.shape().name, l.block_size(), l.fingerprint(), l.csa_layers(), l.hca_layers(),
        l.swa_layers(), l.main_entry_bytes(), l.index_entry_bytes(), fams);
    return 0;
  }
  fmt::print("model {}  block {} tokens  fingerprint {:016x}\n", l.shape().name, l.block_size(),
             l.fingerprint());
  fmt::print("layers: {} CSA, {} HCA, {} with SWA (incl. MTP); entries: main {} B, indexer {} B\n",
             l.csa_layers(), l.hca_layers(), l.swa_layers(), l.main_entry_bytes(),
             l.index_entry_bytes());
  fmt::print("{:<12} {:>14} {:>14}\n", "family", "bytes/block", "bytes/token");
  for (Family f : kAllFamilies)
    fmt::print("{:<12} {:>14} {:>14.2f}\n", FamilyName(f), l.FamilyBlockBytes(f),
               l.BytesPerToken(f));
  const double compressed = l.BytesPerToken(Family::kCsa) + l.BytesPerToken(Family::kCsaIndex) +
                            l.BytesPerToken(Family::kHca);
  fmt::print("compressed state {:.1f} B/token; full SWA {:.1f} B/token ({:.1f}x)\n", compressed,
             l.BytesPerToken(Family::kSwa), l.BytesPerToken(Family::kSwa) / compressed);
  return 0;
}

// --- fsck / stats ----------------------------------------------------------------------------

int CmdFsck(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "Checks every record of a data directory (header and payload checksum) "
                        "against its index entry. Exit status 1 if anything is wrong.");
  opts.add_options()("data-dir", "data directory", cxxopts::value<std::string>())(
      "repair", "remove index entries whose records fail")(
      "rebuild-index",
      "first rebuild the index from the segments' record headers (after the index was lost "
      "or damaged)")("json", "print JSON");
  int rc;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  if (!r->count("data-dir"))
    return Fail(args[0], Status::InvalidArgument("--data-dir is required"));
  cachestore::FsckOptions fo;
  fo.repair = r->count("repair") > 0;
  fo.rebuild_index = r->count("rebuild-index") > 0;
  const bool tty = StderrIsTerminal();
  fo.progress = [&](uint64_t done, uint64_t total) {
    if (tty)
      std::fprintf(stderr, "\rfsck: %llu / %llu records", (unsigned long long)done,
                   (unsigned long long)total);
  };
  fo.rebuild_progress = [&](uint64_t done, uint64_t total) {
    if (tty)
      std::fprintf(stderr, "\rrebuild: %llu / %llu MiB of segments",
                   (unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
  };
  auto rep = cachestore::Fsck((*r)["data-dir"].as<std::string>(), fo);
  if (tty) std::fprintf(stderr, "\n");
  if (!rep.ok()) return Fail(args[0], rep.status());
  const double gib = double(rep->bytes_read) / double(1ull << 30);
  const auto& rb = rep->rebuild;
  if (r->count("json")) {
    const std::string rebuilt =
        rep->rebuilt
            ? fmt::format(
                  R"(, "rebuilt": {{"records": {}, "headers": {}, "superseded": {}, "deleted": {}, "corrupt_payloads": {}, "dropped_keys": {}, "bad_headers": {}, "bytes_read": {}, "seconds": {:.3f}, "scan_seconds": {:.3f}}})",
                  rb.records, rb.headers, rb.superseded, rb.deleted, rb.corrupt_payloads,
                  rb.dropped_keys, rb.bad_headers, rb.bytes_read, rb.seconds, rb.scan_seconds)
            : std::string();
    fmt::print(
        R"({{"checked": {}, "ok": {}, "bad_location": {}, "missing": {}, "corrupt": {}, "repaired": {}, "bytes_read": {}, "seconds": {:.3f}, "gib_per_s": {:.3f}{}}})"
        "\n",
        rep->checked, rep->ok, rep->bad_location, rep->missing, rep->corrupt, rep->repaired,
        rep->bytes_read, rep->seconds, rep->seconds > 0 ? gib / rep->seconds : 0.0, rebuilt);
  } else {
    if (rep->rebuilt)
      fmt::print(
          "rebuilt the index from the segments: {} records ({} headers read: {} superseded or "
          "copies, {} of deleted namespaces, {} corrupt payloads, {} keys dropped as their "
          "newest version is corrupt) in {:.2f} s\n",
          rb.records, rb.headers, rb.superseded, rb.deleted, rb.corrupt_payloads, rb.dropped_keys,
          rb.seconds);
    fmt::print("fsck {}: {} records checked, {} ok, {} missing, {} corrupt, {} bad locations\n",
               (*r)["data-dir"].as<std::string>(), rep->checked, rep->ok, rep->missing,
               rep->corrupt, rep->bad_location);
    fmt::print("read {:.3f} GiB in {:.2f} s ({:.2f} GiB/s)\n", gib, rep->seconds,
               rep->seconds > 0 ? gib / rep->seconds : 0.0);
    if (rep->repaired) fmt::print("repaired: removed {} index entries\n", rep->repaired);
    fmt::print("{}\n", rep->clean() ? "clean" : "NOT CLEAN");
  }
  return rep->clean() || rep->repaired ? 0 : 1;
}

int CmdStats(std::vector<std::string> args) {
  for (const std::string& a : args)
    if (a == "--server" || a.rfind("--server=", 0) == 0) return CmdServerStats(std::move(args));
  cxxopts::Options opts(
      args[0],
      "What a data directory stores, per family (NVMe tier). With --server "
      "SOCKET: a tenant's counters on a running strata-server (--server --help).");
  opts.add_options()("data-dir", "data directory", cxxopts::value<std::string>())("json",
                                                                                  "print JSON");
  int rc;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  if (!r->count("data-dir"))
    return Fail(args[0], Status::InvalidArgument("--data-dir is required"));
  auto st = cachestore::ReadDataDirStats((*r)["data-dir"].as<std::string>());
  if (!st.ok()) return Fail(args[0], st.status());
  const uint64_t cap = st->segment_bytes * st->segment_count;
  if (r->count("json")) {
    std::string fams;
    for (Family f : kAllFamilies) {
      const auto& t = st->families[int(f)];
      fams += fmt::format(R"({}"{}": {{"records": {}, "raw_bytes": {}, "stored_bytes": {}}})",
                          fams.empty() ? "" : ", ", FamilyName(f), t.records, t.raw_bytes,
                          t.stored_bytes);
    }
    fmt::print(
        R"({{"tier": "nvme", "capacity": {}, "segments": {}, "records": {}, "disk_bytes": {}, "families": {{{}}}}})"
        "\n",
        cap, st->segment_count, st->records, st->disk_bytes, fams);
    return 0;
  }
  fmt::print("tier nvme: {} segments of {} MiB, {:.1f} MiB of {:.1f} MiB used by {} records\n",
             st->segment_count, st->segment_bytes >> 20, st->disk_bytes / 1048576.0,
             cap / 1048576.0, st->records);
  fmt::print("{:<12} {:>10} {:>16} {:>16} {:>8}\n", "family", "records", "raw bytes",
             "stored bytes", "ratio");
  for (Family f : kAllFamilies) {
    const auto& t = st->families[int(f)];
    fmt::print("{:<12} {:>10} {:>16} {:>16} {:>8.3f}\n", FamilyName(f), t.records, t.raw_bytes,
               t.stored_bytes, t.stored_bytes ? double(t.raw_bytes) / double(t.stored_bytes) : 0.0);
  }
  return 0;
}

// --- bench store -----------------------------------------------------------------------------

int CmdBenchStore(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "The store's benchmark figures, each against a peer measured in "
                        "the same run, as JSON lines on stdout.");
  opts.add_options()("dir", "scratch directory",
                     cxxopts::value<std::string>()->default_value("./strata-bench"))(
      "model", "model config for record sizes",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-pro.json")))(
      "block-size", "tokens per block", cxxopts::value<uint32_t>()->default_value("256"))(
      "nvme-bytes", "bytes written and read in the NVMe figures",
      cxxopts::value<std::string>()->default_value("2GiB"))(
      "recovery-bytes", "bytes of records before the crash",
      cxxopts::value<std::string>()->default_value("10GiB"))(
      "lookup-blocks", "blocks in the index for the lookup figure",
      cxxopts::value<uint64_t>()->default_value("1000000"))(
      "queue-depth", "I/Os in flight", cxxopts::value<uint32_t>()->default_value("32"))(
      "device", "io_uring or posix", cxxopts::value<std::string>()->default_value("io_uring"))(
      "codec", "per-family codecs, e.g. checkpoint=none,csa=lz4 (auto: the codec rule)",
      cxxopts::value<std::string>()->default_value(""))(
      "drive-read-gbps", "the codec rule's drive read rate (default: the rule's, 7)",
      cxxopts::value<double>())("decode-threads", "the codec rule's decode threads",
                                cxxopts::value<uint32_t>()->default_value("1"))(
      "only", "run only figures whose name starts with this (codec, host, nvme, recovery, rebuild)",
      cxxopts::value<std::string>()->default_value(""))(
      "quick", "small sizes (256MiB NVMe, 512MiB recovery, 100k lookup blocks)")(
      "drives",
      "nvme.drives figures: one directory per drive, comma-separated (default: two directories "
      "under --dir, on one disk)",
      cxxopts::value<std::string>()->default_value(""));
  int rc;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  bench::StoreBenchOptions o;
  o.dir = (*r)["dir"].as<std::string>();
  o.model_path = (*r)["model"].as<std::string>();
  auto layout = LayoutFrom(o.model_path, (*r)["block-size"].as<uint32_t>());
  if (!layout.ok()) return Fail(args[0], layout.status());
  o.layout = *layout;
  auto nb = ParseBytes((*r)["nvme-bytes"].as<std::string>());
  auto rb = ParseBytes((*r)["recovery-bytes"].as<std::string>());
  if (!nb.ok()) return Fail(args[0], nb.status());
  if (!rb.ok()) return Fail(args[0], rb.status());
  o.nvme_bytes = *nb;
  o.recovery_bytes = *rb;
  o.lookup_index_blocks = (*r)["lookup-blocks"].as<uint64_t>();
  if (r->count("quick")) {
    o.nvme_bytes = 256ull << 20;
    o.recovery_bytes = 512ull << 20;
    o.lookup_index_blocks = 100000;
  }
  if (o.lookup_index_blocks < 128)
    return Fail(args[0], Status::InvalidArgument("--lookup-blocks must be >= 128"));
  o.queue_depth = (*r)["queue-depth"].as<uint32_t>();
  const std::string dev = (*r)["device"].as<std::string>();
  if (dev == "io_uring")
    o.device = DeviceKind::kIoUring;
  else if (dev == "posix")
    o.device = DeviceKind::kPosix;
  else
    return Fail(args[0], Status::InvalidArgument("--device must be io_uring or posix"));
  const std::string codecs = (*r)["codec"].as<std::string>();
  if (!codecs.empty()) {
    auto cfg = ParseStoreConfig(
        "{\"codec\": {" +
            [&] {
              std::string j;
              size_t pos = 0;
              while (pos <= codecs.size()) {
                size_t comma = codecs.find(',', pos);
                std::string item = codecs.substr(
                    pos, comma == std::string::npos ? std::string::npos : comma - pos);
                size_t eq = item.find('=');
                if (eq != std::string::npos)
                  j += fmt::format("{}\"{}\": \"{}\"", j.empty() ? "" : ", ", item.substr(0, eq),
                                   item.substr(eq + 1));
                if (comma == std::string::npos) break;
                pos = comma + 1;
              }
              return j;
            }() +
            "}}",
        "--codec");
    if (!cfg.ok()) return Fail(args[0], cfg.status());
    o.codec = cfg->codec;
    o.codec_rule = cfg->codec_rule;
  }
  if (r->count("drive-read-gbps"))
    o.codec_rule.drive_read_bytes_per_s = (*r)["drive-read-gbps"].as<double>() * 1e9;
  o.codec_rule.decode_threads = (*r)["decode-threads"].as<uint32_t>();
  if (!(o.codec_rule.drive_read_bytes_per_s > 0) || o.codec_rule.decode_threads == 0)
    return Fail(args[0],
                Status::InvalidArgument("--drive-read-gbps must be > 0 and --decode-threads >= 1"));
  o.only = (*r)["only"].as<std::string>();
  {
    std::stringstream list((*r)["drives"].as<std::string>());
    for (std::string d; std::getline(list, d, ',');)
      if (!d.empty()) o.drive_dirs.push_back(d);
  }
  Status s = bench::RunStoreBench(o, [](const std::string& line) {
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
  });
  std::error_code ec;
  fs::remove_all(o.dir, ec);
  if (!s.ok()) return Fail(args[0], s);
  return 0;
}

int CmdBenchCrashChild(std::vector<std::string> args) {
  cxxopts::Options opts(args[0], "internal: the recovery benchmark's child process");
  opts.add_options()("dir", "", cxxopts::value<std::string>())(
      "blocks", "", cxxopts::value<uint64_t>())("capacity", "", cxxopts::value<uint64_t>())(
      "device", "", cxxopts::value<std::string>())("queue-depth", "", cxxopts::value<uint32_t>())(
      "model", "", cxxopts::value<std::string>())("block-size", "", cxxopts::value<uint32_t>());
  int rc;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  bench::StoreBenchOptions o;
  auto layout = LayoutFrom((*r)["model"].as<std::string>(), (*r)["block-size"].as<uint32_t>());
  if (!layout.ok()) return Fail(args[0], layout.status());
  o.layout = *layout;
  o.device =
      (*r)["device"].as<std::string>() == "posix" ? DeviceKind::kPosix : DeviceKind::kIoUring;
  o.queue_depth = (*r)["queue-depth"].as<uint32_t>();
  Status s = bench::RunCrashChild(o, (*r)["dir"].as<std::string>(), (*r)["capacity"].as<uint64_t>(),
                                  (*r)["blocks"].as<uint64_t>());
  return Fail(args[0], s);
}

}  // namespace strata::tools
