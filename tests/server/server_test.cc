// strata-server against a real process over real sockets, speaking the wire protocol through the
// codec of include/strata/wire.h: handshake and credentials, the shared-arena data plane, tenant
// isolation and quotas, SWA policies, leases, corruption after Commit, bad input, and a restart.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "strata/keys.h"
#include "strata/store.h"
#include "strata/wire.h"
#include "tests/testing/server_process.h"

namespace strata {
namespace {

using testing::ServerProcess;
using wire::Verb;
using wire::WireStatus;

constexpr uint64_t kFp = 0x5eed'f00d'1234'5678ull;
constexpr NamespaceId kNs = 7;

// One client connection: frames out, frames (and a passed descriptor) in, every receive bounded
// by a timeout so that nothing hangs.
class RawConn {
 public:
  struct Frame {
    wire::FrameHeader header;
    std::vector<std::byte> body;
    int fd = -1;      // the first descriptor passed with the frame, or -1
    int second = -1;  // a second one (HELLO: the staging region), or -1
  };

  explicit RawConn(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  void Close() {
    ::close(fd_);
    fd_ = -1;
  }

  bool Send(const std::vector<std::byte>& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += size_t(n);
    }
    return true;
  }

  // One response frame, or nullopt on EOF, error or timeout.
  std::optional<Frame> Recv() {
    Frame f;
    std::array<std::byte, wire::kHeaderSize> hdr;
    int fds[2] = {-1, -1};
    if (!ReadFull(hdr.data(), hdr.size(), fds)) return std::nullopt;
    f.fd = fds[0], f.second = fds[1];
    auto h = wire::DecodeHeader(hdr);
    if (!h.ok()) return std::nullopt;
    f.header = *h;
    f.body.resize(h->body_len);
    if (!f.body.empty() && !ReadFull(f.body.data(), f.body.size(), nullptr)) return std::nullopt;
    return f;
  }

  // True when the server closed the connection (EOF) within the receive timeout.
  bool PeerClosed() {
    std::byte b;
    return ::recv(fd_, &b, 1, 0) == 0;
  }

 private:
  // Up to two passed descriptors go to passed_fds[0..1] when given, else they are closed.
  bool ReadFull(std::byte* p, size_t n, int* passed_fds) {
    size_t got = 0;
    while (got < n) {
      iovec iov{p + got, n - got};
      alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t r = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
      if (r <= 0) return false;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
          const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (passed_fds && i < 2)
              passed_fds[i] = fd;
            else
              ::close(fd);
          }
        }
      }
      got += size_t(r);
    }
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
};

// The head of a response; its payload in `payload`.
wire::ResponseHead Head(const RawConn::Frame& f, std::span<const std::byte>* payload) {
  auto h = wire::DecodeResponseHead(f.body, payload);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  return h.ok() ? *h : wire::ResponseHead{WireStatus::kError, "undecodable"};
}

// A handshaken connection with the tenant's arena mapped.
struct Session {
  std::unique_ptr<RawConn> conn;
  wire::HelloResponse hello;
  std::byte* arena = nullptr;
  uint64_t next_id = 1;
  int arena_fd = -1;
  // The connection's staging region (kCapStaging), where RESERVE's offsets point; null: writes
  // go to the arena itself.
  std::byte* staging = nullptr;
  uint64_t staging_bytes = 0;
  int staging_fd = -1;

  ~Session() {
    if (arena) ::munmap(arena, hello.arena_bytes);
    if (arena_fd >= 0) ::close(arena_fd);
    if (staging) ::munmap(staging, staging_bytes);
    if (staging_fd >= 0) ::close(staging_fd);
  }
  // Where a reservation's payload is written.
  std::byte* Writable(uint64_t offset) const { return (staging ? staging : arena) + offset; }

  RawConn::Frame Call(const std::vector<std::byte>& frame) {
    EXPECT_TRUE(conn->Send(frame));
    auto f = conn->Recv();
    EXPECT_TRUE(f.has_value()) << "no response";
    return f.value_or(RawConn::Frame{});
  }

  wire::LookupResponse Lookup(const std::vector<BlockKey>& keys, uint8_t required,
                              WireStatus want = WireStatus::kOk, uint64_t fp = kFp,
                              NamespaceId ns = kNs) {
    std::vector<std::byte> out;
    wire::EncodeLookup(next_id++, {ns, fp, required, keys}, out);
    auto f = Call(out);
    std::span<const std::byte> payload;
    auto head = Head(f, &payload);
    EXPECT_EQ(head.status, want) << head.message;
    if (head.status != WireStatus::kOk) return {};
    auto r = wire::DecodeLookupResponse(payload);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : wire::LookupResponse{};
  }

  std::vector<wire::GetItem> Get(const std::vector<BlockKey>& keys, uint8_t families,
                                 uint32_t lease_ms = 0, NamespaceId ns = kNs) {
    std::vector<std::byte> out;
    wire::EncodeGet(next_id++, Verb::kGet, {ns, kFp, families, lease_ms, keys}, out);
    auto f = Call(out);
    std::span<const std::byte> payload;
    auto head = Head(f, &payload);
    EXPECT_EQ(head.status, WireStatus::kOk) << head.message;
    auto r = wire::DecodeGetResponse(payload);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->items : std::vector<wire::GetItem>{};
  }

  std::vector<wire::ReserveResult> Reserve(const std::vector<wire::ReserveItem>& items) {
    std::vector<std::byte> out;
    wire::EncodeReserve(next_id++, {items}, out);
    auto f = Call(out);
    std::span<const std::byte> payload;
    auto head = Head(f, &payload);
    EXPECT_EQ(head.status, WireStatus::kOk) << head.message;
    auto r = wire::DecodeReserveResponse(payload);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->items : std::vector<wire::ReserveResult>{};
  }

  std::vector<WireStatus> Ids(Verb verb, const std::vector<uint64_t>& ids) {
    std::vector<std::byte> out;
    wire::EncodeIds(next_id++, verb, {ids}, out);
    auto f = Call(out);
    std::span<const std::byte> payload;
    auto head = Head(f, &payload);
    EXPECT_EQ(head.status, WireStatus::kOk) << head.message;
    auto r = wire::DecodeStatusList(payload);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->statuses : std::vector<WireStatus>{};
  }

  // PUT (kCapPut): the items' payloads are already in the staging region at their offsets. The
  // frame's status in `frame` (kOk: then a status per item).
  std::vector<WireStatus> PutStaged(const std::vector<wire::PutItem>& items,
                                    WireStatus* frame = nullptr) {
    std::vector<std::byte> out;
    wire::EncodePut(next_id++, {items}, out);
    auto f = Call(out);
    std::span<const std::byte> payload;
    auto head = Head(f, &payload);
    if (frame) *frame = head.status;
    if (head.status != WireStatus::kOk) return {};
    auto r = wire::DecodeStatusList(payload);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->statuses : std::vector<WireStatus>{};
  }

  WireStatus Simple(Verb verb, std::optional<NamespaceId> ns = std::nullopt) {
    std::vector<std::byte> out;
    if (ns)
      wire::EncodeDelete(next_id++, {*ns}, out);
    else
      wire::EncodeEmpty(next_id++, verb, out);
    auto f = Call(out);
    std::span<const std::byte> payload;
    return Head(f, &payload).status;
  }

  std::map<std::string, uint64_t> Stats() {
    std::vector<std::byte> out;
    wire::EncodeEmpty(next_id++, Verb::kStats, out);
    auto f = Call(out);
    std::span<const std::byte> payload;
    auto head = Head(f, &payload);
    EXPECT_EQ(head.status, WireStatus::kOk);
    auto r = wire::DecodeStatsResponse(payload);
    EXPECT_TRUE(r.ok());
    std::map<std::string, uint64_t> m;
    if (r.ok())
      for (auto& [k, v] : r->counters) m[k] = v;
    return m;
  }

