// strata::Client: the strata::Store interface over a strata-server daemon (include/strata/wire.h
// is the protocol). The engine runs unchanged against it. Built as strata_client (client/), which
// links the public API only: neither the store, RocksDB nor liburing.
//
// Data plane: the tenant's host arena is mapped once from the descriptor the HELLO response
// passes. Get returns views into that mapping (no copy); Put reserves space in the arena, copies
// the bytes there and commits (Reserve/Commit/Abort do the same without the copy for a caller
// that writes in place, e.g. a GPU DMA).
//
// Failures: every call has a deadline. When the server goes away (restart, crash), the call in
// flight fails (Get and Lookup report misses, Put reports an error) and the next call reconnects,
// redoes the handshake and maps the new arena; views of the old arena stay mapped (unchanged
// bytes) until released. The server releases whatever a connection held when it ends.
// Thread safety: every method is safe for concurrent use (calls are serialised on one
// connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "strata/store.h"
#include "strata/wire.h"

namespace strata {

struct ClientOptions {
  std::string socket_path;
  std::string tenant = "default";
  std::string secret;        // empty: the server authenticates by the process's uid/gid
  uint64_t fingerprint = 0;  // the layout's fingerprint (CacheLayout::fingerprint())
  uint32_t block_tokens = 0;
  bool read_only = false;  // map the arena read-only (a client that never puts)
  // Deadline of every call (connect, handshake, one request and its response).
  std::chrono::milliseconds deadline{10000};
  // Lease timeout passed with Get (0: until Release or disconnect).
  uint32_t lease_ms = 0;
  // Release returns once its RELEASE frames are sent; their responses (statuses that need no
  // action) are read with the next call, at most 16 outstanding: a Get + Release cycle costs one
  // round trip instead of two. A failure then shows in that next call (the connection dropped).
  bool defer_release_acks = false;
  // With defer_release_acks: RELEASE frames wait in the client and go out in one write with the
  // next request (at most 16 wait; Flush, Ping and closing the client send them too), so a
  // Get + Release cycle wakes the server once. Until then the server still holds those leases
  // (their objects stay pinned): for a client that keeps calling, as a serving loop does.
  bool coalesce_releases = false;
  // Before sleeping for a response, keep trying to read it for this long (microseconds): a
  // response that comes within it is read without the wake-up of a sleeping thread, which on a
  // VM costs tens of microseconds. The calling thread waits anyway; 0 sleeps at once. A COMMIT of
  // staged writes is answered after the server's copy of their bytes (about 0.5 ms per 4 MiB):
  // when spin_us > 0 it polls that much longer too (their bytes at 4 GB/s, at most 2 ms).
  uint32_t spin_us = 0;
};

class Client final : public Store {
 public:
  // Connects and handshakes; an error when the server is unreachable or refuses the tenant.
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client() override;

  Result<LookupResult> Lookup(NamespaceId ns, uint64_t fingerprint, std::span<const BlockKey> keys,
                              FamilyMask required) override;
  using Store::Put;
  Status Put(const ObjectKey& key, uint64_t fingerprint, std::span<const std::byte> bytes,
             const PutHints& hints) override;
  Result<std::vector<ObjectView>> Get(NamespaceId ns, uint64_t fingerprint,
                                      std::span<const BlockKey> keys, FamilyMask families) override;
  void Release(std::span<const uint64_t> pins) override;
  Status Delete(NamespaceId ns) override;
  Status Flush() override;
  StoreStats Stats() const override;
  void VisitCounters(const CounterVisitor& visit) const override;

  // Writing in place: space for `size` bytes; write them at `data`, then Commit or Abort.
  struct Reservation {
    std::byte* data = nullptr;
    uint64_t id = 0;
    uint64_t size = 0;
  };
  Result<Reservation> Reserve(const ObjectKey& key, uint64_t fingerprint, uint64_t size,
                              const PutHints& hints = {});
  Status Commit(const Reservation& r);
  Status Abort(const Reservation& r);
  // The same for many objects, one round trip per batch the server takes (HELLO's max_batch):
  // one result per item, in order, each as Reserve / Commit would have returned it.
  struct ReserveSpec {
    ObjectKey key;
    uint64_t size = 0;
    PutHints hints;
  };
  std::vector<Result<Reservation>> ReserveMany(uint64_t fingerprint,
                                               std::span<const ReserveSpec> specs);
  std::vector<Status> CommitMany(std::span<const Reservation> reservations);
  // Stores many objects in one round trip per batch (a Put of each, as Put reports it: an object
  // the store declines is no error). With a staging region (wire::kCapPut) the client copies the
  // bytes into it, at places it chooses itself, and sends one PUT frame; against an older server
  // it reserves and commits.
  struct PutSpec {
    ObjectKey key;
    std::span<const std::byte> bytes;
    PutHints hints;
  };
  std::vector<Status> PutMany(uint64_t fingerprint, std::span<const PutSpec> items);
  // Starts reading NVMe-resident objects into DRAM; returns at once.
  Status Prefetch(NamespaceId ns, uint64_t fingerprint, std::span<const BlockKey> keys,
                  FamilyMask families);
  Status Ping();
  // The tenant's chain root for this layout (keys.h's k0), from the handshake.
  BlockKey root() const;
  uint64_t server_epoch() const;
  // The raw STATS counters (name, value) of the tenant.
  Result<std::vector<std::pair<std::string, uint64_t>>> RawStats() const;

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Maps a wire status to a Status (kOk: Ok).
Status StatusFromWire(wire::WireStatus s, std::string_view what);

}  // namespace strata
