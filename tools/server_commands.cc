// The CLI's side of strata-server: the --server/--tenant/--secret options and the client they
// describe (strata run --server), `strata stats --server` (a tenant's counters for a person) and
// `strata top --server` (a live view of hit rate, traffic and occupancy).
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/server_bench.h"
#include "engine/model_config.h"
#include "strata/client.h"
#include "strata/layout.h"
#include "tools/commands.h"
#include "tools/store_config.h"

namespace strata::tools {
namespace {

using Counters = std::vector<std::pair<std::string, uint64_t>>;
using Clock = std::chrono::steady_clock;

std::string Bytes(double b) {
  if (b >= double(1ull << 30)) return fmt::format("{:.2f} GiB", b / double(1ull << 30));
  if (b >= double(1ull << 20)) return fmt::format("{:.1f} MiB", b / double(1ull << 20));
  if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{:.0f} B", b);
}

// The sum of every counter named `name` or starting with `name` + "." (a family, tier or verb
// breakdown of one quantity).
uint64_t Sum(const Counters& c, std::string_view name) {
  uint64_t s = 0;
  for (const auto& [n, v] : c)
    if (n == name ||
        (n.size() > name.size() && n.compare(0, name.size(), name) == 0 && n[name.size()] == '.'))
      s += v;
  return s;
}
// The first of `names` present, summed like Sum (servers and store versions name a few
// quantities differently).
uint64_t First(const Counters& c, std::initializer_list<std::string_view> names) {
  for (std::string_view name : names)
    for (const auto& [n, v] : c)
      if (n == name ||
          (n.size() > name.size() && n.compare(0, name.size(), name) == 0 && n[name.size()] == '.'))
        return Sum(c, name);
  return 0;
}

// What `stats` and `top` show, read from one STATS answer.
struct Snapshot {
  uint64_t gets = 0, hits = 0, misses = 0, puts = 0, bytes_in = 0, bytes_out = 0;
  uint64_t host_used = 0, host_cap = 0, nvme_used = 0, nvme_cap = 0;
  bool has_bytes_out = false;  // the server reports bytes served
};

// strata-server's STATS: the store's counters (placement core: puts, put_bytes, gets, ...),
// occupancy ("host.used", "host.csa.objects", ...) and the server's per tenant ("server.hits",
// "server.commits", ...). Bytes served are taken from "server.bytes_out" where a server reports
// it.
Snapshot Summarise(const Counters& c) {
  Snapshot s;
  s.hits = First(c, {"server.hits", "hits"});
  if (s.hits == 0) s.hits = First(c, {"get_hits_host"}) + First(c, {"get_hits_nvme"});
  s.misses = First(c, {"server.misses", "misses", "get_misses"});
  s.gets = s.hits + s.misses ? s.hits + s.misses : First(c, {"gets"});  // items
  s.puts = First(c, {"server.commits", "commits", "puts"});
  s.bytes_in = First(c, {"server.bytes_in", "bytes_in", "put_bytes"});
  s.bytes_out = First(c, {"server.bytes_out", "bytes_out"});
  for (const auto& [n, v] : c) s.has_bytes_out |= n.find("bytes_out") != std::string::npos;
  s.host_used = First(c, {"host.used"}), s.host_cap = First(c, {"host.capacity"});
  s.nvme_used = First(c, {"nvme.used"}), s.nvme_cap = First(c, {"nvme.capacity"});
  return s;
}

double Pct(uint64_t a, uint64_t b) { return b ? 100.0 * double(a) / double(b) : 0.0; }

// The model whose layout a stats-only client names in its handshake.
Result<CacheLayout> LayoutOf(const cxxopts::ParseResult& r) {
  STRATA_ASSIGN_OR_RETURN(auto shape, engine::LoadModelShape(r["model"].as<std::string>()));
  LayoutOptions lo;
  lo.block_size = r["block-size"].as<uint32_t>();
  return CacheLayout::Make(shape, lo);
}

void AddLayoutOptions(cxxopts::Options& opts) {
  opts.add_options()(
      "model", "model config whose layout the handshake names",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-tiny.json")))(
      "block-size", "tokens per block", cxxopts::value<uint32_t>()->default_value("256"));
}

Result<std::unique_ptr<Client>> ConnectForStats(const cxxopts::ParseResult& r) {
  STRATA_ASSIGN_OR_RETURN(CacheLayout layout, LayoutOf(r));
  return ConnectServer(r, layout.fingerprint(), layout.block_size(), /*read_only=*/true);
}

}  // namespace

void AddServerOptions(cxxopts::Options& opts) {
  opts.add_options()("server", "strata-server's Unix socket",
                     cxxopts::value<std::string>()->default_value(""))(
      "tenant", "tenant name (strata-server's config)",
      cxxopts::value<std::string>()->default_value("default"))(
      "secret", "the tenant's secret (empty: the server checks this process's uid/gid)",
      cxxopts::value<std::string>()->default_value(""))(
      "deadline-ms", "deadline of every call to the server",
      cxxopts::value<uint32_t>()->default_value("10000"));
}

Result<std::unique_ptr<Client>> ConnectServer(const cxxopts::ParseResult& r, uint64_t fingerprint,
                                              uint32_t block_size, bool read_only) {
  ClientOptions o;
  o.socket_path = r["server"].as<std::string>();
  if (o.socket_path.empty()) return Status::InvalidArgument("--server is required");
  o.tenant = r["tenant"].as<std::string>();
  o.secret = r["secret"].as<std::string>();
  o.fingerprint = fingerprint;
  o.block_tokens = block_size;
  o.read_only = read_only;
  o.deadline = std::chrono::milliseconds(std::max<uint32_t>(r["deadline-ms"].as<uint32_t>(), 1));
  return Client::Connect(o);
}

int CmdServerStats(std::vector<std::string> args) {
  cxxopts::Options opts(args[0], "A tenant's counters on a running strata-server, grouped.");
  AddServerOptions(opts);
  AddLayoutOptions(opts);
  opts.add_options()("json", "print one JSON object of every counter");
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  auto client = ConnectForStats(*r);
  if (!client.ok()) return Fail(args[0], client.status());
  auto raw = (*client)->RawStats();
  if (!raw.ok()) return Fail(args[0], raw.status());
  const Counters& c = *raw;
  if ((*r)["json"].as<bool>()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [n, v] : c) j[n] = v;
    std::cout << j.dump() << "\n";
    return 0;
  }
  const Snapshot s = Summarise(c);
  fmt::print("strata-server {} tenant {} (server epoch {:016x})\n",
             (*r)["server"].as<std::string>(), (*r)["tenant"].as<std::string>(),
             (*client)->server_epoch());
  fmt::print("gets {} items: {} hits ({:.1f}%), {} misses; puts {}; in {}, out {}\n", s.gets,
             s.hits, Pct(s.hits, s.gets), s.misses, s.puts, Bytes(double(s.bytes_in)),
             s.has_bytes_out ? Bytes(double(s.bytes_out)) : "n/a");
  // Occupancy: one row per tier, objects and bytes per family.
  const StoreStats st = (*client)->Stats();
  fmt::print("\n{:<8} {:>12} {:>12}", "tier", "capacity", "used");
  for (Family f : kAllFamilies) fmt::print(" {:>22}", FamilyName(f));
  fmt::print("\n");
  for (Tier t : {Tier::kHost, Tier::kNvme}) {
    const TierStats& ts = st[t];
    fmt::print("{:<8} {:>12} {:>12}", TierName(t), Bytes(double(ts.capacity)),
               Bytes(double(ts.used)));
    for (Family f : kAllFamilies) {
      const FamilyStats& fs = ts.families[size_t(f)];
      fmt::print(" {:>22}", fmt::format("{} / {}", fs.objects, Bytes(double(fs.bytes))));
    }
    fmt::print("\n");
  }
  // Everything else, grouped by the name's first component (the tiers are in the table).
  std::map<std::string, std::vector<std::pair<std::string, uint64_t>>> groups;
  for (const auto& [n, v] : c) {
    const size_t dot = n.find('.');
    const std::string group = dot == std::string::npos ? "store" : n.substr(0, dot);
    bool tier = false;
    for (Tier t : kAllTiers) tier |= group == TierName(t);
    if (tier) continue;
    groups[group].emplace_back(dot == std::string::npos ? n : n.substr(dot + 1), v);
  }
  for (const auto& [g, items] : groups) {
    fmt::print("\n[{}]\n", g);
    for (const auto& [n, v] : items) fmt::print("  {:<40} {:>16}\n", n, v);
  }
  return 0;
}

