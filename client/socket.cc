#include "client/socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace strata::client_internal {
namespace {

using Clock = std::chrono::steady_clock;

Status Errno(const std::string& what, int err) {
  return Status::IoError(what + ": " + std::strerror(err));
}

// Milliseconds left until `deadline`, rounded up (poll's unit), at least 0.
int MillisLeft(Deadline deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  return int(
      std::min<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), 1 << 30));
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

void UniqueFd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<Socket> Socket::Connect(const std::string& path, Deadline deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument("socket path '" + path + "' is empty or too long");
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Errno("socket", errno);
  // A Unix socket connects at once or fails; with a full listen backlog a non-blocking connect
  // says EAGAIN (not EINPROGRESS), so that case is retried with a short sleep until the deadline.
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
      return Socket(std::move(fd));
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EINPROGRESS) {
      Socket s(std::move(fd));
      STRATA_RETURN_IF_ERROR(s.Wait(POLLOUT, deadline, "connect"));
      int so_error = 0;
      socklen_t len = sizeof so_error;
      if (::getsockopt(s.fd_.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
        return Errno("connect " + path, errno);
      if (so_error != 0) return Errno("connect " + path, so_error);
      return s;
    }
    if (err != EAGAIN) return Errno("connect " + path, err);
    if (Clock::now() + pause >= deadline)
      return Status::IoError("connect " + path + ": deadline passed (backlog full)");
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20000));
  }
}

Status Socket::Wait(short events, Deadline deadline, const char* what) const {
  for (;;) {
    pollfd p{fd_.get(), events, 0};
    const int n = ::poll(&p, 1, MillisLeft(deadline));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(std::string("poll (") + what + ")", errno);
    }
    if (n == 0) return Status::IoError(std::string(what) + ": deadline passed");
    // POLLHUP / POLLERR: let the read or write report what happened.
    return Status::Ok();
  }
}

Status Socket::SendAll(std::span<const std::byte> bytes, Deadline deadline) {
  if (!connected()) return Status::IoError("send: not connected");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += size_t(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      STRATA_RETURN_IF_ERROR(Wait(POLLOUT, deadline, "send"));
      continue;
    }
    return Errno("send", n < 0 ? errno : EPIPE);
  }
  return Status::Ok();
}

Result<size_t> Socket::RecvSome(std::span<std::byte> into, Deadline deadline,
                                std::vector<UniqueFd>* fds) {
  const Deadline spin_until = spin_.count() ? Clock::now() + spin_ : Deadline{};
  for (;;) {
    iovec iov{into.data(), into.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (Clock::now() < spin_until) continue;  // spinning: try again without sleeping
      STRATA_RETURN_IF_ERROR(Wait(POLLIN, deadline, "receive"));
      continue;
    }
    if (n < 0) return Errno("receive", errno);
    // Every descriptor received is owned at once, so none leaks on any path below.
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        UniqueFd owned(fd);
        if (fds) fds->push_back(std::move(owned));
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) return Status::IoError("receive: descriptors truncated");
    if (n == 0) return Status::IoError("receive: the server closed the connection");
    return size_t(n);
  }
}

Status Socket::RecvExact(std::span<std::byte> out, Deadline deadline, std::vector<UniqueFd>* fds) {
  size_t done = 0;
  while (done < out.size()) {
    if (rpos_ < rend_) {  // what an earlier read brought along
      const size_t n = std::min(rend_ - rpos_, out.size() - done);
      std::memcpy(out.data() + done, rbuf_.data() + rpos_, n);
      rpos_ += n, done += n;
      continue;
    }
    rpos_ = rend_ = 0;
    if (out.size() - done >= kBufferBytes) {  // large: straight into place
      STRATA_ASSIGN_OR_RETURN(size_t n, RecvSome(out.subspan(done), deadline, fds));
      done += n;
      continue;
    }
    if (rbuf_.empty()) rbuf_.resize(kBufferBytes);
    STRATA_ASSIGN_OR_RETURN(rend_, RecvSome(rbuf_, deadline, fds));
  }
  return Status::Ok();
}

Result<Frame> Socket::RecvFrame(Deadline deadline, uint32_t max_body, std::vector<UniqueFd>* fds) {
  if (!connected()) return Status::IoError("receive: not connected");
  std::byte head[wire::kHeaderSize];
  STRATA_RETURN_IF_ERROR(RecvExact(head, deadline, fds));
  auto h = wire::DecodeHeader(head);
  if (!h.ok()) return h.status().WithContext("response header");
  if (h->body_len > max_body)
    return Status::IoError("response of " + std::to_string(h->body_len) +
                           " bytes is over the limit of " + std::to_string(max_body));
  Frame f{*h, std::vector<std::byte>(h->body_len)};
  STRATA_RETURN_IF_ERROR(RecvExact(f.body, deadline, fds));
  return f;
}

bool Socket::Stale() const {
  if (!connected() || rpos_ < rend_) return true;
  pollfd p{fd_.get(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  // Readable while no response is due: EOF, a reset, or garbage. Any of them ends it.
  return n != 0;
}

}  // namespace strata::client_internal
