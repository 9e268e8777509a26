// The wire codec (include/strata/wire.h) against byte layouts written out by hand from the
// protocol's documentation, and its rejection of malformed input.
#include "strata/wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <initializer_list>

namespace strata::wire {
namespace {

std::vector<std::byte> B(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int x : v) out.push_back(std::byte(uint8_t(x)));
  return out;
}

// Little-endian bytes of a value, written out by hand below where it matters.
void Le(std::vector<std::byte>& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(std::byte(uint8_t(v >> (8 * i))));
}

TEST(WireTest, HelloFrameBytes) {
  HelloRequest h;
  h.flags = kHelloReadOnly;
  h.fingerprint = 0x0102030405060708ull;
  h.block_tokens = 256;
  h.tenant = "ab";
  h.secret = "xyz";
  std::vector<std::byte> got;
  EncodeHello(7, h, got);
  const auto want = B({29,  0,   0,   0,                 // body_len = 24 + 2 + 3
                       1,   0,                           // opcode HELLO
                       0,   0,                           // flags
                       7,   0,   0,   0,   0,  0, 0, 0,  // request id
                       1,   0,   0,   0,                 // version
                       1,   0,   0,   0,                 // kHelloReadOnly
                       8,   7,   6,   5,   4,  3, 2, 1,  // fingerprint
                       0,   1,   0,   0,                 // block tokens 256
                       2,   0,   3,   0,                 // tenant_len, secret_len
                       'a', 'b', 'x', 'y', 'z'});
  EXPECT_EQ(got, want);
  auto d = DecodeHello(std::span(got).subspan(kHeaderSize));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->tenant, "ab");
  EXPECT_EQ(d->secret, "xyz");
  EXPECT_EQ(d->fingerprint, h.fingerprint);
  EXPECT_EQ(d->block_tokens, 256u);
  ASSERT_TRUE(DecodeRequestFrame(got).ok());
  EXPECT_EQ(*DecodeRequestFrame(got), Verb::kHello);
}

TEST(WireTest, LookupAndGetBodies) {
  LookupRequest l;
  l.ns = 3;
  l.fingerprint = 9;
  l.required = 0b101;
  l.keys = {BlockKey{1, 2}};
  std::vector<std::byte> got;
  EncodeLookup(1, l, got);
  std::vector<std::byte> want = B({40, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  Le(want, 3, 8);
  Le(want, 9, 8);
  Le(want, 0b101, 1);
  Le(want, 0, 3);
  Le(want, 1, 4);
  Le(want, 1, 8);
  Le(want, 2, 8);
  EXPECT_EQ(got, want);

  GetRequest g;
  g.ns = 3;
  g.fingerprint = 9;
  g.families = 1;
  g.lease_ms = 500;
  g.keys = {BlockKey{5, 6}, BlockKey{7, 8}};
  got.clear();
  EncodeGet(2, Verb::kPrefetch, g, got);
  want = B({64, 0, 0, 0, 11, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0});
  Le(want, 3, 8);
  Le(want, 9, 8);
  Le(want, 1, 1);
  Le(want, 0, 3);
  Le(want, 500, 4);
  Le(want, 2, 4);
  Le(want, 0, 4);
  for (uint64_t k : {5, 6, 7, 8}) Le(want, k, 8);
  EXPECT_EQ(got, want);
  auto d = DecodeGet(std::span(got).subspan(kHeaderSize));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->keys.size(), 2u);
  EXPECT_EQ(d->keys[1], (BlockKey{7, 8}));
  EXPECT_EQ(d->lease_ms, 500u);
}

TEST(WireTest, GetResponseBytes) {
  GetResponse r;
  GetItem i;
  i.status = WireStatus::kOk;
  i.tier = 2;
  i.family = 4;
  i.offset = 4096;
  i.size = 100;
  i.lease = 77;
  r.items = {i};
  std::vector<std::byte> got;
  EncodeGetResponse(5, r, got);
  std::vector<std::byte> want = B({4 + 8 + 32, 0, 0, 0, 3, 0x80, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0});
  Le(want, 0, 2);  // status ok
  Le(want, 0, 2);  // no message
  Le(want, 1, 4);
  Le(want, 0, 4);
  want.insert(want.end(), {std::byte{0}, std::byte{2}, std::byte{4}});
  Le(want, 0, 5);
  Le(want, 4096, 8);
  Le(want, 100, 8);
  Le(want, 77, 8);
  EXPECT_EQ(got, want);
  std::span<const std::byte> payload;
  auto head = DecodeResponseHead(std::span(got).subspan(kHeaderSize), &payload);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, WireStatus::kOk);
  auto d = DecodeGetResponse(payload);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->items.size(), 1u);
  EXPECT_EQ(d->items[0].offset, 4096u);
  EXPECT_EQ(d->items[0].lease, 77u);
}

