#include "cachestore/cluster/cluster_impl.h"

#include <algorithm>
#include <charconv>

namespace strata::cachestore::cluster {

namespace {

// A retry tick: how often parked commands are tried again (and a refresh started if wanted).
constexpr auto kTickInterval = std::chrono::milliseconds(20);
// At most one CLUSTER SLOTS in this interval, however many MOVED or failures ask for one.
constexpr auto kRefreshInterval = std::chrono::milliseconds(100);
// A node whose connection failed is not reconnected to before this.
constexpr auto kNodeBackoff = std::chrono::milliseconds(50);
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kDirectReadMinBytes = 4 * 1024;  // smaller remainders come with what follows
// Read with a value's remainder: enough for the next reply's header and small replies; what
// more arrives of the next value is copied from there into its string.
constexpr size_t kReadAfterWindow = 512;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Millis(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" -> slot, host, port. An empty host
// (a node that does not know its own address) means the host of the node that answered.
bool ParseRedirect(std::string_view text, int* slot, std::string* host, uint16_t* port) {
  const size_t sp1 = text.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : text.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  std::string_view slot_text = text.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view addr = text.substr(sp2 + 1);
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return false;
  int s = -1;
  unsigned p = 0;
  if (std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), s).ec != std::errc())
    return false;
  std::string_view port_text = addr.substr(colon + 1);
  if (std::from_chars(port_text.data(), port_text.data() + port_text.size(), p).ec != std::errc() ||
      p == 0 || p > 65535 || s < 0 || s >= 16384)
    return false;
  std::string_view h = addr.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  *slot = s;
  *host = std::string(h);
  *port = static_cast<uint16_t>(p);
  return true;
}

}  // namespace

RedisCluster::Impl::Impl(RedisClusterOptions options)
    : options_(std::move(options)),
      work_(asio::make_work_guard(io_)),
      deadline_timer_(io_),
      tick_timer_(io_),
      refresh_timer_(io_),
      connect_timer_(io_) {
  thread_ = std::thread([this] { RunIoThread(io_, options_.spin); });
}

RedisCluster::Impl::~Impl() {
  // Nothing waits on the I/O thread any more (Execute and Connect have returned): stop it, then
  // the sockets close as the nodes are destroyed.
  work_.reset();
  io_.stop();
  thread_.join();
}

Node* RedisCluster::Impl::GetNode(const std::string& host, uint16_t port) {
  const std::string addr =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  auto& slot = nodes_[addr];
  if (!slot) {
    slot = std::make_unique<Node>(io_, RedisEndpoint{host, port});
    slot->addr = addr;
  }
  return slot.get();
}

// --- connections ------------------------------------------------------------------------------

void RedisCluster::Impl::StartConnect(Node* n) {
  n->state = Node::State::kConnecting;
  const uint64_t gen = ++n->generation;
  n->connect_timer.expires_after(options_.connect_timeout);
  n->connect_timer.async_wait([this, n, gen](const boost::system::error_code& ec) {
    if (ec || n->generation != gen || n->state != Node::State::kConnecting) return;
    FailNode(n, Status::IoError("connect timed out after " + Millis(options_.connect_timeout)),
             CloseReason::kError);
  });
  auto on_connect = [this, n, gen](const boost::system::error_code& ec) {
    if (n->generation != gen) return;
    if (ec) return FailNode(n, Status::IoError("connect: " + ec.message()), CloseReason::kError);
    OnConnected(n);
  };
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(n->ep.host, ec);
  if (!ec) {
    n->socket.async_connect(asio::ip::tcp::endpoint(address, n->ep.port), on_connect);
    return;
  }
  n->resolver.async_resolve(
      n->ep.host, std::to_string(n->ep.port),
      [this, n, gen, on_connect](const boost::system::error_code& rec,
                                 asio::ip::tcp::resolver::results_type results) {
        if (n->generation != gen) return;
        if (rec)
          return FailNode(n, Status::IoError("resolve " + n->ep.host + ": " + rec.message()),
                          CloseReason::kError);
        asio::async_connect(n->socket, results,
                            [on_connect](const boost::system::error_code& cec,
                                         const asio::ip::tcp::endpoint&) { on_connect(cec); });
      });
}