  // Reserve, write `payload` into the arena, Commit: the commit's status.
  WireStatus Put(const BlockKey& key, Family family, const std::vector<std::byte>& payload,
                 NamespaceId ns = kNs) {
    wire::ReserveItem it;
    it.ns = ns;
    it.key = key;
    it.fingerprint = kFp;
    it.size = payload.size();
    it.family = uint8_t(family);
    auto r = Reserve({it});
    if (r.size() != 1) return WireStatus::kError;
    if (r[0].status != WireStatus::kOk) return r[0].status;
    std::memcpy(Writable(r[0].offset), payload.data(), payload.size());
    auto c = Ids(Verb::kCommit, {r[0].reservation});
    return c.size() == 1 ? c[0] : WireStatus::kError;
  }

  std::vector<std::byte> Bytes(const wire::GetItem& it) const {
    return std::vector<std::byte>(arena + it.offset, arena + it.offset + it.size);
  }
};

// HELLO on a new connection. The status of the answer in `status`; the session when kOk.
std::unique_ptr<Session> Hello(const std::string& socket, const std::string& tenant,
                               const std::string& secret, WireStatus* status = nullptr,
                               uint32_t version = wire::kWireVersion, uint32_t flags = 0) {
  auto s = std::make_unique<Session>();
  s->conn = std::make_unique<RawConn>(socket);
  if (!s->conn->connected()) {
    if (status) *status = WireStatus::kError;
    return nullptr;
  }
  wire::HelloRequest h;
  h.version = version;
  h.flags = flags;
  h.fingerprint = kFp;
  h.block_tokens = 256;
  h.tenant = tenant;
  h.secret = secret;
  std::vector<std::byte> out;
  wire::EncodeHello(s->next_id++, h, out);
  if (!s->conn->Send(out)) {
    if (status) *status = WireStatus::kError;
    return nullptr;
  }
  auto f = s->conn->Recv();
  if (!f) {
    if (status) *status = WireStatus::kError;
    return nullptr;
  }
  std::span<const std::byte> payload;
  auto head = wire::DecodeResponseHead(f->body, &payload);
  if (!head.ok() || head->status != WireStatus::kOk) {
    if (status) *status = head.ok() ? head->status : WireStatus::kError;
    if (f->fd >= 0) ::close(f->fd);
    return nullptr;
  }
  auto r = wire::DecodeHelloResponse(payload);
  if (!r.ok() || f->fd < 0) {
    if (status) *status = WireStatus::kError;
    return nullptr;
  }
  s->hello = *r;
  s->arena_fd = f->fd;
  s->staging_fd = f->second;
  const bool staged = r->capabilities & wire::kCapStaging;
  const int prot = (flags & wire::kHelloReadOnly) || staged ? PROT_READ : PROT_READ | PROT_WRITE;
  void* p = ::mmap(nullptr, r->arena_bytes, prot, MAP_SHARED, f->fd, 0);
  if (p == MAP_FAILED) {
    if (status) *status = WireStatus::kError;
    return nullptr;
  }
  s->arena = static_cast<std::byte*>(p);
  if (s->staging_fd >= 0) {
    struct stat st {};
    if (fstat(s->staging_fd, &st) != 0) return nullptr;
    s->staging_bytes = uint64_t(st.st_size);
    p = ::mmap(nullptr, s->staging_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->staging_fd, 0);
    if (p == MAP_FAILED) {
      if (status) *status = WireStatus::kError;
      return nullptr;
    }
    s->staging = static_cast<std::byte*>(p);
  }
  if (status) *status = WireStatus::kOk;
  return s;
}

std::vector<std::byte> Pattern(size_t n, uint64_t seed) {
  std::vector<std::byte> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = std::byte(x);
  }
  return v;
}

BlockKey Key(uint64_t i) { return BlockKey{0xabc000 + i, 0xdef000 + i * 7}; }

std::string TwoTenantConfig() {
  return R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 4, "metrics_port": 0,
  "host": { "capacity": "64MiB", "prefault": false },
  "nvme": { "capacity": "16MiB", "segment_size": "1MiB", "device": "posix" },
  "tenants": [
    { "name": "alpha", "secret": "alpha-secret", "host_quota": "8MiB" },
    { "name": "beta", "secret": "beta-secret", "host_quota": "2MiB" },
    { "name": "ckpt", "secret": "c", "swa_policy": "checkpoint" },
    { "name": "recomp", "secret": "r", "swa_policy": "recompute" },
    { "name": "ops", "uids": [12345], "gids": [0, 12345] }
  ]
})";
}

// One tenant with staged writes (the default) and 1 MiB of staging per connection.
constexpr const char* kStagingServer = R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 2, "metrics_port": 0,
  "host": { "capacity": "16MiB", "prefault": false }, "nvme": null,
  "tenants": [ { "name": "default", "staging_bytes": "1MiB" } ]
})";

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(std::string config) {
    server_ = std::make_unique<ServerProcess>(std::move(config));
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // A fresh connection still gets served (after a bad one).
  void ExpectServes(const std::string& tenant = "default", const std::string& secret = "") {
    auto s = Hello(server_->socket_path(), tenant, secret);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->Simple(Verb::kPing), WireStatus::kOk);
  }
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServerTest, HandshakeMapsTheTenantArenaAndReturnsItsRoot) {
  StartServer(ServerProcess::DefaultConfig());
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->hello.version, wire::kWireVersion);
  EXPECT_EQ(s->hello.arena_bytes, 64ull << 20);
  struct stat st {};
  ASSERT_EQ(fstat(s->arena_fd, &st), 0);
  EXPECT_GE(uint64_t(st.st_size), s->hello.arena_bytes);
  const std::string name = "default";  // key_secret defaults to the name
  EXPECT_EQ(s->hello.root, RootKey(std::as_bytes(std::span(name)), kFp));
  EXPECT_TRUE(s->hello.capabilities & wire::kCapNvme);
  EXPECT_EQ(s->Simple(Verb::kPing), WireStatus::kOk);

  // Read-only: the descriptor does not allow a writable mapping.
  auto ro = Hello(server_->socket_path(), "default", "", nullptr, wire::kWireVersion,
                  wire::kHelloReadOnly);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(fcntl(ro->arena_fd, F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro->arena_fd, 0), MAP_FAILED);
}

TEST_F(ServerTest, WrongSecretUnknownTenantAndWrongVersionAreRefused) {
  StartServer(TwoTenantConfig());
  WireStatus st;
  EXPECT_EQ(Hello(server_->socket_path(), "alpha", "beta-secret", &st), nullptr);
  EXPECT_EQ(st, WireStatus::kAuth);
  EXPECT_EQ(Hello(server_->socket_path(), "alpha", "", &st), nullptr);
  EXPECT_EQ(st, WireStatus::kAuth);
  EXPECT_EQ(Hello(server_->socket_path(), "nobody", "x", &st), nullptr);
  EXPECT_EQ(st, WireStatus::kAuth);
  EXPECT_EQ(Hello(server_->socket_path(), "alpha", "alpha-secret", &st, 99), nullptr);
  EXPECT_EQ(st, WireStatus::kVersion);
  ExpectServes("alpha", "alpha-secret");
}

