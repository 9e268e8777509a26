// The client's transport: one non-blocking Unix stream socket to strata-server where every
// connect, send and receive is bounded by a deadline (poll before each read and write), and
// descriptors passed with SCM_RIGHTS are collected. Knows frames only as headers and bodies;
// the verbs' payloads are wire.h's business.
// Thread safety: none; the Client serialises its calls on one socket.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "strata/status.h"
#include "strata/wire.h"

namespace strata::client_internal {

using Deadline = std::chrono::steady_clock::time_point;

// A descriptor closed when it goes out of scope.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset();

 private:
  int fd_ = -1;
};

// One response frame: its header and its whole body.
struct Frame {
  wire::FrameHeader header;
  std::vector<std::byte> body;
};

class Socket {
 public:
  // Connects to `path`. Fails with IoError when nothing listens there, or when the deadline
  // passes first (the server's backlog stays full, e.g. a stopped server).
  static Result<Socket> Connect(const std::string& path, Deadline deadline);

  Socket() = default;
  Socket(Socket&&) = default;
  Socket& operator=(Socket&&) = default;
  bool connected() const { return fd_.get() >= 0; }
  // Before sleeping in poll for a response, keep trying to read for this long: a response that
  // comes within it is read without the wake-up of a sleeping thread (0: sleep at once).
  void set_spin(std::chrono::microseconds spin) { spin_ = spin; }
  void Close() {
    fd_.reset();
    rpos_ = rend_ = 0;
  }

  // Writes every byte of `bytes` (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
  Status SendAll(std::span<const std::byte> bytes, Deadline deadline);
  // Reads one frame. Descriptors passed with it are appended to `fds` when given, else closed.
  // The body may be at most `max_body` bytes.
  Result<Frame> RecvFrame(Deadline deadline, uint32_t max_body, std::vector<UniqueFd>* fds);
  // True when the idle connection cannot carry a request: the peer closed it, reset it, or sent
  // bytes nobody asked for (also bytes already received and not yet read). One poll with no wait.
  bool Stale() const;

 private:
  explicit Socket(UniqueFd fd) : fd_(std::move(fd)) {}
  Status RecvExact(std::span<std::byte> out, Deadline deadline, std::vector<UniqueFd>* fds);
  // One recvmsg into `into` (waiting first when nothing has arrived); the bytes it got.
  Result<size_t> RecvSome(std::span<std::byte> into, Deadline deadline, std::vector<UniqueFd>* fds);
  // Waits until the socket is ready for `events`; IoError on timeout or a poll error.
  Status Wait(short events, Deadline deadline, const char* what) const;

  UniqueFd fd_;
  std::chrono::microseconds spin_{0};  // see set_spin
  // Bytes received and not yet read (rbuf_[rpos_, rend_)): a small response's header and body
  // come in one recvmsg instead of two; bodies larger than the buffer are read in place.
  static constexpr size_t kBufferBytes = 64 << 10;
  std::vector<std::byte> rbuf_;
  size_t rpos_ = 0, rend_ = 0;
};

}  // namespace strata::client_internal
