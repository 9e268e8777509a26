// The Redis Cluster adapter (cachestore/cluster) against a real Redis Cluster of redis-server
// processes (tests/testing/redis_cluster.h); skipped where redis-server or redis-cli is missing.
// The pure parts (key slots, endpoints, RESP) are tested without a cluster.
#include "cachestore/cluster/redis_cluster.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "cachestore/cluster/resp.h"
#include "tests/testing/redis_cluster.h"

namespace strata::cachestore::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using strata::testing::RedisClusterProcess;
using strata::testing::RedisClusterSpec;
using Type = RedisReply::Type;

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

Result<RedisReply> RunOne(RedisCluster& c, std::vector<std::string_view> args,
                          std::chrono::milliseconds timeout = 2000ms) {
  RedisCommand cmd{std::move(args)};
  auto r = c.Execute(std::span<const RedisCommand>(&cmd, 1), Clock::now() + timeout);
  return std::move(r[0]);
}

RedisClusterSpec Spec(int masters, int replicas) {
  RedisClusterSpec s;
  s.masters = masters;
  s.replicas = replicas;
  return s;
}

// --- without a cluster ------------------------------------------------------------------------

TEST(RedisKeySlotTest, MatchesRedis) {
  // Values from `redis-cli CLUSTER KEYSLOT`.
  EXPECT_EQ(Crc16("123456789"), 0x31C3);  // the CRC16/XMODEM check value
  EXPECT_EQ(RedisCluster::KeySlot("foo"), 12182);
  EXPECT_EQ(RedisCluster::KeySlot("bar"), 5061);
  EXPECT_EQ(RedisCluster::KeySlot("hello"), 866);
  EXPECT_EQ(RedisCluster::KeySlot(""), 0);
  EXPECT_EQ(RedisCluster::KeySlot("{user1000}.following"), RedisCluster::KeySlot("user1000"));
  EXPECT_EQ(RedisCluster::KeySlot("{user1000}.following"),
            RedisCluster::KeySlot("{user1000}.followers"));
  EXPECT_EQ(RedisCluster::KeySlot("foo{}{bar}"), Crc16("foo{}{bar}") & 16383);  // empty tag
  EXPECT_EQ(RedisCluster::KeySlot("foo{{bar}}zap"), RedisCluster::KeySlot("{bar"));
  EXPECT_EQ(RedisCluster::KeySlot("foo{bar}{zap}"), RedisCluster::KeySlot("bar"));
  EXPECT_EQ(RedisCluster::KeySlot("foo{bar"), Crc16("foo{bar") & 16383);  // unclosed
  EXPECT_EQ(RedisCluster::KeySlot(std::string_view("\0\xff", 2)),
            Crc16(std::string_view("\0\xff", 2)) & 16383);
}

TEST(RedisEndpointTest, ParsesAndValidates) {
  auto a = ParseEndpoint("127.0.0.1:7000");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7000);
  auto b = ParseEndpoint("[::1]:6379");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 6379);
  auto c = ParseEndpoint("redis-0.example:1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "redis-0.example");
  for (const char* bad :
       {"", "host", ":7000", "host:", "host:0", "host:65536", "host:7x", "::1:7", "[::1]7000"})
    EXPECT_FALSE(ParseEndpoint(bad).ok()) << bad;

  RedisClusterOptions o;
  EXPECT_FALSE(o.Validate().ok());  // no seed
  o.seeds = {{"127.0.0.1", 7000}};
  EXPECT_TRUE(o.Validate().ok());
  o.password = "pw";
  EXPECT_FALSE(o.Validate().ok());  // a password without a user
  o.user = "u";
  EXPECT_TRUE(o.Validate().ok());
  o.max_redirects = -1;
  EXPECT_FALSE(o.Validate().ok());
  o.max_redirects = 5;
  o.spin = std::chrono::milliseconds(100);
  EXPECT_TRUE(o.Validate().ok());
  o.spin = std::chrono::microseconds(100001);
  EXPECT_FALSE(o.Validate().ok());  // polling is for microseconds, not a busy core
  o.spin = std::chrono::microseconds(-1);
  EXPECT_FALSE(o.Validate().ok());
}

