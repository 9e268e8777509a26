#include "cachestore/server/connection.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace strata::server {

namespace asio = boost::asio;
using wire::Verb;
using wire::WireStatus;

TenantState* ServerShared::FindTenant(std::string_view name) const {
  for (const auto& t : tenants)
    if (t->config.name == name) return t.get();
  return nullptr;
}

WireStatus ToWire(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return WireStatus::kOk;
    case StatusCode::kNotFound:
      return WireStatus::kNotFound;
    case StatusCode::kCorruption:
      return WireStatus::kCorrupt;
    case StatusCode::kNoSpace:
    case StatusCode::kResourceExhausted:
      return WireStatus::kNoSpace;
    case StatusCode::kInvalidArgument:
      return WireStatus::kInvalid;
    default:
      return WireStatus::kError;
  }
}

namespace {

// Compares without an early exit, so the time taken does not tell how much of a secret matched.
bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() != b.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0, y = i < b.size() ? b[i] : 0;
    diff |= unsigned(x ^ y);
  }
  return diff == 0;
}

}  // namespace

Connection::Connection(ServerShared& shared, UnixSocket socket)
    : shared_(shared), socket_(std::move(socket)), lease_timer_(socket_.get_executor()) {
  shared_.metrics->connections.fetch_add(1, std::memory_order_relaxed);
}

Connection::~Connection() {
  Shutdown();
  shared_.metrics->connections.fetch_sub(1, std::memory_order_relaxed);
}

void Connection::Start() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    // The HELLO deadline, on the lease timer (no lease exists before HELLO; arming the timer for
    // a lease later cancels this wait).
    self->lease_timer_.expires_after(
        std::chrono::milliseconds(self->shared_.config->hello_timeout_ms));
    self->lease_timer_.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->closed_ || self->tenant_) return;
      spdlog::info("connection: no HELLO within {} ms, closed",
                   self->shared_.config->hello_timeout_ms);
      self->shared_.metrics->handshakes_failed.fetch_add(1, std::memory_order_relaxed);
      self->Shutdown();
    });
    self->ReadHeader();
  });
}

void Connection::Close() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Shutdown(); });
}

void Connection::Shutdown() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  lease_timer_.cancel();
  socket_.shutdown(UnixSocket::shutdown_both, ec);
  socket_.close(ec);
  if (!tenant_) return;
  TenantMetrics& m = *tenant_->metrics;
  std::vector<uint64_t> pins;
  pins.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) pins.push_back(lease.pin);
  tenant_->store->Release(pins);
  for (const auto& [id, r] : reservations_) tenant_->store->Abort(r.res);
  m.leases_reclaimed.fetch_add(pins.size(), std::memory_order_relaxed);
  m.leases_held.fetch_sub(int64_t(pins.size()), std::memory_order_relaxed);
  m.reservations_reclaimed.fetch_add(reservations_.size(), std::memory_order_relaxed);
  m.reservations_held.fetch_sub(int64_t(reservations_.size()), std::memory_order_relaxed);
  m.connections.fetch_sub(1, std::memory_order_relaxed);
  if (!pins.empty() || !reservations_.empty())
    spdlog::debug("tenant {}: connection ended holding {} leases and {} reservations (reclaimed)",
                  tenant_->config.name, pins.size(), reservations_.size());
  leases_.clear();
  expiries_.clear();
  reservations_.clear();
}

void Connection::ReadHeader() {
  if (closed_) return;
  if (in_end_ - in_pos_ >= wire::kHeaderSize) {
    // DecodeHeader refuses unknown verbs, set flags and bodies over kMaxBody.
    auto h = wire::DecodeHeader(
        std::span<const std::byte, wire::kHeaderSize>(in_.data() + in_pos_, wire::kHeaderSize));
    if (!h.ok()) return FrameError(WireStatus::kFrame, h.status().message(), 0, 0);
    in_pos_ += wire::kHeaderSize;
    header_ = *h;
    return ReadBody();
  }
  // Keep the partial header, read more behind it.
  if (in_.empty()) in_.resize(kInBytes);
  std::memmove(in_.data(), in_.data() + in_pos_, in_end_ - in_pos_);
  in_end_ -= in_pos_;
  in_pos_ = 0;
  socket_.async_read_some(
      asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        if (ec) return self->Shutdown();  // EOF, reset, or closed by Stop
        self->in_end_ += n;
        self->ReadHeader();
      });
}

