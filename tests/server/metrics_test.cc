// strata-server's metrics: the Prometheus exposition over a real tiered store (host-only and
// with a memory NVMe device), checked by `promtool check metrics` and series by series against
// what the test counted; and the HTTP endpoint over a real TCP socket.
#include "cachestore/server/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "cachestore/server/http_endpoint.h"
#include "tests/testing/store_fixture.h"

namespace strata::server {
namespace {

// ---- A reader of the text format, enough to look series up by name and labels. ----

using Labels = std::map<std::string, std::string>;
struct Series {
  std::string name;
  Labels labels;
  double value = 0;
};
struct Exposition {
  std::vector<Series> series;
  std::map<std::string, std::string> type;  // # TYPE
  std::map<std::string, std::string> help;  // # HELP
};

// Parses `text`; any line it cannot read fails the test.
Exposition Parse(const std::string& text) {
  Exposition e;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    EXPECT_NE(eol, std::string::npos) << "the exposition must end with a newline";
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const size_t sp = line.find(' ', 7);
      auto& m = line[2] == 'H' ? e.help : e.type;
      m[line.substr(7, sp - 7)] = line.substr(sp + 1);
      continue;
    }
    Series s;
    size_t i = line.find_first_of("{ ");
    s.name = line.substr(0, i);
    if (line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        const size_t eq = line.find('=', i);
        const std::string key = line.substr(i, eq - i);
        EXPECT_EQ(line[eq + 1], '"') << line;
        std::string value;
        for (i = eq + 2; line[i] != '"'; ++i) {
          if (line[i] == '\\') {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
        }
        s.labels[key] = value;
        ++i;
        if (line[i] == ',') ++i;
      }
      ++i;
    }
    EXPECT_EQ(line[i], ' ') << line;
    s.value = std::stod(line.substr(i + 1));
    e.series.push_back(std::move(s));
  }
  return e;
}

// The value of the one series `name` with exactly `labels`; fails the test if it is absent.
double Value(const Exposition& e, const std::string& name, const Labels& labels) {
  for (const auto& s : e.series)
    if (s.name == name && s.labels == labels) return s.value;
  ADD_FAILURE() << "no series " << name << " with the labels given";
  return -1;
}

size_t Count(const Exposition& e, const std::string& name) {
  size_t n = 0;
  for (const auto& s : e.series) n += s.name == name;
  return n;
}

struct Promtool {
  bool present = false;
  int exit_code = -1;
  std::string output;
};

