// strata::Client against a scripted fake server (a thread speaking wire.h on a Unix socket):
// the answers a real server should never give, so the client's defences are tested without one.
// Offsets outside the arena are misses (never pointers outside the mapping) and their leases
// are handed back; a server that stops answering fails the call within its deadline; a server
// that goes away is reconnected to, with views of the old arena still readable until released.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "strata/client.h"
#include "strata/wire.h"
#include "tests/testing/temp_dir.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;
using wire::Verb;
using wire::WireStatus;

constexpr uint64_t kArena = 1 << 20;
constexpr uint64_t kFingerprint = 0x1234;

bool ReadAll(int fd, void* p, size_t n) {
  auto* b = static_cast<char*>(p);
  while (n) {
    const ssize_t r = ::read(fd, b, n);
    if (r <= 0) return false;
    b += r, n -= size_t(r);
  }
  return true;
}

bool WriteAll(int fd, const std::vector<std::byte>& v) {
  size_t done = 0;
  while (done < v.size()) {
    const ssize_t w = ::send(fd, v.data() + done, v.size() - done, MSG_NOSIGNAL);
    if (w <= 0) return false;
    done += size_t(w);
  }
  return true;
}

// One connection at a time; each gets a fresh arena (a memfd) whose byte i is (i + generation).
class FakeServer {
 public:
  // Answers a request (header + body) by appending a response to `out`; false: close the
  // connection instead; nothing appended: do not answer.
  using Handler = std::function<bool(const wire::FrameHeader&, std::span<const std::byte> body,
                                     std::vector<std::byte>& out)>;

  FakeServer(const std::string& path, Handler h) : path_(path), handler_(std::move(h)) {
    listen_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_, 8), 0);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_);
    ::unlink(path_.c_str());
  }
  int connections() const { return connections_; }
  std::atomic<int> releases{0};  // lease ids received in RELEASE frames

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{listen_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++connections_;
      Serve(c);
      ::close(c);
    }
  }
  void Serve(int c) {
    while (!stop_) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      std::byte head[wire::kHeaderSize];
      if (!ReadAll(c, head, sizeof head)) return;
      auto h = wire::DecodeHeader(head);
      if (!h.ok()) return;
      std::vector<std::byte> body(h->body_len);
      if (!ReadAll(c, body.data(), body.size())) return;
      if (h->opcode == uint16_t(Verb::kHello)) {
        if (!Hello(c, h->request_id)) return;
        continue;
      }
      if (h->opcode == uint16_t(Verb::kRelease))
        if (auto ids = wire::DecodeIds(body); ids.ok()) releases += int(ids->ids.size());
      std::vector<std::byte> out;
      if (!handler_(*h, body, out)) return;
      if (!out.empty() && !WriteAll(c, out)) return;
    }
  }
  bool Hello(int c, uint64_t id) {
    const int mfd = ::memfd_create("fake-arena", MFD_CLOEXEC);
    if (mfd < 0 || ::ftruncate(mfd, kArena) != 0) return false;
    auto* base =
        static_cast<uint8_t*>(::mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0));
    for (uint64_t i = 0; i < kArena; ++i) base[i] = uint8_t(i + uint64_t(connections_));
    ::munmap(base, kArena);
    wire::HelloResponse r;
    r.server_epoch = uint64_t(connections_);
    r.arena_bytes = kArena;
    r.root = BlockKey{7, 8};
    r.max_batch = 4;  // small, so batches are split
    std::vector<std::byte> out;
    wire::EncodeHelloResponse(id, r, out);
    iovec iov{out.data(), out.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &mfd, sizeof mfd);
    const bool ok = ::sendmsg(c, &msg, MSG_NOSIGNAL) == ssize_t(out.size());
    ::close(mfd);
    return ok;
  }

  std::string path_;
  Handler handler_;
  int listen_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

ClientOptions Options(const std::string& path, int deadline_ms = 2000) {
  ClientOptions o;
  o.socket_path = path;
  o.fingerprint = kFingerprint;
  o.block_tokens = 256;
  o.deadline = std::chrono::milliseconds(deadline_ms);
  return o;
}

