#include "cachestore/placement/placement_core.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "cachestore/host/arena_copy.h"
#include "cachestore/nvme/record.h"

namespace strata::cachestore {
namespace {

// Dirty bytes demoted per eviction round: large enough to batch I/O, small enough not to
// evict far more than needed.
constexpr uint64_t kDemoteBatchBytes = 64ull << 20;

// How long an allocation waits for pins to be released before it reports the host tier full.
constexpr auto kPinWait = std::chrono::milliseconds(200);

// How many refused objects the host tier's admission remembers (a doorkeeper: a second put of
// a refused object is its second use).
constexpr size_t kRefusedMemory = 1 << 20;

bool Compressed(Family f) {
  return f == Family::kCsa || f == Family::kCsaIndex || f == Family::kHca;
}

}  // namespace

uint64_t PlacementCore::LowerLoc::span() const { return RecordSpan(stored_size); }

PlacementCore::PlacementCore(PlacementOptions options)
    : opt_(std::move(options)), host_(*opt_.host) {}

PlacementCore::~PlacementCore() = default;

Result<std::unique_ptr<PlacementCore>> PlacementCore::Create(PlacementOptions options) {
  if (!options.host || !options.clock)
    return Status::InvalidArgument("placement core: host space and clock are required");
  if (options.lower && !options.index)
    return Status::InvalidArgument("placement core: a lower tier needs an index");
  std::unique_ptr<PlacementCore> core(new PlacementCore(std::move(options)));
  const StoreConfig& c = core->opt_.config;
  STRATA_ASSIGN_OR_RETURN(core->eviction_, MakeEvictionPolicy(c.host.eviction));
  STRATA_ASSIGN_OR_RETURN(core->host_admit_, MakeAdmissionPolicy(c.host.admission));
  STRATA_ASSIGN_OR_RETURN(core->nvme_admit_, MakeAdmissionPolicy(c.nvme.admission));
  core->admit_all_ = c.host.admission == "all";
  core->quotas_active_ = c.host.namespace_quota_bytes > 0;
  if (core->opt_.lower) {
    const uint32_t segments = uint32_t(c.nvme.capacity_bytes / c.nvme.segment_bytes);
    core->log_ = std::make_unique<SegmentLog>(c.nvme.segment_bytes, segments);
    for (uint32_t seg : core->opt_.retired_segments) core->log_->Retire(seg);
    core->seg_members_.assign(segments, nullptr);
  }
  return core;
}

// --- bookkeeping -----------------------------------------------------------------------------

// Entries live in a pool with stable addresses; an id is the entry's slot in the pool with the
// slot's generation above it, so a stale id (a pin released twice, an old victim) finds nothing.
PlacementCore::Entry* PlacementCore::NewEntry() {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = uint32_t(pool_.size());
    pool_.emplace_back();
  }
  Entry& e = pool_[slot];
  const uint32_t generation = e.generation + 1;
  e = Entry{};
  e.generation = generation;
  e.live = true;
  e.id = (uint64_t(generation) << 32) | slot;
  return &e;
}

void PlacementCore::FreeEntry(Entry* e) {
  e->live = false;
  free_slots_.push_back(uint32_t(e->id));
}

void PlacementCore::SegInsert(Entry* e) {
  Entry*& head = seg_members_[log_->SegmentOf(e->nv.offset)];
  e->seg_prev = nullptr;
  e->seg_next = head;
  if (head) head->seg_prev = e;
  head = e;
}

void PlacementCore::SegErase(Entry* e) {
  Entry*& head = seg_members_[log_->SegmentOf(e->nv.offset)];
  if (e->seg_prev)
    e->seg_prev->seg_next = e->seg_next;
  else
    head = e->seg_next;
  if (e->seg_next) e->seg_next->seg_prev = e->seg_prev;
  e->seg_prev = e->seg_next = nullptr;
}

std::vector<PlacementCore::Entry*> PlacementCore::SegMembers(uint32_t seg) const {
  std::vector<Entry*> out;
  for (Entry* e = seg_members_[seg]; e; e = e->seg_next) out.push_back(e);
  std::sort(out.begin(), out.end(),
            [](const Entry* a, const Entry* b) { return a->nv.sequence < b->nv.sequence; });
  return out;
}

PlacementCore::Entry* PlacementCore::ById(uint64_t id) {
  const uint64_t slot = id & 0xffffffffu;
  if (slot >= pool_.size()) return nullptr;
  Entry& e = pool_[slot];
  return e.live && e.id == id ? &e : nullptr;
}

PlacementCore::Entry* PlacementCore::FindAny(const ObjectKey& key) {
  auto it = blocks_.find(BlockId{key.ns, key.block});
  if (it == blocks_.end()) return nullptr;
  return it->second.fam[int(key.family)];
}

PlacementCore::Entry* PlacementCore::Find(const ObjectKey& key, uint64_t fingerprint) {
  Entry* e = FindAny(key);
  return e && e->fingerprint == fingerprint ? e : nullptr;
}

void PlacementCore::Log(DecisionKind kind, Tier tier, Tier to, const Entry& e, uint64_t bytes) {
  if (!opt_.log) return;
  Decision d;
  d.kind = kind;
  d.tier = tier;
  d.to = to;
  d.key = e.key;
  d.bytes = bytes;
  opt_.log->Add(d);
}

