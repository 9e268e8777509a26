// The restore planner: given what a Lookup found for a prompt's blocks, every way the stored
// bytes allow to rebuild the prompt's decode-ready state, with what each way reads from which
// tier and what it is estimated to cost, cheapest first (DESIGN.md, "Data flow"):
//
//   full        compressed entries of the hit + the last blocks' SWA entries and tail
//   checkpoint  compressed entries up to a checkpoint + the checkpoint, then prefill from there
//   recompute   compressed entries of the hit, then recompute the window pyramid: the last
//               window + (layers) x (window - 1) tokens, attending to the restored entries
//   cold        prefill everything (always the last plan)
//
// It is a pure function of a CacheLayout (the model's shape and the block size), a LookupResult,
// the prompt's length and a CostModel: no I/O, no clock, no model weights. The engine
// (CachedEngine::RunTurn) executes its plans; a trace simulator calls it with the LookupResult of
// a simulated store and gets the same decisions. Plans follow what is stored, not a policy: a
// turn may restore SWA stored in full by an earlier turn under another policy. What a policy
// stores per block is below (HitFamilies, StoredFamilies), shared by the engine's offload and a
// simulator's puts.
//
// Thread safety: pure functions and value types; safe to call concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "strata/family.h"
#include "strata/layout.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::engine {

// Bytes per tier, indexed by Tier (slot 0, kNone, stays 0).
using TierBytes = std::array<uint64_t, kNumTiers>;

// How a request's SWA state is offloaded.
struct SwaPolicy {
  enum Kind : uint8_t { kFull, kCheckpoint, kRecompute };
  Kind kind = kCheckpoint;
  int64_t every = 0;  // checkpoint:K, K a multiple of the block size; 0: only at request ends
  std::string ToString() const;
  // "full", "recompute", "checkpoint" or "checkpoint:K".
  static Result<SwaPolicy> Parse(const std::string& text, uint32_t block_size);
};

// Read bandwidth of each tier, bytes/s, indexed by Tier. Host and NVMe are the defaults that
// engine/cost_probe.h replaces with measurements (`strata run` does at start); device (HBM to HBM)
// and cluster (remote, over the network) are placeholders with no measurement behind them: set them
// for the hardware modelled.
inline constexpr std::array<double, kNumTiers> kDefaultTierBytesPerS = {0.0,     // kNone: unused
                                                                        1e12,    // kDevice
                                                                        10e9,    // kHost
                                                                        1e9,     // kNvme
                                                                        3.0e9};  // kCluster

struct CostModel {
  std::array<double, kNumTiers> bytes_per_s = kDefaultTierBytesPerS;  // indexed by Tier
  double prefill_s_per_token = 0.0;  // 0: measured by CachedEngine::Create
  double& operator[](Tier t) { return bytes_per_s[static_cast<size_t>(t)]; }
  double operator[](Tier t) const { return bytes_per_s[static_cast<size_t>(t)]; }
};

struct RestorePlan {
  enum Kind : uint8_t { kCold, kFull, kCheckpoint, kRecompute };
  Kind kind = kCold;
  int64_t hit_tokens = 0;  // prefix whose state the plan ends with (a block end)
  // Where the restored state starts: the checkpoint's end (kCheckpoint: the checkpoint of block
  // state_from / B - 1), the recompute's start (kRecompute), hit_tokens (kFull).
  int64_t state_from = 0;
  int64_t recompute_tokens = 0;
  TierBytes read_bytes{};  // planned reads, by the tier each object is read from
  double est_seconds = 0.0;
  uint64_t total_read_bytes() const;
  std::string ToString() const;  // "full", "checkpoint@512", "recompute(640 tokens)", "cold"
};
const char* RestorePlanKindName(RestorePlan::Kind kind);

// One Get a plan issues: `blocks` blocks from `first_block` on, the families in `families`.
struct PlanRead {
  int64_t first_block = 0;
  int64_t blocks = 0;
  FamilyMask families;
};
// The reads of a plan, in the order the engine issues them (compressed first). Their bytes per
// tier are the plan's read_bytes.
std::vector<PlanRead> PlanReads(const RestorePlan& plan, const CacheLayout& layout);

struct PlanOptions {
  // Take only plans of this kind (and cold); unset: every kind (tests, benchmarks).
  std::optional<RestorePlan::Kind> only;
};

// Every plan the stored bytes allow for a prompt of `prompt_tokens` tokens whose block keys
// (of layout.block_size() tokens each) were looked up with `found` (Lookup with
// HitFamilies(layout) required). Only the prompt's complete blocks before its last token count
// (that token must be computed for its logits). Sorted by est_seconds, ties in the order
// recompute, full, checkpoints from the latest; the cold plan is always last.
// est_seconds = sum over tiers of read_bytes / bytes_per_s + (recompute_tokens + prompt_tokens
// - hit_tokens) x prefill_s_per_token.
std::vector<RestorePlan> PlanRestores(const CacheLayout& layout, const LookupResult& found,
                                      int64_t prompt_tokens, const CostModel& cost,
                                      const PlanOptions& options = {});

// Tokens a recompute plan recomputes before a block end: the window pyramid that rebuilds every
// layer's SWA ring (and the MTP layer's) from the restored compressed entries.
int64_t RecomputeReach(const ModelShape& shape);
// Blocks whose swa family a full plan reads: those covering the last window.
int SwaBlocksNeeded(const CacheLayout& layout);

// Families per policy. The compressed families that hold bytes in this layout: what every
// stored block has, whatever the policy, and what a Lookup requires for a hit.
FamilyMask HitFamilies(const CacheLayout& layout);
// Whether `policy` stores a checkpoint at the block ending at token `block_end`, which is the
// request's last block end (prompt and generated tokens) when `request_end`.
bool StoresCheckpoint(const SwaPolicy& policy, int64_t block_end, bool request_end);
// The families the engine stores for a new block ending at token `block_end` under `policy`:
// HitFamilies, plus swa (full), plus the checkpoint where StoresCheckpoint says.
FamilyMask StoredFamilies(const SwaPolicy& policy, const CacheLayout& layout, int64_t block_end,
                          bool request_end);

}  // namespace strata::engine
