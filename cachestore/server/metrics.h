// strata-server's metrics: per tenant x family x tier counters, lease counts and latency
// histograms per verb, kept lock-free by the server's threads and rendered in the Prometheus
// text exposition format (version 0.0.4) for the HTTP endpoint, `strata stats` and `strata top`.
// Occupancy, evictions by reason and corrupt records are read from each tenant's store at render
// time (Store::Stats, Store::VisitCounters), so they are never out of step with the store.
// Thread safety: counting is lock-free and safe from any thread; ForTenant and Render may be
// called concurrently with counting.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "strata/store.h"
#include "strata/wire.h"

namespace strata::server {

inline constexpr int kNumVerbs = 14;  // indexed by wire::Verb value (0 unused)

// A latency histogram with fixed buckets (seconds, 5 us .. 10 s, roughly x2.5 apart).
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {
      5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 5e-2, 0.25, 1.0, 10.0};
  void Observe(double seconds);
  // Cumulative counts per bound (Prometheus `le` buckets), then +Inf; sum in seconds.
  std::array<uint64_t, kBounds.size() + 1> Cumulative() const;
  uint64_t count() const;
  double sum() const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

struct TenantMetrics {
  explicit TenantMetrics(std::string name) : tenant(std::move(name)) {}
  const std::string tenant;
  // GET items: served (by family and the tier they came from) and missed.
  std::array<std::array<std::atomic<uint64_t>, kNumTiers>, kNumFamilies> hits{};
  std::array<std::atomic<uint64_t>, kNumFamilies> misses{};
  std::array<std::atomic<uint64_t>, kNumFamilies> corrupt{};  // GET items found corrupt
  // Bytes committed (in) and served (out, by tier) per family.
  std::array<std::atomic<uint64_t>, kNumFamilies> bytes_in{};
  std::array<std::array<std::atomic<uint64_t>, kNumTiers>, kNumFamilies> bytes_out{};
  // Leases: granted, released by the client, expired, reclaimed when a connection ended; held
  // now. Reservations likewise.
  std::atomic<uint64_t> leases_granted{0}, leases_released{0}, leases_expired{0},
      leases_reclaimed{0};
  std::atomic<int64_t> leases_held{0};
  std::atomic<uint64_t> reservations{0}, commits{0}, aborts{0}, reservations_reclaimed{0};
  std::atomic<int64_t> reservations_held{0};
  std::atomic<int64_t> connections{0};
  std::atomic<uint64_t> auth_failures{0};
  // Per verb: requests, requests answered with a frame-level error, latency.
  std::array<std::atomic<uint64_t>, kNumVerbs> requests{}, errors{};
  std::array<Histogram, kNumVerbs> latency;
};

// What Render reads for one tenant besides its counters.
struct TenantView {
  const TenantMetrics* metrics = nullptr;
  const Store* store = nullptr;  // occupancy (Stats) and store counters (VisitCounters)
  uint64_t host_quota_bytes = 0;
  uint64_t nvme_quota_bytes = 0;
};

class MetricsRegistry {
 public:
  // The tenant's metrics, created on first use; the reference stays valid for the registry's
  // life.
  TenantMetrics& ForTenant(std::string_view tenant);
  // Server-wide counters (connections refused before a tenant was known, frames rejected).
  std::atomic<uint64_t> frames_rejected{0}, handshakes_failed{0};
  std::atomic<int64_t> connections{0};

  // The whole exposition: every series with # HELP and # TYPE lines, names prefixed `strata_`,
  // labels tenant, family, tier, verb, reason. Passes `promtool check metrics`.
  std::string RenderPrometheus(std::span<const TenantView> tenants) const;

 private:
  mutable std::mutex mu_;
  std::deque<std::unique_ptr<TenantMetrics>> tenants_;  // GUARDED_BY(mu_)
};

}  // namespace strata::server
