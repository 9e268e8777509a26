// One client connection of strata-server: reads frames, dispatches verbs to the tenant's store,
// owns the leases and reservations the client holds. Private to the server (server.cc).
// Thread safety: every member function runs on the connection's strand (the socket's executor);
// blocking store calls run on the server's pool and come back to the strand.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

// Boost.Asio 1.74's awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
#include <boost/asio.hpp>
// clang-format on

#include "cachestore/host/host_arena.h"
#include "cachestore/server/metrics.h"
#include "cachestore/server/server_config.h"
#include "cachestore/store/tiered_store.h"
#include "strata/wire.h"

namespace strata::server {

using UnixSocket = boost::asio::local::stream_protocol::socket;

struct TenantState {
  TenantConfig config;
  std::unique_ptr<Store> owner;
  cachestore::TieredStore* store = nullptr;
  TenantMetrics* metrics = nullptr;
  bool has_nvme = false;
};

// What every connection shares: the tenants, metrics, the blocking pool, id counters.
struct ServerShared {
  const ServerConfig* config = nullptr;
  std::vector<std::unique_ptr<TenantState>> tenants;
  MetricsRegistry* metrics = nullptr;
  boost::asio::thread_pool* blocking = nullptr;
  uint64_t epoch = 0;
  std::atomic<uint64_t> next_id{1};  // lease and reservation ids, unique server-wide
  std::atomic<bool> stopping{false};

  TenantState* FindTenant(std::string_view name) const;
};

wire::WireStatus ToWire(const Status& s);

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerShared& shared, UnixSocket socket);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Start();
  // Ends the connection from any thread (server stop): reclaims and closes on the strand.
  void Close();

 private:
  using Clock = std::chrono::steady_clock;
  struct Lease {
    uint64_t pin = 0;
    std::multimap<Clock::time_point, uint64_t>::iterator expiry;  // expiries_.end(): none
  };

  void ReadHeader();
  void ReadBody();
  void Dispatch();
  // Sends out_ and reads the next frame (or closes, after a framing error).
  void Reply(bool close_after);
  void FrameError(wire::WireStatus status, const std::string& message, uint64_t id,
                  uint16_t opcode);
  void Finish(wire::Verb verb, bool frame_error);  // counts the request, then Reply
  void Shutdown();  // reclaims leases and reservations, closes the socket; idempotent

  void OnHello();
  Status SendHello(const wire::HelloResponse& r);
  void OnLookup();
  void OnGet();
  void OnPrefetch();
  void OnReserve();
  void OnIds(wire::Verb verb);
  void OnPut();
  // RESERVE's and PUT's shared steps. RefuseNewObject: the item's status when the tenant takes
  // no such object (bad family, SWA policy). RefuseFingerprint answers the frame with kInvalid
  // (an item's fingerprint is not HELLO's).
  std::optional<wire::WireStatus> RefuseNewObject(const wire::ReserveItem& it) const;
  void RefuseFingerprint(wire::Verb verb);
  Result<cachestore::TieredStore::Reservation> ReserveInStore(const wire::ReserveItem& it);
  wire::WireStatus CommitToStore(const cachestore::TieredStore::Reservation& res);
  void OnDelete();
  void OnFlush();
  void OnStats();
  // Runs `work` on the blocking pool, then `done` with its status on the strand.
  void Blocking(wire::Verb verb, std::function<Status()> work);

  void ArmLeaseTimer();
  void ExpireLeases();
  Status CheckCredential(const wire::HelloRequest& h, std::string* why);

  ServerShared& shared_;
  UnixSocket socket_;
  boost::asio::steady_timer lease_timer_;
  // Bytes received and not yet parsed (in_[in_pos_, in_end_)): one read brings a small frame's
  // header and body, and frames a client sent together (a RELEASE with the next GET), at once.
  static constexpr size_t kInBytes = 64 << 10;
  std::vector<std::byte> in_;
  size_t in_pos_ = 0, in_end_ = 0;
  wire::FrameHeader header_;
  std::vector<std::byte> body_;
  std::vector<std::byte> out_;
  Clock::time_point started_;  // when the current frame's body arrived

  TenantState* tenant_ = nullptr;  // set by HELLO
  uint64_t fingerprint_ = 0;
  std::unordered_map<uint64_t, Lease> leases_;
  std::multimap<Clock::time_point, uint64_t> expiries_;  // lease expiry -> lease id
  Clock::time_point timer_at_ = Clock::time_point::max();
  std::unordered_set<uint64_t> expired_;  // leases that expired and were not released since
  // A reservation, and with staged writes its space in staging_ (COMMIT copies it over).
  struct Reserved {
    cachestore::TieredStore::Reservation res;
    std::optional<cachestore::Extent> staged;
  };
  std::unordered_map<uint64_t, Reserved> reservations_;
  // This connection's staging region (staged writes, TenantConfig::kStaging; null otherwise or
  // for a read-only client).
  std::unique_ptr<cachestore::HostArena> staging_;
  // Staging space the last COMMIT copied from, given back at the next COMMIT (or when a
  // RESERVE finds no room): the next batch is written elsewhere, not into lines this server's
  // core has just read, which the client's core would first have to take back from it. So the
  // client alternates between two areas. Measured alone (4.2 MB batches, one core writing, the
  // other copying out): 176-192 us per batch into the area just read, 150-153 us alternating,
  // 148 us for a core rewriting what it read itself. Only for batches up to
  // wire::kStagingAlternateMaxBytes: a larger one's space comes back at once.
  std::vector<cachestore::Extent> cooling_;
  void ReleaseCooling();

  bool closed_ = false;
};

}  // namespace strata::server