void RedisCluster::Impl::OnConnected(Node* n) {
  n->connect_timer.cancel();
  n->state = Node::State::kReady;
  boost::system::error_code ignored;
  n->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  if (!options_.user.empty()) {
    // First on the connection, ahead of whatever was queued while it opened.
    Request auth;
    auth.args = {"AUTH", options_.user, options_.password};
    auth.callback = [this, n, gen = n->generation](Result<RedisReply> r) {
      if (!r.ok() || r->type != RedisReply::Type::kError || n->generation != gen) return;
      FailNode(n,
               Status::InvalidArgument("AUTH as user '" + options_.user + "' refused by " +
                                       n->addr + ": " + r->str),
               CloseReason::kError);
    };
    n->queue.push_front(std::move(auth));
  }
  StartRead(n);
  MaybeWrite(n);
}

void RedisCluster::Impl::FailNode(Node* n, const Status& why, CloseReason reason) {
  ++n->generation;
  boost::system::error_code ignored;
  n->socket.close(ignored);
  n->connect_timer.cancel();
  n->resolver.cancel();
  n->reader.Reset();
  n->state = Node::State::kClosed;
  n->writing = false;
  n->last_error = why.message();
  if (reason == CloseReason::kError) {
    n->retry_after = Clock::now() + kNodeBackoff;
    stats_.connect_errors.fetch_add(1, std::memory_order_relaxed);
  }
  std::deque<Request> lost;
  lost.swap(n->in_flight);
  for (Request& r : n->queue) lost.push_back(std::move(r));
  n->queue.clear();
  for (Request& r : lost) {
    if (r.op != nullptr) {
      if (r.op->state == Op::State::kDone) continue;
      stats_.retries.fetch_add(1, std::memory_order_relaxed);
      Park(r.op, n->addr + ": " + why.message(), /*unreachable=*/true);
    } else if (r.callback) {
      r.callback(why);
    }
  }
  if (reason == CloseReason::kError) RequestRefresh();
}

void RedisCluster::Impl::SendInternal(Node* n, std::vector<std::string> args,
                                      ReplyCallback callback) {
  if (n->state == Node::State::kClosed) {
    if (Clock::now() < n->retry_after) {
      callback(Status::IoError(n->addr + ": " + n->last_error));
      return;
    }
    StartConnect(n);
  }
  Request r;
  r.args = std::move(args);
  r.callback = std::move(callback);
  n->queue.push_back(std::move(r));
  MaybeWrite(n);
}

void RedisCluster::Impl::MaybeWrite(Node* n) {
  if (n->state != Node::State::kReady || n->writing || n->queue.empty()) return;
  if (batching_) {  // StartBatch writes once per node, after queueing all of the batch
    if (std::find(write_later_.begin(), write_later_.end(), n) == write_later_.end())
      write_later_.push_back(n);
    return;
  }
  n->wbuf.clear();
  n->wext.clear();
  std::vector<std::string_view> views;
  while (!n->queue.empty()) {
    Request r = std::move(n->queue.front());
    n->queue.pop_front();
    if (r.op != nullptr) {
      r.op->state = Op::State::kInFlight;
      AppendCommand(r.op->cmd->args, r.op->cmd->tail, n->wbuf, &n->wext);
    } else {
      views.assign(r.args.begin(), r.args.end());
      AppendCommand(views, n->wbuf, &n->wext);
    }
    n->in_flight.push_back(std::move(r));
  }
  n->wbufs.clear();
  size_t at = 0, total = n->wbuf.size();
  for (const ExternalPiece& e : n->wext) {
    n->wbufs.push_back(asio::buffer(n->wbuf.data() + at, e.offset - at));
    n->wbufs.push_back(asio::buffer(e.bytes.data(), e.bytes.size()));
    at = e.offset;
    total += e.bytes.size();
  }
  n->wbufs.push_back(asio::buffer(n->wbuf.data() + at, n->wbuf.size() - at));
  stats_.bytes_sent.fetch_add(total, std::memory_order_relaxed);
  n->writing = true;
  asio::async_write(n->socket, n->wbufs,
                    [this, n, gen = n->generation](const boost::system::error_code& ec, size_t) {
                      if (n->generation != gen) return;
                      n->writing = false;
                      if (ec)
                        return FailNode(n, Status::IoError("write: " + ec.message()),
                                        CloseReason::kError);
                      MaybeWrite(n);
                    });
}

