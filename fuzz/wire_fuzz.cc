// libFuzzer target for the wire protocol's decoders (include/strata/wire.h, api/wire.cc).
//
// Every input is offered to DecodeRequestFrame whole, to DecodeHeader (its first 16 bytes), and
// to every body decoder (the bytes after those 16; all of it when shorter), requests and
// responses alike. Where a decoder accepts, the value is encoded again: that must give back the
// very bytes it was decoded from (the decoders accept only the canonical encoding: zero padding,
// exact lengths), and decoding those must give an equal value. Where DecodeRequestFrame
// accepts, the header and the verb's own body decoder must accept too. Any violation aborts,
// which libFuzzer reports as a crash.
//
// Built alone with clang (tools/fuzz.sh): api/wire.cc and this file, nothing else.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "strata/wire.h"

namespace w = strata::wire;
using Bytes = std::vector<std::byte>;
using View = std::span<const std::byte>;

namespace {

[[noreturn]] void Fail(const char* what) {
  fprintf(stderr, "wire_fuzz: %s\n", what);
  abort();
}
void Require(bool ok, const char* what) {
  if (!ok) Fail(what);
}

bool Eq(const strata::BlockKey& a, const strata::BlockKey& b) { return a == b; }
// Doubles compare by bits: a NaN must come back as the same NaN.
bool Eq(double a, double b) { return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b); }

bool Eq(const w::HelloRequest& a, const w::HelloRequest& b) {
  return a.version == b.version && a.flags == b.flags && a.fingerprint == b.fingerprint &&
         a.block_tokens == b.block_tokens && a.tenant == b.tenant && a.secret == b.secret;
}
bool Eq(const w::LookupRequest& a, const w::LookupRequest& b) {
  return a.ns == b.ns && a.fingerprint == b.fingerprint && a.required == b.required &&
         a.keys == b.keys;
}
bool Eq(const w::GetRequest& a, const w::GetRequest& b) {
  return a.ns == b.ns && a.fingerprint == b.fingerprint && a.families == b.families &&
         a.lease_ms == b.lease_ms && a.keys == b.keys;
}
bool Eq(const w::ReserveItem& x, const w::ReserveItem& y) {
  return x.ns == y.ns && Eq(x.key, y.key) && x.fingerprint == y.fingerprint && x.size == y.size &&
         x.family == y.family && x.has_parent == y.has_parent && x.depth == y.depth &&
         Eq(x.parent, y.parent) && Eq(x.value_per_byte, y.value_per_byte);
}
bool Eq(const w::ReserveRequest& a, const w::ReserveRequest& b) {
  if (a.items.size() != b.items.size()) return false;
  for (size_t i = 0; i < a.items.size(); ++i)
    if (!Eq(a.items[i], b.items[i])) return false;
  return true;
}
bool Eq(const w::PutRequest& a, const w::PutRequest& b) {
  if (a.items.size() != b.items.size()) return false;
  for (size_t i = 0; i < a.items.size(); ++i)
    if (!Eq(a.items[i].item, b.items[i].item) || a.items[i].offset != b.items[i].offset)
      return false;
  return true;
}
bool Eq(const w::IdList& a, const w::IdList& b) { return a.ids == b.ids; }
bool Eq(const w::DeleteRequest& a, const w::DeleteRequest& b) { return a.ns == b.ns; }
bool Eq(const w::ResponseHead& a, const w::ResponseHead& b) {
  return a.status == b.status && a.message == b.message;
}
bool Eq(const w::HelloResponse& a, const w::HelloResponse& b) {
  return a.version == b.version && a.capabilities == b.capabilities &&
         a.server_epoch == b.server_epoch && a.arena_bytes == b.arena_bytes && Eq(a.root, b.root) &&
         a.max_body == b.max_body && a.max_batch == b.max_batch && a.swa_policy == b.swa_policy;
}
bool Eq(const w::LookupResponse& a, const w::LookupResponse& b) {
  if (a.hit_blocks != b.hit_blocks || a.best_checkpoint != b.best_checkpoint) return false;
  for (int t = 0; t < 5; ++t)
    if (a.hit_bytes[t] != b.hit_bytes[t]) return false;
  if (a.blocks.size() != b.blocks.size()) return false;
  for (size_t i = 0; i < a.blocks.size(); ++i) {
    if (a.blocks[i].families != b.blocks[i].families) return false;
    for (int f = 0; f < strata::kNumFamilies; ++f)
      if (a.blocks[i].tier[f] != b.blocks[i].tier[f]) return false;
  }
  return true;
}
bool Eq(const w::GetResponse& a, const w::GetResponse& b) {
  if (a.items.size() != b.items.size()) return false;
  for (size_t i = 0; i < a.items.size(); ++i) {
    const w::GetItem& x = a.items[i];
    const w::GetItem& y = b.items[i];
    if (!(x.status == y.status && x.tier == y.tier && x.family == y.family &&
          x.offset == y.offset && x.size == y.size && x.lease == y.lease))
      return false;
  }
  return true;
}
bool Eq(const w::ReserveResponse& a, const w::ReserveResponse& b) {
  if (a.items.size() != b.items.size()) return false;
  for (size_t i = 0; i < a.items.size(); ++i)
    if (!(a.items[i].status == b.items[i].status && a.items[i].offset == b.items[i].offset &&
          a.items[i].reservation == b.items[i].reservation))
      return false;
  return true;
}
bool Eq(const w::StatusList& a, const w::StatusList& b) { return a.statuses == b.statuses; }
bool Eq(const w::StatsResponse& a, const w::StatsResponse& b) { return a.counters == b.counters; }