// GET answered with item i of every request at offsets[i % offsets.size()], sizes likewise.
FakeServer::Handler GetAnswers(std::vector<std::pair<uint64_t, uint64_t>> spans) {
  return [spans](const wire::FrameHeader& h, std::span<const std::byte> body,
                 std::vector<std::byte>& out) {
    if (h.opcode == uint16_t(Verb::kGet)) {
      auto g = wire::DecodeGet(body);
      if (!g.ok()) return false;
      wire::GetResponse r;
      uint64_t lease = 100;
      for (size_t k = 0; k < g->keys.size(); ++k)
        for (Family f : kAllFamilies) {
          if (!FamilyMask(g->families).Has(f)) continue;
          const auto& s = spans[r.items.size() % spans.size()];
          r.items.push_back(
              {WireStatus::kOk, uint8_t(Tier::kHost), uint8_t(f), s.first, s.second, ++lease});
        }
      wire::EncodeGetResponse(h.request_id, r, out);
      return true;
    }
    if (h.opcode == uint16_t(Verb::kRelease)) {
      auto ids = wire::DecodeIds(body);
      if (!ids.ok()) return false;
      wire::EncodeStatusList(h.request_id, Verb::kRelease,
                             {std::vector<WireStatus>(ids->ids.size(), WireStatus::kOk)}, out);
      return true;
    }
    if (h.opcode == uint16_t(Verb::kPing)) {
      wire::EncodeOkEmpty(h.request_id, Verb::kPing, out);
      return true;
    }
    return false;
  };
}

TEST(ClientFakeServerTest, OffsetsOutsideTheArenaAreMissesAndTheirLeasesGoBack) {
  testing::TempDir dir;
  const std::string path = dir.Sub("s.sock");
  FakeServer server(path, GetAnswers({{4096, 100},
                                      {kArena - 10, 100},  // runs past the end
                                      {~0ull - 5, 10},     // offset + size overflows
                                      {kArena, 0}}));      // empty, at the very end: fine
  auto c = Client::Connect(Options(path));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->root(), (BlockKey{7, 8}));
  const std::vector<BlockKey> keys = {{1, 1}, {2, 2}};
  auto views = (*c)->Get(1, kFingerprint, keys, {Family::kCsa, Family::kHca});
  ASSERT_TRUE(views.ok());
  ASSERT_EQ(views->size(), 4u);
  const auto& v = *views;
  ASSERT_TRUE(v[0].found());
  EXPECT_EQ(v[0].key.family, Family::kCsa);
  EXPECT_EQ(v[0].served_from, Tier::kHost);
  EXPECT_EQ(v[0].size, 100u);
  for (size_t i = 0; i < 100; ++i) EXPECT_EQ(uint8_t(v[0].data[i]), uint8_t(4096 + i + 1));
  EXPECT_FALSE(v[1].found());
  EXPECT_FALSE(v[2].found());
  EXPECT_EQ(v[1].pin, 0u);
  ASSERT_TRUE(v[3].found());
  EXPECT_EQ(v[3].size, 0u);
  EXPECT_EQ(v[3].key.block, (BlockKey{2, 2}));
  EXPECT_EQ(v[3].key.family, Family::kHca);
  EXPECT_EQ(server.releases.load(), 2);  // the refused items' leases
  (*c)->Release(std::vector<uint64_t>{v[0].pin, v[3].pin});
  EXPECT_EQ(server.releases.load(), 4);
  // (This fake does not answer STATS: it closes the connection, the client counts anyway.)
  uint64_t bad = 0;
  (*c)->VisitCounters([&](std::string_view n, uint64_t x) {
    if (n == "client.bad_items") bad = x;
  });
  EXPECT_EQ(bad, 2u);
}