ObjectFacts PlacementCore::Facts(const Entry& e) const {
  ObjectFacts f;
  f.bytes = e.ext.size;
  f.family = e.key.family;
  f.depth = e.depth;
  f.hits = e.total_hits;
  f.value_per_byte = e.value_per_byte;
  return f;
}

void PlacementCore::Track(Entry& e) {
  if (e.tracked || !e.resident || e.doomed || e.loading) return;
  eviction_->Track(e.id, Facts(e));
  e.tracked = true;
}

void PlacementCore::Untrack(Entry& e) {
  if (!e.tracked) return;
  eviction_->Untrack(e.id);
  e.tracked = false;
}

const CacheLayout* PlacementCore::ThinLayout(const Entry& e) const {
  if (!opt_.config.thin_swa_on_demotion || e.key.family != Family::kSwa) return nullptr;
  for (const CacheLayout& l : opt_.layouts)
    if (l.fingerprint() == e.fingerprint && l.FamilyBlockBytes(Family::kSwa) == e.raw_size)
      return &l;
  return nullptr;
}

bool PlacementCore::WouldDrop(const Entry& e) {
  if (e.on_nvme) return false;
  if (!e.dirty || !opt_.lower) return true;
  return !nvme_admit_->Admit(Facts(e)) && !ThinLayout(e);
}

void PlacementCore::Account(const Entry& e, int sign) {
  if (e.doomed) return;
  const int f = int(e.key.family);
  const uint64_t n = uint64_t(int64_t(sign)), bytes = e.raw_size * n;
  if (e.resident) {
    stats_[Tier::kHost].families[f].objects += n;
    stats_[Tier::kHost].families[f].bytes += bytes;
    if (quotas_active_) {
      uint64_t& used = ns_host_bytes_[e.key.ns];
      used += e.ext.size * n;
      if (used == 0) ns_host_bytes_.erase(e.key.ns);
    }
  }
  if (e.on_nvme) {
    stats_[Tier::kNvme].families[f].objects += n;
    stats_[Tier::kNvme].families[f].bytes += bytes;
  }
}

void PlacementCore::DropHostCopy(Entry& e) {
  Untrack(e);
  if (e.resident || e.loading) host_.Free(e.ext);
  Account(e, -1);
  e.resident = false;
  e.dirty = false;
  Account(e, +1);
}

void PlacementCore::DropNvmeCopy(Entry& e, std::vector<ObjectKey>* index_deletes) {
  if (!e.on_nvme) return;
  log_->Release(e.nv.offset, e.nv.span());
  SegErase(&e);
  Account(e, -1);
  e.on_nvme = false;
  Account(e, +1);
  if (index_deletes) index_deletes->push_back(e.key);
}

PlacementCore::BlockSlot& PlacementCore::SlotFor(const ObjectKey& key, const PutHints& hints) {
  auto [it, fresh] = blocks_.try_emplace(BlockId{key.ns, key.block});
  BlockSlot& slot = it->second;
  if (fresh) {
    slot.slot_id = next_slot_++;
    if (hints.has_parent) {
      slot.parent = BlockId{key.ns, hints.parent};
      auto p = blocks_.find(slot.parent);
      if (p != blocks_.end()) {
        ++p->second.children;
        slot.parent_slot = p->second.slot_id;
      }
    }
  }
  return slot;
}

void PlacementCore::EraseSlot(std::unordered_map<BlockId, BlockSlot, BlockIdHash>::iterator it) {
  if (it->second.parent_slot) {
    auto p = blocks_.find(it->second.parent);
    if (p != blocks_.end() && p->second.slot_id == it->second.parent_slot && p->second.children)
      --p->second.children;
  }
  blocks_.erase(it);
}

void PlacementCore::Remove(Entry* e) {
  auto it = blocks_.find(BlockId{e->key.ns, e->key.block});
  it->second.fam[int(e->key.family)] = nullptr;
  bool empty = true;
  for (auto& f : it->second.fam) empty &= (f == nullptr);
  if (empty) EraseSlot(it);
  Untrack(*e);
  Account(*e, -1);  // a doomed object no longer counts
  e->doomed = true;
  if (e->pins || e->loading || e->writing) {
    doomed_.insert(e->id);
    return;
  }
  FreeIfUnused(e);
}

// Frees a doomed entry once nothing uses it.
void PlacementCore::FreeIfUnused(Entry* e) {
  if (!e->doomed || e->pins || e->loading || e->writing) return;
  if (e->resident) host_.Free(e->ext);
  e->resident = false;
  if (e->on_nvme) DropNvmeCopy(*e, nullptr);  // index entry already replaced or deleted
  doomed_.erase(e->id);
  FreeEntry(e);
}

void PlacementCore::EraseEntryIfEmpty(Entry* e) {
  if (!e->resident && !e->on_nvme && !e->loading && !e->writing && !e->doomed) Remove(e);
}

// --- eviction --------------------------------------------------------------------------------