void Connection::ReadBody() {
  body_.resize(header_.body_len);
  const size_t have = std::min<size_t>(in_end_ - in_pos_, body_.size());
  if (have) std::memcpy(body_.data(), in_.data() + in_pos_, have);
  in_pos_ += have;
  if (have == body_.size()) {
    started_ = Clock::now();
    return Dispatch();
  }
  asio::async_read(socket_, asio::buffer(body_.data() + have, body_.size() - have),
                   [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                     if (ec) return self->Shutdown();  // a truncated frame: nothing to answer
                     self->started_ = Clock::now();
                     self->Dispatch();
                   });
}

void Connection::Reply(bool close_after) {
  asio::async_write(
      socket_, asio::buffer(out_),
      [self = shared_from_this(), close_after](const boost::system::error_code& ec, size_t) {
        if (ec || close_after) return self->Shutdown();
        self->ReadHeader();
      });
}

void Connection::FrameError(WireStatus status, const std::string& message, uint64_t id,
                            uint16_t opcode) {
  shared_.metrics->frames_rejected.fetch_add(1, std::memory_order_relaxed);
  if (status == WireStatus::kAuth || status == WireStatus::kVersion ||
      status == WireStatus::kLayout)
    shared_.metrics->handshakes_failed.fetch_add(1, std::memory_order_relaxed);
  if (tenant_ && opcode < kNumVerbs)
    tenant_->metrics->errors[opcode].fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("connection: closing after {} ({})", wire::WireStatusName(status), message);
  out_.clear();
  // A header that could not be decoded has no verb to echo: the answer is a PING response with
  // request id 0, which every client can decode.
  if (!wire::IsKnownVerb(opcode)) opcode = uint16_t(Verb::kPing);
  wire::EncodeError(id, static_cast<Verb>(opcode),
                    wire::ResponseHead{status, message.substr(0, 1024)}, out_);
  Reply(/*close_after=*/true);
}

void Connection::Finish(Verb verb, bool frame_error) {
  if (tenant_) {
    TenantMetrics& m = *tenant_->metrics;
    const int v = int(verb);
    m.requests[v].fetch_add(1, std::memory_order_relaxed);
    if (frame_error) m.errors[v].fetch_add(1, std::memory_order_relaxed);
    m.latency[v].Observe(std::chrono::duration<double>(Clock::now() - started_).count());
  }
  Reply(/*close_after=*/false);
}

void Connection::Dispatch() {
  const Verb verb = static_cast<Verb>(header_.opcode);
  out_.clear();
  if (shared_.stopping.load(std::memory_order_relaxed)) {
    wire::EncodeError(header_.request_id, verb, {WireStatus::kShutdown, "server is stopping"},
                      out_);
    return Reply(/*close_after=*/true);
  }
  if (verb == Verb::kHello) return OnHello();
  if (!tenant_)
    return FrameError(WireStatus::kFrame, "a request before HELLO", header_.request_id,
                      header_.opcode);
  switch (verb) {
    case Verb::kLookup:
      return OnLookup();
    case Verb::kGet:
      return OnGet();
    case Verb::kPrefetch:
      return OnPrefetch();
    case Verb::kReserve:
      return OnReserve();
    case Verb::kPut:
      return OnPut();
    case Verb::kCommit:
    case Verb::kAbort:
    case Verb::kRelease:
      return OnIds(verb);
    case Verb::kDelete:
      return OnDelete();
    case Verb::kFlush:
      return OnFlush();
    case Verb::kStats:
      return OnStats();
    case Verb::kPing: {
      Status s = wire::DecodeEmpty(body_);
      if (!s.ok())
        return FrameError(WireStatus::kFrame, s.message(), header_.request_id, header_.opcode);
      wire::EncodeOkEmpty(header_.request_id, verb, out_);
      return Finish(verb, false);
    }
    case Verb::kHello:
      break;
  }
  FrameError(WireStatus::kFrame, "unknown verb", header_.request_id, header_.opcode);
}

// ---- HELLO ----

Status Connection::CheckCredential(const wire::HelloRequest& h, std::string* why) {
  const TenantConfig& t = tenant_->config;
  if (!t.secret.empty() && !ConstantTimeEqual(h.secret, t.secret)) {
    *why = "wrong secret";
    return Status::InvalidArgument(*why);
  }
  if (!t.uids.empty() || !t.gids.empty()) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      *why = std::string("SO_PEERCRED: ") + std::strerror(errno);
      return Status::IoError(*why);
    }
    const bool uid_ok =
        t.uids.empty() || std::find(t.uids.begin(), t.uids.end(), cred.uid) != t.uids.end();
    const bool gid_ok =
        t.gids.empty() || std::find(t.gids.begin(), t.gids.end(), cred.gid) != t.gids.end();
    if (!uid_ok || !gid_ok) {
      *why = "peer uid " + std::to_string(cred.uid) + " gid " + std::to_string(cred.gid) +
             " is not allowed";
      return Status::InvalidArgument(*why);
    }
  }
  return Status::Ok();
}