TEST(RespTest, EncodesAndReadsBinary) {
  const std::string value("a\0b\r\nc", 6);
  const std::vector<std::string_view> args = {"SET", "k", value};
  static constexpr char kEncoded[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\0b\r\nc\r\n";
  EXPECT_EQ(EncodeCommand(args), std::string(kEncoded, sizeof(kEncoded) - 1));

  // Large arguments are left out of the buffer and listed where they belong.
  const std::string big = RandomBytes(kZeroCopyMinBytes, 1);
  std::string out;
  std::vector<ExternalPiece> ext;
  const std::vector<std::string_view> big_args = {"SET", "k", big};
  AppendCommand(big_args, out, &ext);
  ASSERT_EQ(ext.size(), 1u);
  std::string joined =
      out.substr(0, ext[0].offset) + std::string(ext[0].bytes) + out.substr(ext[0].offset);
  EXPECT_EQ(joined, EncodeCommand(big_args));

  // Replies fed a byte at a time, nested arrays, nil, integers, errors.
  static constexpr char kWire[] =
      "+OK\r\n-ERR bad\r\n:42\r\n$-1\r\n$6\r\na\0b\r\nc\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n";
  ReplyReader reader;
  std::vector<RedisReply> got;
  for (char ch : std::string(kWire, sizeof(kWire) - 1)) {
    ASSERT_TRUE(reader.Feed(&ch, 1).ok());
    for (;;) {
      auto r = reader.Next();
      ASSERT_TRUE(r.ok());
      if (!r->has_value()) break;
      got.push_back(std::move(**r));
    }
  }
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0].type, Type::kStatus);
  EXPECT_EQ(got[0].str, "OK");
  EXPECT_EQ(got[1].type, Type::kError);
  EXPECT_EQ(got[1].str, "ERR bad");
  EXPECT_EQ(got[2].type, Type::kInteger);
  EXPECT_EQ(got[2].integer, 42);
  EXPECT_EQ(got[3].type, Type::kNil);
  EXPECT_EQ(got[4].type, Type::kString);
  EXPECT_EQ(got[4].str, value);
  ASSERT_EQ(got[5].type, Type::kArray);
  ASSERT_EQ(got[5].elements.size(), 2u);
  ASSERT_EQ(got[5].elements[0].elements.size(), 1u);
  EXPECT_EQ(got[5].elements[0].elements[0].integer, 1);
  EXPECT_EQ(got[5].elements[1].type, Type::kString);
  EXPECT_EQ(got[5].elements[1].str, "");

  ReplyReader bad;
  ASSERT_TRUE(bad.Feed("?what\r\n", 7).ok());
  EXPECT_FALSE(bad.Next().ok());
}

// A value sent as two parts (a record's header, then its payload) is one bulk argument, the
// same bytes as the joined value; the large part is left out of the buffer.
TEST(RespTest, EncodesALastArgumentInTwoParts) {
  const std::string head = RandomBytes(128, 2), tail = RandomBytes(kZeroCopyMinBytes + 3, 3);
  const std::string joined_value = head + tail;
  const std::vector<std::string_view> joined = {"SET", "k", joined_value};
  const std::vector<std::string_view> parted = {"SET", "k", head};
  std::string copied;
  AppendCommand(parted, tail, copied, nullptr);
  EXPECT_EQ(copied, EncodeCommand(joined));

  std::string out;
  std::vector<ExternalPiece> ext;
  AppendCommand(parted, tail, out, &ext);
  ASSERT_EQ(ext.size(), 1u);
  EXPECT_EQ(ext[0].bytes.data(), tail.data());
  EXPECT_EQ(out.substr(0, ext[0].offset) + std::string(ext[0].bytes) + out.substr(ext[0].offset),
            EncodeCommand(joined));
}