TEST(WireTest, ErrorResponseCarriesItsMessage) {
  std::vector<std::byte> got;
  EncodeError(9, Verb::kGet, ResponseHead{WireStatus::kInvalid, "bad"}, got);
  const auto want = B({7, 0, 0, 0, 3,   0x80, 0,  0, 9, 0, 0, 0, 0, 0, 0, 0,  //
                       6, 0, 3, 0, 'b', 'a',  'd'});
  EXPECT_EQ(got, want);
  std::span<const std::byte> payload;
  auto head = DecodeResponseHead(std::span(got).subspan(kHeaderSize), &payload);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, WireStatus::kInvalid);
  EXPECT_EQ(head->message, "bad");
  EXPECT_TRUE(payload.empty());
}

TEST(WireTest, RoundTripsEveryResponse) {
  HelloResponse h;
  h.capabilities = kCapPrefetch | kCapNvme;
  h.server_epoch = 42;
  h.arena_bytes = 1 << 20;
  h.root = BlockKey{11, 12};
  h.swa_policy = SwaPolicyWire::kCheckpoint;
  std::vector<std::byte> f;
  EncodeHelloResponse(1, h, f);
  std::span<const std::byte> p;
  ASSERT_TRUE(DecodeResponseHead(std::span(f).subspan(kHeaderSize), &p).ok());
  auto hr = DecodeHelloResponse(p);
  ASSERT_TRUE(hr.ok());
  EXPECT_EQ(hr->root, h.root);
  EXPECT_EQ(hr->swa_policy, SwaPolicyWire::kCheckpoint);
  EXPECT_EQ(p.size(), 56u);

  LookupResponse l;
  l.hit_blocks = 1;
  l.best_checkpoint = 1;
  l.hit_bytes[2] = 123;
  l.blocks.resize(2);
  l.blocks[0].families = 0b11111;
  l.blocks[0].tier[4] = 3;
  f.clear();
  EncodeLookupResponse(2, l, f);
  ASSERT_TRUE(DecodeResponseHead(std::span(f).subspan(kHeaderSize), &p).ok());
  EXPECT_EQ(p.size(), 56u + 2 * 8);
  auto lr = DecodeLookupResponse(p);
  ASSERT_TRUE(lr.ok());
  EXPECT_EQ(lr->hit_bytes[2], 123u);
  EXPECT_EQ(lr->blocks[0].tier[4], 3);

  StatusList s;
  s.statuses = {WireStatus::kOk, WireStatus::kNotYours, WireStatus::kExpired};
  f.clear();
  EncodeStatusList(3, Verb::kRelease, s, f);
  ASSERT_TRUE(DecodeResponseHead(std::span(f).subspan(kHeaderSize), &p).ok());
  EXPECT_EQ(p.size(), 8u + 8u);  // three statuses padded to eight bytes
  auto sr = DecodeStatusList(p);
  ASSERT_TRUE(sr.ok());
  EXPECT_EQ(sr->statuses, s.statuses);

  StatsResponse st;
  st.counters = {{"host.csa.objects", 5}, {"puts", 9}};
  f.clear();
  EncodeStatsResponse(4, st, f);
  ASSERT_TRUE(DecodeResponseHead(std::span(f).subspan(kHeaderSize), &p).ok());
  auto str = DecodeStatsResponse(p);
  ASSERT_TRUE(str.ok());
  EXPECT_EQ(str->counters, st.counters);

  ReserveRequest rq;
  ReserveItem it;
  it.ns = 1;
  it.key = BlockKey{2, 3};
  it.fingerprint = 4;
  it.size = 5;
  it.family = 3;
  it.has_parent = true;
  it.depth = 6;
  it.parent = BlockKey{7, 8};
  it.value_per_byte = 0.5;
  rq.items = {it};
  f.clear();
  EncodeReserve(5, rq, f);
  EXPECT_EQ(f.size(), kHeaderSize + 8 + 72);
  auto rr = DecodeReserve(std::span(f).subspan(kHeaderSize));
  ASSERT_TRUE(rr.ok());
  EXPECT_EQ(rr->items[0].parent, it.parent);
  EXPECT_EQ(rr->items[0].value_per_byte, 0.5);
  EXPECT_TRUE(rr->items[0].has_parent);
}