// The tenant "ops" admits uid 12345 only (SO_PEERCRED): children switch uid, then connect.
TEST_F(ServerTest, PeerCredentialsAdmitOnlyListedUids) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch uids";
  std::string config = TwoTenantConfig();
  config.insert(config.find("\"io_threads\""), "\"socket_mode\": \"0666\", ");
  StartServer(config);
  const std::string socket = server_->socket_path();
  ASSERT_EQ(chmod(server_->dir().c_str(), 0755), 0);
  ASSERT_EQ(chmod(socket.substr(0, socket.rfind('/')).c_str(), 0755), 0);
  auto child_status = [&](uid_t uid, gid_t gid) {
    pid_t pid = fork();
    if (pid == 0) {
      if (setgid(gid) != 0 || setuid(uid) != 0) _exit(100);
      WireStatus st = WireStatus::kError;
      auto s = Hello(socket, "ops", "", &st);
      _exit(int(st));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(child_status(12345, 12345), int(WireStatus::kOk));
  EXPECT_EQ(child_status(23456, 12345), int(WireStatus::kAuth));
  EXPECT_EQ(child_status(12345, 777), int(WireStatus::kAuth));  // gid not listed
}

TEST_F(ServerTest, ReserveWriteCommitThenGetReadsTheSameBytes) {
  StartServer(ServerProcess::DefaultConfig());
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  std::map<std::pair<int, int>, std::vector<std::byte>> written;
  std::vector<BlockKey> keys;
  for (int b = 0; b < 4; ++b) {
    keys.push_back(Key(b));
    for (Family f : {Family::kCsa, Family::kHca, Family::kCheckpoint}) {
      if (f == Family::kCheckpoint && b != 2) continue;
      auto bytes = Pattern(4096 * (b + 1) + 100 * int(f), b * 10 + int(f));
      ASSERT_EQ(s->Put(Key(b), f, bytes), WireStatus::kOk);
      written[{b, int(f)}] = bytes;
    }
  }
  auto look = s->Lookup(keys, FamilyMask{Family::kCsa, Family::kHca}.bits());
  EXPECT_EQ(look.hit_blocks, 4u);
  EXPECT_EQ(look.best_checkpoint, 3u);  // the checkpoint stored at block 2
  ASSERT_EQ(look.blocks.size(), 4u);
  EXPECT_EQ(look.blocks[0].tier[int(Family::kCsa)], uint8_t(Tier::kHost));

  const uint8_t fams = FamilyMask{Family::kCsa, Family::kHca, Family::kCheckpoint}.bits();
  auto items = s->Get(keys, fams);
  ASSERT_EQ(items.size(), 12u);
  for (size_t i = 0; i < items.size(); ++i) {
    const int b = int(i / 3);
    const wire::GetItem& it = items[i];
    auto w = written.find({b, it.family});
    if (w == written.end()) {
      EXPECT_EQ(it.status, WireStatus::kNotFound) << i;
      continue;
    }
    ASSERT_EQ(it.status, WireStatus::kOk) << i;
    EXPECT_NE(it.lease, 0u);
    EXPECT_EQ(it.tier, uint8_t(Tier::kHost));
    EXPECT_EQ(s->Bytes(it), w->second) << "block " << b << " family " << int(it.family);
  }
  std::vector<uint64_t> leases;
  for (auto& it : items)
    if (it.lease) leases.push_back(it.lease);
  for (WireStatus r : s->Ids(Verb::kRelease, leases)) EXPECT_EQ(r, WireStatus::kOk);
  EXPECT_EQ(s->Stats()["server.leases_held"], 0u);

  // Abort frees the reservation and stores nothing.
  wire::ReserveItem it;
  it.ns = kNs;
  it.key = Key(99);
  it.fingerprint = kFp;
  it.size = 8192;
  it.family = uint8_t(Family::kCsa);
  auto r = s->Reserve({it});
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].status, WireStatus::kOk);
  EXPECT_EQ(s->Ids(Verb::kAbort, {r[0].reservation})[0], WireStatus::kOk);
  EXPECT_EQ(s->Ids(Verb::kCommit, {r[0].reservation})[0], WireStatus::kNotYours);
  EXPECT_EQ(s->Get({Key(99)}, FamilyMask{Family::kCsa}.bits())[0].status, WireStatus::kNotFound);
}

TEST_F(ServerTest, TenantsCannotReadDeleteCountOrOverwriteEachOther) {
  StartServer(TwoTenantConfig());
  auto a = Hello(server_->socket_path(), "alpha", "alpha-secret");
  auto b = Hello(server_->socket_path(), "beta", "beta-secret");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const auto bytes = Pattern(20000, 42);
  ASSERT_EQ(a->Put(Key(1), Family::kCsa, bytes), WireStatus::kOk);
  const uint8_t csa = FamilyMask{Family::kCsa}.bits();

  // Read: beta, with alpha's namespace and keys, finds nothing; its arena never holds alpha's
  // bytes.
  EXPECT_EQ(b->Lookup({Key(1)}, csa).hit_blocks, 0u);
  EXPECT_EQ(b->Get({Key(1)}, csa)[0].status, WireStatus::kNotFound);
  EXPECT_EQ(std::search(b->arena, b->arena + b->hello.arena_bytes, bytes.begin(), bytes.end()),
            b->arena + b->hello.arena_bytes);
  // Count: beta's statistics do not see alpha's object.
  EXPECT_EQ(b->Stats()["host.csa.objects"], 0u);
  EXPECT_EQ(a->Stats()["host.csa.objects"], 1u);
  // Delete: beta deleting the namespace leaves alpha's object.
  EXPECT_EQ(b->Simple(Verb::kDelete, kNs), WireStatus::kOk);
  // Overwrite: beta's object of the same key lands in beta's store only.
  ASSERT_EQ(b->Put(Key(1), Family::kCsa, Pattern(20000, 43)), WireStatus::kOk);
  auto got = a->Get({Key(1)}, csa);
  ASSERT_EQ(got[0].status, WireStatus::kOk);
  EXPECT_EQ(a->Bytes(got[0]), bytes);
  auto got_b = b->Get({Key(1)}, csa);
  ASSERT_EQ(got_b[0].status, WireStatus::kOk);
  EXPECT_EQ(b->Bytes(got_b[0]), Pattern(20000, 43));
  // Different tenants, different chain roots for the same layout.
  EXPECT_NE(a->hello.root, b->hello.root);
}

