// strata-server's configuration (configs/server/default.json): the socket, threads, the host and
// NVMe capacity shared by the tenants, and the tenants themselves. Parsed from JSON here, in the
// daemon's own config unit, so the server itself (server.h) only sees these structs.
//
// Tenant credentials: a tenant with a non-empty `secret` requires the HELLO to carry it; `uids`
// requires the peer's SO_PEERCRED uid to be listed, `gids` its gid; every one given must match. A
// tenant with neither accepts any local process that can open the socket (its mode, 0660 by
// default, is then the only gate): the default config's "default" tenant. Keys starting with "_"
// (e.g. "_comment") are ignored, so a config can carry notes. Thread safety: values only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cachestore/placement/cluster_policy.h"
#include "strata/status.h"
#include "strata/store.h"
#include "strata/wire.h"

namespace strata::server {

struct TenantConfig {
  std::string name;               // what the HELLO names; [A-Za-z0-9_.-], 1..64 characters
  std::string secret;             // empty: no secret required
  std::vector<uint32_t> uids;     // allowed peer uids (SO_PEERCRED); empty: any
  std::vector<uint32_t> gids;     // allowed peer gids; empty: any
  std::string key_secret;         // keys the tenant's chain root (keys.h); default: the name
  uint64_t host_quota_bytes = 0;  // its arena; 0: host capacity x weight / sum of weights
  uint64_t nvme_quota_bytes = 0;  // its NVMe segments; 0: NVMe capacity x weight / sum
  wire::SwaPolicyWire swa_policy = wire::SwaPolicyWire::kFull;
  double weight = 1.0;  // share of the capacities not given explicitly
  // The shared tier (ServerConfig::cluster): the Redis ACL user the tenant's store connects as
  // (empty: none, no AUTH) and its key prefix (default: the tenant's name). An ACL user limited
  // to `~<prefix>:*` keeps tenants apart on the shared tier too.
  std::string cluster_user, cluster_password;
  std::string cluster_prefix;
  // How clients write new objects (RESERVE, then COMMIT):
  // - kStaging (the default): each connection gets a staging region (a memfd of its own,
  //   staging_bytes), RESERVE hands out space there, and COMMIT copies it into the tenant's
  //   arena. The arena is sealed (F_SEAL_FUTURE_WRITE): clients map it read-only, so no client
  //   can change a host copy after COMMIT, and GET serves it without verifying it.
  // - kInPlace: clients write the arena itself through a writable mapping (one copy less per
  //   COMMIT). Any client can then write any host copy at any time, so by default every host
  //   copy is checksummed at COMMIT and verified before each GET serves it (a stray write is a
  //   kCorrupt miss, never served). verify_host_copies false: the tenant's clients are trusted
  //   as the in-process store trusts its caller (one serving engine's own workers): no checksum
  //   on either path.
  // "verify_host_copies": false alone in a config means in-place writes (its meaning before
  // staging existed).
  enum class ClientWrites : uint8_t { kStaging, kInPlace };
  ClientWrites client_writes = ClientWrites::kStaging;
  uint64_t staging_bytes = 256ull << 20;  // per connection; pages are taken as they are written
  bool verify_host_copies = true;         // kInPlace only
};

// The tier shared across nodes, on Redis Cluster (cachestore/cluster/). No seeds: none.
struct ClusterConfig {
  std::vector<std::string> seeds;  // "host:port" of any node(s) of the cluster
  uint32_t deadline_ms = 100;      // per batch of cluster calls: slower is a miss
  uint32_t connect_timeout_ms = 500;
  uint32_t io_threads = 1;  // adapters per tenant, each an I/O thread and a connection per node
  uint32_t spin_us = 0;     // the adapters poll this long before they sleep (RedisClusterOptions)
  cachestore::ClusterSharePolicy share;  // what goes there (enabled with seeds)
};

struct ServerConfig {
  std::string socket_path = "./strata-data/strata.sock";
  uint32_t socket_mode = 0660;
  std::string data_dir = "./strata-data";  // tenants' NVMe tiers in data_dir/tenants/<name>
  uint32_t io_threads = 0;                 // 0: one per hardware core (at least 4)
  // After an io thread has run a handler it keeps polling its sockets (yielding the core between
  // polls) this long before it sleeps in epoll: a request that arrives within it is served
  // without a sleeping thread's wake-up, which on a VM costs tens of microseconds. CPU for
  // latency: 0 (the default) sleeps at once.
  uint32_t io_spin_us = 0;
  uint32_t blocking_threads = 2;  // FLUSH, DELETE, PREFETCH's NVMe reads
  uint16_t metrics_port = 9464;   // Prometheus HTTP on 127.0.0.1; 0: off
  // Leases a GET asks to hold forever (lease_ms 0) expire after this; 0: they do not.
  uint32_t default_lease_ms = 0;
  // A connection that has not completed HELLO this long after it was accepted is closed (a
  // peer that connects and sends nothing holds no server resources for long).
  uint32_t hello_timeout_ms = 10000;
  // Leases one connection may hold at once; GET answers kNoSpace for objects past it (and holds
  // nothing for them), so one client cannot pin a whole arena.
  uint32_t max_leases_per_connection = 262144;
  // The store template of every tenant: host eviction/admission/prefault, the NVMe device and
  // geometry, codecs. host.capacity_bytes and nvme.capacity_bytes are the totals the tenants
  // share; nvme.data_dir empty: no NVMe tier.
  StoreConfig store;
  std::vector<TenantConfig> tenants;
  ClusterConfig cluster;

  // Per tenant: the store it opens (its share of each tier, its own NVMe directory).
  StoreConfig TenantStore(const TenantConfig& t) const;
  Status Validate() const;
};

Result<ServerConfig> ParseServerConfig(std::string_view json_text, const std::string& name);
Result<ServerConfig> LoadServerConfig(const std::string& path);

// The effective config, several lines, for the log (secrets are not printed).
std::string DescribeServerConfig(const ServerConfig& c);

std::string_view SwaPolicyName(wire::SwaPolicyWire p);

}  // namespace strata::server
