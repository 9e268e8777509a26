// Bit-exact rehydration through strata-server: the engine runs unchanged on a strata::Client
// connected to a real daemon (tests/testing/server_process.h), and every policy restores from
// the daemon's DRAM, from its NVMe tier, and after a restart that flushed, with tokens, logits
// and state equal to a cold run bit for bit (the check of tests/testing/rehydrate.h, which
// session_test.cc runs on the in-process store).
#include <gtest/gtest.h>

#include "strata/client.h"
#include "tests/testing/rehydrate.h"
#include "tests/testing/server_process.h"
#include "tests/testing/store_fixture.h"

namespace strata::engine {
namespace {

using testing::TierCase;

// A daemon whose DRAM holds everything (kHost) or 1 MiB, so most objects live on NVMe.
std::string ServerConfig(TierCase tier) {
  std::string c = R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 4, "blocking_threads": 2,
  "metrics_port": 0,
  "host": { "capacity": "@HOST@", "prefault": false },
  "nvme": { "capacity": "64MiB", "segment_size": "1MiB", "device": "posix" },
  "tenants": [ { "name": "default" } ]
})";
  c.replace(c.find("@HOST@"), 6, tier == TierCase::kHost ? "32MiB" : "1MiB");
  return c;
}

// strata-server as the store: one Client for the whole test, which reconnects by itself after
// the restart of Reopen.
class ServerHarness : public testing::RehydrateHarness {
 public:
  ServerHarness(TierCase tier, const std::string& model) : server_(ServerConfig(tier)) {
    Status s = server_.Start();
    EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << server_.Log();
    auto layout = CachedEngine::LayoutFor(*testing::TinyModel(model), 256);
    EXPECT_TRUE(layout.ok());
    fingerprint_ = layout->fingerprint();
    ClientOptions o;
    o.socket_path = server_.socket_path();
    o.fingerprint = fingerprint_;
    o.block_tokens = 256;
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString() << "\n" << server_.Log();
    if (c.ok()) client_ = std::move(*c);
  }
  bool ok() const { return client_ != nullptr; }
  Store* active() override { return client_.get(); }
  void PushToNvme() override {
    ASSERT_TRUE(client_->Flush().ok());
    for (uint64_t i = 0; i < 12; ++i) {
      const ObjectKey k{999, BlockKey{i, i}, Family::kCsa};
      ASSERT_TRUE(client_->Put(k, fingerprint_, testing::SeededBytes(i, 200 << 10)).ok());
    }
  }
  void Reopen() override {
    ASSERT_TRUE(client_->Flush().ok());
    const uint64_t epoch = client_->server_epoch();
    server_.Stop();
    Status s = server_.Start();
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << server_.Log();
    ASSERT_TRUE(client_->Ping().ok());  // reconnected
    EXPECT_NE(client_->server_epoch(), epoch);
  }

 private:
  testing::ServerProcess server_;
  uint64_t fingerprint_ = 0;
  std::unique_ptr<Client> client_;
};

class ServerRehydrateTest : public ::testing::TestWithParam<testing::RehydrateParam> {};

TEST_P(ServerRehydrateTest, NextTurnIsBitExactWithCold) {
  ServerHarness h(GetParam().tier, GetParam().model);
  ASSERT_TRUE(h.ok());
  testing::CheckNextTurnBitExact(h, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Policies, ServerRehydrateTest,
                         ::testing::ValuesIn(testing::RehydrateCases()),
                         testing::RehydrateCaseName);

}  // namespace
}  // namespace strata::engine