TEST_F(ServerTest, TenantOverQuotaEvictsItsOwnBlocks) {
  StartServer(TwoTenantConfig());
  auto a = Hello(server_->socket_path(), "alpha", "alpha-secret");
  auto b = Hello(server_->socket_path(), "beta", "beta-secret");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->hello.arena_bytes, 2ull << 20);
  ASSERT_EQ(a->Put(Key(500), Family::kCsa, Pattern(65536, 500)), WireStatus::kOk);
  // beta writes 4x its 2 MiB quota: its oldest blocks go (demoted or dropped), alpha's stay.
  for (int i = 0; i < 128; ++i)
    ASSERT_EQ(b->Put(Key(i), Family::kCsa, Pattern(65536, i)), WireStatus::kOk) << i;
  auto st = b->Stats();
  EXPECT_LE(st["host.csa.bytes"], 2ull << 20);
  EXPECT_LT(st["host.csa.objects"], 128u);
  auto got = a->Get({Key(500)}, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(got[0].status, WireStatus::kOk);
  EXPECT_EQ(got[0].tier, uint8_t(Tier::kHost));
  EXPECT_EQ(a->Bytes(got[0]), Pattern(65536, 500));
  // The newest of beta's blocks is still readable, bit for bit.
  auto last = b->Get({Key(127)}, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(last[0].status, WireStatus::kOk);
  EXPECT_EQ(b->Bytes(last[0]), Pattern(65536, 127));
}

TEST_F(ServerTest, SwaPolicyRefusesFamiliesTheTenantDoesNotStore) {
  StartServer(TwoTenantConfig());
  auto c = Hello(server_->socket_path(), "ckpt", "c");
  auto r = Hello(server_->socket_path(), "recomp", "r");
  ASSERT_NE(c, nullptr);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(c->hello.swa_policy, wire::SwaPolicyWire::kCheckpoint);
  EXPECT_EQ(r->hello.swa_policy, wire::SwaPolicyWire::kRecompute);
  const auto bytes = Pattern(4096, 1);
  EXPECT_EQ(c->Put(Key(1), Family::kSwa, bytes), WireStatus::kNotAdmitted);
  EXPECT_EQ(c->Put(Key(1), Family::kCheckpoint, bytes), WireStatus::kOk);
  EXPECT_EQ(c->Put(Key(1), Family::kCsa, bytes), WireStatus::kOk);
  EXPECT_EQ(r->Put(Key(1), Family::kSwa, bytes), WireStatus::kNotAdmitted);
  EXPECT_EQ(r->Put(Key(1), Family::kCheckpoint, bytes), WireStatus::kNotAdmitted);
  EXPECT_EQ(r->Put(Key(1), Family::kCsa, bytes), WireStatus::kOk);
  EXPECT_EQ(r->Stats()["server.reservations_held"], 0u);
}

TEST_F(ServerTest, NvmeObjectsAreServedAndPrefetchedIntoTheArena) {
  StartServer(TwoTenantConfig());
  auto b = Hello(server_->socket_path(), "beta", "beta-secret");  // 2 MiB of host
  ASSERT_NE(b, nullptr);
  for (int i = 0; i < 40; ++i)
    ASSERT_EQ(b->Put(Key(i), Family::kCsa, Pattern(65536, i)), WireStatus::kOk) << i;
  const uint8_t csa = FamilyMask{Family::kCsa}.bits();
  auto look = b->Lookup({Key(0), Key(1)}, csa);
  ASSERT_EQ(look.blocks.size(), 2u);
  ASSERT_EQ(look.blocks[0].tier[0], uint8_t(Tier::kNvme));
  ASSERT_EQ(look.blocks[1].tier[0], uint8_t(Tier::kNvme));

  // GET reads an NVMe object into the arena and serves it from there.
  auto got = b->Get({Key(0)}, csa);
  ASSERT_EQ(got[0].status, WireStatus::kOk);
  EXPECT_EQ(got[0].tier, uint8_t(Tier::kNvme));
  EXPECT_EQ(b->Bytes(got[0]), Pattern(65536, 0));

  // PREFETCH answers at once (pending), and a later GET finds the object in DRAM.
  std::vector<std::byte> out;
  wire::EncodeGet(1000, Verb::kPrefetch, {kNs, kFp, csa, 0, {Key(1), Key(1000)}}, out);
  auto f = b->Call(out);
  std::span<const std::byte> payload;
  ASSERT_EQ(Head(f, &payload).status, WireStatus::kOk);
  auto st = wire::DecodeStatusList(payload);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->statuses.size(), 2u);
  EXPECT_EQ(st->statuses[0], WireStatus::kPending);
  EXPECT_EQ(st->statuses[1], WireStatus::kNotFound);
  bool in_dram = false;
  for (int i = 0; i < 200 && !in_dram; ++i) {
    in_dram = b->Lookup({Key(1)}, csa).blocks[0].tier[0] == uint8_t(Tier::kHost);
    if (!in_dram) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(in_dram);
  auto again = b->Get({Key(1)}, csa);
  ASSERT_EQ(again[0].status, WireStatus::kOk);
  EXPECT_EQ(again[0].tier, uint8_t(Tier::kHost));
  EXPECT_EQ(b->Bytes(again[0]), Pattern(65536, 1));
}

// Polls STATS until `pred` holds (reclaiming after a disconnect runs on the server's strand).
template <typename Pred>
std::map<std::string, uint64_t> StatsWhen(Session& s, Pred pred) {
  std::map<std::string, uint64_t> st;
  for (int i = 0; i < 200; ++i) {
    st = s.Stats();
    if (pred(st)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return st;
}

TEST_F(ServerTest, DisconnectReleasesLeasesAndAbortsReservations) {
  StartServer(ServerProcess::DefaultConfig());
  auto watcher = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(watcher, nullptr);
  ASSERT_EQ(watcher->Put(Key(1), Family::kCsa, Pattern(65536, 1)), WireStatus::kOk);
  const uint64_t used_before = watcher->Stats()["host.used"];
  {
    auto c = Hello(server_->socket_path(), "default", "");
    ASSERT_NE(c, nullptr);
    auto items = c->Get({Key(1)}, FamilyMask{Family::kCsa}.bits());
    ASSERT_EQ(items[0].status, WireStatus::kOk);
    wire::ReserveItem it;
    it.ns = kNs;
    it.key = Key(2);
    it.fingerprint = kFp;
    it.size = 512 << 10;  // under the NVMe segment size (1 MiB)
    it.family = uint8_t(Family::kCsa);
    ASSERT_EQ(c->Reserve({it})[0].status, WireStatus::kOk);
    auto st = watcher->Stats();
    EXPECT_EQ(st["server.leases_held"], 1u);
    EXPECT_EQ(st["server.reservations_held"], 1u);
    EXPECT_GT(st["host.used"], used_before);
  }  // the client goes away holding both
  // One snapshot of the stats reads the arena's use and the connection counters at different
  // moments, so wait for all of them: the reservation is freed just before its counter drops.
  auto st = StatsWhen(*watcher, [&](auto& m) {
    return m["server.leases_held"] == 0 && m["server.reservations_held"] == 0 &&
           m["host.used"] == used_before;
  });
  EXPECT_EQ(st["server.leases_held"], 0u);
  EXPECT_EQ(st["server.reservations_held"], 0u);
  EXPECT_EQ(st["server.leases_reclaimed"], 1u);
  EXPECT_EQ(st["server.reservations_reclaimed"], 1u);
  EXPECT_EQ(st["host.used"], used_before);
}

TEST_F(ServerTest, ReleasingAnotherConnectionsLeaseIsNotYours) {
  StartServer(ServerProcess::DefaultConfig());
  auto a = Hello(server_->socket_path(), "default", "");
  auto b = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(a->Put(Key(1), Family::kCsa, Pattern(4096, 1)), WireStatus::kOk);
  auto items = a->Get({Key(1)}, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(items[0].status, WireStatus::kOk);
  EXPECT_EQ(b->Ids(Verb::kRelease, {items[0].lease})[0], WireStatus::kNotYours);
  EXPECT_EQ(b->Ids(Verb::kRelease, {12345678})[0], WireStatus::kNotYours);
  EXPECT_EQ(a->Ids(Verb::kRelease, {items[0].lease})[0], WireStatus::kOk);
  EXPECT_EQ(a->Ids(Verb::kRelease, {items[0].lease})[0], WireStatus::kNotYours);
}

TEST_F(ServerTest, LeasesExpireAfterTheirTimeout) {
  StartServer(ServerProcess::DefaultConfig());
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->Put(Key(1), Family::kCsa, Pattern(4096, 1)), WireStatus::kOk);
  auto held = s->Get({Key(1)}, FamilyMask{Family::kCsa}.bits(), /*lease_ms=*/0);
  auto timed = s->Get({Key(1)}, FamilyMask{Family::kCsa}.bits(), /*lease_ms=*/100);
  ASSERT_EQ(timed[0].status, WireStatus::kOk);
  EXPECT_EQ(s->Stats()["server.leases_held"], 2u);
  auto st = StatsWhen(*s, [](auto& m) { return m["server.leases_expired"] == 1; });
  EXPECT_EQ(st["server.leases_expired"], 1u);
  EXPECT_EQ(st["server.leases_held"], 1u);
  EXPECT_EQ(s->Ids(Verb::kRelease, {timed[0].lease})[0], WireStatus::kExpired);
  EXPECT_EQ(s->Ids(Verb::kRelease, {held[0].lease})[0], WireStatus::kOk);
}

// A tenant whose clients write the arena in place (client_writes "in_place"): a client can
// change a host copy after COMMIT, and the verification before GET catches it.
std::string InPlaceConfig() {
  return R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 2, "metrics_port": 0,
  "host": { "capacity": "16MiB", "prefault": false }, "nvme": null,
  "tenants": [ { "name": "default", "client_writes": "in_place" },
               { "name": "trusted", "verify_host_copies": false } ]
})";
}

TEST_F(ServerTest, BytesChangedAfterCommitAreReportedCorrupt) {
  StartServer(InPlaceConfig());
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  wire::ReserveItem it;
  it.ns = kNs;
  it.key = Key(1);
  it.fingerprint = kFp;
  it.size = 8192;
  it.family = uint8_t(Family::kCsa);
  auto r = s->Reserve({it});
  ASSERT_EQ(r[0].status, WireStatus::kOk);
  const auto bytes = Pattern(8192, 5);
  std::memcpy(s->arena + r[0].offset, bytes.data(), bytes.size());
  ASSERT_EQ(s->Ids(Verb::kCommit, {r[0].reservation})[0], WireStatus::kOk);
  s->arena[r[0].offset + 100] ^= std::byte{1};  // a client scribbles after Commit
  auto reader = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(reader, nullptr);
  auto items = reader->Get({Key(1)}, FamilyMask{Family::kCsa}.bits());
  EXPECT_EQ(items[0].status, WireStatus::kCorrupt);
  EXPECT_EQ(items[0].lease, 0u);
  EXPECT_EQ(reader->Stats()["server.corrupt"], 1u);
}

// A tenant with verify_host_copies false trusts its clients as the in-process store trusts its
// caller: a write after Commit is served as it is (nothing checks it), the verifying in-place
// tenant's identical write is a kCorrupt miss.
TEST_F(ServerTest, TrustedTenantServesWithoutVerifyingHostCopies) {
  StartServer(InPlaceConfig());
  for (const std::string tenant : {"default", "trusted"}) {
    auto s = Hello(server_->socket_path(), tenant, "");
    ASSERT_NE(s, nullptr) << tenant;
    wire::ReserveItem it;
    it.ns = kNs, it.key = Key(1), it.fingerprint = kFp, it.size = 8192;
    it.family = uint8_t(Family::kCsa);
    auto r = s->Reserve({it});
    ASSERT_EQ(r[0].status, WireStatus::kOk);
    auto bytes = Pattern(8192, 5);
    std::memcpy(s->arena + r[0].offset, bytes.data(), bytes.size());
    ASSERT_EQ(s->Ids(Verb::kCommit, {r[0].reservation})[0], WireStatus::kOk);
    s->arena[r[0].offset + 100] ^= std::byte{1};
    bytes[100] ^= std::byte{1};
    auto items = s->Get({Key(1)}, FamilyMask{Family::kCsa}.bits());
    if (tenant == "default") {
      EXPECT_EQ(items[0].status, WireStatus::kCorrupt);
      continue;
    }
    ASSERT_EQ(items[0].status, WireStatus::kOk);
    ASSERT_EQ(items[0].size, 8192u);
    EXPECT_EQ(std::memcmp(s->arena + items[0].offset, bytes.data(), bytes.size()), 0);
    EXPECT_EQ(s->Stats()["server.corrupt"], 0u);
  }
}

// Consecutive staged batches alternate between two areas of the staging region: the space a
// COMMIT copied from comes back at the next COMMIT, so the next batch is not written into lines
// the server has just read; and it comes back at once when a RESERVE would not fit otherwise.
TEST_F(ServerTest, StagedBatchesAlternateAndCooledSpaceComesBackWhenNeeded) {
  StartServer(kStagingServer);
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  ASSERT_NE(s->staging, nullptr);
  std::vector<uint64_t> offsets;
  for (int batch = 0; batch < 4; ++batch) {
    wire::ReserveItem it;
    it.ns = kNs, it.key = Key(100 + batch), it.fingerprint = kFp, it.size = 256 << 10;
    it.family = uint8_t(Family::kCsa);
    auto r = s->Reserve({it});
    ASSERT_EQ(r[0].status, WireStatus::kOk) << batch;
    offsets.push_back(r[0].offset);
    const auto bytes = Pattern(it.size, batch);
    std::memcpy(s->staging + r[0].offset, bytes.data(), bytes.size());
    ASSERT_EQ(s->Ids(Verb::kCommit, {r[0].reservation})[0], WireStatus::kOk);
    auto items = s->Get({Key(100 + batch)}, FamilyMask{Family::kCsa}.bits());
    ASSERT_EQ(items[0].status, WireStatus::kOk);
    EXPECT_EQ(s->Bytes(items[0]), bytes) << batch;
    s->Ids(Verb::kRelease, {items[0].lease});
  }
  EXPECT_NE(offsets[0], offsets[1]);
  EXPECT_EQ(offsets[2], offsets[0]);
  EXPECT_EQ(offsets[3], offsets[1]);
  // Cooling space is used, not counted against a reservation that needs it: with 256 KiB of
  // the 1 MiB cooling, 1 MiB can still be reserved.
  EXPECT_EQ(s->Stats()["connection.staging_used"], 256u << 10);
  wire::ReserveItem whole;
  whole.ns = kNs, whole.key = Key(200), whole.fingerprint = kFp, whole.size = 1 << 20;
  whole.family = uint8_t(Family::kCsa);
  auto r = s->Reserve({whole});
  ASSERT_EQ(r[0].status, WireStatus::kOk);
  EXPECT_EQ(s->Stats()["connection.staging_used"], 1u << 20);
  ASSERT_EQ(s->Ids(Verb::kAbort, {r[0].reservation})[0], WireStatus::kOk);
  EXPECT_EQ(s->Stats()["connection.staging_used"], 0u);
}

// A staged batch larger than wire::kStagingAlternateMaxBytes (16 MiB) does not alternate: its
// space comes back at its COMMIT, so the next batch is written where it was (two areas of such
// batches would not fit the shared cache). The bytes read back the same.
TEST_F(ServerTest, LargeStagedBatchesReuseTheirSpace) {
  StartServer(R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 2, "metrics_port": 0,
  "host": { "capacity": "80MiB", "prefault": false }, "nvme": null,
  "tenants": [ { "name": "default", "staging_bytes": "48MiB" } ]
})");
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  ASSERT_NE(s->staging, nullptr);
  std::vector<uint64_t> offsets;
  for (int batch = 0; batch < 3; ++batch) {
    std::vector<wire::ReserveItem> items;
    for (int k = 0; k < 2; ++k) {  // 2 x 9 MiB: over 16 MiB
      wire::ReserveItem it;
      it.ns = kNs, it.key = Key(300 + 2 * batch + k), it.fingerprint = kFp, it.size = 9 << 20;
      it.family = uint8_t(Family::kSwa);
      items.push_back(it);
    }
    auto r = s->Reserve(items);
    ASSERT_EQ(r.size(), 2u);
    ASSERT_EQ(r[0].status, WireStatus::kOk) << batch;
    ASSERT_EQ(r[1].status, WireStatus::kOk) << batch;
    offsets.push_back(std::min(r[0].offset, r[1].offset));
    const auto bytes = Pattern(9 << 20, batch);
    std::memcpy(s->staging + r[0].offset, bytes.data(), bytes.size());
    std::memcpy(s->staging + r[1].offset, bytes.data(), bytes.size());
    auto c = s->Ids(Verb::kCommit, {r[0].reservation, r[1].reservation});
    ASSERT_EQ(c, (std::vector<WireStatus>{WireStatus::kOk, WireStatus::kOk}));
    EXPECT_EQ(s->Stats()["connection.staging_used"], 0u) << batch;  // nothing cooling
    auto got = s->Get({Key(300 + 2 * batch + 1)}, FamilyMask{Family::kSwa}.bits());
    ASSERT_EQ(got[0].status, WireStatus::kOk);
    EXPECT_EQ(s->Bytes(got[0]), bytes) << batch;
    s->Ids(Verb::kRelease, {got[0].lease});
  }
  EXPECT_EQ(offsets[1], offsets[0]);
  EXPECT_EQ(offsets[2], offsets[0]);
}