// Large bulk strings bypass hiredis: they must come out byte-exact and in order among the other
// replies however the stream is cut, and also when received through BulkWindow.
TEST(RespTest, ReadsLargeValuesWhateverTheCuts) {
  const std::string big1 = RandomBytes(kZeroCopyMinBytes, 4),
                    big2 = RandomBytes(3 * kZeroCopyMinBytes + 7, 5),
                    small = RandomBytes(kZeroCopyMinBytes - 1, 6);
  auto bulk = [](const std::string& v) {
    return "$" + std::to_string(v.size()) + "\r\n" + v + "\r\n";
  };
  const std::string wire = "+OK\r\n" + bulk(big1) + bulk(big2) + "$-1\r\n" + bulk(small) +
                           ":7\r\n" + bulk(big1) + "*1\r\n" + bulk(big2);
  auto check = [&](const std::vector<RedisReply>& got, const std::string& how) {
    ASSERT_EQ(got.size(), 8u) << how;
    EXPECT_EQ(got[0].str, "OK") << how;
    EXPECT_EQ(got[1].type, Type::kString) << how;
    EXPECT_TRUE(got[1].str == big1) << how;
    EXPECT_TRUE(got[2].str == big2) << how;
    EXPECT_EQ(got[3].type, Type::kNil) << how;
    EXPECT_TRUE(got[4].str == small) << how;
    EXPECT_EQ(got[5].integer, 7) << how;
    EXPECT_TRUE(got[6].str == big1) << how;
    ASSERT_EQ(got[7].type, Type::kArray) << how;
    ASSERT_EQ(got[7].elements.size(), 1u) << how;
    EXPECT_TRUE(got[7].elements[0].str == big2) << how;
  };
  std::mt19937_64 rng(9);
  for (const size_t max_cut : {size_t{1}, size_t{5}, size_t{700}, size_t{70000}, wire.size()}) {
    for (const bool through_window : {false, true}) {
      ReplyReader reader;
      std::vector<RedisReply> got;
      size_t at = 0, windows = 0;
      while (at < wire.size()) {
        const size_t n = std::min<size_t>(wire.size() - at, 1 + rng() % max_cut);
        const std::span<char> window = reader.BulkWindow();
        if (through_window && !window.empty()) {
          const size_t k = std::min(n, window.size());
          std::memcpy(window.data(), wire.data() + at, k);
          reader.Filled(k);
          at += k;
          windows += k;
        } else {
          ASSERT_TRUE(reader.Feed(wire.data() + at, n).ok());
          at += n;
        }
        for (;;) {
          auto r = reader.Next();
          ASSERT_TRUE(r.ok()) << r.status().message();
          if (!r->has_value()) break;
          got.push_back(std::move(**r));
        }
      }
      check(got, "cuts up to " + std::to_string(max_cut) + (through_window ? ", window" : ""));
      // With cuts of up to 700 bytes each value's header comes whole, at a reply boundary, so
      // the three top-level large values are received in place, all but their first chunk.
      if (through_window && max_cut == 700) {
        EXPECT_GE(windows, 2 * big1.size() + big2.size() - 3 * 700);
      }
    }
  }

  // A large value not followed by CRLF: the replies before it, then an error, never the value.
  // (hiredis itself does not check a bulk string's CRLF; this reader does, for the values it
  // takes over, which start where hiredis is idle.)
  ReplyReader reader;
  ASSERT_TRUE(reader.Feed(":1\r\n", 4).ok());
  const std::string broken = bulk(big1).substr(0, big1.size() + 8) + "xx";
  ASSERT_TRUE(reader.Feed(broken.data(), broken.size()).ok());
  auto first = reader.Next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->integer, 1);
  EXPECT_FALSE(reader.Next().ok());
  // A length no Redis sends is an error, not an allocation.
  reader.Reset();
  ASSERT_TRUE(reader.Feed("$99999999999999\r\n", 17).ok());
  EXPECT_FALSE(reader.Next().ok());
  // Reset makes it usable again.
  reader.Reset();
  ASSERT_TRUE(reader.Feed(wire.data(), wire.size()).ok());
  size_t n = 0;
  for (auto r = reader.Next(); r.ok() && r->has_value(); r = reader.Next()) ++n;
  EXPECT_EQ(n, 8u);
}

// A port that refuses connections, and one that accepts them (in the kernel's backlog) but never
// answers: Connect must fail by its timeout in both cases.
TEST(RedisConnectTest, UnreachableSeedsFailWithinTimeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const uint16_t silent_port = ntohs(a.sin_port);
  ASSERT_EQ(::listen(fd, 16), 0);

  const int fd2 = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in b{};
  b.sin_family = AF_INET;
  b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd2, reinterpret_cast<sockaddr*>(&b), sizeof(b)), 0);
  len = sizeof(b);
  ASSERT_EQ(::getsockname(fd2, reinterpret_cast<sockaddr*>(&b), &len), 0);
  const uint16_t closed_port = ntohs(b.sin_port);
  ::close(fd2);  // bound once, now closed: connections are refused

  RedisClusterOptions o;
  o.connect_timeout = 300ms;
  o.seeds = {{"127.0.0.1", closed_port}};
  auto t0 = Clock::now();
  auto refused = RedisCluster::Connect(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kIoError);
  EXPECT_NE(refused.status().message().find("unreachable"), std::string::npos)
      << refused.status().ToString();
  EXPECT_LT(Clock::now() - t0, 300ms + 200ms);

  o.seeds = {{"127.0.0.1", closed_port}, {"127.0.0.1", silent_port}};
  t0 = Clock::now();
  auto silent = RedisCluster::Connect(o);
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(silent.ok());
  EXPECT_NE(silent.status().message().find("unreachable"), std::string::npos)
      << silent.status().ToString();
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 300ms + 200ms);
  ::close(fd);
}

// --- against a real cluster -------------------------------------------------------------------

