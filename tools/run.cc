// strata run: agent sessions through the engine with an in-process tiered store or, with
// --server, a running strata-server through strata::Client (the main job), and strata
// gen-sessions.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cachestore/store/tiered_store.h"
#include "engine/cost_probe.h"
#include "engine/session.h"
#include "tools/commands.h"
#include "tools/sessions.h"
#include "tools/store_config.h"

namespace strata::tools {

Result<std::unique_ptr<engine::Model>> LoadModel(const std::string& model_path,
                                                 const std::string& weights_path, uint64_t seed);

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string Bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", double(b) / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f} MiB", double(b) / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", double(b) / 1024.0);
  return fmt::format("{} B", b);
}

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

}  // namespace

int CmdRun(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "Run agent sessions through the engine with an in-process tiered store "
                        "(or a running strata-server: --server SOCKET): "
                        "each turn restores its longest cached prefix, prefills the rest, "
                        "decodes, and offloads its new state. With no options: a built-in "
                        "workload on v4-tiny with data under ./strata-data.");
  opts.add_options()(
      "model", "model config",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-tiny.json")))(
      "weights", "safetensors checkpoint (default: random weights from --seed)",
      cxxopts::value<std::string>()->default_value(""))(
      "seed", "seed of the random weights", cxxopts::value<uint64_t>()->default_value("1"))(
      "sessions", "sessions file (JSON; see strata gen-sessions); default: built-in workload",
      cxxopts::value<std::string>()->default_value(""))(
      "policy", "SWA policy: full, checkpoint, checkpoint:K, recompute",
      cxxopts::value<std::string>()->default_value("checkpoint"))(
      "data-dir", "store directory (NVMe tier)",
      cxxopts::value<std::string>()->default_value("strata-data"))(
      "host-cache", "host DRAM tier size", cxxopts::value<std::string>()->default_value("256MiB"))(
      "nvme-cache", "NVMe tier size", cxxopts::value<std::string>()->default_value("1GiB"))(
      "block-size", "tokens per block", cxxopts::value<uint32_t>()->default_value("256"))(
      "eviction", "DRAM tier eviction policy: lru, s3fifo, cost",
      cxxopts::value<std::string>()->default_value("lru"))(
      "thin-swa", "demote full SWA to NVMe as block-end checkpoints (SWA thinning)")(
      "namespace", "namespace name", cxxopts::value<std::string>()->default_value("default"))(
      "verify", "also run every turn cold and check it bit for bit (logits, tokens, state)")(
      "fresh", "delete the data directory first")("json", "JSON lines instead of text");
  // --server SOCKET: the same job through a running strata-server instead of an in-process
  // store (the store options above are then the server's business and ignored).
  AddServerOptions(opts);
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  const bool json = (*r)["json"].as<bool>(), verify = (*r)["verify"].as<bool>();
  const bool tty = isatty(2) == 1 && !json;
  auto policy =
      engine::SwaPolicy::Parse((*r)["policy"].as<std::string>(), (*r)["block-size"].as<uint32_t>());
  if (!policy.ok()) return Fail(args[0], policy.status());

  auto model_r = LoadModel((*r)["model"].as<std::string>(), (*r)["weights"].as<std::string>(),
                           (*r)["seed"].as<uint64_t>());
  if (!model_r.ok()) return Fail(args[0], model_r.status());
  std::shared_ptr<const engine::Model> model = std::move(*model_r);
  const int vocab = model->config().shape.vocab_size;

  Workload work;
  if (const std::string f = (*r)["sessions"].as<std::string>(); !f.empty()) {
    auto w = LoadWorkload(f, vocab);
    if (!w.ok()) return Fail(args[0], w.status());
    work = std::move(*w);
  } else {
    GenOptions g;
    g.sessions = 4, g.turns = 3, g.system_tokens = 2048, g.min_new = 150, g.max_new_tokens = 300;
    g.output_tokens = 16, g.branch_every = 3, g.vocab = vocab;
    auto w = ParseWorkload(GenerateWorkloadJson(g), vocab, "built-in workload");
    if (!w.ok()) return Fail(args[0], w.status());
    work = std::move(*w);
  }

  StoreConfig cfg;
  const std::string server = (*r)["server"].as<std::string>();
  std::unique_ptr<Store> store;
  std::string store_desc;
  engine::MeasuredCosts costs;
  if (!server.empty()) {
    // The engine's layout names the bytes in the handshake; the server keys them by tenant.
    auto layout = engine::CachedEngine::LayoutFor(*model, (*r)["block-size"].as<uint32_t>());
    if (!layout.ok()) return Fail(args[0], layout.status());
    auto client = ConnectServer(*r, layout->fingerprint(), layout->block_size());
    if (!client.ok()) return Fail(args[0], client.status());
    store_desc = fmt::format("strata-server {} (tenant {}, server epoch {:016x})", server,
                             (*r)["tenant"].as<std::string>(), (*client)->server_epoch());
    store = std::move(*client);
    // Restores read the shared arena (a memcpy); the server's disk is not this process's to
    // probe, so the NVMe bandwidth keeps its default.
    costs.cost[Tier::kHost] = engine::MeasureHostCopy();
  } else {
    const std::string data_dir = (*r)["data-dir"].as<std::string>();
    if ((*r)["fresh"].as<bool>()) fs::remove_all(data_dir);
    for (auto [opt, field] : {std::pair{"host-cache", &cfg.host.capacity_bytes},
                              std::pair{"nvme-cache", &cfg.nvme.capacity_bytes}}) {
      auto v = ParseBytes((*r)[opt].as<std::string>());
      if (!v.ok()) return Fail(args[0], v.status().WithContext(std::string("--") + opt));
      *field = *v;
    }
    cfg.nvme.data_dir = data_dir;
    cfg.nvme.segment_bytes =
        std::min<uint64_t>(cfg.nvme.segment_bytes, cfg.nvme.capacity_bytes / 4);
    cfg.nvme.segment_bytes = std::max<uint64_t>(cfg.nvme.segment_bytes / 4096 * 4096, 4096);
    cfg.host.eviction = (*r)["eviction"].as<std::string>();
    cfg.thin_swa_on_demotion = (*r)["thin-swa"].as<bool>();
    cachestore::TieredStoreOptions so;
    if (cfg.thin_swa_on_demotion) {
      auto layout = engine::CachedEngine::LayoutFor(*model, (*r)["block-size"].as<uint32_t>());
      if (!layout.ok()) return Fail(args[0], layout.status());
      so.layouts = {*layout};
    }
    auto store_r = cachestore::OpenTieredStore(cfg, std::move(so));
    if (!store_r.ok()) return Fail(args[0], store_r.status());
    store = std::move(*store_r);
    store_desc = DescribeStoreConfig(cfg);
    auto measured = engine::MeasureStoreCosts(cfg);  // host memcpy; NVMe reads at cfg's depth
    if (!measured.ok()) return Fail(args[0], measured.status());
    costs = *measured;
  }
  engine::EngineOptions eo;
  eo.block_size = (*r)["block-size"].as<uint32_t>();
  eo.ns = NamespaceIdFromName((*r)["namespace"].as<std::string>());
  eo.namespace_secret = "strata:" + (*r)["namespace"].as<std::string>();
  eo.policy = *policy;
  eo.cost = costs.cost;
  auto engine_r = engine::CachedEngine::Create(model, store.get(), eo);
  if (!engine_r.ok()) return Fail(args[0], engine_r.status());
  engine::CachedEngine& eng = **engine_r;
  const engine::CostModel& cost = eng.cost();
  if (!json)
    std::cout << fmt::format(
        "run: model {} (fingerprint {:016x}), policy {}, block {}; store {}\n"
        "run: cost model: host {:.1f} GB/s (memcpy), NVMe {:.2f} GB/s (O_DIRECT reads, QD {}), "
        "prefill {:.0f} tokens/s (measured)\n",
        model->config().shape.name, eng.layout().fingerprint(), eo.policy.ToString(), eo.block_size,
        store_desc, cost[Tier::kHost] / 1e9, cost[Tier::kNvme] / 1e9, costs.nvme.max_inflight,
        1.0 / cost.prefill_s_per_token);

  size_t total_turns = 0;
  for (const auto& s : work.sessions) total_turns += s.turns.size();
  // contexts[s][t]: session s's tokens after turn t (prompt + output).
  std::vector<std::vector<std::vector<int32_t>>> contexts(work.sessions.size());
  struct Totals {
    int64_t prompt = 0, hit = 0, prefilled = 0;
    double restore_s = 0, prefill_s = 0, cold_s = 0;
    uint64_t host = 0, nvme = 0, offload = 0;
    int verified = 0, mismatched = 0, fallbacks = 0;
  } tot;
  size_t done = 0;
  const auto t_all = Clock::now();
  for (size_t si = 0; si < work.sessions.size(); ++si) {
    const SessionSpec& spec = work.sessions[si];
    std::vector<int32_t> context = spec.branch_of >= 0
                                       ? contexts[size_t(spec.branch_of)][size_t(spec.branch_turn)]
                                       : work.system;
    for (size_t ti = 0; ti < spec.turns.size(); ++ti) {
      const SessionTurn& turn = spec.turns[ti];
      std::vector<int32_t> prompt = context;
      prompt.insert(prompt.end(), turn.tokens.begin(), turn.tokens.end());
      if (prompt.empty()) return Fail(args[0], Status::InvalidArgument("empty prompt"));
      if (tty)
        std::cerr << fmt::format("\r[turn {}/{}] {} t{}: {} tokens...        ", done + 1,
                                 total_turns, spec.name, ti, prompt.size())
                  << std::flush;
      engine::RequestState st;
      engine::TurnOptions to;
      to.max_new = turn.max_new;
      to.final_state = verify ? &st : nullptr;
      auto res = eng.RunTurn(prompt, to);
      if (!res.ok()) return Fail(args[0], res.status());
      const engine::TurnResult& tr = *res;
      // Between turns an agent runs tools or waits for its user; the turn itself did not wait
      // for its offload. Draining here keeps the next turn's hits independent of timing.
      const auto t_drain = Clock::now();
      if (Status off = eng.WaitOffload(); !off.ok())
        return Fail(args[0], off.WithContext("offload"));
      const double drain_s = Since(t_drain);
      double cold_s = double(prompt.size()) * cost.prefill_s_per_token;
      bool cold_measured = false, exact = true;
      if (verify) {
        engine::RequestState cold_state;
        auto cold = eng.RunCold(prompt, turn.max_new, &cold_state);
        if (!cold.ok()) return Fail(args[0], cold.status());
        cold_s = cold->prefill_s;
        cold_measured = true;
        exact = cold->output == tr.output && engine::BitIdentical(st, cold_state) &&
                cold->logits.size() == tr.logits.size();
        for (size_t i = 0; exact && i < tr.logits.size(); ++i)
          exact = BitIdentical(tr.logits[i], cold->logits[i]);
        exact ? ++tot.verified : ++tot.mismatched;
      }
      const double ttft = tr.restore_s + tr.prefill_s;
      tot.prompt += tr.prompt_tokens, tot.hit += tr.plan.hit_tokens;
      tot.prefilled += tr.prefilled_tokens, tot.restore_s += tr.restore_s;
      tot.prefill_s += tr.prefill_s, tot.cold_s += cold_s;
      tot.host += tr.read_bytes[size_t(Tier::kHost)],
          tot.nvme += tr.read_bytes[size_t(Tier::kNvme)];
      tot.offload += tr.offload_bytes, tot.fallbacks += tr.fallbacks;
      if (json) {
        nlohmann::json j = {{"session", spec.name},
                            {"turn", ti},
                            {"prompt_tokens", tr.prompt_tokens},
                            {"prefix_hit_tokens", tr.prefix_hit_tokens},
                            {"restored_tokens", tr.plan.hit_tokens},
                            {"plan", tr.plan.ToString()},
                            {"fallbacks", tr.fallbacks},
                            {"restore_s", tr.restore_s},
                            {"prefilled_tokens", tr.prefilled_tokens},
                            {"prefill_s", tr.prefill_s},
                            {"cold_prefill_s", cold_s},
                            {"cold_measured", cold_measured},
                            {"read_host_bytes", tr.read_bytes[size_t(Tier::kHost)]},
                            {"read_nvme_bytes", tr.read_bytes[size_t(Tier::kNvme)]},
                            {"offload_bytes", tr.offload_bytes},
                            {"offload_drain_after_turn_s", drain_s},
                            {"decode_tokens", tr.output.size()},
                            {"decode_s", tr.decode_s}};
        if (verify) j["bit_exact"] = exact;
        std::cout << j.dump() << "\n";
      } else {
        if (tty) std::cerr << "\r" << std::string(60, ' ') << "\r";
        std::cout << fmt::format(
            "{} t{}: prompt {} tok, hit {} -> restore {} ({:.1f} ms; host {}, NVMe {}), prefill {} "
            "tok "
            "{:.1f} ms; cold {:.1f} ms{} -> {:.1f}x; decode {} tok {:.1f} ms{}\n",
            spec.name, ti, tr.prompt_tokens, tr.prefix_hit_tokens, tr.plan.ToString(),
            tr.restore_s * 1e3, Bytes(tr.read_bytes[size_t(Tier::kHost)]),
            Bytes(tr.read_bytes[size_t(Tier::kNvme)]), tr.prefilled_tokens, tr.prefill_s * 1e3,
            cold_s * 1e3, cold_measured ? "" : " (est)", cold_s / std::max(ttft, 1e-9),
            tr.output.size(), tr.decode_s * 1e3,
            verify ? (exact ? " [bit-exact]" : " [MISMATCH]") : "");
      }
      context = prompt;
      context.insert(context.end(), tr.output.begin(), tr.output.end());
      contexts[si].push_back(context);
      ++done;
    }
  }
  Status off = eng.WaitOffload();
  Status fl = store->Flush();
  const double wall = Since(t_all);
  const StoreStats stats = store->Stats();
  if (json) {
    nlohmann::json j = {{"summary", true},
                        {"turns", done},
                        {"prompt_tokens", tot.prompt},
                        {"restored_tokens", tot.hit},
                        {"prefilled_tokens", tot.prefilled},
                        {"restore_s", tot.restore_s},
                        {"prefill_s", tot.prefill_s},
                        {"cold_prefill_s", tot.cold_s},
                        {"read_host_bytes", tot.host},
                        {"read_nvme_bytes", tot.nvme},
                        {"offload_bytes", tot.offload},
                        {"fallbacks", tot.fallbacks},
                        {"host_used_bytes", stats[Tier::kHost].used},
                        {"nvme_used_bytes", stats[Tier::kNvme].used},
                        {"wall_s", wall}};
    if (verify) j["verified"] = tot.verified, j["mismatched"] = tot.mismatched;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << fmt::format(
        "run: {} turns, {} prompt tokens, {} restored ({:.1f}%), {} computed; restore {:.1f} ms + "
        "prefill {:.1f} ms vs cold {:.1f} ms ({:.1f}x); read host {}, NVMe {}; offloaded {}; "
        "store: host {} used, NVMe {} used; {:.1f} s\n",
        done, tot.prompt, tot.hit,
        100.0 * double(tot.hit) / double(std::max<int64_t>(tot.prompt, 1)), tot.prefilled,
        tot.restore_s * 1e3, tot.prefill_s * 1e3, tot.cold_s * 1e3,
        tot.cold_s / std::max(tot.restore_s + tot.prefill_s, 1e-9), Bytes(tot.host),
        Bytes(tot.nvme), Bytes(tot.offload), Bytes(stats[Tier::kHost].used),
        Bytes(stats[Tier::kNvme].used), wall);
    if (verify)
      std::cout << fmt::format(
          "run: verified {} turns bit-exact against cold runs, {} mismatched\n", tot.verified,
          tot.mismatched);
  }
  if (!off.ok()) return Fail(args[0], off.WithContext("offload"));
  if (!fl.ok()) return Fail(args[0], fl.WithContext("flush"));
  return tot.mismatched ? 1 : 0;
}

