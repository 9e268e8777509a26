// A minimal implementation of metrics.h so the server links; the metrics work (Prometheus
// rendering with every required series, the HTTP endpoint) replaces this file.
#include "cachestore/server/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace strata::server {

void Histogram::Observe(double seconds) {
  const auto it = std::lower_bound(kBounds.begin(), kBounds.end(), seconds);
  buckets_[size_t(it - kBounds.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(uint64_t(std::max(0.0, seconds) * 1e9), std::memory_order_relaxed);
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
double Histogram::sum() const { return double(sum_ns_.load(std::memory_order_relaxed)) * 1e-9; }

TenantMetrics& MetricsRegistry::ForTenant(std::string_view tenant) {
  std::lock_guard lk(mu_);
  for (auto& t : tenants_)
    if (t->tenant == tenant) return *t;
  tenants_.push_back(std::make_unique<TenantMetrics>(std::string(tenant)));
  return *tenants_.back();
}

std::string MetricsRegistry::RenderPrometheus(std::span<const TenantView> tenants) const {
  std::string out;
  out += "# HELP strata_connections Open client connections.\n# TYPE strata_connections gauge\n";
  out += fmt::format("strata_connections {}\n", connections.load());
  out += "# HELP strata_hits_total GET items served.\n# TYPE strata_hits_total counter\n";
  for (const TenantView& v : tenants)
    for (Family f : kAllFamilies)
      for (Tier t : kAllTiers)
        out += fmt::format("strata_hits_total{{tenant=\"{}\",family=\"{}\",tier=\"{}\"}} {}\n",
                           v.metrics->tenant, FamilyName(f), TierName(t),
                           v.metrics->hits[int(f)][int(t)].load());
  out += "# HELP strata_leases_held Leases held now.\n# TYPE strata_leases_held gauge\n";
  for (const TenantView& v : tenants)
    out += fmt::format("strata_leases_held{{tenant=\"{}\"}} {}\n", v.metrics->tenant,
                       v.metrics->leases_held.load());
  return out;
}

}  // namespace strata::server
