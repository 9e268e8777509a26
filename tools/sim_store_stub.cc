// TEMPORARY: a stand-in for the simulator (cachestore/sim/sim_store.h) so `strata compare` can
// be developed before the real SimStore, which runs the store's placement core, lands. It keeps
// sizes in a map, evicts by the configured eviction policy (cachestore/placement) per tier, and
// demotes host victims to NVMe (when the NVMe tier is on) or drops them. It has no segment log,
// no thinning, no admission policy, no chain awareness and no device tier. The lead deletes this
// file (and its line in tools/CMakeLists.txt) when the real SimStore is merged.
#include <unordered_map>

#include "cachestore/placement/eviction_policy.h"
#include "cachestore/sim/sim_store.h"

namespace strata::cachestore {

struct SimStore::Impl {
  struct Obj {
    ObjectKey key;
    uint64_t fp = 0, size = 0, id = 0;
    Tier tier = Tier::kNone;
    uint32_t pins = 0;
  };
  SimConfig config;
  DecisionLog* log = nullptr;
  uint64_t now = 0, next_id = 1, next_pin = 1;
  std::unordered_map<ObjectKey, Obj, ObjectKeyHash> objects;
  std::unordered_map<uint64_t, ObjectKey> by_id;
  std::unordered_map<uint64_t, uint64_t> pin_to_id;
  std::unique_ptr<EvictionPolicy> host_policy, nvme_policy;
  uint64_t host_used = 0, nvme_used = 0;
  StoreStats stats;  // kept up to date on every move
  void Count(const Obj& o, Tier t, int sign) {
    if (t == Tier::kNone) return;
    auto& f = stats[t].families[size_t(o.key.family)];
    f.objects += uint64_t(int64_t(sign));
    f.bytes += uint64_t(int64_t(sign) * int64_t(o.size));
  }
  std::array<double, kNumTiers> io{};
  uint64_t puts = 0, hits_host = 0, hits_nvme = 0, misses = 0, demotions = 0, nvme_written = 0,
           nvme_read = 0, dropped = 0, promotions = 0;

  bool nvme_on() const { return !config.store.nvme.data_dir.empty(); }
  void Log(DecisionKind k, Tier t, Tier to, const Obj& o) {
    if (log) log->Add(Decision{k, t, to, o.key, o.size, 0});
  }
  void Charge(Tier t, uint64_t bytes, bool write) {
    const TierTiming& tt = config.timing[size_t(t)];
    const double bw = write ? tt.write_bytes_per_s : tt.read_bytes_per_s;
    if (bw > 0) io[size_t(t)] += tt.latency_s + double(bytes) / bw;
  }
  void Erase(Obj& o) {
    Count(o, o.tier, -1);
    if (o.tier == Tier::kHost) {
      host_policy->Untrack(o.id);
      host_used -= o.size;
    } else if (o.tier == Tier::kNvme) {
      nvme_policy->Untrack(o.id);
      nvme_used -= o.size;
    }
    by_id.erase(o.id);
    objects.erase(o.key);
  }
  // Makes `bytes` free in NVMe by evicting its victims; false when pinned objects block it.
  bool RoomNvme(uint64_t bytes) {
    const uint64_t cap = config.store.nvme.capacity_bytes;
    if (bytes > cap) return false;
    size_t skips = 0;
    while (nvme_used + bytes > cap) {
      auto v = nvme_policy->Victim();
      if (!v) return false;
      Obj& o = objects.at(by_id.at(*v));
      if (o.pins) {
        nvme_policy->Skip(*v);
        if (++skips > nvme_policy->size()) return false;
        continue;
      }
      Log(DecisionKind::kEvict, Tier::kNvme, Tier::kNone, o);
      ++dropped;
      Erase(o);
    }
    return true;
  }
  bool RoomHost(uint64_t bytes) {
    const uint64_t cap = config.store.host.capacity_bytes;
    if (bytes > cap) return false;
    size_t skips = 0;
    while (host_used + bytes > cap) {
      auto v = host_policy->Victim();
      if (!v) return false;
      Obj& o = objects.at(by_id.at(*v));
      if (o.pins) {
        host_policy->Skip(*v);
        if (++skips > host_policy->size()) return false;
        continue;
      }
      host_policy->Untrack(o.id);
      host_used -= o.size;
      Count(o, Tier::kHost, -1);
      if (nvme_on() && RoomNvme(o.size)) {
        Log(DecisionKind::kDemote, Tier::kHost, Tier::kNvme, o);
        ++demotions;
        nvme_written += o.size;
        Charge(Tier::kNvme, o.size, true);
        o.tier = Tier::kNvme;
        Count(o, Tier::kNvme, 1);
        nvme_used += o.size;
        nvme_policy->Track(o.id, ObjectFacts{o.size, o.key.family, 0, 0, 0});
      } else {
        Log(DecisionKind::kEvict, Tier::kHost, Tier::kNone, o);
        ++dropped;
        o.tier = Tier::kNone;
        Erase(o);
      }
    }
    return true;
  }
};

Result<std::unique_ptr<SimStore>> SimStore::Open(const SimConfig& config, DecisionLog* log) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->log = log;
  STRATA_ASSIGN_OR_RETURN(impl->host_policy, MakeEvictionPolicy(config.store.host.eviction));
  STRATA_ASSIGN_OR_RETURN(impl->nvme_policy, MakeEvictionPolicy(config.store.host.eviction));
  return std::unique_ptr<SimStore>(new SimStore(std::move(impl)));
}

SimStore::SimStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimStore::~SimStore() = default;
void SimStore::SetTime(uint64_t micros) { impl_->now = micros; }
uint64_t SimStore::time() const { return impl_->now; }

