// `strata compare`: replays a request trace (tools/trace.h) through the simulator
// (cachestore/sim/sim_store.h, the store's placement core on sizes and a virtual clock) once per
// configuration (SWA policy x tier capacities x eviction policy) and reports what each would
// have saved, written and cost.
//
// Per request, at its arrival on the virtual clock:
//   1. Lookup the prompt's usable blocks (engine rule: the blocks before its last token) with the
//      layout's compressed families required (engine::HitFamilies).
//   2. Plan the restore with the engine's own planner (engine::PlanRestores): `auto` takes the
//      cheapest plan, as the engine does; full / checkpoint / recompute take the cheapest plan of
//      their own kind, else the cheapest there is (the engine would not prefill cold when the
//      compressed entries are there).
//   3. Get what the plan reads (engine::PlanReads), counting bytes by the tier that served them;
//      a plan whose objects are gone falls back to the next one, down to cold.
//   4. Put the prompt's blocks after the restored prefix with the families the policy stores
//      (engine::StoredFamilies; the request's last complete block counts as its end), sized by
//      CacheLayout::FamilyBlockBytes, with hints: depth, parent, prefill seconds saved per byte.
// Saved prefill = restored prefix - recomputed tokens; computed = recompute + the prompt after
// the restored prefix; amplification = computed / the prompt after the Lookup hit.
// TTFT: the node's GPUs serve requests FIFO in arrival order (earliest free GPU); a request
// takes restore (bytes per tier over that tier's bandwidth to the GPU) and compute (recompute +
// new tokens at the model's prefill rate per GPU), serial or overlapped per layer.
//
// Several nodes (CompareConfig::nodes > 1, or a cluster tier): each node has its own SimStore
// (DRAM and NVMe of the configured sizes) and its own GPU queue; requests go to a node by round
// robin or by affinity (NodeFor). A cluster tier (cachestore/sim/sim_cluster.h, the tier shared
// across nodes on Redis Cluster) sits below every node's tiers:
//   - the Lookup continues in the cluster after the node's own hit: a block counts when each
//     required family is on the node or in the cluster;
//   - a plan's objects the node lacks are read from the cluster (Tier::kCluster in objects_read,
//     bytes_read and the TTFT's restore time) and put into the node's DRAM, so its next hit is
//     local;
//   - uploads follow cachestore::ShareAtUse: each node counts uses per object (its put = 1, each
//     Get that serves it one more; objects it read from the cluster are not uploaded again) and
//     writes an object behind when the policy says so; the upload becomes visible in the cluster
//     when the request's prefill ends on its node (its modelled TTFT) plus the write's time over
//     the node's network, and counts in bytes_written[kCluster].
// One node without a cluster tier is the single-node replay above, operation for operation.
// Thread safety: none needed; each call builds its own SimStores.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cachestore/placement/cluster_policy.h"
#include "cachestore/placement/decision.h"
#include "cachestore/sim/sim_store.h"
#include "engine/restore_planner.h"
#include "strata/layout.h"
#include "strata/status.h"
#include "strata/store.h"
#include "tools/codec_estimate.h"
#include "tools/hardware.h"
#include "tools/trace.h"