// Drops `e`'s host copy to make room (its last copy unless it is in the lower tier). When a
// block's compressed state goes, the block's other droppable objects in DRAM go with it.
void PlacementCore::DropForRoom(Entry* e, uint64_t& freed) {
  freed += e->ext.size;
  if (e->on_nvme) {
    Log(DecisionKind::kDropCopy, Tier::kHost, Tier::kNvme, *e, e->raw_size);
    DropHostCopy(*e);
    return;
  }
  if (e->dirty && opt_.lower) {
    counters_.demotions_refused.fetch_add(1, std::memory_order_relaxed);
    Log(DecisionKind::kReject, Tier::kNvme, Tier::kNone, *e, e->raw_size);
  }
  std::vector<Entry*> gone{e};
  if (Compressed(e->key.family)) {
    auto it = blocks_.find(BlockId{e->key.ns, e->key.block});
    for (auto& f : it->second.fam) {
      Entry* o = f;
      if (!o || o == e || !o->resident || o->pins || o->loading || o->writing) continue;
      if (!WouldDrop(*o)) continue;
      freed += o->ext.size;
      gone.push_back(o);
    }
  }
  for (Entry* g : gone) {
    counters_.evictions_dropped.fetch_add(1, std::memory_order_relaxed);
    Log(DecisionKind::kEvict, Tier::kHost, Tier::kNone, *g, g->raw_size);
    DropHostCopy(*g);
    Remove(g);
  }
}

// One round of eviction: drops, and picks demotion victims among, the objects `accept` allows
// until `done()` holds, `need` bytes have gone, or the demotion batch is full; then writes the
// demotions (releasing lk). Returns the bytes dropped or demoted (0: nothing could go).
uint64_t PlacementCore::EvictRound(std::unique_lock<std::mutex>& lk, uint64_t need,
                                   const std::function<bool()>& done,
                                   const std::function<bool(const Entry&)>& accept) {
  std::vector<Entry*> demote;
  uint64_t demote_bytes = 0, freed = 0;
  auto undo_demotions = [&] {  // not needed after all: back to evictable
    for (Entry* d : demote) {
      d->writing = false;
      Track(*d);
    }
  };
  // Victims the policy offered that cannot go now; after every tracked object has been offered
  // once, inner blocks of chains may go too.
  size_t skips = 0;
  const size_t skip_limit = eviction_->size();
  while (freed < need && demote_bytes < kDemoteBatchBytes) {
    auto victim = eviction_->Victim();
    if (!victim) break;
    Entry* e = ById(*victim);
    if (e->pins || e->writing || e->loading || !accept(*e)) {
      if (++skips > skip_limit) break;
      eviction_->Skip(e->id);
      continue;
    }
    if (e->dirty && opt_.lower && !WouldDrop(*e)) {
      Untrack(*e);
      e->writing = true;
      demote.push_back(e);
      demote_bytes += e->ext.size;
      freed += e->ext.size;
      continue;
    }
    if (WouldDrop(*e) && Compressed(e->key.family) && skips < skip_limit) {
      auto it = blocks_.find(BlockId{e->key.ns, e->key.block});
      if (it->second.children > 0) {  // an inner block of a chain: prefer a leaf
        ++skips;
        eviction_->Skip(e->id);
        continue;
      }
      // The block's SWA and checkpoint go before its compressed state.
      bool dropped_window = false;
      for (Family f : {Family::kSwa, Family::kCheckpoint}) {
        Entry* w = it->second.fam[int(f)];
        if (!w || !w->resident || w->pins || w->loading || w->writing || !WouldDrop(*w)) continue;
        DropForRoom(w, freed);
        dropped_window = true;
        break;
      }
      if (dropped_window) {
        ++skips;
        eviction_->Skip(e->id);
        if (done()) {
          undo_demotions();
          return freed;
        }
        continue;
      }
    }
    DropForRoom(e, freed);
    if (done()) {
      undo_demotions();
      return freed;
    }
  }
  if (demote.empty()) return freed;
  counters_.demotions.fetch_add(demote.size(), std::memory_order_relaxed);
  Status s = WriteRecords(lk, demote, WriteKind::kDemote);
  for (Entry* e : demote) {
    if (e->doomed) {
      FreeIfUnused(e);
      continue;
    }
    if (e->dirty) {
      // The write failed: the copy was never acknowledged as durable, drop it.
      counters_.demote_errors.fetch_add(1, std::memory_order_relaxed);
      if (e->pins) {
        Track(*e);
        continue;
      }
      Log(DecisionKind::kEvict, Tier::kHost, Tier::kNone, *e, e->raw_size);
      DropHostCopy(*e);
      EraseEntryIfEmpty(e);
    } else if (e->pins == 0) {
      DropHostCopy(*e);
      EraseEntryIfEmpty(e);  // a thinned SWA object has no copy left
    } else {
      Track(*e);
    }
  }
  if (!s.ok()) spdlog::warn("strata: demotion to NVMe failed: {}", s.ToString());
  return freed;
}

Status PlacementCore::WaitOrGiveUp(std::unique_lock<std::mutex>& lk,
                                   std::chrono::steady_clock::time_point deadline,
                                   const std::string& what) {
  // Everything that could go is pinned or under I/O: wait a little for a Release or a demotion
  // to finish, then give up.
  if (std::chrono::steady_clock::now() > deadline) {
    uint64_t pinned = 0, io = 0, resident = 0;
    for (const auto& [id, slot] : blocks_)
      for (const auto& e : slot.fam)
        if (e && (e->resident || e->loading)) {
          ++resident;
          pinned += e->pins > 0;
          io += e->writing || e->loading;
        }
    return Status::ResourceExhausted(fmt::format(
        "{} ({} of {} bytes in use by {} objects: {} pinned, {} under I/O, {} doomed; largest "
        "free extent {})",
        what, host_.used(), host_.capacity(), resident, pinned, io, doomed_.size(),
        host_.largest_free()));
  }
  io_cv_.wait_for(lk, std::chrono::milliseconds(5));
  return Status::Ok();
}

