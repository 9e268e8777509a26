// `strata demo`: the embedded main job until the engine lands. Agent sessions share a system
// prompt and grow turn by turn; each turn looks up its longest cached prefix, "computes" state
// for the blocks it missed (deterministic V4-sized payloads derived from the block key), stores
// them with a checkpoint at the turn's end, and reports hits per tier. Then the store is closed,
// reopened from its data directory, and every block of every session is read back and compared
// byte for byte.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cxxopts.hpp>
#include <filesystem>
#include <iostream>
#include <random>

#include "bench/v4_payload.h"
#include "engine/model_config.h"
#include "strata/keys.h"
#include "strata/layout.h"
#include "strata/store.h"
#include "tools/commands.h"
#include "tools/store_config.h"

namespace strata::tools {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

uint64_t ContentSeed(const BlockKey& k, Family f) { return k.hi ^ (k.lo * 31) ^ uint64_t(f); }

std::vector<std::byte> Content(const CacheLayout& l, const BlockKey& k, Family f) {
  std::vector<std::byte> out(l.FamilyBlockBytes(f));
  bench::FillPseudoRandom(out.data(), out.size(), ContentSeed(k, f));
  return out;
}

struct Totals {
  uint64_t blocks = 0, hit_blocks = 0, hit_host = 0, hit_nvme = 0, put_bytes = 0;
};

}  // namespace