// Staged writes (the default): the arena maps only read-only, a writer gets a staging region of
// its own, and COMMIT copies from there. Nothing a client does after COMMIT reaches the bytes
// GET serves, so they are served without verification and never reported corrupt.
TEST_F(ServerTest, StagedWritesCannotChangeCommittedBytes) {
  StartServer(kStagingServer);
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->hello.capabilities & wire::kCapStaging);
  ASSERT_NE(s->staging, nullptr);
  EXPECT_EQ(s->staging_bytes, 1u << 20);
  // The arena's descriptor refuses every way to write it.
  errno = 0;
  EXPECT_EQ(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, s->arena_fd, 0), MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(pwrite(s->arena_fd, "x", 1, 0), -1);
  const int reopened = open(("/proc/self/fd/" + std::to_string(s->arena_fd)).c_str(), O_RDWR);
  ASSERT_GE(reopened, 0);
  EXPECT_EQ(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, reopened, 0), MAP_FAILED);
  close(reopened);
  EXPECT_NE(mprotect(s->arena, 4096, PROT_READ | PROT_WRITE), 0);

  wire::ReserveItem it;
  it.ns = kNs, it.key = Key(1), it.fingerprint = kFp, it.size = 8192;
  it.family = uint8_t(Family::kCsa);
  auto r = s->Reserve({it});
  ASSERT_EQ(r[0].status, WireStatus::kOk);
  ASSERT_LE(r[0].offset + it.size, s->staging_bytes);
  const auto bytes = Pattern(8192, 5);
  std::memcpy(s->staging + r[0].offset, bytes.data(), bytes.size());
  ASSERT_EQ(s->Ids(Verb::kCommit, {r[0].reservation})[0], WireStatus::kOk);
  std::memset(s->staging + r[0].offset, 0x5a, 8192);  // the writer scribbles after COMMIT
  auto reader = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(reader, nullptr);
  auto items = reader->Get({Key(1)}, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(items[0].status, WireStatus::kOk);
  EXPECT_EQ(reader->Bytes(items[0]), bytes);
  auto stats = reader->Stats();
  EXPECT_EQ(stats["server.corrupt"], 0u);
  EXPECT_EQ(stats["server.bytes_in"], 8192u);  // the tenant's totals (strata top's in/s, out/s)
  EXPECT_EQ(stats["server.bytes_out"], 8192u);

  // The staging region bounds what a connection has reserved and not finished: a reservation
  // that does not fit is kNoSpace; COMMIT and ABORT give the space back.
  it.size = 600 << 10;
  it.key = Key(2);
  auto big = s->Reserve({it});
  ASSERT_EQ(big[0].status, WireStatus::kOk);
  it.key = Key(3);
  EXPECT_EQ(s->Reserve({it})[0].status, WireStatus::kNoSpace);
  EXPECT_EQ(s->Stats()["connection.staging_bytes"], 1u << 20);
  EXPECT_EQ(s->Stats()["connection.staging_used"], 640u << 10);  // 600 KiB's size class
  ASSERT_EQ(s->Ids(Verb::kAbort, {big[0].reservation})[0], WireStatus::kOk);
  EXPECT_EQ(s->Stats()["connection.staging_used"], 0u);
  auto again = s->Reserve({it});
  ASSERT_EQ(again[0].status, WireStatus::kOk);
  const auto large = Pattern(600 << 10, 9);
  std::memcpy(s->staging + again[0].offset, large.data(), large.size());
  ASSERT_EQ(s->Ids(Verb::kCommit, {again[0].reservation})[0], WireStatus::kOk);
  items = reader->Get({Key(3)}, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(items[0].status, WireStatus::kOk);
  EXPECT_EQ(reader->Bytes(items[0]), large);
  EXPECT_EQ(reader->Get({Key(2)}, FamilyMask{Family::kCsa}.bits())[0].status,
            WireStatus::kNotFound);

  // A read-only client gets no staging region, so it cannot reserve.
  auto ro = Hello(server_->socket_path(), "default", "", nullptr, wire::kWireVersion,
                  wire::kHelloReadOnly);
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->staging, nullptr);
  it.key = Key(4);
  EXPECT_EQ(ro->Reserve({it})[0].status, WireStatus::kInvalid);
  EXPECT_EQ(ro->Stats()["server.reservations_held"], 0u);
}