// PUT: RESERVE's 72-byte item, then the u64 staging offset; 80 bytes an item, byte for byte.
TEST(WireTest, PutItemsAreReserveItemsWithAStagingOffset) {
  PutRequest q;
  PutItem a;
  a.item.ns = 0x0102030405060708ull;
  a.item.key = BlockKey{9, 10};
  a.item.fingerprint = 11;
  a.item.size = 4096;
  a.item.family = 2;
  a.item.has_parent = true;
  a.item.depth = 12;
  a.item.parent = BlockKey{13, 14};
  a.item.value_per_byte = 0.25;
  a.offset = 0x1122334455667788ull;
  PutItem b;
  b.item.size = 1;
  b.offset = 64;
  q.items = {a, b};
  std::vector<std::byte> f;
  EncodePut(7, q, f);
  ASSERT_EQ(f.size(), kHeaderSize + 8 + 2 * 80);
  auto h = DecodeHeader(std::span(f).first(kHeaderSize));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->opcode, 13);
  EXPECT_EQ(h->body_len, 8u + 160u);
  const std::byte* body = f.data() + kHeaderSize;
  EXPECT_EQ(body[0], std::byte{2});       // n
  EXPECT_EQ(body[8], std::byte{0x08});    // the first item's ns, little-endian
  EXPECT_EQ(body[8 + 40], std::byte{2});  // family
  EXPECT_EQ(body[8 + 41], std::byte{1});  // has_parent
  for (int k = 0; k < 8; ++k)             // the offset, little-endian, after the 72-byte item
    EXPECT_EQ(body[8 + 72 + k], std::byte(0x88 - 0x11 * k)) << k;
  EXPECT_EQ(body[8 + 80 + 72], std::byte{64});
  auto d = DecodePut(std::span(f).subspan(kHeaderSize));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->items.size(), 2u);
  EXPECT_EQ(d->items[0].item.ns, a.item.ns);
  EXPECT_EQ(d->items[0].item.key, a.item.key);
  EXPECT_EQ(d->items[0].item.parent, a.item.parent);
  EXPECT_EQ(d->items[0].item.value_per_byte, 0.25);
  EXPECT_EQ(d->items[0].offset, a.offset);
  EXPECT_EQ(d->items[1].offset, 64u);
  EXPECT_EQ(d->items[1].item.size, 1u);
  auto v = DecodeRequestFrame(f);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, Verb::kPut);
  EXPECT_EQ(VerbName(Verb::kPut), "put");

  // A count that disagrees with the length, a truncated item, has_parent 2.
  auto body_copy = [&] { return std::vector<std::byte>(f.begin() + kHeaderSize, f.end()); };
  auto x = body_copy();
  x[0] = std::byte{3};
  EXPECT_FALSE(DecodePut(x).ok());
  x = body_copy();
  x.resize(x.size() - 8);
  EXPECT_FALSE(DecodePut(x).ok());
  x = body_copy();
  x[8 + 41] = std::byte{2};
  EXPECT_FALSE(DecodePut(x).ok());
  x = body_copy();
  x[8 + 42] = std::byte{1};  // the padding after has_parent
  EXPECT_FALSE(DecodePut(x).ok());
}

TEST(WireTest, RejectsMalformedInput) {
  // Oversized body, nonzero flags, unknown verb.
  std::vector<std::byte> h;
  EncodeHeader(FrameHeader{kMaxBody + 1, uint16_t(Verb::kPing), 0, 1}, h);
  EXPECT_FALSE(DecodeHeader(h).ok());
  h.clear();
  EncodeHeader(FrameHeader{0, uint16_t(Verb::kPing), 1, 1}, h);
  EXPECT_FALSE(DecodeHeader(h).ok());
  h.clear();
  EncodeHeader(FrameHeader{0, 99, 0, 1}, h);
  EXPECT_FALSE(DecodeHeader(h).ok());
  EXPECT_FALSE(DecodeHeader(std::span(h).first(15)).ok());

  // A lookup whose key count disagrees with its length, truncated, or with nonzero padding.
  LookupRequest l;
  l.keys = {BlockKey{1, 1}, BlockKey{2, 2}};
  std::vector<std::byte> f;
  EncodeLookup(1, l, f);
  auto body = std::span<const std::byte>(f).subspan(kHeaderSize);
  EXPECT_TRUE(DecodeLookup(body).ok());
  EXPECT_FALSE(DecodeLookup(body.first(body.size() - 1)).ok());
  EXPECT_FALSE(DecodeLookup(body.first(body.size() - 16)).ok());
  auto padded = std::vector<std::byte>(body.begin(), body.end());
  padded[17] = std::byte{1};
  EXPECT_FALSE(DecodeLookup(padded).ok());
  // A frame whose body is shorter than its header says.
  EXPECT_FALSE(DecodeRequestFrame(std::span(f).first(f.size() - 1)).ok());
  // A count far beyond the body (no huge allocation: refused before reserving).
  std::vector<std::byte> ids = B({0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0});
  EXPECT_FALSE(DecodeIds(ids).ok());
  std::vector<std::byte> stats = B({0xff, 0xff, 0xff, 0xff});
  EXPECT_FALSE(DecodeStatsResponse(stats).ok());
  // Hello with an overlong tenant name or trailing bytes.
  HelloRequest hr;
  hr.tenant = std::string(300, 'a');
  f.clear();
  EncodeHello(1, hr, f);
  EXPECT_FALSE(DecodeHello(std::span(f).subspan(kHeaderSize)).ok());
  hr.tenant = "t";
  f.clear();
  EncodeHello(1, hr, f);
  f.push_back(std::byte{0});
  EXPECT_FALSE(DecodeHello(std::span(f).subspan(kHeaderSize)).ok());
  // Empty-bodied verbs refuse a body; a response opcode is not a request.
  EXPECT_FALSE(DecodeEmpty(B({0})).ok());
  f.clear();
  EncodeOkEmpty(1, Verb::kPing, f);
  EXPECT_FALSE(DecodeRequestFrame(f).ok());
}

}  // namespace
}  // namespace strata::wire
