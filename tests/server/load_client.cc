// One client process of the daemon's load and fault tests (tests/server/reliability_test.cc).
//
//   strata_load_client SOCKET TENANT SECRET NAMESPACE SEED SECONDS OUT_FILE [--hold]
//
// Runs mixed Lookup / Get / Reserve-Commit / Abort / Release / Flush against a strata-server for
// SECONDS. Every object's content is a function of (namespace, index), so any read is checked
// byte for byte. Writes OUT_FILE (one "name value" per line): operation counts, `corrupt_reads`
// (must stay 0), `errors`, and `acked` lines naming the objects a successful Flush covered.
// With --hold it instead takes leases and a half-written reservation, prints "holding" on
// stdout and waits to be killed (the SIGKILL test).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "strata/client.h"
#include "tests/server/load_objects.h"

namespace {

using namespace strata;

using testing::LoadContentOf;
using testing::LoadKeyOf;
constexpr uint64_t kFingerprint = testing::kLoadFingerprint;
constexpr uint32_t kBlockTokens = testing::kLoadBlockTokens;
constexpr int kObjects = 48;  // per client

}  // namespace

int main(int argc, char** argv) {
  if (argc < 8) {
    std::fprintf(stderr,
                 "usage: %s SOCKET TENANT SECRET NAMESPACE SEED SECONDS OUT_FILE [--hold]\n",
                 argv[0]);
    return 2;
  }
  ClientOptions o;
  o.socket_path = argv[1];
  o.tenant = argv[2];
  o.secret = argv[3];
  o.fingerprint = kFingerprint;
  o.block_tokens = kBlockTokens;
  o.deadline = std::chrono::milliseconds(5000);
  const uint64_t ns = std::stoull(argv[4]);
  std::mt19937_64 rng(std::stoull(argv[5]));
  const double seconds = std::stod(argv[6]);
  const std::string out_path = argv[7];
  const bool hold = argc > 8 && std::string(argv[8]) == "--hold";

  std::unique_ptr<Client> client;
  for (int attempt = 0; attempt < 50 && !client; ++attempt) {
    auto c = Client::Connect(o);
    if (c.ok()) {
      client = std::move(c).value();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (!client) {
    std::fprintf(stderr, "load_client: cannot connect to %s\n", o.socket_path.c_str());
    return 1;
  }

  if (hold) {
    // Objects to lease, then leases and a reservation written halfway, then wait for SIGKILL.
    for (int i = 0; i < 8; ++i) {
      auto bytes = LoadContentOf(ns, i);
      if (!client->Put(ObjectKey{ns, LoadKeyOf(ns, i), Family::kCsa}, kFingerprint, bytes).ok())
        return 1;
    }
    std::vector<BlockKey> keys;
    for (int i = 0; i < 8; ++i) keys.push_back(LoadKeyOf(ns, i));
    auto views = client->Get(ns, kFingerprint, keys, FamilyMask{Family::kCsa});
    if (!views.ok()) return 1;
    auto r =
        client->Reserve(ObjectKey{ns, LoadKeyOf(ns, 100), Family::kHca}, kFingerprint, 1 << 20);
    if (!r.ok()) return 1;
    std::memset(r->data, 0x5a, r->size / 2);
    std::printf("holding\n");
    std::fflush(stdout);
    for (;;) pause();
  }

  std::set<int> stored;  // committed by this process (the store may still evict them)
  std::set<int> acked;   // covered by a successful Flush
  uint64_t puts = 0, gets = 0, hits = 0, lookups = 0, aborts = 0, flushes = 0, corrupt = 0,
           errors = 0, releases = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    const int op = int(rng() % 100);
    const int i = int(rng() % kObjects);
    if (op < 30) {  // put in place
      auto bytes = LoadContentOf(ns, i);
      PutHints h;
      h.depth = uint32_t(i);
      auto r = client->Reserve(ObjectKey{ns, LoadKeyOf(ns, i), Family::kCsa}, kFingerprint,
                               bytes.size(), h);
      if (!r.ok()) {
        ++errors;
        continue;
      }
      std::memcpy(r->data, bytes.data(), bytes.size());
      if (client->Commit(*r).ok()) {
        ++puts;
        stored.insert(i);
      } else {
        ++errors;
      }
    } else if (op < 35) {  // a reservation given up
      auto r = client->Reserve(ObjectKey{ns, LoadKeyOf(ns, i), Family::kHca}, kFingerprint, 65536);
      if (r.ok()) {
        std::memset(r->data, 0x11, r->size);
        if (client->Abort(*r).ok()) ++aborts;
      }
    } else if (op < 55) {  // lookup of a chain
      std::vector<BlockKey> chain;
      for (int j = 0; j < 16; ++j) chain.push_back(LoadKeyOf(ns, (i + j) % kObjects));
      if (client->Lookup(ns, kFingerprint, chain, FamilyMask{Family::kCsa}).ok())
        ++lookups;
      else
        ++errors;
    } else if (op < 97) {  // get a few, check every byte, release
      std::vector<BlockKey> keys;
      std::vector<int> idx;
      for (int j = 0; j < 4; ++j) {
        idx.push_back((i + j * 7) % kObjects);
        keys.push_back(LoadKeyOf(ns, idx.back()));
      }
      auto views = client->Get(ns, kFingerprint, keys, FamilyMask{Family::kCsa});
      if (!views.ok()) {
        ++errors;
        continue;
      }
      std::vector<uint64_t> pins;
      for (size_t j = 0; j < views->size(); ++j) {
        const ObjectView& v = (*views)[j];
        ++gets;
        if (!v.found()) continue;
        ++hits;
        const auto want = LoadContentOf(ns, idx[j]);
        if (v.size != want.size() || std::memcmp(v.data, want.data(), want.size()) != 0) ++corrupt;
        pins.push_back(v.pin);
      }
      client->Release(pins);
      releases += pins.size();
    } else {  // flush: everything stored so far is durable
      std::set<int> before = stored;
      if (client->Flush().ok()) {
        ++flushes;
        acked.insert(before.begin(), before.end());
      } else {
        ++errors;
      }
    }
  }
  // A last flush so the acknowledged set is everything this process stored.
  std::set<int> before = stored;
  if (client->Flush().ok()) acked.insert(before.begin(), before.end());

  std::ofstream out(out_path);
  out << "puts " << puts << "\ngets " << gets << "\nhits " << hits << "\nlookups " << lookups
      << "\naborts " << aborts << "\nflushes " << flushes << "\nreleases " << releases
      << "\ncorrupt_reads " << corrupt << "\nerrors " << errors << "\n";
  for (int i : acked) out << "acked " << i << "\n";
  return out.good() ? 0 : 1;
}