int CmdDemo(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "The embedded main job: agent sessions through an in-process tiered "
                        "store (host DRAM + NVMe under --data-dir), a restart, and a bit-exact "
                        "read-back of everything stored.");
  opts.add_options()(
      "model", "model config",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-tiny.json")))(
      "data-dir", "NVMe tier directory",
      cxxopts::value<std::string>()->default_value("./strata-data"))(
      "host-cache", "host tier size", cxxopts::value<std::string>()->default_value("64MiB"))(
      "nvme-cache", "NVMe tier size", cxxopts::value<std::string>()->default_value("1GiB"))(
      "segment-size", "NVMe segment size", cxxopts::value<std::string>()->default_value("64MiB"))(
      "block-size", "tokens per block", cxxopts::value<uint32_t>()->default_value("256"))(
      "sessions", "agent sessions", cxxopts::value<int>()->default_value("8"))(
      "turns", "turns per session", cxxopts::value<int>()->default_value("6"))(
      "system-tokens", "shared system prompt tokens", cxxopts::value<int>()->default_value("4096"))(
      "turn-tokens", "new tokens per turn", cxxopts::value<int>()->default_value("1024"))(
      "seed", "random seed", cxxopts::value<uint64_t>()->default_value("1"))(
      "fresh", "delete the data directory first")("json", "print the summary as JSON");
  opts.add_options()("h,help", "show this help");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  cxxopts::ParseResult r;
  try {
    r = opts.parse(int(argv.size()), argv.data());
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << args[0] << ": " << e.what() << "\n";
    return 2;
  }
  if (r.count("help")) {
    std::cout << opts.help() << std::endl;
    return 0;
  }
  auto fail = [&](const Status& s) {
    std::cerr << args[0] << ": " << s.ToString() << std::endl;
    return 1;
  };
  auto shape = engine::LoadModelShape(r["model"].as<std::string>());
  if (!shape.ok()) return fail(shape.status());
  LayoutOptions lo;
  lo.block_size = r["block-size"].as<uint32_t>();
  auto layout_r = CacheLayout::Make(*shape, lo);
  if (!layout_r.ok()) return fail(layout_r.status());
  const CacheLayout& layout = *layout_r;

  StoreConfig cfg;
  const std::string data_dir = r["data-dir"].as<std::string>();
  if (r.count("fresh")) fs::remove_all(data_dir);
  for (auto [opt, field] : {std::pair{"host-cache", &cfg.host.capacity_bytes},
                            std::pair{"nvme-cache", &cfg.nvme.capacity_bytes},
                            std::pair{"segment-size", &cfg.nvme.segment_bytes}}) {
    auto v = ParseBytes(r[opt].as<std::string>());
    if (!v.ok()) return fail(v.status().WithContext(std::string("--") + opt));
    *field = *v;
  }
  cfg.nvme.data_dir = data_dir;
  spdlog::info("demo: model {} (fingerprint {:016x}), block {} tokens", shape->name,
               layout.fingerprint(), layout.block_size());
  spdlog::info("demo: store {}", DescribeStoreConfig(cfg));

  const NamespaceId ns = NamespaceIdFromName("demo");
  const std::string secret = "demo-namespace-secret";
  const BlockKey root = RootKey(std::as_bytes(std::span(secret)), layout.fingerprint());
  const int sessions = r["sessions"].as<int>(), turns = r["turns"].as<int>();
  const int sys_tokens = r["system-tokens"].as<int>(), turn_tokens = r["turn-tokens"].as<int>();
  if (sessions <= 0 || turns <= 0 || sys_tokens < 0 || turn_tokens <= 0)
    return fail(Status::InvalidArgument("sessions, turns and turn-tokens must be positive"));
  const FamilyMask compressed{Family::kCsa, Family::kCsaIndex, Family::kHca};
  FamilyMask required;
  for (Family f : {Family::kCsa, Family::kCsaIndex, Family::kHca})
    if (layout.FamilyBlockBytes(f)) required.Add(f);
  (void)compressed;

  std::mt19937 rng(uint32_t(r["seed"].as<uint64_t>()));
  std::uniform_int_distribution<int32_t> tok(0, shape->vocab_size - 1);
  std::vector<int32_t> system(static_cast<size_t>(sys_tokens));
  for (auto& t : system) t = tok(rng);
  std::vector<std::vector<int32_t>> contexts(static_cast<size_t>(sessions), system);

  const bool tty = isatty(STDERR_FILENO) == 1;
  Totals tot;
  const auto t_run = Clock::now();
  {
    auto store = OpenStore(cfg);
    if (!store.ok()) return fail(store.status());
    Store& st = **store;
    for (int turn = 0; turn < turns; ++turn) {
      for (int s = 0; s < sessions; ++s) {
        auto& ctx = contexts[size_t(s)];
        for (int i = 0; i < turn_tokens; ++i) ctx.push_back(tok(rng));
        const auto keys = ChainBlockKeys(root, ctx, layout.block_size());
        auto lr = st.Lookup(ns, layout.fingerprint(), keys, required);
        if (!lr.ok()) return fail(lr.status());
        for (size_t b = 0; b < lr->hit_blocks; ++b)
          (lr->blocks[b].tier[int(Family::kCsa)] == Tier::kHost ? tot.hit_host : tot.hit_nvme)++;
        tot.blocks += keys.size();
        tot.hit_blocks += lr->hit_blocks;
        for (size_t b = lr->hit_blocks; b < keys.size(); ++b)
          for (Family f : kAllFamilies) {
            if (!required.Has(f)) continue;
            auto bytes = Content(layout, keys[b], f);
            Status ps = st.Put({ns, keys[b], f}, layout.fingerprint(), bytes);
            if (!ps.ok()) return fail(ps);
            tot.put_bytes += bytes.size();
          }
        if (!keys.empty()) {  // checkpoint at the end of the turn
          auto cp = Content(layout, keys.back(), Family::kCheckpoint);
          Status ps = st.Put({ns, keys.back(), Family::kCheckpoint}, layout.fingerprint(), cp);
          if (!ps.ok()) return fail(ps);
          tot.put_bytes += cp.size();
        }
        if (tty)
          std::fprintf(stderr, "\rdemo: turn %d/%d session %d/%d: %zu/%zu blocks hit    ", turn + 1,
                       turns, s + 1, sessions, lr->hit_blocks, keys.size());
      }
    }
    if (tty) std::fprintf(stderr, "\n");
    Status fs_ = st.Flush();
    if (!fs_.ok()) return fail(fs_);
  }
  const double run_s = std::chrono::duration<double>(Clock::now() - t_run).count();

  // Restart: reopen from the data directory and verify every block of every session.
  const auto t_verify = Clock::now();
  uint64_t verified = 0, mismatched = 0, missing = 0;
  {
    auto store = OpenStore(cfg);
    if (!store.ok()) return fail(store.status().WithContext("reopen"));
    Store& st = **store;
    for (int s = 0; s < sessions; ++s) {
      const auto keys = ChainBlockKeys(root, contexts[size_t(s)], layout.block_size());
      for (const BlockKey& k : keys) {
        auto views = st.Get(ns, layout.fingerprint(), std::span(&k, 1), required);
        if (!views.ok()) return fail(views.status());
        PinGuard guard(st, std::move(*views));
        for (const ObjectView& v : guard.views()) {
          if (!v.found()) {
            ++missing;
            continue;
          }
          auto want = Content(layout, k, v.key.family);
          if (v.size == want.size() && std::memcmp(v.data, want.data(), v.size) == 0)
            ++verified;
          else
            ++mismatched;
        }
      }
    }
  }
  const double verify_s = std::chrono::duration<double>(Clock::now() - t_verify).count();
  if (r.count("json")) {
    fmt::print(
        R"({{"blocks": {}, "hit_blocks": {}, "hit_host": {}, "hit_nvme": {}, "put_bytes": {}, "run_seconds": {:.3f}, "verified_objects": {}, "mismatched": {}, "missing": {}, "verify_seconds": {:.3f}}})"
        "\n",
        tot.blocks, tot.hit_blocks, tot.hit_host, tot.hit_nvme, tot.put_bytes, run_s, verified,
        mismatched, missing, verify_s);
  } else {
    fmt::print(
        "demo: {} sessions x {} turns, {} block lookups, {} hit ({:.1f}%: {} from host, {} from "
        "NVMe)\n",
        sessions, turns, tot.blocks, tot.hit_blocks,
        tot.blocks ? 100.0 * double(tot.hit_blocks) / double(tot.blocks) : 0.0, tot.hit_host,
        tot.hit_nvme);
    fmt::print(
        "demo: stored {:.1f} MiB in {:.2f} s; after restart read back {} objects in {:.2f} s: "
        "{} bit-exact, {} mismatched, {} missing\n",
        double(tot.put_bytes) / 1048576.0, run_s, verified + mismatched, verify_s, verified,
        mismatched, missing);
    fmt::print("demo: data in {} (strata stats --data-dir {}; strata fsck --data-dir {})\n",
               data_dir, data_dir, data_dir);
  }
  return mismatched == 0 ? 0 : 1;
}

}  // namespace strata::tools