uint64_t PlacementCore::QuotaOf(NamespaceId ns) const {
  if (!quotas_active_) return 0;
  auto it = quotas_.find(ns);
  return it != quotas_.end() ? it->second : opt_.config.host.namespace_quota_bytes;
}

uint64_t PlacementCore::HostBytesOf(NamespaceId ns) const {
  auto it = ns_host_bytes_.find(ns);
  return it != ns_host_bytes_.end() ? it->second : 0;
}

Status PlacementCore::EnforceQuota(std::unique_lock<std::mutex>& lk, NamespaceId ns,
                                   uint64_t need) {
  const uint64_t quota = QuotaOf(ns);
  if (quota == 0) return Status::Ok();
  if (need > quota)
    return Status::ResourceExhausted(fmt::format(
        "namespace {}: an object of {} bytes is larger than its host-tier quota ({} bytes)", ns,
        need, quota));
  const auto deadline = std::chrono::steady_clock::now() + kPinWait;
  auto fits = [&] { return HostBytesOf(ns) + need <= quota; };
  while (!fits()) {
    const uint64_t over = HostBytesOf(ns) + need - quota;
    const uint64_t freed =
        EvictRound(lk, over, fits, [ns](const Entry& e) { return e.key.ns == ns; });
    if (freed == 0 && !fits())
      STRATA_RETURN_IF_ERROR(
          WaitOrGiveUp(lk, deadline,
                       fmt::format("namespace {}: no room for {} bytes within its quota of {}", ns,
                                   need, quota)));
  }
  return Status::Ok();
}

void PlacementCore::SetNamespaceQuota(NamespaceId ns, uint64_t bytes) {
  std::lock_guard lk(mu_);
  quotas_[ns] = bytes;
  if (!quotas_active_) CountNamespaceBytes();
}

// Usage per namespace is kept only once a quota exists (it costs a hash update per change).
void PlacementCore::CountNamespaceBytes() {
  quotas_active_ = true;
  ns_host_bytes_.clear();
  for (const auto& [id, slot] : blocks_)
    for (const auto& e : slot.fam)
      if (e && e->resident) ns_host_bytes_[e->key.ns] += e->ext.size;
}

Result<Extent> PlacementCore::MakeRoom(std::unique_lock<std::mutex>& lk, uint64_t bytes,
                                       NamespaceId ns) {
  if (ExtentAllocator::SizeClass(bytes) > host_.capacity())
    return Status::InvalidArgument("object of " + std::to_string(bytes) +
                                   " bytes does not fit the host tier (" +
                                   std::to_string(host_.capacity()) + " bytes)");
  STRATA_RETURN_IF_ERROR(EnforceQuota(lk, ns, ExtentAllocator::SizeClass(bytes)));
  const auto deadline = std::chrono::steady_clock::now() + kPinWait;
  for (;;) {
    if (auto ext = host_.Allocate(bytes)) return *ext;
    std::optional<Extent> got;
    auto done = [&] {
      got = host_.Allocate(bytes);
      return got.has_value();
    };
    const uint64_t freed = EvictRound(lk, bytes, done, [](const Entry&) { return true; });
    if (got) return *got;
    if (freed == 0) {
      if (auto ext = host_.Allocate(bytes)) return *ext;
      STRATA_RETURN_IF_ERROR(
          WaitOrGiveUp(lk, deadline, fmt::format("host tier: no room for {} bytes", bytes)));
    }
  }
}

// --- the Store API ---------------------------------------------------------------------------

Result<LookupResult> PlacementCore::Lookup(NamespaceId ns, uint64_t fingerprint,
                                           std::span<const BlockKey> keys, FamilyMask required) {
  counters_.lookups.fetch_add(1, std::memory_order_relaxed);
  LookupResult r;
  std::lock_guard lk(mu_);
  for (const BlockKey& k : keys) {
    BlockPresence p;
    std::array<uint64_t, kNumTiers> bytes{};
    auto it = blocks_.find(BlockId{ns, k});
    if (it != blocks_.end()) {
      for (Family f : kAllFamilies) {
        const Entry* e = it->second.fam[int(f)];
        if (!e || e->fingerprint != fingerprint) continue;
        if (e->resident && !e->loading) {
          p.families.Add(f);
          p.tier[int(f)] = Tier::kHost;
        } else if (e->on_nvme) {
          p.families.Add(f);
          p.tier[int(f)] = Tier::kNvme;
        } else {
          continue;
        }
        bytes[int(p.tier[int(f)])] += e->raw_size;
      }
    }
    const bool hit = !p.families.empty() && p.families.Contains(required);
    r.blocks.push_back(p);
    if (!hit) break;
    ++r.hit_blocks;
    for (int t = 0; t < kNumTiers; ++t) r.hit_bytes[t] += bytes[t];
  }
  counters_.lookup_blocks_hit.fetch_add(r.hit_blocks, std::memory_order_relaxed);
  return r;
}