// `promtool check metrics < file`, stdout and stderr together.
Promtool CheckWithPromtool(const std::string& text, const std::string& dir) {
  Promtool r;
  r.present = system("command -v promtool >/dev/null 2>&1") == 0;
  if (!r.present) return r;
  const std::string path = dir + "/metrics.prom";
  std::ofstream(path, std::ios::binary) << text;
  FILE* p = popen(("promtool check metrics < '" + path + "' 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// ---- Histogram ----

TEST(HistogramTest, BucketsAreInclusiveAndCumulative) {
  Histogram h;
  h.Observe(0);      // first bucket
  h.Observe(5e-6);   // le 5e-6 (bounds are inclusive)
  h.Observe(6e-6);   // le 1e-5
  h.Observe(0.3);    // le 1.0
  h.Observe(100.0);  // +Inf
  h.Observe(-1.0);   // counted as 0
  const auto c = h.Cumulative();
  EXPECT_EQ(c[0], 3u);
  EXPECT_EQ(c[1], 4u);
  EXPECT_EQ(c[11], 4u);  // le 0.25
  EXPECT_EQ(c[12], 5u);  // le 1.0
  EXPECT_EQ(c[13], 5u);  // le 10
  EXPECT_EQ(c[14], 6u);  // +Inf
  EXPECT_EQ(h.count(), 6u);
  EXPECT_NEAR(h.sum(), 5e-6 + 6e-6 + 0.3 + 100.0, 1e-9);
}

TEST(HistogramTest, ConcurrentObservationsAllCount) {
  Histogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) h.Observe(1e-4);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.count(), 40000u);
  EXPECT_EQ(h.Cumulative()[4], 40000u);  // le 1e-4
  EXPECT_NEAR(h.sum(), 4.0, 1e-6);
}

TEST(MetricsRegistryTest, ForTenantReturnsTheSameMetrics) {
  MetricsRegistry reg;
  TenantMetrics& a = reg.ForTenant("a");
  EXPECT_EQ(&reg.ForTenant("b").tenant, &reg.ForTenant("b").tenant);
  EXPECT_EQ(&reg.ForTenant("a"), &a);
  EXPECT_EQ(a.tenant, "a");
}

// ---- The exposition over real stores ----

constexpr uint64_t kFp = 0xfeed;
constexpr NamespaceId kNs = 3;
BlockKey K(uint64_t i) { return BlockKey{0x51, i}; }

// What the test counted, as the server would count it.
struct Counted {
  uint64_t hits[kNumFamilies][kNumTiers] = {};
  uint64_t bytes_out[kNumFamilies][kNumTiers] = {};
  uint64_t misses[kNumFamilies] = {};
  uint64_t bytes_in[kNumFamilies] = {};
};

// Puts `blocks` blocks of csa and hca (csa of `csa_bytes`), then GETs them all plus two missing
// blocks, counting into `m` and `c` like the server's GET handler.
void Traffic(Store& s, TenantMetrics& m, Counted& c, int blocks, size_t csa_bytes) {
  for (int b = 0; b < blocks; ++b)
    for (Family f : {Family::kCsa, Family::kHca}) {
      const size_t size = f == Family::kCsa ? csa_bytes : 4096 + b;
      auto bytes = testing::SeededBytes(b * 7 + int(f), size);
      ASSERT_TRUE(s.Put({kNs, K(b), f}, kFp, bytes).ok());
      m.bytes_in[int(f)] += size;
      c.bytes_in[int(f)] += size;
      m.requests[int(wire::Verb::kReserve)]++;
      m.reservations++;
      m.commits++;
      m.latency[int(wire::Verb::kReserve)].Observe(2e-5);
    }
  std::vector<BlockKey> keys;
  for (int b = 0; b < blocks + 2; ++b) keys.push_back(K(b));
  // One block per GET, so that a GET's reads do not evict what the same GET is about to serve.
  for (const BlockKey& k : keys) {
    auto views = s.Get(kNs, kFp, std::span(&k, 1), FamilyMask{Family::kCsa, Family::kHca});
    ASSERT_TRUE(views.ok()) << views.status().ToString();
    PinGuard guard(s, std::move(views).value());
    m.requests[int(wire::Verb::kGet)]++;
    m.latency[int(wire::Verb::kGet)].Observe(3e-4);
    for (const ObjectView& v : guard.views()) {
      const int f = int(v.key.family);
      if (v.found()) {
        const int t = int(v.served_from);
        m.hits[f][t]++;
        m.bytes_out[f][t] += v.size;
        c.hits[f][t]++;
        c.bytes_out[f][t] += v.size;
        m.leases_granted++;
        m.leases_released++;
      } else {
        m.misses[f]++;
        c.misses[f]++;
      }
    }
  }
}

struct StoreCase {
  const char* name;
  bool nvme;
};

void PrintTo(const StoreCase& c, std::ostream* os) { *os << c.name; }

class MetricsExpositionTest : public ::testing::TestWithParam<StoreCase> {};

TEST_P(MetricsExpositionTest, PassesPromtoolAndCarriesWhatWasCounted) {
  testing::TempDir dir;
  StoreConfig cfg;
  if (GetParam().nvme) {
    cfg = testing::SmallConfig(dir.Sub("data"), DeviceKind::kMemory);  // 4 MiB host, 16 MiB NVMe
  } else {
    cfg.host.capacity_bytes = 4 << 20;
    cfg.host.prefault = false;
  }
  auto opened = testing::OpenTestStore(cfg);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;

  MetricsRegistry reg;
  TenantMetrics& a = reg.ForTenant("alpha");
  // A name that needs every escape of the text format; its tenant has no store.
  const std::string odd = "we\"ird\\ten\nant";
  TenantMetrics& b = reg.ForTenant(odd);
  Counted counted;
  // With NVMe, 12 blocks of 512 KiB csa overflow the 4 MiB host tier: demotions, NVMe hits.
  Traffic(store, a, counted, GetParam().nvme ? 12 : 6, 512 << 10);
  b.requests[int(wire::Verb::kPing)] += 2;
  b.errors[int(wire::Verb::kPing)] += 1;
  b.latency[int(wire::Verb::kPing)].Observe(1e-5);
  b.leases_held = 3;
  b.auth_failures = 1;
  reg.frames_rejected = 4;
  reg.connections = 2;

  std::vector<TenantView> views = {{&a, &store, 3 << 20, 0}, {&b, nullptr, 0, 0}};
  const std::string text = reg.RenderPrometheus(views);

  Promtool pt = CheckWithPromtool(text, dir.path());
  if (pt.present) {
    EXPECT_EQ(pt.exit_code, 0) << pt.output;
    EXPECT_EQ(pt.output, "") << "promtool complained:\n" << pt.output;
  }

  const Exposition e = Parse(text);
  // Every family has help and type; names are prefixed, counters end in _total.
  for (const auto& [name, type] : e.type) {
    EXPECT_EQ(name.rfind("strata_", 0), 0u) << name;
    EXPECT_TRUE(e.help.count(name)) << name;
    if (type == "counter") {
      EXPECT_TRUE(name.ends_with("_total")) << name;
    }
  }
  for (const char* name : {"strata_get_hits_total",
                           "strata_get_misses_total",
                           "strata_corrupt_total",
                           "strata_bytes_in_total",
                           "strata_bytes_out_total",
                           "strata_leases_total",
                           "strata_leases_held",
                           "strata_reservations_total",
                           "strata_requests_total",
                           "strata_request_errors_total",
                           "strata_request_duration_seconds",
                           "strata_occupancy_bytes",
                           "strata_objects",
                           "strata_tier_capacity_bytes",
                           "strata_tier_used_bytes",
                           "strata_evictions_total",
                           "strata_store_corrupt_records_total",
                           "strata_quota_bytes",
                           "strata_frames_rejected_total",
                           "strata_connections"})
    EXPECT_TRUE(e.type.count(name)) << "missing family " << name;
  EXPECT_EQ(e.type.at("strata_request_duration_seconds"), "histogram");

  // Traffic, per tenant x family x tier, equals what was counted.
  for (Family f : kAllFamilies) {
    const std::string fam(FamilyName(f));
    for (Tier t : kAllTiers) {
      const Labels l = {{"tenant", "alpha"}, {"family", fam}, {"tier", std::string(TierName(t))}};
      EXPECT_EQ(Value(e, "strata_get_hits_total", l), counted.hits[int(f)][int(t)]) << fam;
      EXPECT_EQ(Value(e, "strata_bytes_out_total", l), counted.bytes_out[int(f)][int(t)]) << fam;
    }
    const Labels l = {{"tenant", "alpha"}, {"family", fam}};
    EXPECT_EQ(Value(e, "strata_get_misses_total", l), counted.misses[int(f)]);
    EXPECT_EQ(Value(e, "strata_bytes_in_total", l), counted.bytes_in[int(f)]);
    EXPECT_EQ(Value(e, "strata_corrupt_total", l), 0);
  }
  const int blocks = GetParam().nvme ? 12 : 6;
  EXPECT_EQ(counted.misses[int(Family::kCsa)], 2u);  // the two blocks never put
  const uint64_t csa_hits_host = counted.hits[int(Family::kCsa)][int(Tier::kHost)];
  const uint64_t csa_hits_nvme = counted.hits[int(Family::kCsa)][int(Tier::kNvme)];
  EXPECT_EQ(csa_hits_host + csa_hits_nvme, uint64_t(blocks));
  if (GetParam().nvme) {
    EXPECT_GT(csa_hits_nvme, 0u) << "the host tier should have overflowed to NVMe";
  } else {
    EXPECT_EQ(csa_hits_host, 6u);
  }
  EXPECT_EQ(Value(e, "strata_requests_total", {{"tenant", "alpha"}, {"verb", "get"}}), blocks + 2);
  EXPECT_EQ(Value(e, "strata_requests_total", {{"tenant", "alpha"}, {"verb", "lookup"}}), 0);
  EXPECT_EQ(Value(e, "strata_leases_total", {{"tenant", "alpha"}, {"event", "granted"}}),
            Value(e, "strata_leases_total", {{"tenant", "alpha"}, {"event", "released"}}));
  EXPECT_EQ(Value(e, "strata_reservations_total", {{"tenant", "alpha"}, {"event", "committed"}}),
            2 * blocks);

  // Latency: only timed verbs have buckets; _count equals the +Inf bucket and the requests.
  const Labels get = {{"tenant", "alpha"}, {"verb", "get"}};
  EXPECT_EQ(Value(e, "strata_request_duration_seconds_count", get), blocks + 2);
  EXPECT_NEAR(Value(e, "strata_request_duration_seconds_sum", get), (blocks + 2) * 3e-4, 1e-9);
  Labels le = get;
  le["le"] = "+Inf";
  EXPECT_EQ(Value(e, "strata_request_duration_seconds_bucket", le), blocks + 2);
  le["le"] = "0.00025";
  EXPECT_EQ(Value(e, "strata_request_duration_seconds_bucket", le), 0);
  le["le"] = "0.0005";
  EXPECT_EQ(Value(e, "strata_request_duration_seconds_bucket", le), blocks + 2);
  // alpha timed get and reserve, odd timed ping: 3 histograms of 15 buckets.
  EXPECT_EQ(Count(e, "strata_request_duration_seconds_bucket"), 3 * 15u);
  EXPECT_EQ(Count(e, "strata_request_duration_seconds_count"), 3u);

  // The escaped tenant reads back as itself.
  EXPECT_EQ(Value(e, "strata_requests_total", {{"tenant", odd}, {"verb", "ping"}}), 2);
  EXPECT_EQ(Value(e, "strata_request_errors_total", {{"tenant", odd}, {"verb", "ping"}}), 1);
  EXPECT_EQ(Value(e, "strata_leases_held", {{"tenant", odd}}), 3);
  EXPECT_EQ(Value(e, "strata_auth_failures_total", {{"tenant", odd}}), 1);
  EXPECT_EQ(Value(e, "strata_frames_rejected_total", {}), 4);
  EXPECT_EQ(Value(e, "strata_connections", {}), 2);

  // Occupancy and capacity from the store; a tenant without a store has none of these series.
  const StoreStats st = store.Stats();
  for (Tier t : {Tier::kHost, Tier::kNvme})
    for (Family f : kAllFamilies) {
      const Labels l = {{"tenant", "alpha"},
                        {"tier", std::string(TierName(t))},
                        {"family", std::string(FamilyName(f))}};
      EXPECT_EQ(Value(e, "strata_occupancy_bytes", l), st[t].families[int(f)].bytes);
      EXPECT_EQ(Value(e, "strata_objects", l), st[t].families[int(f)].objects);
    }
  EXPECT_GT(st[Tier::kHost].families[int(Family::kCsa)].objects, 0u);
  EXPECT_EQ(Value(e, "strata_tier_capacity_bytes", {{"tenant", "alpha"}, {"tier", "host"}}),
            st[Tier::kHost].capacity);
  EXPECT_EQ(Value(e, "strata_tier_used_bytes", {{"tenant", "alpha"}, {"tier", "nvme"}}),
            st[Tier::kNvme].used);
  EXPECT_EQ(Value(e, "strata_quota_bytes", {{"tenant", "alpha"}, {"tier", "host"}}), 3 << 20);
  for (const auto& s : e.series)
    if (s.name == "strata_occupancy_bytes") {
      EXPECT_EQ(s.labels.at("tenant"), "alpha");
    }

  // Evictions by reason from the store's counters.
  const uint64_t demotions = testing::CounterOf(store, "demotions");
  const uint64_t dropped = testing::CounterOf(store, "evictions_dropped");
  EXPECT_EQ(Value(e, "strata_evictions_total", {{"tenant", "alpha"}, {"reason", "demoted"}}),
            demotions - testing::CounterOf(store, "demote_errors"));
  EXPECT_EQ(Value(e, "strata_evictions_total", {{"tenant", "alpha"}, {"reason", "dropped"}}),
            dropped - testing::CounterOf(store, "demotions_refused"));
  for (const char* tier : {"host", "nvme"})
    EXPECT_EQ(Value(e, "strata_store_corrupt_records_total", {{"tenant", "alpha"}, {"tier", tier}}),
              0);
  if (GetParam().nvme) {
    EXPECT_GT(demotions, 0u);
    EXPECT_GT(Value(e, "strata_nvme_write_bytes_total", {{"tenant", "alpha"}}), 0);
  }
  if (!pt.present)
    GTEST_SKIP() << "promtool not installed (Debian package prometheus): the "
                    "exposition was checked by this test's own reader only";
}

INSTANTIATE_TEST_SUITE_P(Stores, MetricsExpositionTest,
                         ::testing::Values(StoreCase{"HostOnly", false},
                                           StoreCase{"MemoryNvme", true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(MetricsExpositionTest, NoTenantsIsStillValid) {
  MetricsRegistry reg;
  const std::string text = reg.RenderPrometheus({});
  const Exposition e = Parse(text);
  EXPECT_EQ(Value(e, "strata_frames_rejected_total", {}), 0);
  testing::TempDir dir;
  Promtool pt = CheckWithPromtool(text, dir.path());
  if (!pt.present) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  EXPECT_EQ(pt.exit_code, 0) << pt.output;
  EXPECT_EQ(pt.output, "") << pt.output;
}

TEST(MetricsExpositionTest, RendersWhileOtherThreadsCount) {
  MetricsRegistry reg;
  TenantMetrics& m = reg.ForTenant("t");
  std::atomic<bool> stop{false};
  std::vector<std::thread> counters;
  for (int t = 0; t < 2; ++t)
    counters.emplace_back([&] {
      while (!stop.load()) {
        m.requests[int(wire::Verb::kGet)]++;
        m.latency[int(wire::Verb::kGet)].Observe(2e-3);
        m.hits[int(Family::kCsa)][int(Tier::kHost)]++;
        reg.ForTenant("t");  // lookups race with rendering too
      }
    });
  std::vector<TenantView> views = {{&m, nullptr, 0, 0}};
  double last_requests = 0, last_count = 0;
  for (int i = 0; i < 50; ++i) {
    const Exposition e = Parse(reg.RenderPrometheus(views));
    const Labels get = {{"tenant", "t"}, {"verb", "get"}};
    const double requests = Value(e, "strata_requests_total", get);
    // Counters never go backwards between renders.
    EXPECT_GE(requests, last_requests);
    last_requests = requests;
    if (Count(e, "strata_request_duration_seconds_count") == 0) continue;
    const double count = Value(e, "strata_request_duration_seconds_count", get);
    EXPECT_GE(count, last_count);
    last_count = count;
    Labels inf = get;
    inf["le"] = "+Inf";
    EXPECT_EQ(Value(e, "strata_request_duration_seconds_bucket", inf), count);
  }
  stop = true;
  for (auto& t : counters) t.join();
  EXPECT_EQ(m.latency[int(wire::Verb::kGet)].count(), m.requests[int(wire::Verb::kGet)].load());
}

// ---- The HTTP endpoint ----

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// One request over a fresh TCP connection (Connection: close), read to EOF; 10 s deadline.
HttpReply Fetch(uint16_t port, const std::string& method, const std::string& target) {
  HttpReply r;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ADD_FAILURE() << "connect: " << strerror(errno);
    close(fd);
    return r;
  }
  const std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), ssize_t(req.size()));
  std::string raw;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) raw.append(buf, size_t(n));
  EXPECT_EQ(n, 0) << "the server should close after Connection: close";
  close(fd);
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    ADD_FAILURE() << "no HTTP head in: " << raw.substr(0, 200);
    return r;
  }
  const std::string head = raw.substr(0, head_end);
  r.body = raw.substr(head_end + 4);
  EXPECT_EQ(head.rfind("HTTP/1.1 ", 0), 0u) << head;
  r.status = std::stoi(head.substr(9, 3));
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos < head.size()) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string line = head.substr(pos + 2, next - pos - 2);
    const size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& ch : name) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    pos = next;
  }
  return r;
}