void Connection::OnHello() {
  const uint64_t id = header_.request_id;
  if (tenant_) return FrameError(WireStatus::kFrame, "a second HELLO", id, header_.opcode);
  auto h = wire::DecodeHello(body_);
  if (!h.ok()) return FrameError(WireStatus::kFrame, h.status().message(), id, header_.opcode);
  if (h->version != wire::kWireVersion)
    return FrameError(WireStatus::kVersion,
                      "protocol version " + std::to_string(h->version) + " is not supported (1)",
                      id, header_.opcode);
  if (h->block_tokens == 0)
    return FrameError(WireStatus::kLayout, "block_tokens must be > 0", id, header_.opcode);
  TenantState* t = shared_.FindTenant(h->tenant);
  if (!t) return FrameError(WireStatus::kAuth, "authentication failed", id, header_.opcode);
  tenant_ = t;
  std::string why;
  if (!CheckCredential(*h, &why).ok()) {
    t->metrics->auth_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("tenant {}: HELLO refused: {}", t->config.name, why);
    tenant_ = nullptr;
    // The same answer for an unknown tenant and a wrong credential: no probing for names.
    return FrameError(WireStatus::kAuth, "authentication failed", id, header_.opcode);
  }
  fingerprint_ = h->fingerprint;
  const bool read_only = h->flags & wire::kHelloReadOnly;
  wire::HelloResponse r;
  const bool staged = t->store->arena_sealed();
  r.capabilities = wire::kCapPrefetch | wire::kCapLeaseTimeout |
                   (t->has_nvme ? wire::kCapNvme : 0) | (staged ? wire::kCapStaging : 0) |
                   (staged && !read_only ? wire::kCapPut : 0);
  r.server_epoch = shared_.epoch;
  r.arena_bytes = t->store->arena_bytes();
  r.root = RootKey(std::as_bytes(std::span(t->config.key_secret)), h->fingerprint);
  r.swa_policy = t->config.swa_policy;
  out_.clear();
  wire::EncodeHelloResponse(id, r, out_);
  // The descriptor travels with the first byte of the response, so it is sent here, directly on
  // the socket; nothing else is being written on this connection now.
  int fd = t->store->arena_fd();
  int ro_fd = -1;
  if (staged && !read_only) {
    // The connection's own staging region: what it writes there reaches the arena only through
    // COMMIT's copy. Pages are taken as the client writes them.
    auto staging = cachestore::HostArena::Create(t->config.staging_bytes);
    if (!staging.ok()) {
      tenant_ = nullptr;
      out_.clear();
      wire::EncodeError(id, Verb::kHello,
                        {WireStatus::kNoSpace, "no staging region: " + staging.status().message()},
                        out_);
      return Reply(true);
    }
    staging_ = std::move(*staging);
  }
  if (read_only) {
    ro_fd = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
    if (ro_fd < 0) {
      tenant_ = nullptr;
      out_.clear();
      wire::EncodeError(id, Verb::kHello, {WireStatus::kError, "cannot open a read-only arena"},
                        out_);
      return Reply(true);
    }
    fd = ro_fd;
  }
  msghdr msg{};
  iovec iov{out_.data(), out_.size()};
  const int fds[2] = {fd, staging_ ? staging_->fd() : -1};
  const size_t nfds = staging_ ? 2 : 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))] = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
  std::memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
  ssize_t n = -1;
  for (int tries = 0; tries < 50; ++tries) {
    n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL);
    if (n >= 0 || (errno != EAGAIN && errno != EINTR)) break;
    pollfd p{socket_.native_handle(), POLLOUT, 0};
    ::poll(&p, 1, 20);
  }
  if (ro_fd >= 0) ::close(ro_fd);
  if (n < 0) {
    spdlog::info("tenant {}: sending the HELLO response failed: {}", t->config.name,
                 std::strerror(errno));
    tenant_ = nullptr;
    return Shutdown();
  }
  t->metrics->connections.fetch_add(1, std::memory_order_relaxed);
  // Reply sends what sendmsg did not (usually nothing).
  out_.erase(out_.begin(), out_.begin() + n);
  Finish(Verb::kHello, false);
}

}  // namespace strata::server
