// A small Redis Cluster client (DESIGN.md, "Store": the tier shared across nodes).
//
// Why our own: Debian's hiredis is 0.14, with no cluster support and an async API without
// timeouts, and no Debian package routes Redis Cluster commands. So this adapter keeps the
// routing small and in one place: hiredis's reply reader parses RESP, one Boost.Asio I/O thread
// drives one connection per node with pipelining and deadlines, and the routing is CRC16 hash
// slots over a slot map read with CLUSTER SLOTS, following MOVED (map refreshed) and ASK
// (ASKING, once) redirections and retrying after a failover within the caller's deadline.
//
// The serving path never blocks on the cluster beyond its deadline: a command whose node is
// slow, paused or gone completes with a non-ok Status when the deadline passes, while commands
// to healthy nodes in the same batch complete normally.
//
// Thread safety: Execute may be called from several threads at once; the adapter serializes
// per-node writes on its I/O thread. stats() may be called at any time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "strata/status.h"

namespace strata::cachestore::cluster {

struct RedisEndpoint {
  std::string host;  // an IPv4/IPv6 literal or a name
  uint16_t port = 0;
};

// Parses "host:port" (IPv6 as "[::1]:7000").
Result<RedisEndpoint> ParseEndpoint(std::string_view text);

struct RedisClusterOptions {
  std::vector<RedisEndpoint> seeds;  // any reachable node(s) of the cluster; at least one
  std::string user;                  // ACL user for AUTH user password; empty: no AUTH
  std::string password;
  std::chrono::milliseconds connect_timeout{500};  // Connect's own deadline (slot map read)
  int max_redirects = 5;                           // MOVED/ASK hops per command before it fails
  // Polling instead of sleeping: after each piece of work the I/O thread keeps polling its
  // sockets this long (yielding the core) before it sleeps in epoll, and a caller polls this
  // long for its batch's replies before it sleeps on them. 0: both sleep at once. On a VM a
  // wake-up costs 50-150 us, a pipelined batch of 36 KB values about 300; the price is a core
  // kept busy (but yielded to any runnable thread) for up to `spin` after each batch.
  std::chrono::microseconds spin{0};
  Status Validate() const;
};

// One command: its arguments, binary-safe. The views must stay valid until Execute returns.
// The routing key is args[1] (GET/SET/DEL/EXISTS/... key first); a command without a key
// (PING) goes to any node. A non-empty `tail` is the last argument's second part: it is sent
// right after args.back() as one value (a record's header and payload, not joined in memory).
struct RedisCommand {
  RedisCommand() = default;
  RedisCommand(std::vector<std::string_view> a, std::string_view t = {})
      : args(std::move(a)), tail(t) {}
  std::vector<std::string_view> args;
  std::string_view tail;
};

// One reply, as plain values (hiredis's types without its allocator).
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kError, kArray };
  Type type = Type::kNil;
  std::string str;  // kString (the bulk bytes), kStatus, kError (the whole error line)
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray
};

struct RedisClusterStats {
  uint64_t commands = 0;        // commands completed with a reply
  uint64_t moved = 0;           // MOVED redirections followed
  uint64_t ask = 0;             // ASK redirections followed
  uint64_t retries = 0;         // commands resent after a connection error or TRYAGAIN/CLUSTERDOWN
  uint64_t timeouts = 0;        // commands failed at their deadline
  uint64_t connect_errors = 0;  // connections that failed to open or broke
  uint64_t slot_map_refreshes = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
};

class RedisCluster {
 public:
  // Connects to the seeds, reads the slot map, authenticates. Fails (kIoError or
  // kInvalidArgument, with the reason: unreachable, AUTH refused, not a cluster) by the
  // connect timeout.
  static Result<std::unique_ptr<RedisCluster>> Connect(const RedisClusterOptions& options);
  ~RedisCluster();

  // Sends every command, pipelined per node, routed by the hash slot of its key; returns when
  // each has its final reply or the deadline has passed. Per command: a reply (a Redis error
  // is a reply of type kError, e.g. NOPERM from an ACL), or a non-ok Status: kIoError whose
  // message starts with "deadline" (no reply in time) or "unreachable" (no node for the slot),
  // never a hang past the deadline.
  std::vector<Result<RedisReply>> Execute(std::span<const RedisCommand> commands,
                                          std::chrono::steady_clock::time_point deadline);

  // Execute in two steps, so that one caller can have batches in flight on several adapters at
  // once: Start sends, Wait returns what Execute would have. The commands' memory must stay
  // valid until Wait returns; a Pending destroyed without Wait waits for its batch first.
  class Pending;
  struct PendingDeleter {
    void operator()(Pending* p) const;
  };
  using PendingPtr = std::unique_ptr<Pending, PendingDeleter>;
  PendingPtr Start(std::span<const RedisCommand> commands,
                   std::chrono::steady_clock::time_point deadline);
  static std::vector<Result<RedisReply>> Wait(PendingPtr pending);

  // The hash slot of a key (CRC16/XMODEM mod 16384, with {hash tag} rules as Redis applies them).
  static uint16_t KeySlot(std::string_view key);

  RedisClusterStats stats() const;

  struct Impl;

 private:
  explicit RedisCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::cachestore::cluster
