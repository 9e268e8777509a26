// `strata replay`: the CLI over tools/store_replay.h (options, report, plots).
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tools/commands.h"
#include "tools/compare_sweep.h"
#include "tools/store_config.h"
#include "tools/store_replay.h"

namespace strata::tools {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

double Err(double store, double sim) { return sim != 0 ? (store - sim) / sim : 0; }

std::string Gb(double b) { return fmt::format("{:.3f} GB", b / 1e9); }

json LatencyJson(const LatencyUs& l) {
  return {{"count", l.count},
          {"p50_us", l.p50},
          {"p99_us", l.p99},
          {"p999_us", l.p999},
          {"max_us", l.max}};
}

// One quantity of the simulator check: the store's figure, the simulator's, the error.
struct Check {
  std::string name;
  double store = 0, sim = 0;
};

std::vector<Check> Checks(const StoreReplayResult& r) {
  const CompareResult& a = r.store;
  const CompareResult& b = r.sim;
  return {
      {"lookup hit rate", a.hit_rate(), b.hit_rate()},
      {"restored tokens", double(a.restored_tokens), double(b.restored_tokens)},
      {"saved rate", a.saved_rate(), b.saved_rate()},
      {"plan fallbacks", double(a.fallbacks), double(b.fallbacks)},
      {"NVMe record bytes written", double(r.store_nvme_bytes_written),
       double(r.sim_nvme_bytes_written)},
      {"device bytes written", double(r.device_write_bytes), double(r.sim_device_write_bytes)},
      {"NVMe record bytes read", double(r.store_nvme_bytes_read), double(r.sim_nvme_bytes_read)},
      {"device bytes read", double(r.device_read_bytes), double(r.sim_device_read_bytes)},
      {"restore time, summed (s)", a.restore_s, b.restore_s},
      {"TTFT p50 (s)", a.ttft_s.p50, b.ttft_s.p50},
      {"TTFT p99 (s)", a.ttft_s.p99, b.ttft_s.p99},
  };
}

json ResultJson(const StoreReplayResult& r, const std::string& slice, uint32_t scale,
                uint64_t drive_bytes, CodecKind codec) {
  const CompareResult& a = r.store;
  json j = {
      {"kind", "replay"},
      {"config", a.config.Label()},
      {"model", a.model},
      {"slice", slice},
      {"scale_down", scale},
      {"ran_on", r.ran_on},
      {"drives", r.drives},
      {"distinct_devices", r.distinct_devices},
      {"requests", a.requests},
      {"input_tokens", a.input_tokens},
      {"trace_s", r.trace_s},
      {"wall_s", r.wall_s},
      {"hit_rate", a.hit_rate()},
      {"restored_tokens", a.restored_tokens},
      {"saved_rate", a.saved_rate()},
      {"plans", a.plans},
      {"fallbacks", a.fallbacks},
      {"device_read_bytes", r.device_read_bytes},
      {"device_write_bytes", r.device_write_bytes},
      {"device_reads", r.device_reads},
      {"device_writes", r.device_writes},
      {"placed_nvme_bytes", r.placed_nvme_bytes},
      {"relocated_bytes", r.relocated_bytes},
      {"segments_reclaimed", r.segments_reclaimed},
      {"write_amplification", r.write_amplification()},
      {"device_write_bytes_per_hour", r.device_write_bytes_per_hour()},
      {"drive_bytes", drive_bytes},
      {"drive_writes_per_day", DriveWritesPerDay(r.device_write_bytes_per_hour(), drive_bytes)},
      {"demotion_backlog_bytes", 0},
      {"restore_read", LatencyJson(r.restore_read_us)},
      {"get", LatencyJson(r.get_us)},
      {"put", LatencyJson(r.put_us)},
      {"payload_mismatches", r.payload_mismatches},
      {"corrupt_misses", r.corrupt_misses},
      {"codec", std::string(CodecKindName(codec))},
      {"nvme_tokens_per_tb", r.nvme_tokens_per_tb},
      {"nvme_raw_bytes", r.nvme_raw_bytes},
      {"nvme_stored_bytes", r.nvme_stored_bytes},
      {"nvme_restore_bytes_per_s", r.nvme_restore_bytes_per_s},
      {"ttft_p50_s", a.ttft_s.p50},
      {"ttft_p99_s", a.ttft_s.p99}};
  if (r.compared) {
    json c = {{"store_decisions", r.store_decisions},
              {"sim_decisions", r.sim_decisions},
              {"first_divergence", r.first_divergence},
              {"divergence", r.divergence}};
    json q = json::array();
    for (const Check& k : Checks(r))
      q.push_back(
          {{"name", k.name}, {"store", k.store}, {"sim", k.sim}, {"error", Err(k.store, k.sim)}});
    c["quantities"] = q;
    j["simulator"] = c;
  }
  return j;
}

std::string Report(const StoreReplayResult& r, const std::string& slice, uint32_t scale,
                   uint64_t drive_bytes, double speed) {
  const CompareResult& a = r.store;
  std::string s;
  s += fmt::format("replay {} ({}): {} requests, {} prompt tokens, {:.0f} s of trace time\n",
                   a.config.Label(), a.model, a.requests, a.input_tokens, r.trace_s);
  s += fmt::format("  slice: {}{}\n", slice,
                   scale > 1 ? fmt::format("; object sizes scaled down {}x", scale) : "");
  s += fmt::format("  NVMe tier on: {}\n", r.ran_on.empty() ? "none (host only)" : r.ran_on);
  if (r.drives > 1 && r.distinct_devices < r.drives)
    s += fmt::format("  ({} directories on {} device(s): directories on one disk are not drives)\n",
                     r.drives, r.distinct_devices);
  s += fmt::format("  wall time {:.1f} s ({})\n", r.wall_s,
                   speed > 0 ? fmt::format("{}x the trace's pace", speed) : "as fast as it goes");
  s += fmt::format(
      "hits (from what Get served): lookup {:.1f}%, restored {:.1f}% of prompt tokens, saved "
      "{:.1f}%; plans cold/full/checkpoint/recompute {}/{}/{}/{}, fallbacks {}\n",
      100 * a.hit_rate(),
      100 * double(a.restored_tokens) / double(std::max<uint64_t>(1, a.input_tokens)),
      100 * a.saved_rate(), a.plans[0], a.plans[1], a.plans[2], a.plans[3], a.fallbacks);
  const double w = std::max(r.wall_s, 1e-9);
  s += fmt::format(
      "device: read {} in {} I/Os ({:.1f} MB/s over the wall time), wrote {} in {} I/Os "
      "({:.1f} MB/s)\n",
      Gb(double(r.device_read_bytes)), r.device_reads, double(r.device_read_bytes) / w / 1e6,
      Gb(double(r.device_write_bytes)), r.device_writes, double(r.device_write_bytes) / w / 1e6);
  auto lat = [](const LatencyUs& l) {
    return l.count ? fmt::format("p50 {:.0f} us, p99 {:.0f} us, p99.9 {:.0f} us ({} calls)", l.p50,
                                 l.p99, l.p999, l.count)
                   : std::string("none");
  };
  s += "restore-path device reads: " + lat(r.restore_read_us) + "\n";
  s += "Get calls: " + lat(r.get_us) + "\n";
  s += "Put calls (demotions to NVMe included): " + lat(r.put_us) + "\n";
  s += fmt::format(
      "write amplification: {:.3f} (device wrote {} for {} placed on NVMe; reclaim moved {}, "
      "{} segments reclaimed)\n",
      r.write_amplification(), Gb(double(r.device_write_bytes)), Gb(double(r.placed_nvme_bytes)),
      Gb(double(r.relocated_bytes)), r.segments_reclaimed);
  s += fmt::format(
      "endurance: {} written per trace hour = {:.3f} drive writes per day on a {} drive\n",
      Gb(r.device_write_bytes_per_hour()),
      DriveWritesPerDay(r.device_write_bytes_per_hour(), drive_bytes), Gb(double(drive_bytes)));
  if (r.nvme_stored_bytes)
    s += fmt::format(
        "NVMe tier at the end: {:.3g} prompt tokens of compressed state per TB of capacity; {} of "
        "payload in {} of records ({:.3f}x); restores from it at {:.0f} MB/s (Get time)\n",
        r.nvme_tokens_per_tb, Gb(double(r.nvme_raw_bytes)), Gb(double(r.nvme_stored_bytes)),
        double(r.nvme_raw_bytes) / double(r.nvme_stored_bytes), r.nvme_restore_bytes_per_s / 1e6);
  s += "demotion backlog: none (demotions are written by the Put that needs the DRAM space)\n";
  s += fmt::format("payload check: {} objects with another object's bytes, {} corrupt misses\n",
                   r.payload_mismatches, r.corrupt_misses);
  if (r.compared) {
    s += fmt::format(
        "simulator: {} placement decisions, store {}: {}\n", r.sim_decisions, r.store_decisions,
        r.first_divergence < 0
            ? std::string("identical, entry by entry")
            : fmt::format("first difference at entry {}: {}", r.first_divergence, r.divergence));
    s += fmt::format("  {:<28} {:>16} {:>16} {:>9}\n", "quantity", "store", "simulator", "error");
    for (const Check& k : Checks(r))
      s += fmt::format("  {:<28} {:>16.6g} {:>16.6g} {:>8.2f}%\n", k.name, k.store, k.sim,
                       100 * Err(k.store, k.sim));
    s += "  (record bytes: demotions and restores, headers and 4 KiB padding included; device "
         "bytes add reclaim's relocations; restore time and TTFT use the measured Get time in "
         "the store, the hardware file's bandwidths in the simulator)\n";
  }
  return s;
}

}  // namespace