bool PlacementCore::AdmitToHost(const ObjectKey& key, uint64_t size, const PutHints& hints) {
  if (admit_all_) return true;
  ObjectFacts f;
  f.bytes = ExtentAllocator::SizeClass(RecordSpan(size));
  f.family = key.family;
  f.depth = hints.depth;
  f.value_per_byte = hints.value_per_byte;
  // Earlier puts of this object that the policy refused count as its uses so far.
  const uint64_t h = ObjectKeyHash{}(key);
  auto seen = refused_.find(h);
  f.hits = seen == refused_.end() ? 0 : seen->second;
  if (host_admit_->Admit(f)) return true;
  if (seen != refused_.end()) {
    ++seen->second;
  } else {
    if (refused_order_.size() >= kRefusedMemory) {
      refused_.erase(refused_order_.front());
      refused_order_.pop_front();
    }
    refused_.emplace(h, 1);
    refused_order_.push_back(h);
  }
  counters_.puts_rejected.fetch_add(1, std::memory_order_relaxed);
  if (opt_.log)
    opt_.log->Add(Decision{DecisionKind::kReject, Tier::kHost, Tier::kNone, key, size, 0});
  return false;
}

uint64_t PlacementCore::HostSum(const Extent& ext, uint64_t size) const {
  return PayloadChecksum({opt_.host_base + ext.offset + kRecordHeaderSize, size});
}

void PlacementCore::InsertResident(const ObjectKey& key, uint64_t fingerprint, uint64_t size,
                                   const Extent& ext, const PutHints& hints,
                                   std::optional<uint64_t> sum, Origin origin) {
  Entry* e = NewEntry();
  e->shared = origin == Origin::kFromSharedTier;
  e->key = key;
  e->fingerprint = fingerprint;
  e->raw_size = size;
  e->resident = true;
  e->ext = ext;
  e->dirty = true;
  e->host_summed = sum.has_value();
  e->host_sum = sum.value_or(0);
  e->last_access = opt_.clock->NowSeconds();
  e->depth = hints.depth;
  e->value_per_byte = hints.value_per_byte;
  Entry* raw = e;
  BlockSlot* slot = &SlotFor(key, hints);
  if (Entry* old = slot->fam[int(key.family)]) {
    std::vector<ObjectKey> unused;
    if (old->on_nvme) DropNvmeCopy(*old, &unused);  // the new record's index entry replaces it
    Remove(old);
    slot = &SlotFor(key, hints);  // Remove erased the slot if the old object was its only one
  }
  slot->fam[int(key.family)] = e;
  Account(*raw, +1);
  Track(*raw);
  Log(DecisionKind::kAdmit, Tier::kHost, Tier::kNone, *raw, size);
  counters_.puts.fetch_add(1, std::memory_order_relaxed);
  counters_.put_bytes.fetch_add(size, std::memory_order_relaxed);
  MaybeShare(*raw);
}

void PlacementCore::MaybeShare(Entry& e) {
  if (!opt_.host_base || e.shared || !e.resident || e.host_bad || e.doomed) return;
  if (!ShareAtUse(opt_.share, e.key.family, e.total_hits + 1)) return;
  e.shared = true;
  ++e.pins;
  share_queue_.push_back(e.id);
  ++shares_queued_;
  share_cv_.notify_one();
}

std::vector<PlacementCore::ShareItem> PlacementCore::TakeShares(size_t max,
                                                                std::chrono::milliseconds wait) {
  std::unique_lock lk(mu_);
  share_cv_.wait_for(lk, wait, [&] { return shares_stopped_ || !share_queue_.empty(); });
  std::vector<ShareItem> out;
  while (!share_queue_.empty() && out.size() < max) {
    const uint64_t id = share_queue_.front();
    share_queue_.pop_front();
    Entry* e = ById(id);  // pinned since it was queued: still here (maybe doomed)
    ShareItem it;
    it.pin = id;
    if (e && e->resident && !e->host_bad && !e->doomed) {
      it.key = e->key;
      it.fingerprint = e->fingerprint;
      it.data = opt_.host_base + e->ext.offset + kRecordHeaderSize;
      it.size = e->raw_size;
      if (e->host_summed) it.sum = e->host_sum;
    }
    out.push_back(it);  // data null: nothing to upload, only the pin to give back
  }
  return out;
}

void PlacementCore::SharesDone(std::span<const uint64_t> pins) {
  Release(pins);
  std::lock_guard lk(mu_);
  shares_done_ += pins.size();
  share_cv_.notify_all();
}

bool PlacementCore::WaitShares(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lk(mu_);
  const uint64_t target = shares_queued_;
  return share_cv_.wait_until(lk, deadline,
                              [&] { return shares_done_ >= target || shares_stopped_; });
}

void PlacementCore::StopShares() {
  std::lock_guard lk(mu_);
  shares_stopped_ = true;
  share_cv_.notify_all();
}

void PlacementCore::DropCorruptHostCopy(Entry* e) {
  counters_.host_copies_corrupt.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("strata: host copy of {}/{} changed after it was stored: dropped",
               e->key.block.ToHex(), FamilyName(e->key.family));
  Log(DecisionKind::kCorrupt, Tier::kHost, Tier::kNone, *e, e->raw_size);
  e->host_bad = true;
  if (e->doomed) return;
  if (e->on_nvme && opt_.index) {
    Status s = opt_.index->Delete(std::span<const ObjectKey>(&e->key, 1));
    if (!s.ok()) spdlog::warn("strata: index delete failed: {}", s.ToString());
  }
  Remove(e);
}