TEST(ClientFakeServerTest, BatchesAreSplitByTheServersLimit) {
  testing::TempDir dir;
  const std::string path = dir.Sub("s.sock");
  std::atomic<int> gets{0};
  auto answers = GetAnswers({{0, 8}});
  FakeServer server(path, [&](const wire::FrameHeader& h, std::span<const std::byte> b,
                              std::vector<std::byte>& out) {
    if (h.opcode == uint16_t(Verb::kGet)) {
      auto g = wire::DecodeGet(b);
      EXPECT_LE(g->keys.size() * 2, 4u);  // max_batch 4 items of 2 families
      ++gets;
    }
    return answers(h, b, out);
  });
  auto c = Client::Connect(Options(path));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::vector<BlockKey> keys;
  for (uint64_t i = 0; i < 9; ++i) keys.push_back({i, i});
  auto views = (*c)->Get(1, kFingerprint, keys, {Family::kCsa, Family::kSwa});
  ASSERT_TRUE(views.ok());
  ASSERT_EQ(views->size(), 18u);
  for (size_t i = 0; i < 18; ++i) {
    EXPECT_TRUE((*views)[i].found()) << i;
    EXPECT_EQ((*views)[i].key.block, keys[i / 2]);
  }
  EXPECT_EQ(gets.load(), 5);
  std::vector<uint64_t> pins;
  for (const auto& v : *views) pins.push_back(v.pin);
  (*c)->Release(pins);
  EXPECT_EQ(server.releases.load(), 18);
}

TEST(ClientFakeServerTest, ASilentServerFailsTheCallWithinTheDeadline) {
  testing::TempDir dir;
  const std::string path = dir.Sub("s.sock");
  FakeServer server(path, [](const wire::FrameHeader&, std::span<const std::byte>,
                             std::vector<std::byte>&) { return true; });  // never answers
  auto c = Client::Connect(Options(path, 300));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const auto t = Clock::now();
  const std::vector<BlockKey> keys = {{1, 1}};
  auto views = (*c)->Get(1, kFingerprint, keys, {Family::kCsa});
  const double s = std::chrono::duration<double>(Clock::now() - t).count();
  ASSERT_TRUE(views.ok());
  EXPECT_FALSE((*views)[0].found());  // a miss
  EXPECT_GE(s, 0.29);
  EXPECT_LT(s, 1.5);
  auto lr = (*c)->Lookup(1, kFingerprint, keys, {Family::kCsa});
  ASSERT_TRUE(lr.ok());
  EXPECT_EQ(lr->hit_blocks, 0u);
  EXPECT_FALSE((*c)->Ping().ok());
}

TEST(ClientFakeServerTest, ReconnectsAndKeepsOldViewsMappedUntilReleased) {
  testing::TempDir dir;
  const std::string path = dir.Sub("s.sock");
  std::atomic<bool> hang_up{false};
  auto answers = GetAnswers({{64, 32}});
  FakeServer server(path, [&](const wire::FrameHeader& h, std::span<const std::byte> b,
                              std::vector<std::byte>& out) {
    if (hang_up.exchange(false)) return false;  // the "restart": close the connection
    return answers(h, b, out);
  });
  auto c = Client::Connect(Options(path));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const std::vector<BlockKey> keys = {{1, 1}};
  auto old = (*c)->Get(1, kFingerprint, keys, {Family::kCsa});
  ASSERT_TRUE(old.ok() && (*old)[0].found());
  EXPECT_EQ(uint8_t((*old)[0].data[0]), uint8_t(64 + 1));
  hang_up = true;
  EXPECT_FALSE((*c)->Ping().ok());  // the call in flight fails
  const int releases_before = server.releases.load();
  auto fresh = (*c)->Get(1, kFingerprint, keys, {Family::kCsa});  // the next one reconnects
  ASSERT_TRUE(fresh.ok() && (*fresh)[0].found());
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ((*c)->server_epoch(), 2u);
  EXPECT_EQ(uint8_t((*fresh)[0].data[0]), uint8_t(64 + 2));  // the new arena
  EXPECT_EQ(uint8_t((*old)[0].data[0]), uint8_t(64 + 1));    // the old one, still mapped
  // The old lease died with its connection: released locally, nothing sent.
  (*c)->Release(std::vector<uint64_t>{(*old)[0].pin});
  EXPECT_EQ(server.releases.load(), releases_before);
  (*c)->Release(std::vector<uint64_t>{(*fresh)[0].pin});
  EXPECT_EQ(server.releases.load(), releases_before + 1);
}

TEST(ClientFakeServerTest, NothingListeningIsAnErrorAtOnce) {
  testing::TempDir dir;
  const auto t = Clock::now();
  auto c = Client::Connect(Options(dir.Sub("none.sock")));
  EXPECT_FALSE(c.ok());
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t).count(), 1.0);
}

}  // namespace
}  // namespace strata