int CmdReplay(std::vector<std::string> args) {
  cxxopts::Options opts(
      args[0],
      "Replays a request trace through the real store (host DRAM + NVMe tier on real files, real "
      "bytes of the layout's sizes, checksums, reclaim) without the engine, with the restores and "
      "offloads each request causes under the SWA policy (strata compare's planning). Reports "
      "device throughput, restore read latency, write amplification, drive writes per day and hit "
      "rates, and checks the simulator against it on the same trace.");
  opts.add_options()("trace", "trace: Mooncake JSONL (*.jsonl) or a strata session file (*.json)",
                     cxxopts::value<std::string>())(
      "model", "model config",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-flash.json")))(
      "policy", "SWA policy: full, checkpoint:K, recompute, auto",
      cxxopts::value<std::string>()->default_value("auto"))(
      "dram", "DRAM tier size", cxxopts::value<std::string>()->default_value("1GiB"))(
      "nvme", "NVMe tier size (0: none)", cxxopts::value<std::string>()->default_value("8GiB"))(
      "data-dir",
      "the NVMe tier's directory, or one per drive as D1,D2,... (segments striped over them; "
      "created, must be empty)",
      cxxopts::value<std::string>())("segment-bytes", "NVMe segment file size",
                                     cxxopts::value<std::string>()->default_value("64MiB"))(
      "device", "NVMe I/O: auto, io_uring, posix",
      cxxopts::value<std::string>()->default_value("auto"))(
      "queue-depth", "NVMe I/Os in flight", cxxopts::value<uint32_t>()->default_value("32"))(
      "codec",
      "the NVMe tier's codec for every family: none, zstd, lz4, ... (payloads are V4-shaped bytes; "
      "with a codec placement differs from the simulator's by design)",
      cxxopts::value<std::string>()->default_value("none"))(
      "eviction", "eviction policy (lru, s3fifo, cost)",
      cxxopts::value<std::string>()->default_value("lru"))(
      "hardware", "node cost parameters (the simulator's tier speeds and the TTFT model)",
      cxxopts::value<std::string>()->default_value(DataPath("configs/hardware/b200-node.json")))(
      "nvme-read-gbps",
      "the simulator's NVMe read rate in GB/s (default: the hardware file's; give this disk's "
      "figure from `strata bench store --only nvme` to check the simulator against it)",
      cxxopts::value<double>()->default_value("0"))(
      "nvme-write-gbps", "the simulator's NVMe write rate in GB/s (0: the hardware file's)",
      cxxopts::value<double>()->default_value("0"))(
      "nvme-latency-us", "the simulator's NVMe latency in us (negative: the hardware file's)",
      cxxopts::value<double>()->default_value("-1"))(
      "block-size", "tokens per block", cxxopts::value<uint32_t>()->default_value("256"))(
      "requests", "replay only the first N requests (0: all)",
      cxxopts::value<size_t>()->default_value("0"))(
      "window", "replay only requests arriving in [START,END) seconds, as START:END",
      cxxopts::value<std::string>()->default_value(""))(
      "scale-down", "divide every object's size by this (big models on a small disk)",
      cxxopts::value<uint32_t>()->default_value("1"))(
      "speed", "0: as fast as the store goes; X: the trace's pace X times faster",
      cxxopts::value<double>()->default_value("0"))(
      "drive-size", "drive size for drive writes per day (default: the NVMe tier's size)",
      cxxopts::value<std::string>()->default_value("0"))(
      "sample-s", "wall seconds between samples of the time series",
      cxxopts::value<double>()->default_value("1"))("no-simulator", "skip the simulator check")(
      "json", "one JSON object on stdout")(
      "plot", "write PNG plots over time (and replay.jsonl) into this directory",
      cxxopts::value<std::string>());
  int rc;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  const std::string cmd = args[0];
  if (!r->count("trace"))
    return Fail(cmd, Status::InvalidArgument("--trace is required (" + cmd + " --help)"));
  auto bytes = [&](const std::string& flag) -> Result<uint64_t> {
    auto b = ParseBytes((*r)[flag].as<std::string>());
    if (!b.ok()) return Status::InvalidArgument("--" + flag + ": " + b.status().message());
    return *b;
  };
  auto dram = bytes("dram"), nvme = bytes("nvme"), seg = bytes("segment-bytes"),
       drive = bytes("drive-size");
  for (const auto* b : {&dram, &nvme, &seg, &drive})
    if (!b->ok()) return Fail(cmd, b->status());

  StoreReplayOptions o;
  if (r->count("data-dir")) {
    std::vector<std::string> dirs;
    std::stringstream list((*r)["data-dir"].as<std::string>());
    for (std::string d; std::getline(list, d, ',');)
      if (!d.empty()) dirs.push_back(d);
    if (!dirs.empty()) {
      o.data_dir = dirs[0];
      o.drives.assign(dirs.begin() + 1, dirs.end());
    }
  }
  if (*nvme && o.data_dir.empty())
    return Fail(cmd, Status::InvalidArgument("--data-dir is required with an NVMe tier (--nvme 0: "
                                             "host only)"));
  if (*seg == 0 || *seg % 4096 || (*nvme && *nvme < *seg))
    return Fail(cmd, Status::InvalidArgument(
                         "--segment-bytes: a multiple of 4 KiB, no larger than --nvme"));
  const std::string dev = (*r)["device"].as<std::string>();
  if (dev == "io_uring")
    o.device = DeviceKind::kIoUring;
  else if (dev == "posix")
    o.device = DeviceKind::kPosix;
  else if (dev != "auto")
    return Fail(cmd, Status::InvalidArgument("--device: auto, io_uring or posix"));
  o.queue_depth = (*r)["queue-depth"].as<uint32_t>();
  auto codec = ParseCodec((*r)["codec"].as<std::string>());
  if (!codec.ok()) return Fail(cmd, codec.status().WithContext("--codec"));
  o.codec = *codec;
  o.speed = (*r)["speed"].as<double>();
  o.sample_every_s = (*r)["sample-s"].as<double>();
  o.drive_bytes = *drive ? *drive : *nvme;
  o.compare_with_simulator = r->count("no-simulator") == 0;

  SweepOptions so;
  so.trace_path = (*r)["trace"].as<std::string>();
  so.block_size = (*r)["block-size"].as<uint32_t>();
  so.models = {(*r)["model"].as<std::string>()};
  so.policies = {(*r)["policy"].as<std::string>()};
  so.evictions = {(*r)["eviction"].as<std::string>()};
  so.hbm = {0}, so.dram = {*dram}, so.nvme = {*nvme};
  so.hardware_path = (*r)["hardware"].as<std::string>();
  so.load.max_requests = (*r)["requests"].as<size_t>();
  std::string slice = so.load.max_requests
                          ? fmt::format("the first {} requests", so.load.max_requests)
                          : std::string("the whole trace");
  if (Status w = ParseWindow((*r)["window"].as<std::string>(), so.load); !w.ok())
    return Fail(cmd, w);
  if (so.load.window_end_ms)
    slice = fmt::format("requests arriving in [{}, {}) s", double(so.load.window_begin_ms) / 1e3,
                        double(so.load.window_end_ms) / 1e3) +
            (so.load.max_requests ? fmt::format(", the first {}", so.load.max_requests) : "");
  auto sweep = Sweep::Make(so);
  if (!sweep.ok()) return Fail(cmd, sweep.status());
  CompareSetup setup = (*sweep)->setup(0);
  setup.nvme_segment_bytes = *seg;
  setup.scale_down = std::max<uint32_t>(1, (*r)["scale-down"].as<uint32_t>());
  if (double g = (*r)["nvme-read-gbps"].as<double>(); g > 0)
    setup.hardware.nvme_read_bytes_per_s = g * 1e9;
  if (double g = (*r)["nvme-write-gbps"].as<double>(); g > 0)
    setup.hardware.nvme_write_bytes_per_s = g * 1e9;
  if (double us = (*r)["nvme-latency-us"].as<double>(); us >= 0)
    setup.hardware.nvme_latency_s = us * 1e-6;
  const CompareConfig config = (*sweep)->configs(0).front();
  const Trace& trace = (*sweep)->trace(0);

  const bool tty = isatty(STDERR_FILENO) == 1;
  const size_t total = trace.requests.size();
  auto progress = [&](uint64_t done) {
    if (tty)
      std::fprintf(stderr, "\rreplaying through the store: %llu/%zu requests",
                   static_cast<unsigned long long>(done), total);
  };
  auto res = ReplayThroughStore(trace, (*sweep)->summary(0), setup, config, o, progress);
  if (tty) std::fprintf(stderr, "\r%*s\r", 70, "");
  if (!res.ok()) return Fail(cmd, res.status());
  const json j = ResultJson(*res, slice, setup.scale_down, o.drive_bytes, o.codec);
  if (r->count("json"))
    std::cout << j.dump() << "\n";
  else
    std::cout << Report(*res, slice, setup.scale_down, o.drive_bytes, o.speed);

  if (r->count("plot")) {
    const std::string dir = (*r)["plot"].as<std::string>();
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::ofstream out(fs::path(dir) / "replay.jsonl");
    if (!out) return Fail(cmd, Status::IoError("cannot write " + dir + "/replay.jsonl"));
    out << j.dump() << "\n";
    for (const ReplaySample& s : res->samples)
      out << json{{"kind", "sample"},
                  {"wall_s", s.wall_s},
                  {"trace_s", s.trace_s},
                  {"requests", s.requests},
                  {"device_read_bytes", s.device_read_bytes},
                  {"device_write_bytes", s.device_write_bytes},
                  {"host_bytes", s.host_bytes},
                  {"nvme_bytes", s.nvme_bytes},
                  {"input_tokens", s.input_tokens},
                  {"hit_tokens", s.hit_tokens},
                  {"restored_tokens", s.restored_tokens}}
                 .dump()
          << "\n";
    out.close();
    Status s = RunPlotScript("plot_replay.py", dir);
    if (!s.ok()) return Fail(cmd, s);
    if (!r->count("json")) std::cout << "plots written to " << dir << "\n";
  }
  return 0;
}

}  // namespace strata::tools