// PUT: objects the client wrote into its staging region at offsets of its own choosing, stored
// in one round trip. Each reads back byte for byte; scribbling afterwards changes nothing served;
// a range outside the region or over a reservation the connection is writing is kInvalid (and
// that reservation's bytes stay the client's); a read-only client, which has no staging region,
// has no PUT; a fingerprint other than HELLO's is refused for the frame.
TEST_F(ServerTest, PutStoresWhatTheClientStagedInOneRoundTrip) {
  StartServer(kStagingServer);
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->hello.capabilities & wire::kCapPut);
  ASSERT_EQ(s->staging_bytes, 1u << 20);
  auto item = [](uint64_t key, uint64_t size, uint64_t offset) {
    wire::PutItem p;
    p.item.ns = kNs, p.item.key = Key(key), p.item.fingerprint = kFp, p.item.size = size;
    p.item.family = uint8_t(Family::kCsa), p.offset = offset;
    return p;
  };
  // Three objects, one of them at the very end of the region, one of 0 bytes.
  const auto a = Pattern(100000, 1), b = Pattern(4096, 2);
  std::memcpy(s->staging + 12345, a.data(), a.size());
  std::memcpy(s->staging + (1 << 20) - 4096, b.data(), b.size());
  auto st = s->PutStaged(
      {item(1, a.size(), 12345), item(2, b.size(), (1 << 20) - 4096), item(3, 0, 1 << 20)});
  ASSERT_EQ(st.size(), 3u);
  for (WireStatus x : st) EXPECT_EQ(x, WireStatus::kOk);
  std::memset(s->staging, 0x5a, 1 << 20);  // the writer scribbles after PUT
  auto reader = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(reader, nullptr);
  auto got = reader->Get({Key(1), Key(2), Key(3)}, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(got.size(), 3u);
  for (const auto& g : got) ASSERT_EQ(g.status, WireStatus::kOk);
  EXPECT_EQ(reader->Bytes(got[0]), a);
  EXPECT_EQ(reader->Bytes(got[1]), b);
  EXPECT_EQ(got[2].size, 0u);
  auto stats = reader->Stats();
  EXPECT_EQ(stats["server.bytes_in"], a.size() + b.size());
  EXPECT_EQ(stats["server.corrupt"], 0u);

  // Ranges outside the region: past its end, and an offset whose sum with the size wraps.
  st = s->PutStaged(
      {item(4, 8192, (1 << 20) - 4096), item(5, 16, ~uint64_t(0) - 8), item(6, 1, (1 << 20) + 1)});
  ASSERT_EQ(st.size(), 3u);
  for (WireStatus x : st) EXPECT_EQ(x, WireStatus::kInvalid);
  // A reservation being written (after another, so it does not start at 0): a PUT over any
  // byte of it is refused (its last byte; a range from below running into it), one beside it is
  // not, and the reservation commits its own bytes.
  wire::ReserveItem ri;
  ri.ns = kNs, ri.key = Key(16), ri.fingerprint = kFp, ri.size = 20000;
  ri.family = uint8_t(Family::kCsa);
  auto first = s->Reserve({ri});
  ASSERT_EQ(first[0].status, WireStatus::kOk);
  ri.key = Key(7), ri.size = 10000;
  auto r = s->Reserve({ri});
  ASSERT_EQ(r[0].status, WireStatus::kOk);
  const uint64_t at = r[0].offset;
  ASSERT_GE(at, 10000u);
  const auto c = Pattern(10000, 3);
  std::memcpy(s->staging + at, c.data(), c.size());
  const uint64_t after = at + 10000;
  const auto d = Pattern(5000, 4);
  ASSERT_LE(after + d.size(), s->staging_bytes);
  std::memcpy(s->staging + after, d.data(), d.size());
  st = s->PutStaged(
      {item(8, 100, at + 9999), item(9, 20000, at - 10000), item(10, d.size(), after)});
  ASSERT_EQ(st.size(), 3u);
  EXPECT_EQ(st[0], WireStatus::kInvalid);
  EXPECT_EQ(st[1], WireStatus::kInvalid);
  EXPECT_EQ(st[2], WireStatus::kOk);
  ASSERT_EQ(s->Ids(Verb::kCommit, {r[0].reservation})[0], WireStatus::kOk);
  ASSERT_EQ(s->Ids(Verb::kAbort, {first[0].reservation})[0], WireStatus::kOk);
  got = reader->Get({Key(7), Key(10), Key(8), Key(4), Key(9)}, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(got.size(), 5u);
  ASSERT_EQ(got[0].status, WireStatus::kOk);
  EXPECT_EQ(reader->Bytes(got[0]), c);
  ASSERT_EQ(got[1].status, WireStatus::kOk);
  EXPECT_EQ(reader->Bytes(got[1]), d);
  EXPECT_EQ(got[2].status, WireStatus::kNotFound);
  EXPECT_EQ(got[3].status, WireStatus::kNotFound);
  EXPECT_EQ(got[4].status, WireStatus::kNotFound);

  // The SWA policy and a bad family are per item, as for RESERVE; a fingerprint other than
  // HELLO's refuses the frame (and the connection goes on).
  auto bad = item(11, 16, 0);
  bad.item.family = kNumFamilies;
  st = s->PutStaged({bad, item(12, 16, 64)});
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0], WireStatus::kInvalid);
  EXPECT_EQ(st[1], WireStatus::kOk);
  auto other = item(13, 16, 0);
  other.item.fingerprint = kFp + 1;
  WireStatus frame = WireStatus::kOk;
  EXPECT_TRUE(s->PutStaged({item(14, 16, 0), other}, &frame).empty());
  EXPECT_EQ(frame, WireStatus::kInvalid);
  EXPECT_EQ(s->Simple(Verb::kPing), WireStatus::kOk);
  EXPECT_EQ(reader->Get({Key(14)}, FamilyMask{Family::kCsa}.bits())[0].status,
            WireStatus::kNotFound);

  // No staging region, no PUT: a read-only client.
  auto ro = Hello(server_->socket_path(), "default", "", nullptr, wire::kWireVersion,
                  wire::kHelloReadOnly);
  ASSERT_NE(ro, nullptr);
  EXPECT_FALSE(ro->hello.capabilities & wire::kCapPut);
  EXPECT_TRUE(ro->PutStaged({item(15, 16, 0)}, &frame).empty());
  EXPECT_EQ(frame, WireStatus::kInvalid);
  EXPECT_EQ(ro->Simple(Verb::kPing), WireStatus::kOk);
}