int CmdTop(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "A live view of a tenant on a running strata-server: hit rate, gets and "
                        "puts per second, bytes in and out per second, occupancy.");
  AddServerOptions(opts);
  AddLayoutOptions(opts);
  opts.add_options()("interval", "seconds between frames",
                     cxxopts::value<double>()->default_value("1"))(
      "iterations", "stop after this many frames (0: until interrupted)",
      cxxopts::value<uint64_t>()->default_value("0"))("no-clear", "print frames one after another");
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  const double interval = (*r)["interval"].as<double>();
  if (!(interval > 0 && interval <= 3600))
    return Fail(args[0], Status::InvalidArgument("--interval must be in (0, 3600] seconds"));
  const uint64_t iterations = (*r)["iterations"].as<uint64_t>();
  const bool clear = !(*r)["no-clear"].as<bool>() && isatty(STDOUT_FILENO) == 1;
  auto client = ConnectForStats(*r);
  if (!client.ok()) return Fail(args[0], client.status());
  Snapshot prev;
  auto t_prev = Clock::now();
  bool have_prev = false;
  for (uint64_t frame = 0; iterations == 0 || frame < iterations; ++frame) {
    if (frame) std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    // A failed poll (server restarting) shows as such; the client reconnects on the next one.
    auto raw = (*client)->RawStats();
    const auto now = Clock::now();
    std::string out = clear ? "\x1b[H\x1b[2J" : "";
    out += fmt::format("strata top: {} tenant {}  (every {:g} s; frame {})\n",
                       (*r)["server"].as<std::string>(), (*r)["tenant"].as<std::string>(), interval,
                       frame + 1);
    if (!raw.ok()) {
      out += fmt::format("server unreachable: {}\n", raw.status().ToString());
      have_prev = false;
    } else {
      const Snapshot s = Summarise(*raw);
      const double dt = std::chrono::duration<double>(now - t_prev).count();
      auto rate = [&](uint64_t a, uint64_t b) {
        return have_prev && dt > 0 && a >= b ? double(a - b) / dt : 0.0;
      };
      const uint64_t dg = have_prev && s.gets >= prev.gets ? s.gets - prev.gets : 0;
      const uint64_t dh = have_prev && s.hits >= prev.hits ? s.hits - prev.hits : 0;
      out += fmt::format("hit rate   {:>7} now   {:6.1f}% since start ({} of {} items)\n",
                         dg ? fmt::format("{:.1f}%", Pct(dh, dg)) : "-", Pct(s.hits, s.gets),
                         s.hits, s.gets);
      out += fmt::format("gets/s     {:10.1f}     puts/s {:10.1f}\n", rate(s.gets, prev.gets),
                         rate(s.puts, prev.puts));
      out += fmt::format(
          "in/s       {:>10}     out/s  {:>10}\n", Bytes(rate(s.bytes_in, prev.bytes_in)),
          s.has_bytes_out ? Bytes(rate(s.bytes_out, prev.bytes_out)) : std::string("n/a"));
      out += fmt::format("host       {:>10} of {:>10} ({:5.1f}%)\n", Bytes(double(s.host_used)),
                         Bytes(double(s.host_cap)), Pct(s.host_used, s.host_cap));
      out += fmt::format("nvme       {:>10} of {:>10} ({:5.1f}%)\n", Bytes(double(s.nvme_used)),
                         Bytes(double(s.nvme_cap)), Pct(s.nvme_used, s.nvme_cap));
      prev = s;
      have_prev = true;
    }
    t_prev = now;
    std::cout << out << std::flush;
  }
  return 0;
}