void RedisCluster::Impl::StartRead(Node* n) {
  // The rest of a large value arriving: receive it where the reply keeps it, with no copy, and
  // in the same call what follows it (the next reply's header) into the read buffer: one
  // receive per value instead of two.
  const std::span<char> window = n->reader.BulkWindow();
  const bool direct = window.size() >= kDirectReadMinBytes;
  if (n->rbuf.size() != kReadChunk) n->rbuf.resize(kReadChunk);
  n->rbufs = direct ? decltype(n->rbufs){asio::buffer(window.data(), window.size()),
                                         asio::buffer(n->rbuf.data(), kReadAfterWindow)}
                    : decltype(n->rbufs){asio::buffer(n->rbuf), asio::mutable_buffer()};
  n->socket.async_read_some(
      n->rbufs, [this, n, window_size = direct ? window.size() : 0, gen = n->generation](
                    const boost::system::error_code& ec, size_t got) {
        if (n->generation != gen) return;
        if (ec) {
          return FailNode(n,
                          Status::IoError(ec == asio::error::eof ? "connection closed by peer"
                                                                 : "read: " + ec.message()),
                          CloseReason::kError);
        }
        stats_.bytes_received.fetch_add(got, std::memory_order_relaxed);
        const size_t into_window = std::min(got, window_size);
        if (into_window > 0) n->reader.Filled(into_window);
        if (got > into_window) {
          if (Status s = n->reader.Feed(n->rbuf.data(), got - into_window); !s.ok())
            return FailNode(n, s, CloseReason::kError);
        }
        for (;;) {
          auto next = n->reader.Next();
          if (!next.ok()) return FailNode(n, next.status(), CloseReason::kError);
          if (!next->has_value()) break;
          OnReply(n, std::move(**next));
          if (n->generation != gen) return;  // the reply closed the connection
        }
        StartRead(n);
      });
}

void RedisCluster::Impl::OnReply(Node* n, RedisReply reply) {
  if (n->in_flight.empty())
    return FailNode(n, Status::Corruption("a reply with no command waiting for it"),
                    CloseReason::kError);
  Request r = std::move(n->in_flight.front());
  n->in_flight.pop_front();
  if (r.op != nullptr) {
    if (r.op->state != Op::State::kDone) HandleOpReply(n, r.op, std::move(reply));
  } else if (r.callback) {
    r.callback(std::move(reply));
  }
}

// --- batches ----------------------------------------------------------------------------------

void RedisCluster::Impl::StartBatch(Batch* b) {
  active_.insert(b);
  // One extra count held across the loop: the batch cannot finish while this function uses it.
  b->remaining = b->ops.size() + 1;
  // Queue every command first, then write each node's share at once: writing as the first
  // command arrives would send it alone and the rest in a second write.
  batching_ = true;
  for (Op& op : b->ops) {
    const auto& args = op.cmd->args;
    if (args.empty()) {
      Complete(&op, Status::InvalidArgument("empty command"));
      continue;
    }
    op.slot = args.size() >= 2 ? RedisCluster::KeySlot(args[1]) : -1;
    Dispatch(&op);
  }
  batching_ = false;
  std::vector<Node*> nodes;
  nodes.swap(write_later_);
  for (Node* n : nodes) MaybeWrite(n);
  if (--b->remaining == 0) return FinishBatch(b);
  ArmDeadlineTimer();
}

static Node* AnyNode(const std::array<Node*, 16384>& slots, Clock::time_point now) {
  Node* fallback = nullptr;
  for (Node* n : slots) {
    if (n == nullptr) continue;
    if (n->state == Node::State::kReady) return n;
    if (fallback == nullptr && now >= n->retry_after) fallback = n;
  }
  return fallback;
}

void RedisCluster::Impl::Dispatch(Op* op) {
  if (op->state == Op::State::kDone) return;
  const auto now = Clock::now();
  Node* n = op->ask_node != nullptr ? op->ask_node
            : op->slot < 0          ? AnyNode(slots_, now)
                                    : slots_[static_cast<size_t>(op->slot)];
  if (n == nullptr) {
    RequestRefresh();
    return Park(op,
                op->slot < 0 ? "no node known" : "no node serves slot " + std::to_string(op->slot),
                /*unreachable=*/true);
  }
  if (n->state == Node::State::kClosed) {
    if (now < n->retry_after) {
      op->ask_node = nullptr;
      return Park(op, n->addr + ": " + n->last_error, /*unreachable=*/true);
    }
    StartConnect(n);
  }
  if (op->ask_node != nullptr) {
    Request asking;
    asking.args = {"ASKING"};
    n->queue.push_back(std::move(asking));
    op->ask_node = nullptr;
  }
  op->state = Op::State::kQueued;
  op->node = n;
  Request r;
  r.op = op;
  n->queue.push_back(std::move(r));
  MaybeWrite(n);
}