class RedisClusterTest : public ::testing::Test {
 protected:
  void StartCluster(RedisClusterSpec spec) {
    if (std::string why = RedisClusterProcess::Missing(); !why.empty()) GTEST_SKIP() << why;
    cluster_ = std::make_unique<RedisClusterProcess>(std::move(spec));
    const Status s = cluster_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::unique_ptr<RedisCluster> Connect(const std::string& user = "",
                                        const std::string& password = "",
                                        std::chrono::microseconds spin = {}) {
    RedisClusterOptions o;
    o.seeds = {cluster_->Seeds()[0]};
    o.user = user;
    o.password = password;
    o.spin = spin;
    auto c = RedisCluster::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  // Keys named `prefix` + n whose slots are served by each master: at least `per_master` each.
  std::map<size_t, std::vector<std::string>> KeysOnMasters(const std::string& prefix,
                                                           size_t per_master) {
    std::map<size_t, std::vector<std::string>> out;
    const size_t masters = cluster_->Masters().size();
    for (int n = 0; out.size() < masters ||
                    std::any_of(out.begin(), out.end(),
                                [&](auto& kv) { return kv.second.size() < per_master; });
         ++n) {
      const std::string key = prefix + std::to_string(n);
      const int m = cluster_->MasterOfSlot(RedisCluster::KeySlot(key));
      if (m >= 0 && out[static_cast<size_t>(m)].size() < per_master)
        out[static_cast<size_t>(m)].push_back(key);
    }
    return out;
  }

  // Two keys per master set to "v-<key>", then all read in one batch with the first master
  // paused (SIGSTOP) and a 100 ms deadline; resumed afterwards.
  struct PausedRun {
    std::vector<std::string> keys, expected;  // RedisCommand keeps views: these stay
    std::vector<size_t> owner;
    std::vector<RedisCommand> gets;
    size_t paused = 0;
    std::vector<Result<RedisReply>> replies;
    Clock::duration took{};
  };
  void ReadWithOneMasterPaused(RedisCluster& c, const std::string& prefix, PausedRun& run) {
    for (const auto& [m, ks] : KeysOnMasters(prefix, 2))
      for (const std::string& k : ks) {
        run.keys.push_back(k);
        run.expected.push_back("v-" + k);
        run.owner.push_back(m);
      }
    std::vector<RedisCommand> sets;
    for (size_t i = 0; i < run.keys.size(); ++i) {
      sets.push_back({{"SET", run.keys[i], run.expected[i]}});
      run.gets.push_back({{"GET", run.keys[i]}});
    }
    for (auto& r : c.Execute(sets, Clock::now() + 2s)) ASSERT_TRUE(r.ok());
    run.paused = run.owner.front();
    cluster_->Pause(run.paused);
    const auto t0 = Clock::now();
    run.replies = c.Execute(run.gets, t0 + 100ms);
    run.took = Clock::now() - t0;
    cluster_->Resume(run.paused);
  }

  std::unique_ptr<RedisClusterProcess> cluster_;
};

#define START_CLUSTER(...)                        \
  do {                                            \
    StartCluster(__VA_ARGS__);                    \
    if (IsSkipped() || HasFatalFailure()) return; \
  } while (0)

TEST_F(RedisClusterTest, RoundTripsBinaryValuesAndPipelines) {
  START_CLUSTER(Spec(3, 0));
  auto c = Connect();
  ASSERT_NE(c, nullptr);

  // Our slots are Redis's, for binary keys too.
  for (int i = 0; i < 100; ++i) {
    const std::string key = RandomBytes(1 + i % 23, 100 + i);
    auto r = cluster_->Command(0, {"CLUSTER", "KEYSLOT", key});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->integer, RedisCluster::KeySlot(key)) << i;
  }

  // Values of every shape, on keys on all three masters, in one batch each way.
  const auto keys = KeysOnMasters("rt:", 4);
  ASSERT_EQ(keys.size(), 3u);
  std::vector<std::string> key_list, values;
  std::vector<size_t> owner;
  int n = 0;
  for (const auto& [master, ks] : keys) {
    for (const std::string& k : ks) {
      key_list.push_back(k);
      owner.push_back(master);
      switch (n++ % 4) {
        case 0:
          values.push_back(RandomBytes(1 << 20, n));  // 1 MiB
          break;
        case 1:
          values.push_back("");  // zero bytes
          break;
        case 2:
          values.push_back(std::string("\0\r\n$-1\r\n\0", 9));  // RESP look-alikes
          break;
        default:
          values.push_back(RandomBytes(64 << 10, n));
      }
    }
  }
  std::vector<RedisCommand> sets, gets, dels;
  for (size_t i = 0; i < key_list.size(); ++i) {
    sets.push_back({{"SET", key_list[i], values[i]}});
    gets.push_back({{"GET", key_list[i]}});
    dels.push_back({{"DEL", key_list[i]}});
  }
  auto set_replies = c->Execute(sets, Clock::now() + 5s);
  for (auto& r : set_replies) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->type, Type::kStatus);
    EXPECT_EQ(r->str, "OK");
  }
  auto get_replies = c->Execute(gets, Clock::now() + 5s);
  for (size_t i = 0; i < key_list.size(); ++i) {
    ASSERT_TRUE(get_replies[i].ok()) << get_replies[i].status().ToString();
    ASSERT_EQ(get_replies[i]->type, Type::kString);
    EXPECT_TRUE(get_replies[i]->str == values[i]) << "value " << i << " differs";
    // And it is where the slot map says, read with another client.
    auto direct = cluster_->Command(owner[i], {"GET", key_list[i]});
    ASSERT_TRUE(direct.ok());
    EXPECT_TRUE(direct->str == values[i]) << "value " << i << " not on its master";
  }

  // A value overwritten behind the adapter's back reads as the new one.
  ASSERT_TRUE(cluster_->Command(owner[0], {"SET", key_list[0], "direct"}).ok());
  auto over = RunOne(*c, {"GET", key_list[0]});
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(over->str, "direct");

  auto del_replies = c->Execute(dels, Clock::now() + 5s);
  for (auto& r : del_replies) {
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->type, Type::kInteger);
    EXPECT_EQ(r->integer, 1);
  }
  for (auto& r : c->Execute(gets, Clock::now() + 5s)) {
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->type, Type::kNil);
  }
  auto ping = RunOne(*c, {"PING"});  // keyless: any node
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->str, "PONG");

  // 3000 commands across the nodes in one batch, from four threads at once.
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0}, failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::string> ks, vs;
      for (int i = 0; i < 1500; ++i) {
        ks.push_back("pipe:" + std::to_string(t) + ":" + std::to_string(i));
        vs.push_back(RandomBytes(static_cast<size_t>(i % 300), t * 10000 + i));
      }
      std::vector<RedisCommand> batch;
      for (int i = 0; i < 1500; ++i) {
        batch.push_back({{"SET", ks[i], vs[i]}});
        batch.push_back({{"GET", ks[i]}});
      }
      auto replies = c->Execute(batch, Clock::now() + 10s);
      for (int i = 0; i < 1500; ++i) {
        if (!replies[2 * i].ok() || !replies[2 * i + 1].ok()) {
          ++failures;
          continue;
        }
        if (replies[2 * i + 1]->str != vs[i]) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);

  const RedisClusterStats s = c->stats();
  EXPECT_GE(s.commands, 3u * key_list.size() + 2 * 4 * 1500);
  EXPECT_GT(s.bytes_sent, 3u << 20);
  EXPECT_GT(s.bytes_received, 3u << 20);
  EXPECT_EQ(s.timeouts, 0u);
  EXPECT_EQ(s.moved, 0u);
}