// A body larger than one socket buffer, so the client reads it in several pieces.
std::string BigBody() {
  MetricsRegistry reg;
  std::vector<TenantView> views;
  for (int i = 0; i < 60; ++i) {
    TenantMetrics& m = reg.ForTenant("tenant-" + std::to_string(i));
    m.requests[int(wire::Verb::kGet)] = uint64_t(i) * 1000;
    m.latency[int(wire::Verb::kGet)].Observe(1e-3 * i);
    views.push_back({&m, nullptr, 0, 0});
  }
  return reg.RenderPrometheus(views);
}

TEST(HttpEndpointTest, ServesMetricsAndNotFound) {
  const std::string body = BigBody();
  ASSERT_GT(body.size(), 100000u);
  std::atomic<int> renders{0};
  auto ep = HttpEndpoint::Start({}, [&] {
    renders++;
    return body;
  });
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  const uint16_t port = (*ep)->port();
  ASSERT_NE(port, 0);

  HttpReply r = Fetch(port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"].rfind("text/plain; version=0.0.4", 0), 0u)
      << r.headers["content-type"];
  EXPECT_EQ(r.headers["content-length"], std::to_string(body.size()));
  EXPECT_TRUE(r.body == body) << "body differs: " << r.body.size() << " vs " << body.size();

  r = Fetch(port, "GET", "/metrics?x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == body);

  r = Fetch(port, "GET", "/other");
  EXPECT_EQ(r.status, 404);
  r = Fetch(port, "GET", "/");
  EXPECT_EQ(r.status, 404);
  r = Fetch(port, "POST", "/metrics");
  EXPECT_EQ(r.status, 405);
  r = Fetch(port, "HEAD", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.headers["content-length"], std::to_string(body.size()));
  EXPECT_EQ(renders.load(), 3);
  (*ep)->Stop();
  (*ep)->Stop();  // idempotent
}

TEST(HttpEndpointTest, StopClosesIdleConnectionsAndTheListener) {
  auto ep = HttpEndpoint::Start({}, [] { return std::string("x 1\n"); });
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  const uint16_t port = (*ep)->port();
  // A connection that never sends a request: Stop must not wait for its 30 s idle timeout.
  const int idle = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(Fetch(port, "GET", "/metrics").body, "x 1\n");  // the endpoint has accepted `idle`
  const auto t0 = std::chrono::steady_clock::now();
  (*ep)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  char c;
  timeval tv{5, 0};
  setsockopt(idle, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(recv(idle, &c, 1, 0), 0) << "the idle connection should have been closed";
  close(idle);
  const int again = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_NE(connect(again, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(again);
}

TEST(HttpEndpointTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  auto ep = HttpEndpoint::Start({}, [] { return std::string("strata_up 1\n"); });
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((*ep)->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  // Two pipelined keep-alive requests, then one that closes.
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string all = req + req + "GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(fd, all.data(), all.size(), MSG_NOSIGNAL), ssize_t(all.size()));
  std::string raw;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) raw.append(buf, size_t(n));
  EXPECT_EQ(n, 0);
  close(fd);
  size_t oks = 0, pos = 0;
  while ((pos = raw.find("HTTP/1.1 200 OK", pos)) != std::string::npos) ++oks, ++pos;
  EXPECT_EQ(oks, 2u) << raw;
  EXPECT_NE(raw.find("HTTP/1.1 404 Not Found"), std::string::npos) << raw;
}

TEST(HttpEndpointTest, RunsOnTheCallersIoContext) {
  boost::asio::io_context io;
  MetricsRegistry reg;
  reg.frames_rejected = 7;
  auto ep = HttpEndpoint::StartOn(io, {"127.0.0.1", 0}, [&] { return reg.RenderPrometheus({}); });
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  std::thread runner([&] { io.run(); });
  HttpReply r = Fetch((*ep)->port(), "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, reg.RenderPrometheus({}));
  EXPECT_NE(r.body.find("strata_frames_rejected_total 7\n"), std::string::npos);
  (*ep)->Stop();
  runner.join();  // run() returns: Stop left the io_context no work
}

TEST(HttpEndpointTest, BindErrorsAreStatuses) {
  auto first = HttpEndpoint::Start({}, [] { return std::string(); });
  ASSERT_TRUE(first.ok());
  auto clash = HttpEndpoint::Start({"127.0.0.1", (*first)->port()}, [] { return std::string(); });
  EXPECT_FALSE(clash.ok());
  auto bad = HttpEndpoint::Start({"not an address", 0}, [] { return std::string(); });
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace strata::server