void RedisCluster::Impl::Park(Op* op, std::string error, bool unreachable) {
  op->state = Op::State::kParked;
  op->node = nullptr;
  op->last_error = std::move(error);
  op->unreachable = unreachable;
  parked_.push_back(op);
  ArmTick();
}

void RedisCluster::Impl::HandleOpReply(Node* n, Op* op, RedisReply reply) {
  if (reply.type == RedisReply::Type::kError) {
    const std::string_view e = reply.str;
    const bool moved = StartsWith(e, "MOVED ");
    if (moved || StartsWith(e, "ASK ")) {
      int slot = 0;
      std::string host;
      uint16_t port = 0;
      if (ParseRedirect(e, &slot, &host, &port)) {
        Node* target = GetNode(host.empty() ? n->ep.host : host, port);
        // MOVED is news for every command on the slot: the map learns it even when this
        // command has no hops left.
        if (moved) {
          slots_[static_cast<size_t>(slot)] = target;
          RequestRefresh();  // one MOVED usually means a whole range moved
        }
        if (++op->redirects > options_.max_redirects) {
          return Complete(op, Status::IoError("unreachable: more than " +
                                              std::to_string(options_.max_redirects) +
                                              " redirections; last: " + reply.str));
        }
        op->state = Op::State::kParked;
        op->node = nullptr;
        if (moved) {
          stats_.moved.fetch_add(1, std::memory_order_relaxed);
        } else {
          stats_.ask.fetch_add(1, std::memory_order_relaxed);
          op->ask_node = target;
        }
        return Dispatch(op);
      }
    }
    const bool down = StartsWith(e, "CLUSTERDOWN");
    if (down || StartsWith(e, "TRYAGAIN") || StartsWith(e, "LOADING")) {
      stats_.retries.fetch_add(1, std::memory_order_relaxed);
      if (down) RequestRefresh();
      return Park(op, n->addr + " answered " + reply.str, /*unreachable=*/false);
    }
  }
  Complete(op, std::move(reply));
}

void RedisCluster::Impl::Complete(Op* op, Result<RedisReply> result) {
  if (result.ok()) stats_.commands.fetch_add(1, std::memory_order_relaxed);
  op->state = Op::State::kDone;
  op->node = nullptr;
  Batch* b = op->batch;
  b->results[op->index] = std::move(result);
  if (--b->remaining == 0) FinishBatch(b);
}

void RedisCluster::Impl::FinishBatch(Batch* b) {
  active_.erase(b);
  ArmDeadlineTimer();
  b->done.set_value();
  b->finished.store(true, std::memory_order_release);  // last: the caller may free the batch
}

void RedisCluster::Impl::ArmDeadlineTimer() {
  if (active_.empty()) {
    deadline_armed_for_ = Clock::time_point::max();
    deadline_timer_.cancel();
    return;
  }
  auto earliest = Clock::time_point::max();
  for (const Batch* b : active_) earliest = std::min(earliest, b->deadline);
  if (deadline_armed_for_ == earliest) return;
  deadline_armed_for_ = earliest;
  deadline_timer_.expires_at(earliest);
  deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    const auto now = Clock::now();
    std::vector<Batch*> due;
    for (Batch* b : active_)
      if (b->deadline <= now) due.push_back(b);
    for (Batch* b : due) OnDeadline(b);
    deadline_armed_for_ = Clock::time_point::max();
    ArmDeadlineTimer();
  });
}

void RedisCluster::Impl::OnDeadline(Batch* b) {
  std::set<Node*> to_close;
  for (Op& op : b->ops) {
    if (op.state == Op::State::kDone) continue;
    std::string message;
    switch (op.state) {
      case Op::State::kParked:
        std::erase(parked_, &op);
        message = op.unreachable ? "unreachable: " + op.last_error + " (retried until the deadline)"
                                 : "deadline: " + op.last_error;
        break;
      case Op::State::kQueued: {
        auto& q = op.node->queue;
        const auto it =
            std::find_if(q.begin(), q.end(), [&](const Request& r) { return r.op == &op; });
        if (it != q.end()) q.erase(it);
        message = "deadline: " + op.node->addr + " not ready";
        break;
      }
      case Op::State::kInFlight:
        to_close.insert(op.node);
        message = "deadline: no reply from " + op.node->addr;
        break;
      case Op::State::kDone:
        break;
    }
    stats_.timeouts.fetch_add(1, std::memory_order_relaxed);
    op.state = Op::State::kDone;
    op.node = nullptr;
    b->results[op.index] = Status::IoError(std::move(message));
    --b->remaining;
  }
  for (Node* n : to_close)
    FailNode(n, Status::IoError("closed: a command on it passed its deadline"),
             CloseReason::kDeadline);
  FinishBatch(b);
}