// With polling (RedisClusterOptions::spin) the I/O thread and the callers poll before they
// sleep: the same replies, from threads at once and through Start/Wait, and a paused master's
// commands still fail at their deadline while the others are served.
TEST_F(RedisClusterTest, PollingServesTheSameRepliesAndKeepsDeadlines) {
  START_CLUSTER(Spec(3, 0));
  auto c = Connect("", "", std::chrono::microseconds(300));
  ASSERT_NE(c, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0}, failures{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        std::vector<std::string> ks, vs;
        for (int i = 0; i < 16; ++i) {
          ks.push_back("spin:" + std::to_string(t) + ":" + std::to_string(round * 16 + i));
          vs.push_back(RandomBytes(static_cast<size_t>(1 + (i * 4099) % (48 << 10)),
                                   t * 100000 + round * 100 + i));
        }
        std::vector<RedisCommand> sets, gets;
        for (int i = 0; i < 16; ++i) {
          sets.push_back({{"SET", ks[i], vs[i]}});
          gets.push_back({{"GET", ks[i]}});
        }
        for (auto& r : c->Execute(sets, Clock::now() + 10s))
          if (!r.ok() || r->str != "OK") ++failures;
        // Every other round through Start/Wait, the other through Execute.
        std::vector<Result<RedisReply>> replies;
        if (round % 2 == 0)
          replies = RedisCluster::Wait(c->Start(gets, Clock::now() + 10s));
        else
          replies = c->Execute(gets, Clock::now() + 10s);
        for (int i = 0; i < 16; ++i) {
          if (!replies[i].ok()) {
            ++failures;
            continue;
          }
          if (replies[i]->str != vs[i]) ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);

  PausedRun run;
  ReadWithOneMasterPaused(*c, "spinpause:", run);
  if (HasFatalFailure()) return;
  EXPECT_LT(run.took, 100ms + 150ms);
  for (size_t i = 0; i < run.gets.size(); ++i) {
    if (run.owner[i] == run.paused) {
      EXPECT_FALSE(run.replies[i].ok());
    } else {
      ASSERT_TRUE(run.replies[i].ok()) << run.replies[i].status().ToString();
      EXPECT_EQ(run.replies[i]->str, run.expected[i]);
    }
  }
}

// Moves the slot of `key` from master `from` to master `to` as `redis-cli --cluster reshard`
// does, step by step: IMPORTING/MIGRATING, MIGRATE of `keys`, then (if `finish`) SETSLOT NODE.
void BeginMigration(RedisClusterProcess& c, uint16_t slot, size_t from, size_t to) {
  const std::string s = std::to_string(slot);
  ASSERT_TRUE(c.Command(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", c.NodeId(from)}).ok());
  ASSERT_TRUE(c.Command(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", c.NodeId(to)}).ok());
}

void MigrateKeys(RedisClusterProcess& c, size_t from, size_t to,
                 const std::vector<std::string>& keys) {
  std::vector<std::string> args = {"MIGRATE", "127.0.0.1", std::to_string(c.port(to)), "", "0",
                                   "5000",    "KEYS"};
  args.insert(args.end(), keys.begin(), keys.end());
  auto r = c.Command(from, args);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->str, "OK") << r->str;
}

void FinishMigration(RedisClusterProcess& c, uint16_t slot, size_t to) {
  const std::string id = c.NodeId(to);
  for (size_t i = 0; i < c.size(); ++i) {
    auto r = c.Command(i, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", id});
    ASSERT_TRUE(r.ok() && r->type != Type::kError) << (r.ok() ? r->str : r.status().ToString());
  }
}

TEST_F(RedisClusterTest, FollowsMovedAndAsk) {
  START_CLUSTER(Spec(3, 0));
  auto c = Connect();
  ASSERT_NE(c, nullptr);

  // MOVED: the slot changed hands after the adapter read its map.
  const std::string moved_key = "moved-key";
  const uint16_t slot = RedisCluster::KeySlot(moved_key);
  const auto from = static_cast<size_t>(cluster_->MasterOfSlot(slot));
  const size_t to =
      cluster_->Masters()[0] == from ? cluster_->Masters()[1] : cluster_->Masters()[0];
  ASSERT_TRUE(RunOne(*c, {"SET", moved_key, "v-moved"}).ok());
  // A second adapter that may not follow any redirection: its map is as old as the first's.
  RedisClusterOptions no_hops;
  no_hops.seeds = cluster_->Seeds();
  no_hops.max_redirects = 0;
  auto strict = RedisCluster::Connect(no_hops);
  ASSERT_TRUE(strict.ok()) << strict.status().ToString();
  BeginMigration(*cluster_, slot, from, to);
  MigrateKeys(*cluster_, from, to, {moved_key});
  FinishMigration(*cluster_, slot, to);
  auto got = RunOne(*c, {"GET", moved_key});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->str, "v-moved");
  EXPECT_GE(c->stats().moved, 1u);
  const uint64_t moved = c->stats().moved;
  got = RunOne(*c, {"GET", moved_key});  // the map now says where: no more redirection
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(c->stats().moved, moved);
  // Out of hops: "unreachable", and yet the MOVED taught its map, so the next GET is served.
  got = RunOne(**strict, {"GET", moved_key});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message().rfind("unreachable", 0), 0u) << got.status().ToString();
  got = RunOne(**strict, {"GET", moved_key});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->str, "v-moved");

  // ASK: the slot is half-way: {ask}a has moved, {ask}b has not, {ask}c is new.
  const uint16_t ask_slot = RedisCluster::KeySlot("{ask}");
  const auto ask_from = static_cast<size_t>(cluster_->MasterOfSlot(ask_slot));
  const size_t ask_to =
      cluster_->Masters()[0] == ask_from ? cluster_->Masters()[1] : cluster_->Masters()[0];
  ASSERT_TRUE(RunOne(*c, {"SET", "{ask}a", "va"}).ok());
  ASSERT_TRUE(RunOne(*c, {"SET", "{ask}b", "vb"}).ok());
  BeginMigration(*cluster_, ask_slot, ask_from, ask_to);
  MigrateKeys(*cluster_, ask_from, ask_to, {"{ask}a"});
  std::vector<RedisCommand> batch = {
      {{"GET", "{ask}a"}}, {{"GET", "{ask}b"}}, {{"SET", "{ask}c", "vc"}}};
  auto replies = c->Execute(batch, Clock::now() + 2s);
  for (auto& r : replies) ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(replies[0]->str, "va");
  EXPECT_EQ(replies[1]->str, "vb");
  EXPECT_EQ(replies[2]->str, "OK");
  EXPECT_GE(c->stats().ask, 2u);  // {ask}a and {ask}c
  // ASK does not change the map: {ask}b is still read from the old owner without a hop.
  const uint64_t asks = c->stats().ask;
  got = RunOne(*c, {"GET", "{ask}b"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->str, "vb");
  EXPECT_EQ(c->stats().ask, asks);

  MigrateKeys(*cluster_, ask_from, ask_to, {"{ask}b"});
  FinishMigration(*cluster_, ask_slot, ask_to);
  for (const char* k : {"{ask}a", "{ask}b", "{ask}c"}) {
    got = RunOne(*c, {"GET", k});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->str, std::string("v") + (k + 5)[0]);
    auto direct = cluster_->Command(ask_to, {"GET", k});
    ASSERT_TRUE(direct.ok());
    EXPECT_EQ(direct->str, got->str);
  }
}

TEST_F(RedisClusterTest, PausedMasterTimesOutOnlyItsCommands) {
  START_CLUSTER(Spec(3, 0));
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  PausedRun run;
  ReadWithOneMasterPaused(*c, "pause:", run);
  if (HasFatalFailure()) return;
  EXPECT_LT(run.took, 100ms + 150ms)
      << "Execute returned " << std::chrono::duration<double, std::milli>(run.took).count()
      << " ms after a 100 ms deadline";
  for (size_t i = 0; i < run.gets.size(); ++i) {
    if (run.owner[i] == run.paused) {
      ASSERT_FALSE(run.replies[i].ok());
      EXPECT_EQ(run.replies[i].status().code(), StatusCode::kIoError);
      EXPECT_EQ(run.replies[i].status().message().rfind("deadline", 0), 0u)
          << run.replies[i].status().ToString();
    } else {
      ASSERT_TRUE(run.replies[i].ok()) << run.replies[i].status().ToString();
      EXPECT_EQ(run.replies[i]->str, run.expected[i]);
    }
  }
  EXPECT_GE(c->stats().timeouts, 2u);

  // Resumed: the node answers again on a new connection, with nothing misaligned.
  auto replies = c->Execute(run.gets, Clock::now() + 2s);
  for (size_t i = 0; i < run.gets.size(); ++i) {
    ASSERT_TRUE(replies[i].ok()) << replies[i].status().ToString();
    EXPECT_EQ(replies[i]->str, run.expected[i]);
  }
}

// Per node: its role, keys and log tail, for a failure message.
std::string Diagnose(RedisClusterProcess& c) {
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    out += "--- node " + c.endpoint(i) + (c.alive(i) ? "" : " (dead)") + "\n";
    if (c.alive(i)) {
      auto keys = c.Command(i, {"DBSIZE"});
      out +=
          "keys: " + (keys.ok() ? std::to_string(keys->integer) : keys.status().ToString()) + "\n";
    }
    const std::string log = c.Log(i);
    out += log.substr(log.size() > 3000 ? log.size() - 3000 : 0);
  }
  return out;
}

TEST_F(RedisClusterTest, MasterKilledFailsOverToReplica) {
  START_CLUSTER(Spec(3, 1));
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  const auto keys = KeysOnMasters("fo:", 3);
  const size_t victim = keys.begin()->first;
  std::vector<std::string> key_list, expected;
  std::vector<size_t> owner;
  for (const auto& [m, ks] : keys)
    for (const std::string& k : ks) {
      key_list.push_back(k);
      expected.push_back("v-" + k);
      owner.push_back(m);
    }
  std::vector<RedisCommand> sets, gets;
  for (size_t i = 0; i < key_list.size(); ++i) {
    sets.push_back({{"SET", key_list[i], expected[i]}});
    gets.push_back({{"GET", key_list[i]}});
  }
  for (auto& r : c->Execute(sets, Clock::now() + 2s)) ASSERT_TRUE(r.ok());
  // The writes reach the victim's replica before the kill.
  const Status replicated = cluster_->WaitReplicated(victim);
  ASSERT_TRUE(replicated.ok()) << replicated.ToString();

  cluster_->Kill(victim);
  const auto killed_at = Clock::now();
  bool failed_before = false, served = false;
  std::string last_error;
  while (Clock::now() - killed_at < 20s && !served) {
    const auto t0 = Clock::now();
    auto replies = c->Execute(gets, t0 + 300ms);
    const auto took = Clock::now() - t0;
    EXPECT_LT(took, 300ms + 200ms);
    served = true;
    for (size_t i = 0; i < gets.size(); ++i) {
      if (owner[i] != victim) {
        // The other masters answer all along (unless the cluster itself says it is down).
        if (replies[i].ok() && replies[i]->type != Type::kError) {
          EXPECT_EQ(replies[i]->str, expected[i]);
        }
        continue;
      }
      if (!replies[i].ok() || replies[i]->type != Type::kString) {
        last_error = replies[i].ok()
                         ? "reply of type " + std::to_string(static_cast<int>(replies[i]->type)) +
                               " '" + replies[i]->str + "'"
                         : replies[i].status().ToString();
        served = false;
        failed_before = true;
      } else {
        EXPECT_EQ(replies[i]->str, expected[i]);
      }
    }
  }
  if (!served) {
    // Tell a failover that did not happen from an adapter that did not see it.
    const Status failover = cluster_->WaitForFailover(victim, 1s);
    std::string nodes;
    for (size_t i = 0; i < cluster_->size() && nodes.empty(); ++i)
      if (cluster_->alive(i)) {
        auto r = cluster_->Command(i, {"CLUSTER", "NODES"});
        nodes = r.ok() ? r->str : r.status().ToString();
      }
    std::string direct = "(none)";
    for (size_t i = 0; i < gets.size(); ++i)
      if (owner[i] == victim) {
        const int m = cluster_->MasterOfSlot(RedisCluster::KeySlot(key_list[i]));
        auto r = m < 0 ? Result<RedisReply>(Status::NotFound("no master"))
                       : cluster_->Command(static_cast<size_t>(m), {"GET", key_list[i]});
        direct = r.ok() ? "type " + std::to_string(static_cast<int>(r->type)) + " '" + r->str + "'"
                        : r.status().ToString();
        break;
      }
    FAIL() << "not served within 20 s of the kill; last error: " << last_error
           << "; a GET on its new master directly: " << direct
           << "; the cluster's failover: " << failover.ToString() << "; adapter refreshes "
           << c->stats().slot_map_refreshes << ", retries " << c->stats().retries
           << "; CLUSTER NODES:\n"
           << nodes << Diagnose(*cluster_);
  }
  EXPECT_TRUE(failed_before);
  std::cout << "served again " << std::chrono::duration<double>(Clock::now() - killed_at).count()
            << " s after the kill\n";
  ASSERT_TRUE(cluster_->WaitForFailover(victim).ok());
  const RedisClusterStats s = c->stats();
  EXPECT_GT(s.connect_errors, 0u);
  EXPECT_GT(s.slot_map_refreshes, 1u);
  // Writes go to the promoted replica too.
  auto set = RunOne(*c, {"SET", keys.begin()->second[0], "after"});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->str, "OK");
}