// A peer that connects and never says HELLO is closed after hello_timeout_ms; a connection
// that did say HELLO stays open past it.
TEST_F(ServerTest, ConnectionsWithoutHelloAreClosedAfterTheTimeout) {
  StartServer(R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 2, "metrics_port": 0,
  "hello_timeout_ms": 300, "host": { "capacity": "16MiB", "prefault": false }, "nvme": null,
  "tenants": [ { "name": "default" } ]
})");
  auto greeted = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(greeted, nullptr);
  RawConn silent(server_->socket_path());
  ASSERT_TRUE(silent.connected());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.PeerClosed());  // EOF, well within the 5 s receive timeout
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(250));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(greeted->Simple(Verb::kPing), WireStatus::kOk);
}

// One connection holds at most max_leases_per_connection leases: GET answers kNoSpace (and
// holds nothing) past it, and RELEASE makes room again.
TEST_F(ServerTest, LeasesPerConnectionAreCapped) {
  StartServer(R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 2, "metrics_port": 0,
  "max_leases_per_connection": 3, "host": { "capacity": "16MiB", "prefault": false },
  "nvme": null, "tenants": [ { "name": "default" } ]
})");
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  std::vector<BlockKey> keys;
  for (uint64_t i = 0; i < 5; ++i) {
    keys.push_back(Key(i));
    ASSERT_EQ(s->Put(Key(i), Family::kCsa, Pattern(4096, i)), WireStatus::kOk);
  }
  auto items = s->Get(keys, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(items.size(), 5u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(items[i].status, WireStatus::kOk) << i;
    EXPECT_EQ(s->Bytes(items[i]), Pattern(4096, i)) << i;
  }
  for (size_t i = 3; i < 5; ++i) {
    EXPECT_EQ(items[i].status, WireStatus::kNoSpace) << i;
    EXPECT_EQ(items[i].lease, 0u) << i;
  }
  EXPECT_EQ(s->Stats()["server.leases_held"], 3u);
  // Another connection has leases of its own.
  auto other = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->Get({Key(4)}, FamilyMask{Family::kCsa}.bits())[0].status, WireStatus::kOk);
  ASSERT_EQ(s->Ids(Verb::kRelease, {items[0].lease})[0], WireStatus::kOk);
  auto again = s->Get({Key(4)}, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(again[0].status, WireStatus::kOk);
  EXPECT_EQ(s->Bytes(again[0]), Pattern(4096, 4));
}

