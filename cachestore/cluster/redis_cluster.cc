#include "cachestore/cluster/redis_cluster.h"

#include <charconv>

#include "cachestore/cluster/cluster_impl.h"
#include "cachestore/cluster/resp.h"

namespace strata::cachestore::cluster {

Result<RedisEndpoint> ParseEndpoint(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("endpoint '" + std::string(text) + "': " + std::string(why));
  };
  std::string_view host, port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("expected [ipv6]:port");
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("expected host:port");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return bad("an IPv6 host goes in brackets");
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) return bad("empty host");
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return bad("port must be 1..65535");
  return RedisEndpoint{std::string(host), static_cast<uint16_t>(port)};
}

Status RedisClusterOptions::Validate() const {
  if (seeds.empty()) return Status::InvalidArgument("redis cluster: at least one seed is needed");
  for (const RedisEndpoint& s : seeds)
    if (s.host.empty() || s.port == 0)
      return Status::InvalidArgument("redis cluster: a seed needs a host and a port");
  if (user.empty() && !password.empty())
    return Status::InvalidArgument(
        "redis cluster: a password needs a user (the default user is \"default\")");
  if (connect_timeout.count() <= 0)
    return Status::InvalidArgument("redis cluster: connect_timeout must be positive");
  if (max_redirects < 0)
    return Status::InvalidArgument("redis cluster: max_redirects must be >= 0");
  if (spin.count() < 0 || spin > std::chrono::milliseconds(100))
    return Status::InvalidArgument("redis cluster: spin must be 0 to 100000 us (0.1 s)");
  return Status::Ok();
}

uint16_t RedisCluster::KeySlot(std::string_view key) {
  // As Redis's keyHashSlot: hash only what is between the first '{' and the first '}' after
  // it, when that is non-empty; else the whole key.
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return Crc16(key) & 16383;
}

Result<std::unique_ptr<RedisCluster>> RedisCluster::Connect(const RedisClusterOptions& options) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  auto impl = std::make_unique<Impl>(options);
  STRATA_RETURN_IF_ERROR(impl->Connect());
  return std::unique_ptr<RedisCluster>(new RedisCluster(std::move(impl)));
}

RedisCluster::RedisCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RedisCluster::~RedisCluster() = default;

std::vector<Result<RedisReply>> RedisCluster::Execute(
    std::span<const RedisCommand> commands, std::chrono::steady_clock::time_point deadline) {
  return impl_->Execute(commands, deadline);
}

class RedisCluster::Pending {
 public:
  Pending(Impl* i, size_t n) : impl(i), batch(n) {}
  ~Pending() {
    if (done.valid()) impl->Await(&batch, done);  // the I/O thread uses `batch` until then
  }
  Impl* impl;
  Batch batch;
  std::future<void> done;
};

void RedisCluster::PendingDeleter::operator()(Pending* p) const { delete p; }

RedisCluster::PendingPtr RedisCluster::Start(std::span<const RedisCommand> commands,
                                             std::chrono::steady_clock::time_point deadline) {
  PendingPtr p(new Pending(impl_.get(), commands.size()));
  if (!commands.empty()) p->done = impl_->Start(&p->batch, commands, deadline);
  return p;
}

std::vector<Result<RedisReply>> RedisCluster::Wait(PendingPtr pending) {
  if (pending->done.valid()) pending->impl->Await(&pending->batch, pending->done);
  return std::move(pending->batch.results);
}

RedisClusterStats RedisCluster::stats() const {
  const AtomicStats& s = impl_->stats_;
  const auto r = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  RedisClusterStats out;
  out.commands = r(s.commands);
  out.moved = r(s.moved);
  out.ask = r(s.ask);
  out.retries = r(s.retries);
  out.timeouts = r(s.timeouts);
  out.connect_errors = r(s.connect_errors);
  out.slot_map_refreshes = r(s.slot_map_refreshes);
  out.bytes_sent = r(s.bytes_sent);
  out.bytes_received = r(s.bytes_received);
  return out;
}

}  // namespace strata::cachestore::cluster