TEST_F(RedisClusterTest, AclRestrictsKeysAndAuthFailuresFailConnect) {
  START_CLUSTER(Spec(3, 0));
  const Status acl =
      cluster_->CommandOnAll({"ACL", "SETUSER", "tenantA", "on", ">pw", "~tenantA:*", "+@all"});
  ASSERT_TRUE(acl.ok()) << acl.ToString();
  auto c = Connect("tenantA", "pw");
  ASSERT_NE(c, nullptr);
  std::vector<RedisCommand> batch = {{{"SET", "tenantA:x", "mine"}},
                                     {{"SET", "tenantB:x", "theirs"}},
                                     {{"GET", "tenantA:x"}},
                                     {{"GET", "other"}}};
  auto r = c->Execute(batch, Clock::now() + 2s);
  for (auto& x : r) ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_EQ(r[0]->str, "OK");
  EXPECT_EQ(r[1]->type, Type::kError);
  EXPECT_EQ(r[1]->str.rfind("NOPERM", 0), 0u) << r[1]->str;
  EXPECT_EQ(r[2]->str, "mine");
  EXPECT_EQ(r[3]->type, Type::kError);
  EXPECT_EQ(r[3]->str.rfind("NOPERM", 0), 0u) << r[3]->str;
  auto direct = cluster_->Command(
      static_cast<size_t>(cluster_->MasterOfSlot(RedisCluster::KeySlot("tenantB:x"))),
      {"EXISTS", "tenantB:x"});
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(direct->integer, 0);

  for (const auto& [user, password] :
       std::vector<std::pair<std::string, std::string>>{{"tenantA", "wrong"}, {"nobody", "pw"}}) {
    RedisClusterOptions o;
    o.seeds = cluster_->Seeds();
    o.user = user;
    o.password = password;
    const auto t0 = Clock::now();
    auto bad = RedisCluster::Connect(o);
    ASSERT_FALSE(bad.ok());
    EXPECT_LT(Clock::now() - t0, o.connect_timeout + 200ms);
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().ToString();
    EXPECT_NE(bad.status().message().find("AUTH"), std::string::npos) << bad.status().ToString();
    EXPECT_NE(bad.status().message().find("WRONGPASS"), std::string::npos)
        << bad.status().ToString();
  }
}

}  // namespace
}  // namespace strata::cachestore::cluster