// --- slot map ---------------------------------------------------------------------------------

void RedisCluster::Impl::RequestRefresh() {
  refresh_wanted_ = true;
  ArmTick();
}

void RedisCluster::Impl::ArmTick() {
  if (tick_armed_) return;
  tick_armed_ = true;
  tick_timer_.expires_after(kTickInterval);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    tick_armed_ = false;
    if (!ec) OnTick();
  });
}

void RedisCluster::Impl::OnTick() {
  // Ticks continue while commands wait, or while a wanted refresh waits for its turn; a refresh
  // that failed with nothing waiting is tried again at the next failure or MOVED, so a dead
  // cluster is not polled forever.
  bool throttled = false;
  if (refresh_wanted_ && !refresh_in_flight_) {
    if (Clock::now() - last_refresh_start_ >= kRefreshInterval)
      StartRefresh();
    else
      throttled = true;
  }
  std::vector<Op*> retry;
  retry.swap(parked_);
  for (Op* op : retry) Dispatch(op);
  if (!parked_.empty() || throttled) ArmTick();
}

void RedisCluster::Impl::StartRefresh() {
  // Ask a node with an open connection first, else any node not in its failure backoff:
  // rotating, so a dead node is not asked every time.
  const auto now = Clock::now();
  std::vector<Node*> ready, other;
  for (auto& [addr, node] : nodes_) {
    if (node->state == Node::State::kReady)
      ready.push_back(node.get());
    else if (node->state == Node::State::kClosed && now >= node->retry_after)
      other.push_back(node.get());
  }
  std::vector<Node*>& pool = ready.empty() ? other : ready;
  last_refresh_start_ = now;
  if (pool.empty()) return;
  Node* n = pool[refresh_rotor_++ % pool.size()];
  refresh_in_flight_ = true;
  refresh_wanted_ = false;
  refresh_node_ = n;
  const uint64_t gen = ++refresh_generation_;
  refresh_timer_.expires_after(
      std::min<Clock::duration>(options_.connect_timeout, std::chrono::milliseconds(500)));
  refresh_timer_.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != refresh_generation_ || !refresh_in_flight_) return;
    FailNode(refresh_node_, Status::IoError("CLUSTER SLOTS timed out"), CloseReason::kError);
  });
  SendInternal(n, {"CLUSTER", "SLOTS"}, [this, n, gen](Result<RedisReply> r) {
    if (gen != refresh_generation_) return;
    refresh_in_flight_ = false;
    refresh_timer_.cancel();
    Status s = r.ok() ? ApplySlots(n, *r) : r.status();
    if (!s.ok()) {
      refresh_wanted_ = true;
      if (!parked_.empty()) ArmTick();
      return;
    }
    std::vector<Op*> retry;
    retry.swap(parked_);
    for (Op* op : retry) Dispatch(op);
  });
}