int CmdGenSessions(std::vector<std::string> args) {
  cxxopts::Options opts(args[0], "Write an agent-session workload (JSON) for strata run.");
  opts.add_options()("out", "output file (default: stdout)",
                     cxxopts::value<std::string>()->default_value(""))(
      "sessions", "sessions", cxxopts::value<int>()->default_value("8"))(
      "turns", "turns per session", cxxopts::value<int>()->default_value("4"))(
      "system-tokens", "shared system prompt length", cxxopts::value<int>()->default_value("2048"))(
      "min-new", "fewest new tokens per turn", cxxopts::value<int>()->default_value("200"))(
      "max-new-tokens", "most new tokens per turn", cxxopts::value<int>()->default_value("400"))(
      "output-tokens", "tokens generated per turn", cxxopts::value<int>()->default_value("16"))(
      "branch-every", "every k-th session branches from the previous one (0: none)",
      cxxopts::value<int>()->default_value("0"))("vocab", "vocabulary size",
                                                 cxxopts::value<int>()->default_value("512"))(
      "seed", "seed", cxxopts::value<uint64_t>()->default_value("1"));
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  GenOptions g;
  g.sessions = (*r)["sessions"].as<int>(), g.turns = (*r)["turns"].as<int>();
  g.system_tokens = (*r)["system-tokens"].as<int>(), g.min_new = (*r)["min-new"].as<int>();
  g.max_new_tokens = (*r)["max-new-tokens"].as<int>();
  g.output_tokens = (*r)["output-tokens"].as<int>(),
  g.branch_every = (*r)["branch-every"].as<int>();
  g.vocab = (*r)["vocab"].as<int>(), g.seed = (*r)["seed"].as<uint64_t>();
  if (g.sessions < 1 || g.turns < 1 || g.system_tokens < 0 || g.min_new < 0 ||
      g.max_new_tokens < g.min_new || g.output_tokens < 1 || g.vocab < 1 || g.branch_every < 0) {
    std::cerr << args[0]
              << ": sessions, turns, output tokens and vocab must be positive, "
                 "0 <= min-new <= max-new-tokens\n";
    return 2;
  }
  const std::string text = GenerateWorkloadJson(g);
  if (const std::string out = (*r)["out"].as<std::string>(); !out.empty()) {
    std::ofstream f(out);
    if (!(f << text)) return Fail(args[0], Status::IoError("cannot write " + out));
    std::cerr << fmt::format("wrote {} sessions x {} turns to {}\n", g.sessions, g.turns, out);
  } else {
    std::cout << text;
  }
  return 0;
}

}  // namespace strata::tools