int CmdBenchServer(std::vector<std::string> args) {
  cxxopts::Options opts(
      args[0],
      "strata-server against the in-process store, each figure with its peer "
      "measured in the same run, as JSON lines on stdout (bench/server_bench.h).");
  opts.add_options()("dir", "scratch directory",
                     cxxopts::value<std::string>()->default_value("./strata-bench-server"))(
      "model", "model config for object sizes",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-pro.json")))(
      "block-size", "tokens per block", cxxopts::value<uint32_t>()->default_value("256"))(
      "bytes-per-family", "objects of each family: as many as this holds",
      cxxopts::value<std::string>()->default_value("64MiB"))(
      "rounds", "rounds per figure", cxxopts::value<uint32_t>()->default_value("5"))(
      "latency-samples", "samples per round of the latency figures",
      cxxopts::value<uint32_t>()->default_value("20000"))(
      "clients", "client counts of the many-clients figure",
      cxxopts::value<std::string>()->default_value("1,2,4,8"))(
      "clients-seconds", "seconds per round and side of the many-clients figure",
      cxxopts::value<double>()->default_value("1"))("io-threads", "the daemon's io threads",
                                                    cxxopts::value<uint32_t>()->default_value("4"))(
      "io-spin-us", "the daemon's io_spin_us (polling after a request before sleeping; 0: off)",
      cxxopts::value<uint32_t>()->default_value("500"))(
      "client-spin-us", "the clients' spin_us (polling for a response before sleeping; 0: off)",
      cxxopts::value<uint32_t>()->default_value("100"))(
      "only", "run only figures whose name starts with this (server.get, server.lookup64, ...)",
      cxxopts::value<std::string>()->default_value(""))(
      "quick", "small sizes and few samples (a smoke run)");
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  bench::ServerBenchOptions o;
  o.dir = (*r)["dir"].as<std::string>();
  auto shape = engine::LoadModelShape((*r)["model"].as<std::string>());
  if (!shape.ok()) return Fail(args[0], shape.status());
  LayoutOptions lo;
  lo.block_size = (*r)["block-size"].as<uint32_t>();
  auto layout = CacheLayout::Make(*shape, lo);
  if (!layout.ok()) return Fail(args[0], layout.status());
  o.layout = *layout;
  auto bpf = ParseBytes((*r)["bytes-per-family"].as<std::string>());
  if (!bpf.ok()) return Fail(args[0], bpf.status().WithContext("--bytes-per-family"));
  o.bytes_per_family = *bpf;
  o.rounds = (*r)["rounds"].as<uint32_t>();
  o.latency_samples = (*r)["latency-samples"].as<uint32_t>();
  o.clients_seconds = (*r)["clients-seconds"].as<double>();
  o.io_threads = (*r)["io-threads"].as<uint32_t>();
  o.io_spin_us = (*r)["io-spin-us"].as<uint32_t>();
  o.client_spin_us = (*r)["client-spin-us"].as<uint32_t>();
  o.only = (*r)["only"].as<std::string>();
  o.clients.clear();
  const std::string list = (*r)["clients"].as<std::string>();
  for (size_t pos = 0; pos <= list.size();) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const int n = std::atoi(list.substr(pos, comma - pos).c_str());
    if (n < 1 || n > 256)
      return Fail(args[0], Status::InvalidArgument("--clients: counts from 1 to 256"));
    o.clients.push_back(n);
    pos = comma + 1;
  }
  if ((*r)["quick"].as<bool>()) {
    o.bytes_per_family = 8ull << 20;
    o.rounds = 3;
    o.latency_samples = 2000;
    o.clients_seconds = 0.2;
  }
  // stdout carries the JSON lines only; the in-process daemon's info log would interleave.
  spdlog::set_level(spdlog::level::warn);
  Status s = bench::RunServerBench(o, [](const std::string& line) {
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
  });
  if (!s.ok()) return Fail(args[0], s);
  return 0;
}

}  // namespace strata::tools