Result<LookupResult> SimStore::Lookup(NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys,
                                      FamilyMask required) {
  LookupResult r;
  bool hitting = true;
  for (const BlockKey& k : keys) {
    BlockPresence p;
    for (Family f : kAllFamilies) {
      auto it = impl_->objects.find(ObjectKey{ns, k, f});
      if (it == impl_->objects.end() || it->second.fp != fp) continue;
      p.families.Add(f);
      p.tier[size_t(f)] = it->second.tier;
      (it->second.tier == Tier::kHost ? impl_->host_policy : impl_->nvme_policy)
          ->Touch(it->second.id);
    }
    r.blocks.push_back(p);
    if (!p.families.Contains(required)) break;
    if (hitting) ++r.hit_blocks;
  }
  return r;
}

Status SimStore::Put(const ObjectKey& key, uint64_t fp, uint64_t bytes, const PutHints& hints) {
  Impl& m = *impl_;
  auto it = m.objects.find(key);
  if (it != m.objects.end()) {
    if (it->second.pins) return Status::Ok();  // a pinned object stays as it is
    m.Erase(it->second);
  }
  if (!m.RoomHost(bytes)) return Status::ResourceExhausted("sim stub: host tier full");
  Impl::Obj o{key, fp, bytes, m.next_id++, Tier::kHost, 0};
  m.host_used += bytes;
  m.host_policy->Track(o.id, ObjectFacts{bytes, key.family, hints.depth, 0, hints.value_per_byte});
  m.by_id[o.id] = key;
  m.Log(DecisionKind::kAdmit, Tier::kHost, Tier::kNone, o);
  m.Count(o, Tier::kHost, 1);
  m.objects.emplace(key, o);
  m.Charge(Tier::kHost, bytes, true);
  ++m.puts;
  return Status::Ok();
}

Result<std::vector<SimObject>> SimStore::Get(NamespaceId ns, uint64_t fp,
                                             std::span<const BlockKey> keys, FamilyMask families) {
  Impl& m = *impl_;
  std::vector<SimObject> out;
  for (const BlockKey& k : keys)
    for (Family f : kAllFamilies) {
      if (!families.Has(f)) continue;
      SimObject so;
      so.key = ObjectKey{ns, k, f};
      auto it = m.objects.find(so.key);
      if (it == m.objects.end() || it->second.fp != fp) {
        ++m.misses;
        out.push_back(so);
        continue;
      }
      Impl::Obj& o = it->second;
      so.size = o.size;
      so.served_from = o.tier;
      m.Charge(o.tier, o.size, false);
      if (o.tier == Tier::kHost) {
        ++m.hits_host;
        m.host_policy->Touch(o.id);
      } else {
        ++m.hits_nvme;
        m.nvme_read += o.size;
        // Promote: the real store reads NVMe objects into the host arena.
        o.pins++;  // keep it from being chosen while making room
        const bool room = m.RoomHost(o.size);
        o.pins--;
        if (room) {
          m.nvme_policy->Untrack(o.id);
          m.nvme_used -= o.size;
          m.Count(o, Tier::kNvme, -1);
          m.Count(o, Tier::kHost, 1);
          m.Log(DecisionKind::kPromote, Tier::kNvme, Tier::kHost, o);
          ++m.promotions;
          o.tier = Tier::kHost;
          m.host_used += o.size;
          m.host_policy->Track(o.id, ObjectFacts{o.size, f, 0, 1, 0});
        } else {
          m.nvme_policy->Touch(o.id);
        }
      }
      o.pins++;
      so.pin = m.next_pin++;
      m.pin_to_id[so.pin] = o.id;
      out.push_back(so);
    }
  return out;
}

void SimStore::Release(std::span<const uint64_t> pins) {
  for (uint64_t p : pins) {
    auto it = impl_->pin_to_id.find(p);
    if (it == impl_->pin_to_id.end()) continue;
    auto k = impl_->by_id.find(it->second);
    if (k != impl_->by_id.end()) impl_->objects.at(k->second).pins--;
    impl_->pin_to_id.erase(it);
  }
}

Status SimStore::Delete(NamespaceId ns) {
  std::vector<ObjectKey> gone;
  for (auto& [k, o] : impl_->objects)
    if (k.ns == ns) gone.push_back(k);
  for (const ObjectKey& k : gone) impl_->Erase(impl_->objects.at(k));
  return Status::Ok();
}

Status SimStore::Flush() {
  if (!impl_->nvme_on()) return Status::FailedPrecondition("sim stub: no NVMe tier");
  return Status::Ok();
}

StoreStats SimStore::Stats() const {
  StoreStats s = impl_->stats;
  s[Tier::kHost].capacity = impl_->config.store.host.capacity_bytes;
  s[Tier::kHost].used = impl_->host_used;
  if (impl_->nvme_on()) {
    s[Tier::kNvme].capacity = impl_->config.store.nvme.capacity_bytes;
    s[Tier::kNvme].used = impl_->nvme_used;
  }
  return s;
}

void SimStore::VisitCounters(const CounterVisitor& visit) const {
  const Impl& m = *impl_;
  visit("puts", m.puts);
  visit("get_hits_host", m.hits_host);
  visit("get_hits_nvme", m.hits_nvme);
  visit("get_misses", m.misses);
  visit("demotions", m.demotions);
  visit("promotions", m.promotions);
  visit("nvme_bytes_written", m.nvme_written);
  visit("nvme_bytes_read", m.nvme_read);
  visit("evictions_dropped", m.dropped);
}

std::array<double, kNumTiers> SimStore::TakeIoSeconds() {
  auto r = impl_->io;
  impl_->io = {};
  return r;
}

}  // namespace strata::cachestore
