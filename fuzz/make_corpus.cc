// Writes the wire fuzzer's seed corpus: one valid frame per file, every request verb and every
// response payload kind, small batches. `tools/fuzz.sh --make-corpus` regenerates fuzz/corpus/
// with it (the files are committed; libFuzzer reads them as seeds and never writes there).
// Usage: make_corpus DIR
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "strata/wire.h"

namespace w = strata::wire;
using Bytes = std::vector<std::byte>;

namespace {

std::string g_dir;

void Write(const std::string& name, const Bytes& frame) {
  std::ofstream out(g_dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(frame.data()), std::streamsize(frame.size()));
  if (!out) {
    fprintf(stderr, "make_corpus: cannot write %s/%s\n", g_dir.c_str(), name.c_str());
    exit(1);
  }
}

template <typename F>
void Frame(const std::string& name, F encode) {
  Bytes b;
  encode(b);
  Write(name, b);
}

strata::BlockKey Key(uint64_t i) { return strata::BlockKey{0x9e3779b97f4a7c15ull * (i + 1), i}; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  g_dir = argv[1];

  // Requests.
  w::HelloRequest hello;
  hello.fingerprint = 0x1234abcd;
  hello.block_tokens = 256;
  hello.tenant = "alpha";
  hello.secret = "s3cret";
  Frame("req-hello", [&](Bytes& b) { w::EncodeHello(1, hello, b); });
  hello.flags = w::kHelloReadOnly;
  hello.secret.clear();
  Frame("req-hello-ro", [&](Bytes& b) { w::EncodeHello(1, hello, b); });

  w::LookupRequest lookup;
  lookup.ns = 3;
  lookup.fingerprint = 0x1234abcd;
  lookup.required = 0x07;
  for (uint64_t i = 0; i < 4; ++i) lookup.keys.push_back(Key(i));
  Frame("req-lookup", [&](Bytes& b) { w::EncodeLookup(2, lookup, b); });
  lookup.keys.clear();
  Frame("req-lookup-empty", [&](Bytes& b) { w::EncodeLookup(2, lookup, b); });

  w::GetRequest get;
  get.ns = 3;
  get.fingerprint = 0x1234abcd;
  get.families = 0x1f;
  get.lease_ms = 5000;
  for (uint64_t i = 0; i < 3; ++i) get.keys.push_back(Key(i));
  Frame("req-get", [&](Bytes& b) { w::EncodeGet(3, w::Verb::kGet, get, b); });
  get.lease_ms = 0;
  Frame("req-prefetch", [&](Bytes& b) { w::EncodeGet(3, w::Verb::kPrefetch, get, b); });

  w::ReserveRequest reserve;
  for (uint64_t i = 0; i < 2; ++i) {
    w::ReserveItem it;
    it.ns = 3;
    it.key = Key(i);
    it.fingerprint = 0x1234abcd;
    it.size = 65536 + i;
    it.family = uint8_t(i);
    it.has_parent = i > 0;
    it.depth = uint32_t(i);
    if (i > 0) it.parent = Key(i - 1);
    it.value_per_byte = 1.5e-9;
    reserve.items.push_back(it);
  }
  Frame("req-reserve", [&](Bytes& b) { w::EncodeReserve(4, reserve, b); });
  w::PutRequest put;
  for (const w::ReserveItem& it : reserve.items) put.items.push_back({it, 4096 * it.depth});
  Frame("req-put", [&](Bytes& b) { w::EncodePut(13, put, b); });

  w::IdList ids{{11, 12, 13}};
  Frame("req-commit", [&](Bytes& b) { w::EncodeIds(5, w::Verb::kCommit, ids, b); });
  Frame("req-abort", [&](Bytes& b) { w::EncodeIds(6, w::Verb::kAbort, ids, b); });
  Frame("req-release", [&](Bytes& b) { w::EncodeIds(7, w::Verb::kRelease, ids, b); });
  Frame("req-delete", [&](Bytes& b) { w::EncodeDelete(8, w::DeleteRequest{3}, b); });
  Frame("req-flush", [&](Bytes& b) { w::EncodeEmpty(9, w::Verb::kFlush, b); });
  Frame("req-stats", [&](Bytes& b) { w::EncodeEmpty(10, w::Verb::kStats, b); });
  Frame("req-ping", [&](Bytes& b) { w::EncodeEmpty(12, w::Verb::kPing, b); });

  // Responses.
  w::HelloResponse hr;
  hr.capabilities = w::kCapPrefetch | w::kCapLeaseTimeout | w::kCapNvme;
  hr.server_epoch = 42;
  hr.arena_bytes = 1ull << 30;
  hr.root = Key(99);
  hr.swa_policy = w::SwaPolicyWire::kCheckpoint;
  Frame("resp-hello", [&](Bytes& b) { w::EncodeHelloResponse(1, hr, b); });

  w::LookupResponse lr;
  lr.hit_blocks = 2;
  lr.best_checkpoint = 2;
  lr.hit_bytes[2] = 123456;
  lr.hit_bytes[3] = 789;
  for (int i = 0; i < 3; ++i) {
    w::BlockPresenceWire p;
    p.families = i < 2 ? 0x1f : 0x01;
    for (int f = 0; f < strata::kNumFamilies; ++f) p.tier[f] = (p.families >> f) & 1 ? 2 : 0;
    lr.blocks.push_back(p);
  }
  Frame("resp-lookup", [&](Bytes& b) { w::EncodeLookupResponse(2, lr, b); });

  w::GetResponse gr;
  gr.items.push_back({w::WireStatus::kOk, 2, 0, 4096, 65536, 77});
  gr.items.push_back({w::WireStatus::kNotFound, 0, 1, 0, 0, 0});
  gr.items.push_back({w::WireStatus::kCorrupt, 3, 2, 0, 0, 0});
  Frame("resp-get", [&](Bytes& b) { w::EncodeGetResponse(3, gr, b); });

  w::ReserveResponse rr;
  rr.items.push_back({w::WireStatus::kOk, 8192, 5});
  rr.items.push_back({w::WireStatus::kNoSpace, 0, 0});
  Frame("resp-reserve", [&](Bytes& b) { w::EncodeReserveResponse(4, rr, b); });

  w::StatusList sl{{w::WireStatus::kOk, w::WireStatus::kNotYours, w::WireStatus::kExpired}};
  Frame("resp-release", [&](Bytes& b) { w::EncodeStatusList(7, w::Verb::kRelease, sl, b); });
  w::StatusList pf{{w::WireStatus::kOk, w::WireStatus::kPending, w::WireStatus::kNotFound,
                    w::WireStatus::kOk, w::WireStatus::kOk, w::WireStatus::kOk, w::WireStatus::kOk,
                    w::WireStatus::kOk, w::WireStatus::kPending}};
  Frame("resp-prefetch", [&](Bytes& b) { w::EncodeStatusList(11, w::Verb::kPrefetch, pf, b); });
  Frame("resp-put", [&](Bytes& b) { w::EncodeStatusList(13, w::Verb::kPut, sl, b); });

  w::StatsResponse st;
  st.counters = {{"host.csa.objects", 12}, {"gets", 99}, {"", 0}};
  Frame("resp-stats", [&](Bytes& b) { w::EncodeStatsResponse(10, st, b); });
  Frame("resp-delete", [&](Bytes& b) { w::EncodeOkEmpty(8, w::Verb::kDelete, b); });
  Frame("resp-error", [&](Bytes& b) {
    w::EncodeError(3, w::Verb::kGet, {w::WireStatus::kFrame, "malformed GET body"}, b);
  });
  return 0;
}
