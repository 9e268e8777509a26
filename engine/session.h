// The engine with a prefix cache: runs requests through the model, offloads their state to a
// store (DESIGN.md "Data flow") and, when a new request shares a cached prefix, rehydrates the
// exact decode-ready state by the cheapest plan the stored bytes allow (full, checkpoint,
// recompute or cold; engine/restore_planner.h plans them, this class executes them).
//
// Tokens after the last complete block of the prompt are always prefilled (the prompt's last
// token must be computed for its logits). Costs: bytes per tier over that tier's bandwidth plus
// tokens over the measured prefill speed. A plan whose bytes turn out missing or corrupt falls
// back to the next one, down to cold: a hit never produces wrong state.
//
// Offload: every new complete block's compressed families; the swa family (full policy);
// checkpoints every K tokens and at the request's last block end (checkpoint:K). Puts run on a
// background thread; a request never waits for them.
// Thread safety: one request at a time per CachedEngine (RunTurn is not reentrant); the store
// may be shared.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/model.h"
#include "engine/restore_planner.h"
#include "engine/snapshot.h"
#include "strata/store.h"

namespace strata::engine {

struct EngineOptions {
  NamespaceId ns = 1;
  std::string namespace_secret = "strata";
  uint32_t block_size = 256;
  SwaPolicy policy;
  CostModel cost;
  bool background_offload = true;
};

struct TurnResult {
  int64_t prompt_tokens = 0;
  int64_t prefix_hit_tokens = 0;        // longest prefix with compressed state stored
  RestorePlan plan;                     // the plan taken
  std::vector<RestorePlan> candidates;  // every plan the stored bytes allowed, cheapest first
  int fallbacks = 0;                    // plans abandoned because bytes were missing or corrupt
  // restore_s: the whole restore (reads, decoding, and for recompute plans the recompute);
  // prefill_s: the prompt's tokens after the restored prefix.
  double lookup_s = 0, restore_s = 0, prefill_s = 0, decode_s = 0;
  TierBytes read_bytes{};        // read from the store, by the tier each object was served from
  int64_t prefilled_tokens = 0;  // prompt tokens computed after the restored prefix
  std::vector<int32_t> output;   // greedy tokens
  std::vector<std::vector<float>> logits;  // logits of the prompt's last token, then of each step
  uint64_t offload_bytes = 0;              // queued for the store by this turn
};

struct TurnOptions {
  int max_new = 0;
  const SwaPolicy* policy = nullptr;         // overrides the engine's policy
  const RestorePlan::Kind* force = nullptr;  // take only this kind of plan (tests, benchmarks)
  bool offload = true;
  // After a restore, also store a checkpoint of the restored prefix (turns SWA stored in full
  // into a checkpoint, e.g. before the full SWA is evicted).
  bool checkpoint_restored = false;
  RequestState* final_state = nullptr;  // receives the state after the turn
};

class CachedEngine {
 public:
  // The layout of the state this engine stores for `model` (its fingerprint names the bytes).
  static Result<CacheLayout> LayoutFor(const Model& model, uint32_t block_size);
  static Result<std::unique_ptr<CachedEngine>> Create(std::shared_ptr<const Model> model,
                                                      Store* store, EngineOptions options);
  ~CachedEngine();

  Result<TurnResult> RunTurn(std::span<const int32_t> prompt, const TurnOptions& options);
  // The same request with no store at all: what every rehydrated turn must equal bit for bit.
  Result<TurnResult> RunCold(std::span<const int32_t> prompt, int max_new,
                             RequestState* final_state = nullptr);

  // Waits until every queued Put has been handed to the store; returns the first Put error.
  Status WaitOffload();
  const CacheLayout& layout() const { return codec_.layout(); }
  const CostModel& cost() const { return options_.cost; }
  const EngineOptions& options() const { return options_; }

 private:
  CachedEngine(std::shared_ptr<const Model> model, Store* store, EngineOptions options,
               CacheLayout layout);
  // One object to store: packed by `make` on the offload thread from copies of the state it
  // needs, so the request only pays for the copies.
  struct Offload {
    ObjectKey key;
    PutHints hints;
    std::function<Result<std::vector<std::byte>>()> make;
  };
  void OffloadLoop();
  // What the store's placement may know of block b's object of family f: its depth, its
  // parent, and the prefill seconds a hit on it saves per stored byte.
  PutHints Hints(Family f, int64_t b, std::span<const BlockKey> keys) const;
  void Enqueue(ObjectKey key, const PutHints& hints,
               std::function<Result<std::vector<std::byte>>()> make, TurnResult& r);
  Status StoreObject(const Offload& job);
  Status Execute(const RestorePlan& plan, std::span<const BlockKey> keys,
                 std::span<const int32_t> prompt, RequestState& st, TurnResult& r);
  Status Generate(std::span<const int32_t> prompt, RequestState& st, int max_new,
                  const SwaPolicy& policy, bool offload, int64_t stored_blocks, TurnResult& r);

  std::shared_ptr<const Model> model_;
  Store* store_;
  EngineOptions options_;
  StateCodec codec_;
  BlockKey root_;
  FamilyMask compressed_;  // the compressed families this layout stores (non-empty ones)

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Offload> queue_;         // GUARDED_BY(mu_)
  bool busy_ = false, stop_ = false;  // GUARDED_BY(mu_)
  Status offload_status_;             // GUARDED_BY(mu_)
  std::thread worker_;
};

}  // namespace strata::engine
