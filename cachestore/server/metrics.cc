#include "cachestore/server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <utility>
#include <vector>

namespace strata::server {

// --- Histogram -------------------------------------------------------------------------------

void Histogram::Observe(double seconds) {
  if (!(seconds > 0)) seconds = 0;  // negative and NaN durations count as 0
  // `le` buckets are inclusive: the first bound >= seconds, else +Inf.
  const auto it = std::lower_bound(kBounds.begin(), kBounds.end(), seconds);
  buckets_[it - kBounds.begin()].fetch_add(1, std::memory_order_relaxed);
  // Nanoseconds keep the sum an integer (atomic add without a CAS loop); capped so that an
  // absurd duration cannot wrap it.
  const double ns = std::min(seconds * 1e9, 1e18);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::llround(ns)), std::memory_order_relaxed);
}

std::array<uint64_t, Histogram::kBounds.size() + 1> Histogram::Cumulative() const {
  std::array<uint64_t, kBounds.size() + 1> out{};
  uint64_t acc = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

uint64_t Histogram::count() const { return Cumulative().back(); }

double Histogram::sum() const {
  return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
}

// --- MetricsRegistry -------------------------------------------------------------------------

TenantMetrics& MetricsRegistry::ForTenant(std::string_view tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& t : tenants_)
    if (t->tenant == tenant) return *t;
  tenants_.push_back(std::make_unique<TenantMetrics>(std::string(tenant)));
  return *tenants_.back();
}