Status PlacementCore::Put(const ObjectKey& key, uint64_t fingerprint, uint64_t size,
                          std::span<const std::byte> bytes, const PutHints& hints, Origin origin) {
  if (int(key.family) >= kNumFamilies) return Status::InvalidArgument("bad family");
  if (opt_.lower && RecordSpan(size) > opt_.config.nvme.segment_bytes)
    return Status::InvalidArgument("object of " + std::to_string(size) +
                                   " bytes is larger than an NVMe segment (" +
                                   std::to_string(opt_.config.nvme.segment_bytes) + " bytes)");
  const uint64_t need = RecordSpan(size);
  std::unique_lock lk(mu_);
  // A cache may decline; the object is simply not stored.
  if (!AdmitToHost(key, size, hints)) return Status::Ok();
  STRATA_ASSIGN_OR_RETURN(Extent ext, MakeRoom(lk, need, key.ns));
  std::optional<uint64_t> sum;
  if (opt_.host_base) {
    lk.unlock();
    std::byte* dst = opt_.host_base + ext.offset;
    CopyPayload(ext, bytes.data(), size);
    std::memset(dst + kRecordHeaderSize + size, 0, need - kRecordHeaderSize - size);
    if (opt_.host_checksums) sum = HostSum(ext, size);
    lk.lock();
  }
  InsertResident(key, fingerprint, size, ext, hints, sum, origin);
  return Status::Ok();
}

void PlacementCore::CopyPayload(const Extent& ext, const std::byte* src, uint64_t size) const {
  std::byte* dst = opt_.host_base + ext.offset + kRecordHeaderSize;
  if (opt_.host_checksums)
    std::memcpy(dst, src, size);  // HostSum reads it straight back: keep it in the cache
  else
    ArenaCopy(dst, src, size);
}

Result<Extent> PlacementCore::Reserve(NamespaceId ns, uint64_t size) {
  if (opt_.lower && RecordSpan(size) > opt_.config.nvme.segment_bytes)
    return Status::InvalidArgument("object of " + std::to_string(size) +
                                   " bytes is larger than an NVMe segment (" +
                                   std::to_string(opt_.config.nvme.segment_bytes) + " bytes)");
  std::unique_lock lk(mu_);
  STRATA_ASSIGN_OR_RETURN(Extent ext, MakeRoom(lk, RecordSpan(size), ns));
  counters_.reservations.fetch_add(1, std::memory_order_relaxed);
  return ext;
}

