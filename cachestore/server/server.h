// strata-server: the cache store as a daemon on a local Unix stream socket (DESIGN.md, "Daemon";
// the protocol byte by byte in include/strata/wire.h).
//
// One io_context run by `io_threads` threads, a strand per connection (a connection's frames are
// handled in order, never two at once), no thread per request. Each tenant has a TieredStore of
// its own, so its own memfd arena: a client maps only its tenant's bytes, and objects are keyed
// by the authenticated tenant (its store) plus the client's namespace field. Leases (GET) and
// reservations (RESERVE) belong to the connection that made them and are reclaimed when it ends.
//
// Blocking work: store calls that may wait on I/O for long (FLUSH, DELETE, PREFETCH's NVMe reads)
// run on a small thread pool and hand their answer back to the connection's strand. GET, RESERVE
// and COMMIT run on the io threads: a host hit is microseconds, and an NVMe read (or a demotion a
// COMMIT causes) occupies one io thread for one bounded I/O while the other io threads (at least
// four) keep serving every other connection.
//
// Thread safety: Start and Stop from one thread; the accessors from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cachestore/server/metrics.h"
#include "cachestore/server/server_config.h"
#include "strata/status.h"

namespace strata::server {

class Server {
 public:
  // Opens every tenant's store, binds the socket (replacing a stale socket file; refusing one a
  // live server answers on), and starts serving.
  static Result<std::unique_ptr<Server>> Start(ServerConfig config);
  ~Server();  // Stop()s if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting, ends every connection (their leases and reservations reclaimed), flushes
  // every tenant store that has an NVMe tier, stops the threads and removes the socket file.
  // Idempotent; returns the first flush error.
  Status Stop();

  const ServerConfig& config() const;
  MetricsRegistry& metrics();
  // What the metrics exposition reads per tenant; valid while the server lives.
  std::vector<TenantView> TenantViews() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::server
