// The verbs after HELLO (connection.h): each decodes its body through wire::Decode*, calls the
// tenant's store, and answers with a status per frame or per item. Runs on the strand.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "cachestore/server/connection.h"

namespace strata::server {

namespace asio = boost::asio;
using wire::Verb;
using wire::WireStatus;

namespace {

bool KnownFamilies(uint8_t bits) { return (bits & ~FamilyMask::All().bits()) == 0; }

// The policy's families the tenant does not store (DESIGN.md, SWA policies): checkpoint keeps
// checkpoints but no full SWA; recompute keeps neither.
bool PolicyRefuses(wire::SwaPolicyWire p, Family f) {
  if (p == wire::SwaPolicyWire::kCheckpoint) return f == Family::kSwa;
  if (p == wire::SwaPolicyWire::kRecompute) return f == Family::kSwa || f == Family::kCheckpoint;
  return false;
}

}  // namespace

void Connection::OnLookup() {
  const uint64_t id = header_.request_id;
  auto r = wire::DecodeLookup(body_);
  if (!r.ok()) return FrameError(WireStatus::kFrame, r.status().message(), id, header_.opcode);
  if (r->fingerprint != fingerprint_) {
    wire::EncodeError(id, Verb::kLookup, {WireStatus::kInvalid, "fingerprint differs from HELLO's"},
                      out_);
    return Finish(Verb::kLookup, false);
  }
  if (!KnownFamilies(r->required)) {
    wire::EncodeError(id, Verb::kLookup, {WireStatus::kInvalid, "unknown family bits"}, out_);
    return Finish(Verb::kLookup, false);
  }
  auto res = tenant_->store->Lookup(r->ns, r->fingerprint, r->keys, FamilyMask(r->required));
  if (!res.ok()) {
    wire::EncodeError(id, Verb::kLookup, {ToWire(res.status()), res.status().message()}, out_);
    return Finish(Verb::kLookup, false);
  }
  wire::LookupResponse resp;
  resp.hit_blocks = uint32_t(res->hit_blocks);
  for (int t = 0; t < 5 && t < kNumTiers; ++t) resp.hit_bytes[t] = res->hit_bytes[t];
  resp.blocks.reserve(res->blocks.size());
  for (size_t b = 0; b < res->blocks.size(); ++b) {
    const BlockPresence& p = res->blocks[b];
    wire::BlockPresenceWire w;
    w.families = p.families.bits();
    for (int f = 0; f < kNumFamilies; ++f) w.tier[f] = uint8_t(p.tier[f]);
    resp.blocks.push_back(w);
    // The last hit block carrying a checkpoint restores blocks 0..b through it.
    if (b < res->hit_blocks && p.families.Has(Family::kCheckpoint))
      resp.best_checkpoint = uint32_t(b + 1);
  }
  wire::EncodeLookupResponse(id, resp, out_);
  Finish(Verb::kLookup, false);
}

void Connection::OnGet() {
  const uint64_t id = header_.request_id;
  auto r = wire::DecodeGet(body_);
  if (!r.ok()) return FrameError(WireStatus::kFrame, r.status().message(), id, header_.opcode);
  if (r->fingerprint != fingerprint_ || !KnownFamilies(r->families)) {
    wire::EncodeError(
        id, Verb::kGet,
        {WireStatus::kInvalid, r->fingerprint != fingerprint_ ? "fingerprint differs from HELLO's"
                                                              : "unknown family bits"},
        out_);
    return Finish(Verb::kGet, false);
  }
  cachestore::TieredStore& store = *tenant_->store;
  TenantMetrics& m = *tenant_->metrics;
  const FamilyMask fams(r->families);
  auto views = store.Get(r->ns, r->fingerprint, r->keys, fams);
  if (!views.ok()) {
    wire::EncodeError(id, Verb::kGet, {ToWire(views.status()), views.status().message()}, out_);
    return Finish(Verb::kGet, false);
  }
  const uint32_t lease_ms = r->lease_ms ? r->lease_ms : shared_.config->default_lease_ms;
  const Clock::time_point expiry =
      lease_ms ? Clock::now() + std::chrono::milliseconds(lease_ms) : Clock::time_point::max();
  const std::byte* base = store.arena_base();
  wire::GetResponse resp;
  resp.items.reserve(views->size());
  bool arm = false;
  std::vector<uint64_t> over_cap;  // pins of objects past max_leases_per_connection
  for (size_t i = 0; i < views->size(); ++i) {
    const ObjectView& v = (*views)[i];
    const int f = int(v.key.family);
    wire::GetItem item;
    item.family = uint8_t(f);
    if (v.found() && leases_.size() >= shared_.config->max_leases_per_connection) {
      item.status = WireStatus::kNoSpace;
      over_cap.push_back(v.pin);
      m.misses[f].fetch_add(1, std::memory_order_relaxed);
    } else if (v.found()) {
      item.status = WireStatus::kOk;
      item.tier = uint8_t(v.served_from);
      item.offset = uint64_t(v.data - base);
      item.size = v.size;
      item.lease = shared_.next_id.fetch_add(1, std::memory_order_relaxed);
      Lease lease{v.pin, expiries_.end()};
      if (lease_ms) {
        lease.expiry = expiries_.emplace(expiry, item.lease);
        arm |= expiry < timer_at_;
      }
      leases_.emplace(item.lease, lease);
      m.hits[f][int(v.served_from)].fetch_add(1, std::memory_order_relaxed);
      m.bytes_out[f][int(v.served_from)].fetch_add(v.size, std::memory_order_relaxed);
    } else {
      // The store tells a corrupt object (found, failed verification, dropped) from a miss.
      const bool was_present = v.corrupt;
      item.status = was_present ? WireStatus::kCorrupt : WireStatus::kNotFound;
      m.misses[f].fetch_add(1, std::memory_order_relaxed);
      if (was_present) m.corrupt[f].fetch_add(1, std::memory_order_relaxed);
    }
    resp.items.push_back(item);
  }
  uint64_t n_ok = 0;
  for (const auto& it : resp.items) n_ok += it.status == WireStatus::kOk;
  m.leases_granted.fetch_add(n_ok, std::memory_order_relaxed);
  m.leases_held.fetch_add(int64_t(n_ok), std::memory_order_relaxed);
  if (!over_cap.empty()) {
    store.Release(over_cap);
    spdlog::debug(
        "tenant {}: a connection holds {} leases (max_leases_per_connection): {} "
        "objects answered kNoSpace",
        tenant_->config.name, leases_.size(), over_cap.size());
  }
  if (arm) ArmLeaseTimer();
  wire::EncodeGetResponse(id, resp, out_);
  Finish(Verb::kGet, false);
}

void Connection::OnPrefetch() {
  const uint64_t id = header_.request_id;
  auto r = wire::DecodeGet(body_);
  if (!r.ok()) return FrameError(WireStatus::kFrame, r.status().message(), id, header_.opcode);
  if (r->fingerprint != fingerprint_ || !KnownFamilies(r->families)) {
    wire::EncodeError(
        id, Verb::kPrefetch,
        {WireStatus::kInvalid, r->fingerprint != fingerprint_ ? "fingerprint differs from HELLO's"
                                                              : "unknown family bits"},
        out_);
    return Finish(Verb::kPrefetch, false);
  }
  cachestore::TieredStore* store = tenant_->store;
  const FamilyMask fams(r->families);
  wire::StatusList resp;
  std::vector<BlockKey> pending;
  for (const BlockKey& key : r->keys) {
    auto p = store->Lookup(r->ns, r->fingerprint, std::span(&key, 1), FamilyMask{});
    bool load = false;
    for (Family f : kAllFamilies) {
      if (!fams.Has(f)) continue;
      WireStatus s = WireStatus::kNotFound;
      if (p.ok() && !p->blocks.empty() && p->blocks[0].families.Has(f)) {
        s = p->blocks[0].tier[int(f)] == Tier::kNvme ? WireStatus::kPending : WireStatus::kOk;
        load |= s == WireStatus::kPending;
      }
      resp.statuses.push_back(s);
    }
    if (load) pending.push_back(key);
  }
  if (!pending.empty()) {
    // Read into DRAM on the pool and drop the pins at once: a later GET finds the objects there.
    asio::post(*shared_.blocking,
               [store, ns = r->ns, fp = r->fingerprint, fams, keys = std::move(pending)] {
                 auto views = store->Get(ns, fp, keys, fams);
                 if (!views.ok()) return;
                 std::vector<uint64_t> pins;
                 for (const ObjectView& v : *views)
                   if (v.pin) pins.push_back(v.pin);
                 store->Release(pins);
               });
  }
  wire::EncodeStatusList(id, Verb::kPrefetch, resp, out_);
  Finish(Verb::kPrefetch, false);
}

std::optional<WireStatus> Connection::RefuseNewObject(const wire::ReserveItem& it) const {
  if (it.family >= kNumFamilies) return WireStatus::kInvalid;
  if (PolicyRefuses(tenant_->config.swa_policy, Family(it.family))) return WireStatus::kNotAdmitted;
  return std::nullopt;
}

Result<cachestore::TieredStore::Reservation> Connection::ReserveInStore(
    const wire::ReserveItem& it) {
  PutHints hints;
  hints.depth = it.depth;
  hints.has_parent = it.has_parent;
  hints.parent = it.parent;
  hints.value_per_byte = it.value_per_byte;
  return tenant_->store->Reserve(ObjectKey{it.ns, it.key, Family(it.family)}, it.fingerprint,
                                 it.size, hints);
}

void Connection::RefuseFingerprint(Verb verb) {
  wire::EncodeError(header_.request_id, verb,
                    {WireStatus::kInvalid, "fingerprint differs from HELLO's"}, out_);
  Finish(verb, false);
}

WireStatus Connection::CommitToStore(const cachestore::TieredStore::Reservation& res) {
  TenantMetrics& m = *tenant_->metrics;
  auto c = tenant_->store->Commit(res);
  if (!c.ok()) return ToWire(c.status());
  if (!*c) return WireStatus::kNotAdmitted;
  m.commits.fetch_add(1, std::memory_order_relaxed);
  m.bytes_in[int(res.key.family)].fetch_add(res.size, std::memory_order_relaxed);
  return WireStatus::kOk;
}

void Connection::OnReserve() {
  const uint64_t id = header_.request_id;
  auto r = wire::DecodeReserve(body_);
  if (!r.ok()) return FrameError(WireStatus::kFrame, r.status().message(), id, header_.opcode);
  if (std::ranges::any_of(r->items, [&](const auto& it) { return it.fingerprint != fingerprint_; }))
    return RefuseFingerprint(Verb::kReserve);
  TenantMetrics& m = *tenant_->metrics;
  wire::ReserveResponse resp;
  resp.items.reserve(r->items.size());
  for (const wire::ReserveItem& it : r->items) {
    wire::ReserveResult out;
    if (auto refused = RefuseNewObject(it)) {
      out.status = *refused;
    } else {
      auto res = ReserveInStore(it);
      std::optional<cachestore::Extent> staged;
      if (res.ok() && staging_) {
        staged = staging_->Allocate(std::max<uint64_t>(it.size, 1));
        if (!staged && !cooling_.empty()) {  // room before alternation
          ReleaseCooling();
          staged = staging_->Allocate(std::max<uint64_t>(it.size, 1));
        }
        if (!staged) {
          tenant_->store->Abort(*res);
          res = Status::ResourceExhausted("the connection's staging region is full");
        }
      } else if (res.ok() && tenant_->store->arena_sealed()) {
        tenant_->store->Abort(*res);  // a read-only client has nowhere to write
        res = Status::InvalidArgument("a read-only connection cannot reserve");
      }
      if (res.ok()) {
        out.status = WireStatus::kOk;
        out.offset = staged ? staged->offset : res->payload_offset;
        out.reservation = shared_.next_id.fetch_add(1, std::memory_order_relaxed);
        reservations_.emplace(out.reservation, Reserved{std::move(*res), staged});
        m.reservations.fetch_add(1, std::memory_order_relaxed);
        m.reservations_held.fetch_add(1, std::memory_order_relaxed);
      } else {
        out.status = ToWire(res.status());
      }
    }
    resp.items.push_back(out);
  }
  wire::EncodeReserveResponse(id, resp, out_);
  Finish(Verb::kReserve, false);
}

void Connection::OnIds(Verb verb) {
  const uint64_t id = header_.request_id;
  auto r = wire::DecodeIds(body_);
  if (!r.ok()) return FrameError(WireStatus::kFrame, r.status().message(), id, header_.opcode);
  cachestore::TieredStore& store = *tenant_->store;
  TenantMetrics& m = *tenant_->metrics;
  wire::StatusList resp;
  resp.statuses.reserve(r->ids.size());
  std::vector<uint64_t> pins;
  if (verb == Verb::kCommit) ReleaseCooling();  // what this COMMIT reads cools instead
  for (uint64_t x : r->ids) {
    WireStatus s = WireStatus::kNotYours;
    if (verb == Verb::kRelease) {
      if (auto it = leases_.find(x); it != leases_.end()) {
        pins.push_back(it->second.pin);
        if (it->second.expiry != expiries_.end()) expiries_.erase(it->second.expiry);
        leases_.erase(it);
        s = WireStatus::kOk;
      } else if (expired_.erase(x)) {
        s = WireStatus::kExpired;
      }
    } else if (auto it = reservations_.find(x); it != reservations_.end()) {
      const Reserved r = std::move(it->second);
      const cachestore::TieredStore::Reservation& res = r.res;
      reservations_.erase(it);
      m.reservations_held.fetch_sub(1, std::memory_order_relaxed);
      if (r.staged) {
        // The one copy of a staged write: from then on no client can reach these bytes.
        if (verb == Verb::kCommit) {
          store.CopyIntoReservation(res, staging_->base() + r.staged->offset);
          cooling_.push_back(*r.staged);
        } else {
          staging_->Free(*r.staged);
        }
      }
      if (verb == Verb::kAbort) {
        store.Abort(res);
        m.aborts.fetch_add(1, std::memory_order_relaxed);
        s = WireStatus::kOk;
      } else {
        s = CommitToStore(res);
      }
    }
    resp.statuses.push_back(s);
  }
  if (!pins.empty()) {
    store.Release(pins);
    m.leases_released.fetch_add(pins.size(), std::memory_order_relaxed);
    m.leases_held.fetch_sub(int64_t(pins.size()), std::memory_order_relaxed);
  }
  if (verb == Verb::kCommit) {
    uint64_t cooled = 0;
    for (const cachestore::Extent& e : cooling_) cooled += e.size;
    if (cooled > wire::kStagingAlternateMaxBytes) ReleaseCooling();  // the next batch goes here
  }
  wire::EncodeStatusList(id, verb, resp, out_);
  Finish(verb, false);
}

void Connection::OnPut() {
  const uint64_t id = header_.request_id;
  auto r = wire::DecodePut(body_);
  if (!r.ok()) return FrameError(WireStatus::kFrame, r.status().message(), id, header_.opcode);
  if (!staging_) {
    wire::EncodeError(id, Verb::kPut,
                      {WireStatus::kInvalid,
                       "PUT needs the connection's staging region "
                       "(kCapPut: a staged tenant, a writing client)"},
                      out_);
    return Finish(Verb::kPut, false);
  }
  if (std::ranges::any_of(r->items,
                          [&](const auto& p) { return p.item.fingerprint != fingerprint_; }))
    return RefuseFingerprint(Verb::kPut);
  // Where this connection's reservations are being written: a PUT may not read from there.
  std::vector<std::pair<uint64_t, uint64_t>> held;  // [begin, end), sorted
  for (const auto& [rid, r] : reservations_)
    if (r.staged && r.res.size > 0)
      held.emplace_back(r.staged->offset, r.staged->offset + r.res.size);
  std::sort(held.begin(), held.end());
  auto overlaps_held = [&](uint64_t begin, uint64_t end) {
    auto it = std::lower_bound(held.begin(), held.end(), std::make_pair(end, uint64_t(0)));
    return it != held.begin() && std::prev(it)->second > begin;  // the last one starting < end
  };
  const uint64_t cap = staging_->capacity();
  wire::StatusList resp;
  resp.statuses.reserve(r->items.size());
  for (const wire::PutItem& p : r->items) {
    const wire::ReserveItem& it = p.item;
    if (auto refused = RefuseNewObject(it)) {
      resp.statuses.push_back(*refused);
      continue;
    }
    if (p.offset > cap || it.size > cap - p.offset ||
        (it.size > 0 && overlaps_held(p.offset, p.offset + it.size))) {
      resp.statuses.push_back(WireStatus::kInvalid);
      continue;
    }
    auto res = ReserveInStore(it);
    if (!res.ok()) {
      resp.statuses.push_back(ToWire(res.status()));
      continue;
    }
    // The one copy: from here on no client can reach the stored bytes.
    tenant_->store->CopyIntoReservation(*res, staging_->base() + p.offset);
    resp.statuses.push_back(CommitToStore(*res));
  }
  wire::EncodeStatusList(id, Verb::kPut, resp, out_);
  Finish(Verb::kPut, false);
}

void Connection::ReleaseCooling() {
  for (const cachestore::Extent& e : cooling_) staging_->Free(e);
  cooling_.clear();
}

void Connection::Blocking(Verb verb, std::function<Status()> work) {
  asio::post(*shared_.blocking, [self = shared_from_this(), verb, work = std::move(work)] {
    Status s = work();
    asio::post(self->socket_.get_executor(), [self, verb, s] {
      if (self->closed_) return;
      self->out_.clear();
      if (s.ok())
        wire::EncodeOkEmpty(self->header_.request_id, verb, self->out_);
      else
        wire::EncodeError(self->header_.request_id, verb, {ToWire(s), s.message()}, self->out_);
      self->Finish(verb, false);
    });
  });
}

void Connection::OnDelete() {
  auto r = wire::DecodeDelete(body_);
  if (!r.ok())
    return FrameError(WireStatus::kFrame, r.status().message(), header_.request_id, header_.opcode);
  Blocking(Verb::kDelete, [store = tenant_->store, ns = r->ns] { return store->Delete(ns); });
}

void Connection::OnFlush() {
  Status s = wire::DecodeEmpty(body_);
  if (!s.ok())
    return FrameError(WireStatus::kFrame, s.message(), header_.request_id, header_.opcode);
  Blocking(Verb::kFlush, [store = tenant_->store] { return store->Flush(); });
}

void Connection::OnStats() {
  Status s = wire::DecodeEmpty(body_);
  if (!s.ok())
    return FrameError(WireStatus::kFrame, s.message(), header_.request_id, header_.opcode);
  wire::StatsResponse resp;
  auto add = [&](std::string name, uint64_t v) { resp.counters.emplace_back(std::move(name), v); };
  const cachestore::TieredStore& store = *tenant_->store;
  store.VisitCounters([&](std::string_view name, uint64_t v) { add(std::string(name), v); });
  const StoreStats st = store.Stats();
  for (Tier t : {Tier::kHost, Tier::kNvme}) {
    const std::string tier(TierName(t));
    add(tier + ".capacity", st[t].capacity);
    add(tier + ".used", st[t].used);
    for (Family f : kAllFamilies) {
      const std::string prefix = tier + "." + std::string(FamilyName(f));
      add(prefix + ".objects", st[t].families[int(f)].objects);
      add(prefix + ".bytes", st[t].families[int(f)].bytes);
    }
  }
  const TenantMetrics& m = *tenant_->metrics;
  auto load = [](const auto& a) { return uint64_t(a.load(std::memory_order_relaxed)); };
  uint64_t hits = 0, misses = 0, corrupt = 0, bytes_in = 0, bytes_out = 0;
  for (int f = 0; f < kNumFamilies; ++f) {
    for (int t = 0; t < kNumTiers; ++t) {
      hits += load(m.hits[f][t]);
      bytes_out += load(m.bytes_out[f][t]);
    }
    misses += load(m.misses[f]);
    corrupt += load(m.corrupt[f]);
    bytes_in += load(m.bytes_in[f]);
  }
  add("server.bytes_in", bytes_in);    // committed by this tenant's clients
  add("server.bytes_out", bytes_out);  // served by GET
  add("server.hits", hits);
  add("server.misses", misses);
  add("server.corrupt", corrupt);
  add("server.leases_granted", load(m.leases_granted));
  add("server.leases_released", load(m.leases_released));
  add("server.leases_expired", load(m.leases_expired));
  add("server.leases_reclaimed", load(m.leases_reclaimed));
  add("server.leases_held", uint64_t(std::max<int64_t>(0, m.leases_held.load())));
  add("server.reservations", load(m.reservations));
  add("server.commits", load(m.commits));  // through COMMIT and PUT
  add("server.put_frames", load(m.requests[int(Verb::kPut)]));
  add("server.aborts", load(m.aborts));
  add("server.reservations_reclaimed", load(m.reservations_reclaimed));
  add("server.reservations_held", uint64_t(std::max<int64_t>(0, m.reservations_held.load())));
  add("server.connections", uint64_t(std::max<int64_t>(0, m.connections.load())));
  add("connection.leases_held", leases_.size());
  add("connection.reservations_held", reservations_.size());
  add("connection.staging_bytes", staging_ ? staging_->capacity() : 0);
  add("connection.staging_used", staging_ ? staging_->used() : 0);
  wire::EncodeStatsResponse(header_.request_id, resp, out_);
  Finish(Verb::kStats, false);
}

// ---- lease expiry ----

void Connection::ArmLeaseTimer() {
  if (expiries_.empty()) {
    timer_at_ = Clock::time_point::max();
    return;
  }
  timer_at_ = expiries_.begin()->first;
  lease_timer_.expires_at(timer_at_);
  lease_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->closed_) return;  // re-armed (cancelled) or closed
    self->ExpireLeases();
  });
}

void Connection::ExpireLeases() {
  const Clock::time_point now = Clock::now();
  std::vector<uint64_t> pins;
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    const uint64_t id = expiries_.begin()->second;
    expiries_.erase(expiries_.begin());
    auto it = leases_.find(id);
    if (it == leases_.end()) continue;
    pins.push_back(it->second.pin);
    leases_.erase(it);
    // Remembered so that a late RELEASE is told kExpired; bounded against a client that never
    // releases anything.
    if (expired_.size() > (1u << 20)) expired_.clear();
    expired_.insert(id);
  }
  if (!pins.empty()) {
    tenant_->store->Release(pins);
    tenant_->metrics->leases_expired.fetch_add(pins.size(), std::memory_order_relaxed);
    tenant_->metrics->leases_held.fetch_sub(int64_t(pins.size()), std::memory_order_relaxed);
  }
  ArmLeaseTimer();
}

}  // namespace strata::server