// The body of an encoded frame, after checking that its header decodes and announces it.
View BodyOf(const Bytes& frame, uint16_t opcode) {
  Require(frame.size() >= w::kHeaderSize, "encoded frame shorter than a header");
  auto h = w::DecodeHeader(View(frame).first(w::kHeaderSize));
  Require(h.ok(), "the header of an encoded frame does not decode");
  Require(h->body_len == frame.size() - w::kHeaderSize, "encoded body_len is not the body's size");
  Require(h->opcode == opcode, "encoded opcode differs");
  Require(h->request_id == 7, "encoded request id differs");
  return View(frame).subspan(w::kHeaderSize);
}

uint16_t Op(w::Verb v) { return static_cast<uint16_t>(v); }
uint16_t RespOp(w::Verb v) {
  return static_cast<uint16_t>(static_cast<uint16_t>(v) | w::kResponseBit);
}

// A response frame's payload, after its head (status kOk, empty message).
View PayloadOf(const Bytes& frame, w::Verb verb) {
  View payload;
  auto head = w::DecodeResponseHead(BodyOf(frame, RespOp(verb)), &payload);
  Require(head.ok(), "the head of an encoded response does not decode");
  Require(head->status == w::WireStatus::kOk && head->message.empty(),
          "an encoded response's head is not ok");
  return payload;
}