namespace {

using Label = std::pair<std::string_view, std::string_view>;

// Label values may hold any UTF-8; the text format escapes backslash, double quote and newline.
void AppendEscaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

// Shortest round-trip digits, laid out as Go's strconv.FormatFloat(v, 'g', -1, 64) does (what
// the Prometheus client libraries print, so `le` values match theirs: "2.5e-05", "0.0005",
// "0.25", "10", "1e+06").
void AppendDouble(std::string& out, double v) {
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const char* e = std::find(buf, end, 'e');
  int exp = 0;
  if (e != end) std::from_chars(e + (e[1] == '+' ? 2 : 1), end, exp);
  if (v != 0 && (exp < -4 || exp >= 6)) {
    out.append(buf, end);
    return;
  }
  auto [fend, fec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  out.append(buf, fend);
}

// Builds the exposition one metric family at a time: Family() writes # HELP and # TYPE, then
// every sample of that family follows before the next Family() (promtool rejects a family whose
// samples are split).
class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // constant strings without backslashes or newlines
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void Sample(std::string_view name, std::initializer_list<Label> labels, uint64_t v) {
    Head(name, labels);
    AppendUint(out_, v);
    out_ += '\n';
  }
  void SampleInt(std::string_view name, std::initializer_list<Label> labels, int64_t v) {
    Head(name, labels);
    AppendInt(out_, v);
    out_ += '\n';
  }
  void SampleDouble(std::string_view name, std::initializer_list<Label> labels, double v) {
    Head(name, labels);
    AppendDouble(out_, v);
    out_ += '\n';
  }
  std::string Take() { return std::move(out_); }

 private:
  void Head(std::string_view name, std::initializer_list<Label> labels) {
    out_ += name;
    if (labels.size() != 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        AppendEscaped(out_, v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
  }

  std::string out_;
};

uint64_t Load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }
int64_t Load(const std::atomic<int64_t>& a) { return a.load(std::memory_order_relaxed); }

// What is read once per tenant and render, so that every family sees the same store snapshot.
struct TenantSnapshot {
  const TenantMetrics* m = nullptr;
  const TenantView* view = nullptr;
  bool has_store = false;
  StoreStats stats;
  std::vector<std::pair<std::string, uint64_t>> counters;  // Store::VisitCounters, in order

  uint64_t Counter(std::string_view name) const {
    for (const auto& [n, v] : counters)
      if (n == name) return v;
    return 0;  // a store without that counter (e.g. no NVMe tier)
  }
  bool HasCounter(std::string_view name) const {
    for (const auto& [n, v] : counters)
      if (n == name) return true;
    return false;
  }
};

// a - b for counters read one after the other (b counts a subset of a), never below 0.
uint64_t Minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

// The verbs a request can name (wire::Verb values 1 .. kNumVerbs - 1), as their wire names.
std::string VerbLabel(int v) { return std::string(wire::VerbName(static_cast<wire::Verb>(v))); }

// Eviction reasons, from the placement core's counters (placement_core.h, PlacementCounters).
// They partition what left a tier to make room: demoted (host -> NVMe, still cached),
// demote_failed (the NVMe write failed, the host copy dropped), dropped (the last copy dropped
// from DRAM), nvme_refused (dropped because NVMe admission declined it), reclaimed (an NVMe
// record dropped when its segment was reclaimed).
struct EvictionReason {
  std::string_view reason;
  uint64_t (*value)(const TenantSnapshot&);
};
constexpr EvictionReason kEvictionReasons[] = {
    {"demoted",
     [](const TenantSnapshot& t) {
       return Minus(t.Counter("demotions"), t.Counter("demote_errors"));
     }},
    {"demote_failed", [](const TenantSnapshot& t) { return t.Counter("demote_errors"); }},
    // evictions_dropped also counts the refused demotions (DropForRoom counts both).
    {"dropped",
     [](const TenantSnapshot& t) {
       return Minus(t.Counter("evictions_dropped"), t.Counter("demotions_refused"));
     }},
    {"nvme_refused", [](const TenantSnapshot& t) { return t.Counter("demotions_refused"); }},
    {"reclaimed", [](const TenantSnapshot& t) { return t.Counter("records_dropped_by_reclaim"); }},
};

}  // namespace

std::string MetricsRegistry::RenderPrometheus(std::span<const TenantView> tenants) const {
  // One snapshot per tenant; a tenant named twice is rendered once (duplicate series would make
  // the whole exposition invalid).
  std::vector<TenantSnapshot> snaps;
  for (const TenantView& v : tenants) {
    if (!v.metrics) continue;
    bool dup = false;
    for (const auto& s : snaps) dup |= s.m->tenant == v.metrics->tenant;
    if (dup) continue;
    TenantSnapshot& s = snaps.emplace_back();
    s.m = v.metrics;
    s.view = &v;
    if (v.store) {
      s.has_store = true;
      s.stats = v.store->Stats();
      v.store->VisitCounters(
          [&](std::string_view n, uint64_t val) { s.counters.emplace_back(std::string(n), val); });
    }
  }

  std::vector<std::string> verbs(kNumVerbs);
  for (int v = 1; v < kNumVerbs; ++v) verbs[v] = VerbLabel(v);

  Exposition e;
  // Per tenant x family (x tier) traffic, counted by the server.
  e.Family("strata_get_hits_total", "counter",
           "GET items served, by state family and the tier they were in.");
  for (const auto& t : snaps)
    for (Family f : kAllFamilies)
      for (Tier tier : kAllTiers)
        e.Sample("strata_get_hits_total",
                 {{"tenant", t.m->tenant}, {"family", FamilyName(f)}, {"tier", TierName(tier)}},
                 Load(t.m->hits[int(f)][int(tier)]));
  e.Family("strata_get_misses_total", "counter",
           "GET items not served (not found or corrupt), by state family.");
  for (const auto& t : snaps)
    for (Family f : kAllFamilies)
      e.Sample("strata_get_misses_total", {{"tenant", t.m->tenant}, {"family", FamilyName(f)}},
               Load(t.m->misses[int(f)]));
  e.Family("strata_corrupt_total", "counter",
           "GET items that failed verification (dropped and counted as misses), by state family.");
  for (const auto& t : snaps)
    for (Family f : kAllFamilies)
      e.Sample("strata_corrupt_total", {{"tenant", t.m->tenant}, {"family", FamilyName(f)}},
               Load(t.m->corrupt[int(f)]));
  e.Family("strata_bytes_in_total", "counter", "Payload bytes committed, by state family.");
  for (const auto& t : snaps)
    for (Family f : kAllFamilies)
      e.Sample("strata_bytes_in_total", {{"tenant", t.m->tenant}, {"family", FamilyName(f)}},
               Load(t.m->bytes_in[int(f)]));
  e.Family("strata_bytes_out_total", "counter",
           "Payload bytes served by GET, by state family and the tier they were in.");
  for (const auto& t : snaps)
    for (Family f : kAllFamilies)
      for (Tier tier : kAllTiers)
        e.Sample("strata_bytes_out_total",
                 {{"tenant", t.m->tenant}, {"family", FamilyName(f)}, {"tier", TierName(tier)}},
                 Load(t.m->bytes_out[int(f)][int(tier)]));

  // Leases, reservations, connections.
  e.Family("strata_leases_total", "counter",
           "GET leases by event: granted, released by the client, expired, reclaimed when their "
           "connection ended.");
  for (const auto& t : snaps) {
    const TenantMetrics& m = *t.m;
    e.Sample("strata_leases_total", {{"tenant", m.tenant}, {"event", "granted"}},
             Load(m.leases_granted));
    e.Sample("strata_leases_total", {{"tenant", m.tenant}, {"event", "released"}},
             Load(m.leases_released));
    e.Sample("strata_leases_total", {{"tenant", m.tenant}, {"event", "expired"}},
             Load(m.leases_expired));
    e.Sample("strata_leases_total", {{"tenant", m.tenant}, {"event", "reclaimed"}},
             Load(m.leases_reclaimed));
  }
  e.Family("strata_leases_held", "gauge", "GET leases held now.");
  for (const auto& t : snaps)
    e.SampleInt("strata_leases_held", {{"tenant", t.m->tenant}}, Load(t.m->leases_held));
  e.Family("strata_reservations_total", "counter",
           "Arena reservations by event: reserved, committed, aborted, reclaimed when their "
           "connection ended.");
  for (const auto& t : snaps) {
    const TenantMetrics& m = *t.m;
    e.Sample("strata_reservations_total", {{"tenant", m.tenant}, {"event", "reserved"}},
             Load(m.reservations));
    e.Sample("strata_reservations_total", {{"tenant", m.tenant}, {"event", "committed"}},
             Load(m.commits));
    e.Sample("strata_reservations_total", {{"tenant", m.tenant}, {"event", "aborted"}},
             Load(m.aborts));
    e.Sample("strata_reservations_total", {{"tenant", m.tenant}, {"event", "reclaimed"}},
             Load(m.reservations_reclaimed));
  }
  e.Family("strata_reservations_held", "gauge",
           "Arena reservations neither committed nor aborted.");
  for (const auto& t : snaps)
    e.SampleInt("strata_reservations_held", {{"tenant", t.m->tenant}},
                Load(t.m->reservations_held));
  e.Family("strata_tenant_connections", "gauge", "Connections authenticated as the tenant.");
  for (const auto& t : snaps)
    e.SampleInt("strata_tenant_connections", {{"tenant", t.m->tenant}}, Load(t.m->connections));
  e.Family("strata_auth_failures_total", "counter", "Handshakes refused for the tenant's name.");
  for (const auto& t : snaps)
    e.Sample("strata_auth_failures_total", {{"tenant", t.m->tenant}}, Load(t.m->auth_failures));

  // Requests per verb. Counters for every verb (a stable set of series); the histogram only for
  // verbs that were timed, so an idle tenant adds 2 lines per verb, not 18.
  e.Family("strata_requests_total", "counter", "Request frames, by verb.");
  for (const auto& t : snaps)
    for (int v = 1; v < kNumVerbs; ++v)
      e.Sample("strata_requests_total", {{"tenant", t.m->tenant}, {"verb", verbs[v]}},
               Load(t.m->requests[v]));
  e.Family("strata_request_errors_total", "counter",
           "Request frames answered with a frame-level error status, by verb.");
  for (const auto& t : snaps)
    for (int v = 1; v < kNumVerbs; ++v)
      e.Sample("strata_request_errors_total", {{"tenant", t.m->tenant}, {"verb", verbs[v]}},
               Load(t.m->errors[v]));
  e.Family("strata_request_duration_seconds", "histogram",
           "Time from a request frame's arrival to its response being queued, by verb.");
  for (const auto& t : snaps) {
    for (int v = 1; v < kNumVerbs; ++v) {
      const Histogram& h = t.m->latency[v];
      const auto cum = h.Cumulative();
      if (cum.back() == 0) continue;
      std::string le;
      for (size_t i = 0; i < cum.size(); ++i) {
        le.clear();
        if (i < Histogram::kBounds.size()) {
          AppendDouble(le, Histogram::kBounds[i]);
        } else {
          le = "+Inf";
        }
        e.Sample("strata_request_duration_seconds_bucket",
                 {{"tenant", t.m->tenant}, {"verb", verbs[v]}, {"le", le}}, cum[i]);
      }
      e.SampleDouble("strata_request_duration_seconds_sum",
                     {{"tenant", t.m->tenant}, {"verb", verbs[v]}}, h.sum());
      // The +Inf bucket's count, so that _count and the buckets agree within one render.
      e.Sample("strata_request_duration_seconds_count",
               {{"tenant", t.m->tenant}, {"verb", verbs[v]}}, cum.back());
    }
  }

  // The tenant's store, read now (Store::Stats, Store::VisitCounters).
  e.Family("strata_occupancy_bytes", "gauge",
           "Payload bytes stored (uncompressed), by tier and state family.");
  for (const auto& t : snaps)
    if (t.has_store)
      for (Tier tier : kAllTiers)
        for (Family f : kAllFamilies)
          e.Sample("strata_occupancy_bytes",
                   {{"tenant", t.m->tenant}, {"tier", TierName(tier)}, {"family", FamilyName(f)}},
                   t.stats[tier].families[int(f)].bytes);
  e.Family("strata_objects", "gauge", "Objects stored, by tier and state family.");
  for (const auto& t : snaps)
    if (t.has_store)
      for (Tier tier : kAllTiers)
        for (Family f : kAllFamilies)
          e.Sample("strata_objects",
                   {{"tenant", t.m->tenant}, {"tier", TierName(tier)}, {"family", FamilyName(f)}},
                   t.stats[tier].families[int(f)].objects);
  e.Family("strata_tier_capacity_bytes", "gauge",
           "Size of the tier: the host arena, the NVMe segment files (0: no such tier).");
  for (const auto& t : snaps)
    if (t.has_store)
      for (Tier tier : kAllTiers)
        e.Sample("strata_tier_capacity_bytes", {{"tenant", t.m->tenant}, {"tier", TierName(tier)}},
                 t.stats[tier].capacity);
  e.Family("strata_tier_used_bytes", "gauge",
           "Bytes of the tier in use: host arena extents, NVMe segments holding live records.");
  for (const auto& t : snaps)
    if (t.has_store)
      for (Tier tier : kAllTiers)
        e.Sample("strata_tier_used_bytes", {{"tenant", t.m->tenant}, {"tier", TierName(tier)}},
                 t.stats[tier].used);
  e.Family("strata_quota_bytes", "gauge",
           "The tenant's quota per tier from the server config (0: no limit).");
  for (const auto& t : snaps) {
    e.Sample("strata_quota_bytes", {{"tenant", t.m->tenant}, {"tier", TierName(Tier::kHost)}},
             t.view->host_quota_bytes);
    e.Sample("strata_quota_bytes", {{"tenant", t.m->tenant}, {"tier", TierName(Tier::kNvme)}},
             t.view->nvme_quota_bytes);
  }
  e.Family("strata_evictions_total", "counter",
           "Objects that left a tier to make room, by reason: demoted (host to NVMe), "
           "demote_failed (NVMe write failed, dropped), dropped (last copy dropped from DRAM), "
           "nvme_refused (NVMe admission declined, dropped), reclaimed (NVMe record dropped by "
           "segment reclaim).");
  for (const auto& t : snaps)
    if (t.has_store)
      for (const EvictionReason& r : kEvictionReasons)
        e.Sample("strata_evictions_total", {{"tenant", t.m->tenant}, {"reason", r.reason}},
                 r.value(t));
  e.Family("strata_swa_thinned_total", "counter",
           "Full SWA objects written to NVMe as their block's checkpoint instead.");
  for (const auto& t : snaps)
    if (t.has_store)
      e.Sample("strata_swa_thinned_total", {{"tenant", t.m->tenant}}, t.Counter("swa_thinned"));
  e.Family(
      "strata_store_corrupt_records_total", "counter",
      "Objects the store found corrupt and dropped, by tier: host copies changed in the shared "
      "arena after Commit, NVMe records failing their checksum on read.");
  for (const auto& t : snaps) {
    if (!t.has_store) continue;
    e.Sample("strata_store_corrupt_records_total",
             {{"tenant", t.m->tenant}, {"tier", TierName(Tier::kHost)}},
             t.Counter("host_copies_corrupt"));
    e.Sample("strata_store_corrupt_records_total",
             {{"tenant", t.m->tenant}, {"tier", TierName(Tier::kNvme)}},
             t.Counter("corrupt_records"));
    if (t.HasCounter("cluster_corrupt"))
      e.Sample("strata_store_corrupt_records_total",
               {{"tenant", t.m->tenant}, {"tier", TierName(Tier::kCluster)}},
               t.Counter("cluster_corrupt"));
  }
  // The tier shared across nodes, for tenants whose store has one (TieredStore, ClusterTier).
  struct SharedSeries {
    const char* name;
    const char* type;
    const char* help;
    const char* counter;
  };
  constexpr SharedSeries kShared[] = {
      {"strata_cluster_uploads_total", "counter",
       "Objects the share policy uploaded to the cluster tier.", "shared_uploads"},
      {"strata_cluster_upload_errors_total", "counter",
       "Uploads to the cluster tier that failed (refused, unreachable, past the deadline).",
       "shared_upload_errors"},
      {"strata_cluster_upload_bytes_total", "counter",
       "Payload bytes uploaded to the cluster tier.", "cluster_put_bytes"},
      {"strata_cluster_fetched_total", "counter",
       "Objects read from the cluster tier into the host tier (verified).", "shared_fetched"},
      {"strata_cluster_fetched_bytes_total", "counter",
       "Payload bytes read from the cluster tier into the host tier.", "shared_fetched_bytes"},
      {"strata_cluster_misses_total", "counter",
       "Objects asked of the cluster tier and not served (absent, corrupt, timed out).",
       "cluster_misses"},
      {"strata_cluster_timeouts_total", "counter",
       "Cluster tier calls that ended at their deadline.", "cluster_timeouts"},
  };
  for (const SharedSeries& ss : kShared) {
    bool any = false;
    for (const auto& t : snaps) any |= t.HasCounter(ss.counter);
    if (!any) continue;
    e.Family(ss.name, ss.type, ss.help);
    for (const auto& t : snaps)
      if (t.HasCounter(ss.counter))
        e.Sample(ss.name, {{"tenant", t.m->tenant}}, t.Counter(ss.counter));
  }
  e.Family("strata_store_recovery_dropped_total", "counter",
           "NVMe records dropped at open because they did not verify.");
  for (const auto& t : snaps)
    if (t.has_store)
      e.Sample("strata_store_recovery_dropped_total", {{"tenant", t.m->tenant}},
               t.Counter("recovery_dropped"));
  e.Family("strata_store_puts_rejected_total", "counter",
           "Objects the host tier's admission policy declined.");
  for (const auto& t : snaps)
    if (t.has_store)
      e.Sample("strata_store_puts_rejected_total", {{"tenant", t.m->tenant}},
               t.Counter("puts_rejected"));
  e.Family("strata_nvme_read_bytes_total", "counter", "Record bytes read from the NVMe tier.");
  for (const auto& t : snaps)
    if (t.has_store)
      e.Sample("strata_nvme_read_bytes_total", {{"tenant", t.m->tenant}},
               t.Counter("nvme_bytes_read"));
  e.Family("strata_nvme_write_bytes_total", "counter", "Record bytes written to the NVMe tier.");
  for (const auto& t : snaps)
    if (t.has_store)
      e.Sample("strata_nvme_write_bytes_total", {{"tenant", t.m->tenant}},
               t.Counter("nvme_bytes_written"));
  e.Family("strata_nvme_read_errors_total", "counter", "Failed reads from the NVMe tier.");
  for (const auto& t : snaps)
    if (t.has_store)
      e.Sample("strata_nvme_read_errors_total", {{"tenant", t.m->tenant}},
               t.Counter("nvme_read_errors"));

  // Server-wide.
  e.Family("strata_connections", "gauge", "Open client connections, authenticated or not.");
  e.SampleInt("strata_connections", {}, Load(connections));
  e.Family("strata_frames_rejected_total", "counter",
           "Frames that could not be parsed (the connection was closed).");
  e.Sample("strata_frames_rejected_total", {}, Load(frames_rejected));
  e.Family("strata_handshakes_failed_total", "counter",
           "Handshakes refused before a tenant was known (version, unknown tenant, layout).");
  e.Sample("strata_handshakes_failed_total", {}, Load(handshakes_failed));
  return e.Take();
}

}  // namespace strata::server