namespace strata::tools {

// An SWA policy as `strata compare` spells it: full, checkpoint:K, recompute, auto.
struct ComparePolicy {
  // false: one of the engine's SWA policies, restored by its own kind of plan where the stored
  // bytes allow one. true (`auto`): stored like full (thinned to checkpoints on NVMe) and
  // restored by the planner's cheapest plan.
  bool automatic = true;
  engine::SwaPolicy stored{engine::SwaPolicy::kFull, 0};  // what the replay puts
  std::string ToString() const;
  std::string KindName() const;  // full, checkpoint, recompute or auto
  static Result<ComparePolicy> Parse(const std::string& text, uint32_t block_size);
};

enum class RestoreOverlap : uint8_t {
  kPerLayer,  // layer l's bytes load while layer l-1 computes: max(restore, compute) + one layer
  kSerial,    // restore, then compute
};

// How a multi-node replay assigns requests to nodes.
enum class NodeAssign : uint8_t {
  kRoundRobin,  // request i to node i mod N
  kAffinity,    // by the prompt's first CompareSetup::affinity_tokens tokens (NodeFor)
};
std::string_view NodeAssignName(NodeAssign a);  // "round-robin", "affinity"
Result<NodeAssign> ParseNodeAssign(const std::string& text);

// One point of a sweep.
struct CompareConfig {
  ComparePolicy policy;
  uint64_t hbm_bytes = 0;   // no device tier in the simulator: added to the DRAM tier (see .cc)
  uint64_t dram_bytes = 0;  // host tier, per node
  uint64_t nvme_bytes = 0;  // 0: no NVMe tier; per node
  std::string eviction = "lru";
  int nodes = 1;
  NodeAssign assign = NodeAssign::kRoundRobin;
  uint64_t cluster_bytes = 0;  // the shared cluster tier's capacity; 0: none
  // The NVMe tier's record codec (kNone: raw), modelled from CompareSetup::codecs.
  CodecKind codec = CodecKind::kNone;
  bool multi_node() const { return nodes > 1 || cluster_bytes > 0; }
  // "checkpoint:512 dram=256GiB nvme=8TiB hbm=0 lru", then " codec=zstd" with a codec, then
  // " nodes=4 affinity cluster=1TiB" when multi_node().
  std::string Label() const;
};

// What stays the same across a sweep.
struct CompareSetup {
  CacheLayout layout;
  std::string model;  // configs/models file stem, e.g. "v4-pro"
  Hardware hardware;
  ModelCost cost;
  RestoreOverlap overlap = RestoreOverlap::kPerLayer;
  // Node capacity: copies of the cached state the node's HBM holds (1: each token's state once;
  // tensor-parallel attention over V4's single latent KV head keeps a copy on every rank).
  int kv_replicas = 1;
  // Resident tokens are sampled after every this many requests (0: every request).
  size_t sample_every = 0;
  // What goes to the cluster tier; `enabled` is ignored (a config's cluster_bytes > 0 enables it).
  cachestore::ClusterSharePolicy share;
  // Affinity: requests whose first this many tokens are equal go to the same node.
  int64_t affinity_tokens = 1024;
  // The NVMe tier's segment size (0: the store's default).
  uint64_t nvme_segment_bytes = 0;
  // Every object's size is divided by this (at least 1 byte): big models' state through a small
  // store (scale the capacities by the same factor to keep the unscaled run's placement).
  uint32_t scale_down = 1;
  // What each codec a configuration names does to this layout's records (tools/codec_estimate.h),
  // and how many restores decode at once.
  std::vector<CodecEstimate> codecs;
  uint32_t decode_threads = 8;
  const CodecEstimate* CodecFor(CodecKind k) const;  // null: not measured (or kNone)
};

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;
};

struct CompareResult {
  CompareConfig config;
  std::string model;
  uint64_t requests = 0, input_tokens = 0;
  uint64_t hit_tokens = 0;          // Lookup hits (compressed state present)
  uint64_t restored_tokens = 0;     // prefixes the taken plans restored
  uint64_t recompute_tokens = 0;    // SWA pyramid / tail recomputed inside restored prefixes
  uint64_t computed_tokens = 0;     // recompute + prompt tokens after the restored prefixes
  uint64_t saved_tokens = 0;        // restored - recompute
  double ceiling_hit_rate = 0;      // the trace's unlimited-cache hit rate
  std::array<uint64_t, 4> plans{};  // taken, by engine::RestorePlan::Kind (cold, full, ckpt, rec)
  uint64_t fallbacks = 0;           // plans abandoned because an object was gone at Get
  std::array<uint64_t, kNumTiers> objects_read{}, bytes_read{}, bytes_written{};
  std::array<uint64_t, kNumTiers> peak_resident_tokens{};
  std::array<double, kNumTiers> mean_resident_tokens{};
  uint64_t puts = 0, put_failures = 0, evictions = 0, demotions = 0;  // summed over nodes
  // The cluster tier (zero without one): hit tokens the Lookup found there beyond the node's own
  // hit (part of hit_tokens); objects uploaded (their bytes: bytes_written[kCluster]); objects
  // read from it into a node's DRAM (their bytes: bytes_read[kCluster]); LRU evictions.
  uint64_t cluster_hit_tokens = 0;
  uint64_t cluster_uploads = 0, cluster_fills = 0, cluster_evictions = 0;
  cachestore::ClusterSharePolicy share;  // what went to the cluster (enabled: there was one)
  Percentiles ttft_s, ttft_cold_s;       // with this cache; with none (same queues); over all nodes
  double restore_s = 0;  // restore time summed over requests (modelled, or measured: a real store)
  // The NVMe tier at the trace's end, over all nodes: prompt tokens whose state it holds per TB
  // of its capacity and per TB it has used (unscaled: CompareSetup::scale_down is undone); and
  // raw bytes restored from it per second of modelled NVMe restore time (drive, link and, with a
  // codec, decode).
  double nvme_tokens_per_tb = 0, nvme_tokens_per_tb_used = 0;
  uint64_t nvme_raw_bytes = 0, nvme_stored_bytes = 0;  // at the end, over all nodes
  double nvme_restore_bytes_per_s = 0;
  double wall_s = 0;       // replay time on this machine
  uint64_t block_ops = 0;  // blocks looked up + objects read + objects put