Result<bool> PlacementCore::Commit(const ObjectKey& key, uint64_t fingerprint, uint64_t size,
                                   const Extent& ext, const PutHints& hints) {
  if (int(key.family) >= kNumFamilies || RecordSpan(size) > ext.size) {
    Abort(ext);
    return Status::InvalidArgument("commit: bad family or size for the reservation");
  }
  std::optional<uint64_t> sum;
  if (opt_.host_base) {
    // The writer fills the payload only: the padding up to the record span is ours to zero
    // (the record written to the lower tier covers it).
    std::byte* dst = opt_.host_base + ext.offset;
    const uint64_t need = RecordSpan(size);
    std::memset(dst + kRecordHeaderSize + size, 0, need - kRecordHeaderSize - size);
    if (opt_.host_checksums) sum = HostSum(ext, size);
  }
  std::unique_lock lk(mu_);
  if (!AdmitToHost(key, size, hints)) {
    host_.Free(ext);
    io_cv_.notify_all();
    return false;
  }
  InsertResident(key, fingerprint, size, ext, hints, sum);
  counters_.reservations_committed.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void PlacementCore::Abort(const Extent& ext) {
  std::lock_guard lk(mu_);
  host_.Free(ext);
  counters_.reservations_aborted.fetch_add(1, std::memory_order_relaxed);
  io_cv_.notify_all();
}

Result<std::vector<ObjectView>> PlacementCore::Get(NamespaceId ns, uint64_t fingerprint,
                                                   std::span<const BlockKey> keys,
                                                   FamilyMask families) {
  std::vector<ObjectView> views;
  std::vector<Entry*> to_load;
  std::vector<size_t> load_view;  // views index per to_load entry
  struct Check {
    size_t view;
    uint64_t id, sum;
  };
  std::vector<Check> verify;  // host copies to verify before they are served
  auto payload = [&](const Entry& e) -> const std::byte* {
    return opt_.host_base ? opt_.host_base + e.ext.offset + kRecordHeaderSize : nullptr;
  };
  std::unique_lock lk(mu_);
  const uint64_t now = opt_.clock->NowSeconds();
  for (const BlockKey& k : keys) {
    for (Family f : kAllFamilies) {
      if (!families.Has(f)) continue;
      counters_.gets.fetch_add(1, std::memory_order_relaxed);
      ObjectView v;
      v.key = ObjectKey{ns, k, f};
      for (;;) {
        Entry* e = Find(v.key, fingerprint);
        if (!e) break;
        if (e->loading) {
          io_cv_.wait(lk);  // another Get is loading it
          continue;
        }
        if (e->resident && e->host_bad) {  // changed after it was stored: a miss
          v.corrupt = true;
          break;
        }
        if (e->resident) {
          if (e->host_summed) verify.push_back({views.size(), e->id, e->host_sum});
          ++e->pins;
          ++e->hits;
          ++e->total_hits;
          e->last_access = now;
          if (e->tracked) eviction_->Touch(e->id);
          v.data = payload(*e);
          v.size = e->raw_size;
          v.served_from = Tier::kHost;
          v.pin = e->id;
          counters_.get_hits_host.fetch_add(1, std::memory_order_relaxed);
          MaybeShare(*e);
          break;
        }
        if (!e->on_nvme) break;
        const uint64_t id = e->id;
        auto ext = MakeRoom(lk, RecordSpan(e->raw_size), ns);  // may release the lock
        Entry* again = Find(v.key, fingerprint);
        if (!ext.ok()) {
          // No room in the host tier (everything pinned): this object is a miss.
          spdlog::warn("strata: get: {}", ext.status().ToString());
          break;
        }
        if (again != e || e->id != id || e->resident || e->loading || !e->on_nvme) {
          host_.Free(*ext);
          continue;  // the world changed while unlocked: look again
        }
        e->ext = *ext;
        e->loading = true;
        ++e->pins;
        ++e->hits;
        ++e->total_hits;
        e->last_access = now;
        log_->AddReader(e->nv.offset);
        to_load.push_back(e);
        load_view.push_back(views.size());
        v.served_from = Tier::kNvme;
        v.pin = e->id;
        break;
      }
      if (!v.pin) counters_.get_misses.fetch_add(1, std::memory_order_relaxed);
      views.push_back(v);
    }
  }
  if (!to_load.empty()) {
    std::vector<Status> results(to_load.size());
    LoadRecords(lk, to_load, results);
    std::vector<ObjectKey> index_deletes;
    for (size_t i = 0; i < to_load.size(); ++i) {
      Entry* e = to_load[i];
      ObjectView& v = views[load_view[i]];
      log_->RemoveReader(e->nv.offset);
      e->loading = false;
      if (results[i].ok()) {
        Account(*e, -1);
        e->resident = true;
        Account(*e, +1);
        Track(*e);
        if (opt_.host_checksums) {  // verified by the record's checksum just now
          e->host_summed = true;
          e->host_sum = HostSum(e->ext, e->raw_size);
        }
        Log(DecisionKind::kPromote, Tier::kNvme, Tier::kHost, *e, e->raw_size);
        MaybeShare(*e);
        v.data = payload(*e);
        v.size = e->raw_size;
        counters_.get_hits_nvme.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      // Unreadable or corrupt: a miss. A corrupt record is counted and removed; after an I/O
      // error the record stays (the next Get tries again).
      const bool corrupt = results[i].IsCorruption();
      (corrupt ? counters_.corrupt_records : counters_.nvme_read_errors)
          .fetch_add(1, std::memory_order_relaxed);
      counters_.get_misses.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("strata: NVMe record {}/{} {}: {}", e->key.block.ToHex(),
                   FamilyName(e->key.family), corrupt ? "dropped" : "unreadable",
                   results[i].ToString());
      if (corrupt) Log(DecisionKind::kCorrupt, Tier::kNvme, Tier::kNone, *e, e->raw_size);
      --e->pins;
      v.pin = 0;
      v.served_from = Tier::kNone;
      v.corrupt = corrupt;
      host_.Free(e->ext);
      if (!e->doomed && corrupt) DropNvmeCopy(*e, &index_deletes);
      if (e->doomed)
        FreeIfUnused(e);
      else
        EraseEntryIfEmpty(e);
    }
    if (!index_deletes.empty()) {
      Status s = opt_.index->Delete(index_deletes);
      if (!s.ok()) spdlog::warn("strata: index delete failed: {}", s.ToString());
    }
    io_cv_.notify_all();
  }
  if (!verify.empty()) {
    // Pinned, so the extents stay put while the lock is released for hashing.
    lk.unlock();
    std::vector<Check> bad;
    for (const Check& c : verify) {
      const ObjectView& v = views[c.view];
      if (PayloadChecksum({v.data, v.size}) != c.sum) bad.push_back(c);
    }
    lk.lock();
    for (const Check& c : bad) {
      ObjectView& v = views[c.view];
      Entry* e = ById(c.id);
      if (e) {
        --e->pins;
        if (!e->host_bad) DropCorruptHostCopy(e);
        FreeIfUnused(e);
      }
      counters_.get_hits_host.fetch_sub(1, std::memory_order_relaxed);
      counters_.get_misses.fetch_add(1, std::memory_order_relaxed);
      v = ObjectView{v.key};
      v.corrupt = true;
    }
    if (!bad.empty()) io_cv_.notify_all();
  }
  return views;
}

void PlacementCore::Release(std::span<const uint64_t> pins) {
  std::lock_guard lk(mu_);
  for (uint64_t pin : pins) {
    Entry* e = ById(pin);
    if (!e) continue;
    if (e->pins == 0) continue;
    if (--e->pins > 0) continue;
    if (e->doomed) FreeIfUnused(e);
  }
  io_cv_.notify_all();
}

Status PlacementCore::Delete(NamespaceId ns, const std::function<Status(uint64_t)>& before) {
  std::lock_guard lk(mu_);
  if (before) STRATA_RETURN_IF_ERROR(before(next_sequence_));
  std::vector<Entry*> victims;
  for (auto& [id, slot] : blocks_)
    if (id.ns == ns)
      for (auto& f : slot.fam)
        if (f) victims.push_back(f);
  for (Entry* e : victims) {
    if (e->on_nvme) DropNvmeCopy(*e, nullptr);
    Remove(e);
  }
  if (opt_.index) return opt_.index->DeleteNamespace(ns);
  return Status::Ok();
}

Result<uint64_t> PlacementCore::FlushWrites() {
  if (!opt_.lower) return Status::FailedPrecondition("Flush: the store has no NVMe tier");
  std::unique_lock lk(mu_);
  Status s;
  // A write may reclaim a segment and drop the NVMe record of an object whose DRAM copy then
  // waits to be written again (unpersisted_by_reclaim_): write those too, or this Flush would
  // acknowledge a store in which an object flushed before is not durable.
  constexpr int kMaxPasses = 16;
  int pass = 0;
  for (; pass < kMaxPasses; ++pass) {
    const uint64_t unpersisted = unpersisted_by_reclaim_;
    std::vector<Entry*> batch;
    for (auto& [id, slot] : blocks_)
      for (auto& f : slot.fam)
        if (f && f->dirty && f->resident && !f->writing && !f->host_bad) {
          f->writing = true;
          batch.push_back(f);
        }
    s = batch.empty() ? Status::Ok() : WriteRecords(lk, batch, WriteKind::kWriteBack);
    for (Entry* e : batch)
      if (e->doomed) FreeIfUnused(e);
    // Writes started by evictions before this call must land too.
    io_cv_.wait(lk, [&] { return writes_inflight_ == 0; });
    if (!s.ok() || unpersisted_by_reclaim_ == unpersisted) break;
  }
  const uint64_t durable = next_sequence_ - 1;
  lk.unlock();
  if (!s.ok()) return s.WithContext("flush");
  if (pass == kMaxPasses)
    return Status::NoSpace(
        "flush: segment reclaim kept dropping NVMe records of objects in DRAM; writing them again "
        "did not settle (the NVMe tier is too small for what is hot)");
  return durable;
}

StoreStats PlacementCore::Stats() const {
  std::lock_guard lk(mu_);
  StoreStats st = stats_;
  st[Tier::kHost].capacity = host_.capacity();
  st[Tier::kHost].used = host_.used();
  if (log_) {
    st[Tier::kNvme].capacity = log_->segment_bytes() * log_->segment_count();
    st[Tier::kNvme].used = log_->live_bytes();
  }
  return st;
}

StoreStats PlacementCore::RecountStats() const {
  StoreStats st = Stats();
  std::lock_guard lk(mu_);
  for (Tier t : {Tier::kHost, Tier::kNvme}) st[t].families = {};
  for (const auto& [id, slot] : blocks_)
    for (const auto& e : slot.fam) {
      if (!e) continue;
      const int f = int(e->key.family);
      if (e->resident) {
        st[Tier::kHost].families[f].objects++;
        st[Tier::kHost].families[f].bytes += e->raw_size;
      }
      if (e->on_nvme) {
        st[Tier::kNvme].families[f].objects++;
        st[Tier::kNvme].families[f].bytes += e->raw_size;
      }
    }
  return st;
}

void PlacementCore::VisitCounters(const CounterVisitor& visit) const {
  const PlacementCounters& c = counters_;
  auto v = [&](std::string_view name, const std::atomic<uint64_t>& a) {
    visit(name, a.load(std::memory_order_relaxed));
  };
  v("puts", c.puts);
  v("put_bytes", c.put_bytes);
  v("puts_rejected", c.puts_rejected);  // refused by the host tier's admission policy
  v("gets", c.gets);
  v("get_hits_host", c.get_hits_host);
  v("get_hits_nvme", c.get_hits_nvme);
  v("get_misses", c.get_misses);
  v("lookups", c.lookups);
  v("lookup_blocks_hit", c.lookup_blocks_hit);
  v("evictions_dropped", c.evictions_dropped);
  v("demotions", c.demotions);
  v("demote_errors", c.demote_errors);
  v("demotions_refused", c.demotions_refused);  // NVMe admission said no: dropped instead
  v("swa_thinned", c.swa_thinned);              // SWA objects demoted as checkpoints
  v("corrupt_records", c.corrupt_records);
  v("nvme_read_errors", c.nvme_read_errors);
  v("nvme_records_written", c.nvme_records_written);
  v("nvme_bytes_written", c.nvme_bytes_written);
  v("nvme_records_read", c.nvme_records_read);
  v("nvme_bytes_read", c.nvme_bytes_read);
  v("segments_reclaimed", c.segments_reclaimed);
  v("records_relocated", c.records_relocated);
  v("host_copies_corrupt", c.host_copies_corrupt);  // changed in the shared arena after Commit
  v("reservations", c.reservations);
  v("reservations_committed", c.reservations_committed);
  v("reservations_aborted", c.reservations_aborted);
  v("records_dropped_by_reclaim", c.records_dropped_by_reclaim);
  v("recovered_records", c.recovered_records);
  v("recovery_dropped", c.recovery_dropped);
  // Durable records whose NVMe copy a reclaim dropped, their DRAM copy left to be written again
  // (by the next Flush, which writes them before it returns, or an eviction): until then they
  // are not durable, as an evicted record is not.
  v("records_unpersisted_by_reclaim", c.records_unpersisted_by_reclaim);
}

}  // namespace strata::cachestore