Status RedisCluster::Impl::ApplySlots(Node* from, const RedisReply& reply) {
  if (reply.type == RedisReply::Type::kError) return Status::IoError(reply.str);
  if (reply.type != RedisReply::Type::kArray)
    return Status::Corruption("CLUSTER SLOTS: not an array");
  std::array<Node*, 16384> map{};
  size_t covered = 0;
  for (const RedisReply& range : reply.elements) {
    if (range.type != RedisReply::Type::kArray || range.elements.size() < 3 ||
        range.elements[0].type != RedisReply::Type::kInteger ||
        range.elements[1].type != RedisReply::Type::kInteger)
      return Status::Corruption("CLUSTER SLOTS: malformed range");
    const int64_t first = range.elements[0].integer, last = range.elements[1].integer;
    if (first < 0 || last >= 16384 || first > last)
      return Status::Corruption("CLUSTER SLOTS: bad slot range");
    Node* master = nullptr;
    for (size_t i = 2; i < range.elements.size(); ++i) {
      const RedisReply& node = range.elements[i];
      if (node.type != RedisReply::Type::kArray || node.elements.size() < 2 ||
          node.elements[1].type != RedisReply::Type::kInteger)
        return Status::Corruption("CLUSTER SLOTS: malformed node");
      std::string host = node.elements[0].str;
      if (host.empty() || host == "?") host = from->ep.host;  // "the address you reached me at"
      Node* n = GetNode(host, static_cast<uint16_t>(node.elements[1].integer));
      if (i == 2) master = n;  // replicas are remembered as nodes to ask for the map
    }
    for (int64_t s = first; s <= last; ++s) map[static_cast<size_t>(s)] = master;
    covered += static_cast<size_t>(last - first + 1);
  }
  if (covered == 0) return Status::IoError("CLUSTER SLOTS: no slot is served");
  slots_ = map;
  stats_.slot_map_refreshes.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

// --- Connect ----------------------------------------------------------------------------------

void RedisCluster::Impl::StartSeeds() {
  connect_pending_ = true;
  seeds_left_ = options_.seeds.size();
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || !connect_pending_) return;
    std::string why;
    for (const std::string& e : seed_errors_) why += "; " + e;
    FinishConnect(Status::IoError("unreachable: no seed answered CLUSTER SLOTS within " +
                                  Millis(options_.connect_timeout) + why));
  });
  // Every seed at once: the first map wins, so one dead seed costs nothing.
  for (const RedisEndpoint& seed : options_.seeds) {
    Node* n = GetNode(seed.host, seed.port);
    SendInternal(n, {"CLUSTER", "SLOTS"},
                 [this, n](Result<RedisReply> r) { OnSeedReply(n, std::move(r)); });
  }
}

void RedisCluster::Impl::OnSeedReply(Node* n, Result<RedisReply> r) {
  if (!connect_pending_) {
    if (r.ok()) (void)ApplySlots(n, *r);
    return;
  }
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kInvalidArgument) auth_error_ = r.status();
    seed_errors_.push_back(n->addr + ": " + r.status().message());
  } else if (r->type == RedisReply::Type::kError) {
    if (r->str.find("cluster support disabled") != std::string::npos)
      not_cluster_ = Status::InvalidArgument("not a cluster: " + n->addr + " answered " + r->str);
    else if (StartsWith(r->str, "NOAUTH") || StartsWith(r->str, "WRONGPASS") ||
             StartsWith(r->str, "NOPERM"))
      auth_error_ = Status::InvalidArgument(n->addr + " refused CLUSTER SLOTS: " + r->str);
    seed_errors_.push_back(n->addr + ": " + r->str);
  } else if (Status s = ApplySlots(n, *r); s.ok()) {
    return FinishConnect(Status::Ok());
  } else {
    seed_errors_.push_back(n->addr + ": " + s.message());
  }
  if (--seeds_left_ > 0) return;
  if (!auth_error_.ok()) return FinishConnect(auth_error_);
  if (!not_cluster_.ok()) return FinishConnect(not_cluster_);
  std::string why;
  for (const std::string& e : seed_errors_) why += (why.empty() ? "" : "; ") + e;
  FinishConnect(Status::IoError("unreachable: no seed gave a slot map: " + why));
}

void RedisCluster::Impl::FinishConnect(Status status) {
  connect_pending_ = false;
  connect_timer_.cancel();
  connect_done_.set_value(std::move(status));
}

Status RedisCluster::Impl::Connect() {
  auto done = connect_done_.get_future();
  asio::post(io_, [this] { StartSeeds(); });
  return done.get();
}

std::future<void> RedisCluster::Impl::Start(Batch* batch, std::span<const RedisCommand> commands,
                                            Clock::time_point deadline) {
  batch->deadline = deadline;
  for (size_t i = 0; i < commands.size(); ++i) {
    batch->ops[i].batch = batch;
    batch->ops[i].index = i;
    batch->ops[i].cmd = &commands[i];
  }
  auto done = batch->done.get_future();
  asio::post(io_, [this, batch] { StartBatch(batch); });
  return done;
}

std::vector<Result<RedisReply>> RedisCluster::Impl::Execute(std::span<const RedisCommand> commands,
                                                            Clock::time_point deadline) {
  if (commands.empty()) return {};
  Batch batch(commands.size());
  auto done = Start(&batch, commands, deadline);
  Await(&batch, done);
  return std::move(batch.results);
}

void RedisCluster::Impl::Await(Batch* batch, std::future<void>& done) {
  const auto finished = [batch] { return batch->finished.load(std::memory_order_acquire); };
  if (SpinUntil(finished, options_.spin)) return;
  done.wait();
  while (!finished()) std::this_thread::yield();  // set_value has returned; the store is next
}

}  // namespace strata::cachestore::cluster