// A frame with a valid header and the given body.
std::vector<std::byte> RawFrame(uint16_t opcode, std::vector<std::byte> body, uint32_t len = ~0u) {
  std::vector<std::byte> out;
  wire::EncodeHeader({len == ~0u ? uint32_t(body.size()) : len, opcode, 0, 77}, out);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// Sends `frame` on `conn` and expects a frame-level `want` and the connection closed.
void ExpectRejected(RawConn& conn, const std::vector<std::byte>& frame, WireStatus want) {
  ASSERT_TRUE(conn.Send(frame));
  auto f = conn.Recv();
  ASSERT_TRUE(f.has_value());
  std::span<const std::byte> payload;
  EXPECT_EQ(Head(*f, &payload).status, want);
  EXPECT_TRUE(conn.PeerClosed());
}

TEST_F(ServerTest, BadInputGetsItsErrorAndTheServerKeepsServing) {
  StartServer(ServerProcess::DefaultConfig());
  const std::string sock = server_->socket_path();
  {  // a request before HELLO
    RawConn c(sock);
    std::vector<std::byte> f;
    wire::EncodeEmpty(1, Verb::kPing, f);
    ExpectRejected(c, f, WireStatus::kFrame);
  }
  ExpectServes();
  {  // unknown verb
    RawConn c(sock);
    ExpectRejected(c, RawFrame(99, {}), WireStatus::kFrame);
  }
  ExpectServes();
  {  // oversized body_len
    RawConn c(sock);
    ExpectRejected(c, RawFrame(uint16_t(Verb::kPing), {}, wire::kMaxBody + 1), WireStatus::kFrame);
  }
  ExpectServes();
  {  // a malformed LOOKUP body after HELLO
    auto s = Hello(sock, "default", "");
    ASSERT_NE(s, nullptr);
    ExpectRejected(*s->conn, RawFrame(uint16_t(Verb::kLookup), std::vector<std::byte>(13)),
                   WireStatus::kFrame);
  }
  ExpectServes();
  {  // a second HELLO
    auto s = Hello(sock, "default", "");
    ASSERT_NE(s, nullptr);
    std::vector<std::byte> f;
    wire::EncodeHello(9, {wire::kWireVersion, 0, kFp, 256, "default", ""}, f);
    ExpectRejected(*s->conn, f, WireStatus::kFrame);
  }
  ExpectServes();
  {  // truncated: a header promising a body, part of it, then the client goes away
    RawConn c(sock);
    auto f = RawFrame(uint16_t(Verb::kHello), std::vector<std::byte>(10), 100);
    ASSERT_TRUE(c.Send(f));
  }
  ExpectServes();
  {  // garbage header: flags set
    RawConn c(sock);
    std::vector<std::byte> f(16, std::byte{0xff});
    ExpectRejected(c, f, WireStatus::kFrame);
  }
  ExpectServes();
  {  // a wrong fingerprint: that frame is refused, the connection stays usable
    auto s = Hello(sock, "default", "");
    ASSERT_NE(s, nullptr);
    s->Lookup({Key(1)}, 1, WireStatus::kInvalid, kFp + 1);
    std::vector<std::byte> f;
    wire::EncodeGet(50, Verb::kGet, {kNs, kFp + 1, 1, 0, {Key(1)}}, f);
    auto r = s->Call(f);
    std::span<const std::byte> payload;
    EXPECT_EQ(Head(r, &payload).status, WireStatus::kInvalid);
    EXPECT_EQ(s->Simple(Verb::kPing), WireStatus::kOk);
  }
  ExpectServes();
}

TEST_F(ServerTest, SigtermFlushesAndARestartReadsTheSameBytes) {
  StartServer(ServerProcess::DefaultConfig());
  std::vector<std::vector<std::byte>> payloads;
  {
    auto s = Hello(server_->socket_path(), "default", "");
    ASSERT_NE(s, nullptr);
    for (int i = 0; i < 6; ++i) {
      payloads.push_back(Pattern(30000 + i * 1000, 100 + i));
      ASSERT_EQ(s->Put(Key(i), Family::kCsa, payloads.back()), WireStatus::kOk);
      if (i == 2) {  // the first three acknowledged by FLUSH, the rest by the stop's flush
        EXPECT_EQ(s->Simple(Verb::kFlush), WireStatus::kOk);
      }
    }
  }
  const int st = server_->Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(st)) << server_->Log();
  EXPECT_EQ(WEXITSTATUS(st), 0) << server_->Log();
  ASSERT_TRUE(server_->Start().ok()) << server_->Log();
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  std::vector<BlockKey> keys;
  for (int i = 0; i < 6; ++i) keys.push_back(Key(i));
  auto items = s->Get(keys, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(items.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(items[i].status, WireStatus::kOk) << i;
    EXPECT_EQ(s->Bytes(items[i]), payloads[i]) << i;
  }
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// A client process killed with SIGKILL while it holds a lease and a half-written reservation:
// both are reclaimed, and another client is unaffected.
TEST_F(ServerTest, KilledClientsLeasesAndReservationsAreReclaimed) {
  StartServer(ServerProcess::DefaultConfig());
  auto other = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(other, nullptr);
  ASSERT_EQ(other->Put(Key(1), Family::kCsa, Pattern(65536, 1)), WireStatus::kOk);
  auto mine = other->Get({Key(1)}, FamilyMask{Family::kCsa}.bits());
  ASSERT_EQ(mine[0].status, WireStatus::kOk);
  const uint64_t used_before = other->Stats()["host.used"];
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const std::string sock = server_->socket_path();
  const pid_t pid = fork();
  if (pid == 0) {
    auto s = Hello(sock, "default", "");
    if (!s) _exit(1);
    if (s->Get({Key(1)}, FamilyMask{Family::kCsa}.bits())[0].status != WireStatus::kOk) _exit(2);
    wire::ReserveItem it;
    it.ns = kNs;
    it.key = Key(2);
    it.fingerprint = kFp;
    it.size = 256 << 10;
    it.family = uint8_t(Family::kCsa);
    auto r = s->Reserve({it});
    if (r.empty() || r[0].status != WireStatus::kOk) _exit(3);
    std::memset(s->Writable(r[0].offset), 0x5a, it.size / 2);  // half written
    char c = 1;
    if (write(ready[1], &c, 1) != 1) _exit(4);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  EXPECT_EQ(other->Stats()["server.leases_held"], 2u);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  auto st = StatsWhen(*other, [](auto& m) {
    return m["server.leases_held"] == 1 && m["server.reservations_held"] == 0;
  });
  EXPECT_EQ(st["server.leases_held"], 1u);  // `other`'s own lease
  EXPECT_EQ(st["server.reservations_held"], 0u);
  EXPECT_EQ(st["host.used"], used_before);
  EXPECT_EQ(other->Bytes(mine[0]), Pattern(65536, 1));
  EXPECT_EQ(other->Ids(Verb::kRelease, {mine[0].lease})[0], WireStatus::kOk);
  EXPECT_EQ(other->Get({Key(2)}, FamilyMask{Family::kCsa}.bits())[0].status, WireStatus::kNotFound);
}

// Objects acknowledged by FLUSH survive a SIGKILL of the server, bit for bit.
TEST_F(ServerTest, FlushedObjectsSurviveAServerKill) {
  StartServer(ServerProcess::DefaultConfig());
  std::vector<std::vector<std::byte>> payloads;
  {
    auto s = Hello(server_->socket_path(), "default", "");
    ASSERT_NE(s, nullptr);
    for (int i = 0; i < 4; ++i) {
      payloads.push_back(Pattern(50000 + i, 200 + i));
      ASSERT_EQ(s->Put(Key(i), Family::kHca, payloads.back()), WireStatus::kOk);
    }
    ASSERT_EQ(s->Simple(Verb::kFlush), WireStatus::kOk);
    server_->Kill();
    // The client sees the connection end, not a hang.
    std::vector<std::byte> out;
    wire::EncodeEmpty(1, Verb::kPing, out);
    s->conn->Send(out);
    EXPECT_FALSE(s->conn->Recv().has_value());
  }
  ASSERT_TRUE(server_->Start().ok()) << server_->Log();
  auto s = Hello(server_->socket_path(), "default", "");
  ASSERT_NE(s, nullptr);
  for (int i = 0; i < 4; ++i) {
    auto items = s->Get({Key(i)}, FamilyMask{Family::kHca}.bits());
    ASSERT_EQ(items[0].status, WireStatus::kOk) << i;
    EXPECT_EQ(s->Bytes(items[0]), payloads[i]) << i;
  }
}

// Several clients at once, each on its own connection and thread: every read returns the bytes
// its writer committed, and no lease or reservation is left behind.
TEST_F(ServerTest, ConcurrentClientsReadWhatTheyWrote) {
  StartServer(ServerProcess::DefaultConfig());
  constexpr int kClients = 6, kRounds = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  const std::string sock = server_->socket_path();
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      auto s = Hello(sock, "default", "");
      if (!s) return void(++failures);
      for (int r = 0; r < kRounds; ++r) {
        const BlockKey key = Key(1000 * (c + 1) + r);
        const auto bytes = Pattern(4096 + 64 * r, c * 1000 + r);
        if (s->Put(key, Family::kCsa, bytes) != WireStatus::kOk) ++failures;
        auto items = s->Get({key}, FamilyMask{Family::kCsa}.bits());
        if (items.size() != 1 || items[0].status != WireStatus::kOk || s->Bytes(items[0]) != bytes)
          ++failures;
        else if (s->Ids(Verb::kRelease, {items[0].lease})[0] != WireStatus::kOk)
          ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto s = Hello(sock, "default", "");
  ASSERT_NE(s, nullptr);
  auto st = StatsWhen(*s, [](auto& m) { return m["server.leases_held"] == 0; });
  EXPECT_EQ(st["server.leases_held"], 0u);
  EXPECT_EQ(st["server.reservations_held"], 0u);
  EXPECT_EQ(st["server.commits"], uint64_t(kClients * kRounds));
}

// SIGHUP reopens the log file given with --log (after logrotate moved it away).
TEST_F(ServerTest, SighupReopensTheLogFile) {
  server_ = std::make_unique<ServerProcess>(ServerProcess::DefaultConfig());
  const std::string log = server_->dir() + "/strata-server.log";
  server_->set_extra_args({"--log", log});
  ASSERT_TRUE(server_->Start().ok()) << server_->Log();
  ASSERT_EQ(rename(log.c_str(), (log + ".1").c_str()), 0);
  kill(server_->pid(), SIGHUP);
  bool reopened = false;
  for (int i = 0; i < 200 && !reopened; ++i) {
    reopened = access(log.c_str(), F_OK) == 0;
    if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(reopened);
  ExpectServes();
  const int st = server_->Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

}  // namespace
}  // namespace strata