bool SameBytes(View a, View b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// `v` was decoded from `original` (a request body or a response payload). Encoding it again
// must give back `original` byte for byte (the decoders accept only the canonical encoding:
// zero padding, exact lengths), and decoding that must give `v`.
//   encode(v, frame) writes a whole frame; part(frame) is the frame's body or payload.
template <typename T, typename Encode, typename Part, typename Decode>
void RoundTrip(const T& v, View original, Encode encode, Part part, Decode decode,
               const char* name) {
  Bytes frame;
  encode(v, frame);
  const View bytes = part(frame);
  if (!SameBytes(bytes, original)) {
    fprintf(stderr, "%s: %zu bytes decoded, %zu re-encoded\n", name, original.size(), bytes.size());
    Fail("a decoded value does not re-encode to the bytes it came from");
  }
  auto again = decode(bytes);
  if (!again.ok()) {
    fprintf(stderr, "%s: %s\n", name, again.status().ToString().c_str());
    Fail("a re-encoded value does not decode");
  }
  if (!Eq(v, *again)) {
    fprintf(stderr, "%s\n", name);
    Fail("a re-encoded value decodes to something else");
  }
}

auto Body(w::Verb verb) {
  return [verb](const Bytes& frame) { return BodyOf(frame, Op(verb)); };
}
auto Payload(w::Verb verb) {
  return [verb](const Bytes& frame) { return PayloadOf(frame, verb); };
}

void Requests(View body) {
  using w::Verb;
  if (auto r = w::DecodeHello(body); r.ok())
    RoundTrip(
        *r, body, [](const auto& v, Bytes& o) { w::EncodeHello(7, v, o); }, Body(Verb::kHello),
        w::DecodeHello, "hello");
  if (auto r = w::DecodeLookup(body); r.ok())
    RoundTrip(
        *r, body, [](const auto& v, Bytes& o) { w::EncodeLookup(7, v, o); }, Body(Verb::kLookup),
        w::DecodeLookup, "lookup");
  if (auto r = w::DecodeGet(body); r.ok())
    for (Verb verb : {Verb::kGet, Verb::kPrefetch})
      RoundTrip(
          *r, body, [verb](const auto& v, Bytes& o) { w::EncodeGet(7, verb, v, o); }, Body(verb),
          w::DecodeGet, "get");
  if (auto r = w::DecodeReserve(body); r.ok())
    RoundTrip(
        *r, body, [](const auto& v, Bytes& o) { w::EncodeReserve(7, v, o); }, Body(Verb::kReserve),
        w::DecodeReserve, "reserve");
  if (auto r = w::DecodePut(body); r.ok())
    RoundTrip(
        *r, body, [](const auto& v, Bytes& o) { w::EncodePut(7, v, o); }, Body(Verb::kPut),
        w::DecodePut, "put");
  if (auto r = w::DecodeIds(body); r.ok())
    for (Verb verb : {Verb::kCommit, Verb::kAbort, Verb::kRelease})
      RoundTrip(
          *r, body, [verb](const auto& v, Bytes& o) { w::EncodeIds(7, verb, v, o); }, Body(verb),
          w::DecodeIds, "ids");
  if (auto r = w::DecodeDelete(body); r.ok())
    RoundTrip(
        *r, body, [](const auto& v, Bytes& o) { w::EncodeDelete(7, v, o); }, Body(Verb::kDelete),
        w::DecodeDelete, "delete");
  if (w::DecodeEmpty(body).ok()) {
    Require(body.empty(), "DecodeEmpty accepted a non-empty body");
    for (Verb verb : {Verb::kFlush, Verb::kStats, Verb::kPing}) {
      Bytes f;
      w::EncodeEmpty(7, verb, f);
      Require(BodyOf(f, Op(verb)).empty() && w::DecodeEmpty(BodyOf(f, Op(verb))).ok(),
              "an encoded empty body does not decode");
    }
  }
}

void Responses(View body) {
  using w::Verb;
  View payload;
  auto head = w::DecodeResponseHead(body, &payload);
  if (!head.ok()) return;
  Require(payload.empty() || (payload.data() >= body.data() &&
                              payload.data() + payload.size() <= body.data() + body.size()),
          "the payload is not inside the body");
  if (head->status != w::WireStatus::kOk) {
    Require(payload.empty(), "an error response has a payload");
    // An error frame is the head alone, so it re-encodes to the whole body (GET stands for any
    // verb).
    Bytes f;
    w::EncodeError(7, Verb::kGet, *head, f);
    const View b = BodyOf(f, RespOp(Verb::kGet));
    Require(SameBytes(b, body), "an error head does not re-encode to its bytes");
    View p2;
    auto again = w::DecodeResponseHead(b, &p2);
    Require(again.ok() && Eq(*head, *again) && p2.empty(), "an error head does not round-trip");
    return;
  }
  if (auto r = w::DecodeHelloResponse(payload); r.ok())
    RoundTrip(
        *r, payload, [](const auto& v, Bytes& o) { w::EncodeHelloResponse(7, v, o); },
        Payload(Verb::kHello), w::DecodeHelloResponse, "hello response");
  if (auto r = w::DecodeLookupResponse(payload); r.ok())
    RoundTrip(
        *r, payload, [](const auto& v, Bytes& o) { w::EncodeLookupResponse(7, v, o); },
        Payload(Verb::kLookup), w::DecodeLookupResponse, "lookup response");
  if (auto r = w::DecodeGetResponse(payload); r.ok())
    RoundTrip(
        *r, payload, [](const auto& v, Bytes& o) { w::EncodeGetResponse(7, v, o); },
        Payload(Verb::kGet), w::DecodeGetResponse, "get response");
  if (auto r = w::DecodeReserveResponse(payload); r.ok())
    RoundTrip(
        *r, payload, [](const auto& v, Bytes& o) { w::EncodeReserveResponse(7, v, o); },
        Payload(Verb::kReserve), w::DecodeReserveResponse, "reserve response");
  if (auto r = w::DecodeStatusList(payload); r.ok())
    for (Verb verb : {Verb::kCommit, Verb::kAbort, Verb::kRelease, Verb::kPrefetch, Verb::kPut})
      RoundTrip(
          *r, payload, [verb](const auto& v, Bytes& o) { w::EncodeStatusList(7, verb, v, o); },
          Payload(verb), w::DecodeStatusList, "status list");
  if (auto r = w::DecodeStatsResponse(payload); r.ok())
    RoundTrip(
        *r, payload, [](const auto& v, Bytes& o) { w::EncodeStatsResponse(7, v, o); },
        Payload(Verb::kStats), w::DecodeStatsResponse, "stats response");
  if (payload.empty())
    for (Verb verb : {Verb::kDelete, Verb::kFlush, Verb::kPing}) {
      Bytes f;
      w::EncodeOkEmpty(7, verb, f);
      Require(PayloadOf(f, verb).empty(), "an ok-empty response has a payload");
    }
}

// Where the whole frame decodes, its parts must too.
void Frame(View in) {
  auto verb = w::DecodeRequestFrame(in);
  if (!verb.ok()) return;
  Require(in.size() >= w::kHeaderSize, "a frame shorter than a header decoded");
  auto h = w::DecodeHeader(in.first(w::kHeaderSize));
  Require(h.ok(), "a frame decoded whose header does not");
  Require(h->opcode == static_cast<uint16_t>(*verb), "the frame's verb is not its opcode");
  Require(w::IsKnownVerb(h->opcode), "a frame with an unknown verb decoded");
  Require(h->body_len == in.size() - w::kHeaderSize,
          "a frame decoded whose length is not its size");
  const View body = in.subspan(w::kHeaderSize);
  bool ok = false;
  switch (*verb) {
    case w::Verb::kHello:
      ok = w::DecodeHello(body).ok();
      break;
    case w::Verb::kLookup:
      ok = w::DecodeLookup(body).ok();
      break;
    case w::Verb::kGet:
    case w::Verb::kPrefetch:
      ok = w::DecodeGet(body).ok();
      break;
    case w::Verb::kReserve:
      ok = w::DecodeReserve(body).ok();
      break;
    case w::Verb::kCommit:
    case w::Verb::kAbort:
    case w::Verb::kRelease:
      ok = w::DecodeIds(body).ok();
      break;
    case w::Verb::kPut:
      ok = w::DecodePut(body).ok();
      break;
    case w::Verb::kDelete:
      ok = w::DecodeDelete(body).ok();
      break;
    case w::Verb::kFlush:
    case w::Verb::kStats:
    case w::Verb::kPing:
      ok = w::DecodeEmpty(body).ok();
      break;
  }
  Require(ok, "a frame decoded whose body the verb's decoder refuses");
  (void)w::VerbName(*verb);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const View in(reinterpret_cast<const std::byte*>(data), size);
  Frame(in);
  if (size >= w::kHeaderSize) {
    if (auto h = w::DecodeHeader(in.first(w::kHeaderSize)); h.ok()) {
      // A header that decodes encodes back to the same 16 bytes.
      Bytes out;
      w::EncodeHeader(*h, out);
      Require(out.size() == w::kHeaderSize && View(out).size() == w::kHeaderSize &&
                  std::equal(out.begin(), out.end(), in.begin()),
              "a decoded header does not encode to its bytes");
    }
  }
  const View body = size >= w::kHeaderSize ? in.subspan(w::kHeaderSize) : in;
  Requests(body);
  Responses(body);
  return 0;
}