  double hit_rate() const { return input_tokens ? double(hit_tokens) / double(input_tokens) : 0; }
  double cluster_hit_rate() const {
    return input_tokens ? double(cluster_hit_tokens) / double(input_tokens) : 0;
  }
  double saved_rate() const {
    return input_tokens ? double(saved_tokens) / double(input_tokens) : 0;
  }
  // Tokens computed per prompt token the Lookup missed (1.0: no recompute beyond the miss).
  double amplification() const {
    const uint64_t miss = input_tokens - hit_tokens;
    return miss ? double(computed_tokens) / double(miss) : 0;
  }
  // Bytes written into the store per prompt token.
  double written_bytes_per_token() const;
};

// Progress: requests replayed in this configuration.
using ReplayProgress = std::function<void(uint64_t done)>;

// The store a replay drives, behind the calls the replay makes: the simulator for `strata
// compare`, the real store for `strata replay` (tools/store_replay.h). Payloads are sizes; a
// real store writes that many bytes and reports where Get served them from.
class ReplayStore {
 public:
  virtual ~ReplayStore() = default;
  // The placement clock (trace time, microseconds).
  virtual void SetTime(uint64_t micros) = 0;
  virtual Result<LookupResult> Lookup(NamespaceId ns, uint64_t fingerprint,
                                      std::span<const BlockKey> keys, FamilyMask required) = 0;
  virtual Status Put(const ObjectKey& key, uint64_t fingerprint, uint64_t bytes,
                     const PutHints& hints) = 0;
  virtual Result<std::vector<cachestore::SimObject>> Get(NamespaceId ns, uint64_t fingerprint,
                                                         std::span<const BlockKey> keys,
                                                         FamilyMask families) = 0;
  virtual void Release(std::span<const uint64_t> pins) = 0;
  virtual StoreStats Stats() const = 0;
  virtual void VisitCounters(const CounterVisitor& visit) const = 0;
  // Seconds the Gets since the last call took, measured (a real store); nullopt: not measured,
  // the replay models restore time from the bytes each tier served (the simulator).
  virtual std::optional<double> TakeReadSeconds() { return std::nullopt; }
};

// What a replay calls around each request. `store` (optional) opens the store of a node from the
// simulator's configuration of it (default: the simulator); the caller owns it and keeps it past
// the replay; only a single node without a cluster tier takes another store. `before` runs
// before request i (after the clock is set), `after` once its restore and offload are done.
struct ReplayHooks {
  std::function<Result<ReplayStore*>(const cachestore::SimConfig&)> store;
  std::function<void(size_t i, const TraceRequest& request)> before;
  std::function<void(size_t i, const TraceRequest& request, const CompareResult& so_far)> after;
};

// A ReplayStore over the simulator.
Result<std::unique_ptr<ReplayStore>> OpenSimReplayStore(const cachestore::SimConfig& config,
                                                        cachestore::DecisionLog* log = nullptr);

// The simulator's configuration of one node of `config` (capacities, timings, SWA thinning).
cachestore::SimConfig ReplayNodeConfig(const CompareSetup& setup, const CompareConfig& config);

Result<CompareResult> Replay(const Trace& trace, const TraceSummary& summary,
                             const CompareSetup& setup, const CompareConfig& config,
                             const ReplayProgress& progress = {}, const ReplayHooks& hooks = {});

// The node a request goes to among `config.nodes`: round robin by its index in the trace, or by
// affinity: a stable hash of the key of its block covering token affinity_tokens - 1 (the key
// chains the whole prefix, so equal first affinity_tokens tokens give the same node), or of its
// last complete block when the prompt is shorter; round robin for a prompt with no complete block.
int NodeFor(const TraceRequest& request, size_t index, const CompareSetup& setup,
            const CompareConfig& config);

// One node's GPUs as a queue: `servers` identical servers, FIFO by arrival, each request on the
// earliest free one.
class GpuQueue {
 public:
  explicit GpuQueue(int servers);
  // Time to first token of a request arriving at `arrive_s` (non-decreasing across calls) that
  // takes `service_s` on a GPU.
  double Admit(double arrive_s, double service_s);

 private:
  std::vector<double> free_at_;  // when each server is next idle (a min-heap)
};

// p50 / p90 / p99 (nearest rank) and mean of `values` (reordered).
Percentiles PercentilesOf(std::vector<double>& values);

// The TTFT queue: `servers` identical servers, FIFO by arrival; service[i] seconds.
Percentiles QueueTtft(const std::vector<uint64_t>& arrival_us, const std::vector<double>& service_s,
                      int servers);

// Node capacity: tokens of cached context that fit in the HBM left after the weights, per
// policy, from the layout's bytes per token (full: compressed + SWA per token; checkpoint:K:
// compressed + one checkpoint per K tokens; recompute: compressed only; auto as full), divided
// by the number of copies (CompareSetup::kv_replicas).
struct NodeCapacity {
  std::string policy;
  double bytes_per_token = 0;
  double tokens = 0;
};
std::vector<NodeCapacity> NodeCapacities(const CompareSetup& setup,
                                         const std::vector<ComparePolicy>& policies);

}  // namespace strata::tools
