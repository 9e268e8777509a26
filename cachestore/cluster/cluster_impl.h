// The Redis Cluster adapter's engine (private to cachestore/cluster): one Boost.Asio I/O thread
// that owns every connection (one per node), the slot map, and every in-progress command.
//
// A command (Op) is in exactly one place at a time, which is what makes the deadline safe:
//   parked    in `parked_`, waiting for a retry tick (no route, node down, TRYAGAIN...);
//   queued    in its node's `queue` (not yet written);
//   in flight in its node's `in_flight` (written, replies come back in order);
//   done      its result is set.
// At a batch's deadline its parked ops leave `parked_`, its queued ops leave their queue, and a
// node with one of its ops in flight is closed (its later replies would be misaligned; the other
// ops on it are retried). Only then is the caller woken, so no I/O refers to the caller's
// argument memory after Execute returns.
// Thread safety: everything below is touched only on the I/O thread, except `stats` (atomics).
#pragma once

// Boost.Asio 1.74's awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
#include <boost/asio.hpp>
// clang-format on

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cachestore/cluster/redis_cluster.h"
#include "cachestore/cluster/resp.h"
#include "cachestore/io_spin.h"

namespace strata::cachestore::cluster {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using ReplyCallback = std::function<void(Result<RedisReply>)>;

struct Node;
struct Batch;

struct Op {
  enum class State { kParked, kQueued, kInFlight, kDone };
  Batch* batch = nullptr;
  size_t index = 0;
  const RedisCommand* cmd = nullptr;
  int slot = -1;  // -1: keyless, any node
  int redirects = 0;
  Node* ask_node = nullptr;  // set by ASK: the next send goes there, after ASKING
  State state = State::kParked;
  Node* node = nullptr;      // kQueued, kInFlight: where
  bool unreachable = false;  // parked for a connection failure or no route (else: busy reply)
  std::string last_error;
};

struct Batch {
  explicit Batch(size_t n) : ops(n), results(n, Status::IoError("deadline")) {}
  std::vector<Op> ops;
  std::vector<Result<RedisReply>> results;
  size_t remaining = 0;
  Clock::time_point deadline;
  std::promise<void> done;
  // Set after `done`, the I/O thread's last touch of the batch: a caller that polls for it
  // (RedisClusterOptions::spin) or has waited on `done` frees the batch only once it is set.
  std::atomic<bool> finished{false};
};

// One request on a connection: a user command (op) or an internal one (args + callback; the
// callback may be empty: ASKING's reply is not needed).
struct Request {
  Op* op = nullptr;
  std::vector<std::string> args;
  ReplyCallback callback;
};

struct Node {
  Node(asio::io_context& io, RedisEndpoint endpoint)
      : ep(std::move(endpoint)), socket(io), connect_timer(io), resolver(io) {}
  enum class State { kClosed, kConnecting, kReady };
  RedisEndpoint ep;
  std::string addr;  // "host:port", for messages
  asio::ip::tcp::socket socket;
  asio::steady_timer connect_timer;
  asio::ip::tcp::resolver resolver;
  State state = State::kClosed;
  uint64_t generation = 0;          // bumped on every close: stale handlers see a new value
  Clock::time_point retry_after{};  // no reconnect before this, after a failure
  std::string last_error;
  std::deque<Request> queue;      // not yet written
  std::deque<Request> in_flight;  // written, in reply order
  bool writing = false;
  std::string wbuf;                 // the current write: small parts
  std::vector<ExternalPiece> wext;  // and the large arguments sent from the caller's memory
  std::vector<asio::const_buffer> wbufs;
  std::vector<char> rbuf;
  std::array<boost::asio::mutable_buffer, 2> rbufs;  // the read in flight: window, then rbuf
  ReplyReader reader;
};

struct AtomicStats {
  std::atomic<uint64_t> commands{0}, moved{0}, ask{0}, retries{0}, timeouts{0}, connect_errors{0},
      slot_map_refreshes{0}, bytes_sent{0}, bytes_received{0};
};

struct RedisCluster::Impl {
  explicit Impl(RedisClusterOptions options);
  ~Impl();

  // Called from the caller's thread; they post to the I/O thread and wait.
  Status Connect();
  std::vector<Result<RedisReply>> Execute(std::span<const RedisCommand> commands,
                                          Clock::time_point deadline);
  // Sets up `batch` (sized for the commands) and posts it; the future is ready when it is done.
  // Waits until the I/O thread is done with `batch` (polling for RedisClusterOptions::spin
  // first); `done` is Start's future.
  void Await(Batch* batch, std::future<void>& done);
  std::future<void> Start(Batch* batch, std::span<const RedisCommand> commands,
                          Clock::time_point deadline);

  // --- everything below runs on the I/O thread ---
  enum class CloseReason { kError, kDeadline };
  Node* GetNode(const std::string& host, uint16_t port);
  void StartConnect(Node* n);
  void OnConnected(Node* n);
  void FailNode(Node* n, const Status& why, CloseReason reason);
  void MaybeWrite(Node* n);
  void StartRead(Node* n);
  void OnReply(Node* n, RedisReply reply);
  void SendInternal(Node* n, std::vector<std::string> args, ReplyCallback callback);

  void StartBatch(Batch* b);
  void Dispatch(Op* op);
  void Park(Op* op, std::string error, bool unreachable);
  void HandleOpReply(Node* n, Op* op, RedisReply reply);
  void Complete(Op* op, Result<RedisReply> result);
  void FinishBatch(Batch* b);
  void ArmDeadlineTimer();
  void OnDeadline(Batch* b);

  void RequestRefresh();
  void ArmTick();
  void OnTick();
  void StartRefresh();
  Status ApplySlots(Node* from, const RedisReply& reply);

  void StartSeeds();
  void OnSeedReply(Node* n, Result<RedisReply> reply);
  void FinishConnect(Status status);

  RedisClusterOptions options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  AtomicStats stats_;

  std::map<std::string, std::unique_ptr<Node>> nodes_;  // by "host:port"; never removed
  std::array<Node*, 16384> slots_{};                    // slot -> master (null: no route)
  std::set<Batch*> active_;
  bool batching_ = false;           // StartBatch is queueing: MaybeWrite notes the node only
  std::vector<Node*> write_later_;  // the nodes it noted
  std::vector<Op*> parked_;
  asio::steady_timer deadline_timer_;
  Clock::time_point deadline_armed_for_ = Clock::time_point::max();
  asio::steady_timer tick_timer_;
  bool tick_armed_ = false;

  bool refresh_wanted_ = false;
  bool refresh_in_flight_ = false;
  uint64_t refresh_generation_ = 0;
  size_t refresh_rotor_ = 0;
  Node* refresh_node_ = nullptr;
  Clock::time_point last_refresh_start_{};
  asio::steady_timer refresh_timer_;

  bool connect_pending_ = false;
  size_t seeds_left_ = 0;
  std::vector<std::string> seed_errors_;
  Status auth_error_;
  Status not_cluster_;
  asio::steady_timer connect_timer_;
  std::promise<Status> connect_done_;
};

}  // namespace strata::cachestore::cluster
