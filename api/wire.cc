// The strata-server wire codec (include/strata/wire.h). Pure functions over bytes: no
// allocation beyond the returned values, no I/O, no dependency beyond the headers, so the fuzz
// target (fuzz/wire_fuzz.cc) builds this file alone.
#include "strata/wire.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace strata::wire {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian; a big-endian port needs byte swaps here");

// Appends little-endian values to a frame under construction.
class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}
  template <typename T>
  void Put(T v) {
    const size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &v, sizeof(T));
  }
  void Zeros(size_t n) { out_.resize(out_.size() + n, std::byte{0}); }
  void Bytes(std::string_view s) {
    const size_t at = out_.size();
    out_.resize(at + s.size());
    if (!s.empty()) std::memcpy(out_.data() + at, s.data(), s.size());
  }
  void Key(const BlockKey& k) {
    Put(k.hi);
    Put(k.lo);
  }
  void PadTo8(size_t from) {
    while ((out_.size() - from) % 8) out_.push_back(std::byte{0});
  }
  size_t size() const { return out_.size(); }

 private:
  std::vector<std::byte>& out_;
};

// Reads little-endian values, failing (not reading) past the end.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> b) : b_(b) {}
  template <typename T>
  bool Get(T& v) {
    if (b_.size() - at_ < sizeof(T)) return false;
    std::memcpy(&v, b_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return true;
  }
  bool Key(BlockKey& k) { return Get(k.hi) && Get(k.lo); }
  bool Skip(size_t n) {
    if (b_.size() - at_ < n) return false;
    at_ += n;
    return true;
  }
  // Skips n bytes that must be zero.
  bool Zeros(size_t n) {
    if (b_.size() - at_ < n) return false;
    for (size_t i = 0; i < n; ++i)
      if (b_[at_ + i] != std::byte{0}) return false;
    at_ += n;
    return true;
  }
  bool Str(size_t n, std::string& s) {
    if (b_.size() - at_ < n) return false;
    s.assign(reinterpret_cast<const char*>(b_.data() + at_), n);
    at_ += n;
    return true;
  }
  size_t left() const { return b_.size() - at_; }
  size_t pos() const { return at_; }
  std::span<const std::byte> rest() const { return b_.subspan(at_); }

 private:
  std::span<const std::byte> b_;
  size_t at_ = 0;
};

Status Bad(std::string_view what) {
  return Status::InvalidArgument("wire: malformed " + std::string(what));
}

// Starts a frame: reserves the header, returns where the body starts.
size_t Begin(std::vector<std::byte>& out) {
  const size_t at = out.size();
  out.resize(at + kHeaderSize);
  return at;
}

// Fills in the header reserved by Begin now that the body is complete.
void End(std::vector<std::byte>& out, size_t at, uint16_t opcode, uint64_t id) {
  FrameHeader h;
  h.body_len = uint32_t(out.size() - at - kHeaderSize);
  h.opcode = opcode;
  h.request_id = id;
  std::vector<std::byte> hdr;
  EncodeHeader(h, hdr);
  std::memcpy(out.data() + at, hdr.data(), kHeaderSize);
}

uint16_t Resp(Verb v) { return uint16_t(uint16_t(v) | kResponseBit); }

void OkHead(Writer& w) {
  w.Put(uint16_t(WireStatus::kOk));
  w.Put(uint16_t(0));
}

bool ValidWireStatus(uint8_t s) { return s <= uint8_t(WireStatus::kExpired); }

// A count of items followed by `per` bytes each must fill the rest of the body exactly.
bool CountFits(uint64_t n, size_t per, size_t left) { return n <= kMaxBatch && n * per == left; }

Status ReadStatuses(Reader& r, uint32_t n, std::vector<WireStatus>& out) {
  if (n > kMaxBatch) return Bad("status list (count)");
  const size_t padded = (size_t(n) + 7) / 8 * 8;
  if (r.left() != padded) return Bad("status list (length)");
  out.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t s = 0;
    if (!r.Get(s) || !ValidWireStatus(s)) return Bad("status list (status)");
    out[i] = WireStatus(s);
  }
  if (!r.Zeros(padded - n)) return Bad("status list (padding)");
  return Status::Ok();
}

}  // namespace

std::string_view VerbName(Verb v) {
  switch (v) {
    case Verb::kHello:
      return "hello";
    case Verb::kLookup:
      return "lookup";
    case Verb::kGet:
      return "get";
    case Verb::kReserve:
      return "reserve";
    case Verb::kCommit:
      return "commit";
    case Verb::kAbort:
      return "abort";
    case Verb::kRelease:
      return "release";
    case Verb::kDelete:
      return "delete";
    case Verb::kFlush:
      return "flush";
    case Verb::kStats:
      return "stats";
    case Verb::kPrefetch:
      return "prefetch";
    case Verb::kPing:
      return "ping";
    case Verb::kPut:
      return "put";
  }
  return "unknown";
}

bool IsKnownVerb(uint16_t v) { return v >= uint16_t(Verb::kHello) && v <= uint16_t(Verb::kPut); }

std::string_view WireStatusName(WireStatus s) {
  switch (s) {
    case WireStatus::kOk:
      return "ok";
    case WireStatus::kNotFound:
      return "not_found";
    case WireStatus::kCorrupt:
      return "corrupt";
    case WireStatus::kNoSpace:
      return "no_space";
    case WireStatus::kNotAdmitted:
      return "not_admitted";
    case WireStatus::kError:
      return "error";
    case WireStatus::kInvalid:
      return "invalid";
    case WireStatus::kNotYours:
      return "not_yours";
    case WireStatus::kAuth:
      return "auth";
    case WireStatus::kVersion:
      return "version";
    case WireStatus::kLayout:
      return "layout";
    case WireStatus::kFrame:
      return "frame";
    case WireStatus::kShutdown:
      return "shutdown";
    case WireStatus::kPending:
      return "pending";
    case WireStatus::kExpired:
      return "expired";
  }
  return "unknown";
}

// ---- encoding ----

void EncodeHeader(const FrameHeader& h, std::vector<std::byte>& out) {
  Writer w(out);
  w.Put(h.body_len);
  w.Put(h.opcode);
  w.Put(h.flags);
  w.Put(h.request_id);
}

void EncodeHello(uint64_t id, const HelloRequest& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  w.Put(r.version);
  w.Put(r.flags);
  w.Put(r.fingerprint);
  w.Put(r.block_tokens);
  w.Put(uint16_t(r.tenant.size()));
  w.Put(uint16_t(r.secret.size()));
  w.Bytes(r.tenant);
  w.Bytes(r.secret);
  End(out, at, uint16_t(Verb::kHello), id);
}

void EncodeLookup(uint64_t id, const LookupRequest& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  w.Put(r.ns);
  w.Put(r.fingerprint);
  w.Put(r.required);
  w.Zeros(3);
  w.Put(uint32_t(r.keys.size()));
  for (const BlockKey& k : r.keys) w.Key(k);
  End(out, at, uint16_t(Verb::kLookup), id);
}

void EncodeGet(uint64_t id, Verb verb, const GetRequest& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  w.Put(r.ns);
  w.Put(r.fingerprint);
  w.Put(r.families);
  w.Zeros(3);
  w.Put(r.lease_ms);
  w.Put(uint32_t(r.keys.size()));
  w.Zeros(4);
  for (const BlockKey& k : r.keys) w.Key(k);
  End(out, at, uint16_t(verb), id);
}

namespace {
// RESERVE's 72-byte item, also PUT's first 72 bytes.
void PutReserveItem(Writer& w, const ReserveItem& i) {
  w.Put(i.ns);
  w.Key(i.key);
  w.Put(i.fingerprint);
  w.Put(i.size);
  w.Put(i.family);
  w.Put(uint8_t(i.has_parent ? 1 : 0));
  w.Zeros(2);
  w.Put(i.depth);
  w.Key(i.parent);
  w.Put(i.value_per_byte);
}
}  // namespace

void EncodeReserve(uint64_t id, const ReserveRequest& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  w.Put(uint32_t(r.items.size()));
  w.Zeros(4);
  for (const ReserveItem& i : r.items) PutReserveItem(w, i);
  End(out, at, uint16_t(Verb::kReserve), id);
}

void EncodePut(uint64_t id, const PutRequest& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  w.Put(uint32_t(r.items.size()));
  w.Zeros(4);
  for (const PutItem& i : r.items) {
    PutReserveItem(w, i.item);
    w.Put(i.offset);
  }
  End(out, at, uint16_t(Verb::kPut), id);
}

void EncodeIds(uint64_t id, Verb verb, const IdList& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  w.Put(uint32_t(r.ids.size()));
  w.Zeros(4);
  for (uint64_t x : r.ids) w.Put(x);
  End(out, at, uint16_t(verb), id);
}

void EncodeDelete(uint64_t id, const DeleteRequest& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  w.Put(r.ns);
  End(out, at, uint16_t(Verb::kDelete), id);
}

void EncodeEmpty(uint64_t id, Verb verb, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  End(out, at, uint16_t(verb), id);
}

void EncodeError(uint64_t id, Verb verb, const ResponseHead& head, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  const std::string_view msg =
      std::string_view(head.message).substr(0, std::min<size_t>(head.message.size(), 65535));
  w.Put(uint16_t(head.status));
  w.Put(uint16_t(msg.size()));
  w.Bytes(msg);
  End(out, at, Resp(verb), id);
}

void EncodeHelloResponse(uint64_t id, const HelloResponse& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  OkHead(w);
  w.Put(r.version);
  w.Put(r.capabilities);
  w.Put(r.server_epoch);
  w.Put(r.arena_bytes);
  w.Key(r.root);
  w.Put(r.max_body);
  w.Put(r.max_batch);
  w.Put(uint8_t(r.swa_policy));
  w.Zeros(7);
  End(out, at, Resp(Verb::kHello), id);
}

void EncodeLookupResponse(uint64_t id, const LookupResponse& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  OkHead(w);
  w.Put(r.hit_blocks);
  w.Put(uint32_t(r.blocks.size()));
  w.Put(r.best_checkpoint);
  w.Zeros(4);
  for (uint64_t b : r.hit_bytes) w.Put(b);
  for (const BlockPresenceWire& b : r.blocks) {
    w.Put(b.families);
    for (uint8_t t : b.tier) w.Put(t);
    w.Zeros(2);
  }
  End(out, at, Resp(Verb::kLookup), id);
}

void EncodeGetResponse(uint64_t id, const GetResponse& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  OkHead(w);
  w.Put(uint32_t(r.items.size()));
  w.Zeros(4);
  for (const GetItem& i : r.items) {
    w.Put(uint8_t(i.status));
    w.Put(i.tier);
    w.Put(i.family);
    w.Zeros(5);
    w.Put(i.offset);
    w.Put(i.size);
    w.Put(i.lease);
  }
  End(out, at, Resp(Verb::kGet), id);
}

void EncodeReserveResponse(uint64_t id, const ReserveResponse& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  OkHead(w);
  w.Put(uint32_t(r.items.size()));
  w.Zeros(4);
  for (const ReserveResult& i : r.items) {
    w.Put(uint8_t(i.status));
    w.Zeros(7);
    w.Put(i.offset);
    w.Put(i.reservation);
  }
  End(out, at, Resp(Verb::kReserve), id);
}

void EncodeStatusList(uint64_t id, Verb verb, const StatusList& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  OkHead(w);
  w.Put(uint32_t(r.statuses.size()));
  w.Zeros(4);
  const size_t from = w.size();
  for (WireStatus s : r.statuses) w.Put(uint8_t(s));
  w.PadTo8(from);
  End(out, at, Resp(verb), id);
}

void EncodeStatsResponse(uint64_t id, const StatsResponse& r, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  OkHead(w);
  w.Put(uint32_t(r.counters.size()));
  for (const auto& [name, value] : r.counters) {
    const std::string_view n =
        std::string_view(name).substr(0, std::min<size_t>(name.size(), 65535));
    w.Put(uint16_t(n.size()));
    w.Bytes(n);
    w.Put(value);
  }
  End(out, at, Resp(Verb::kStats), id);
}

void EncodeOkEmpty(uint64_t id, Verb verb, std::vector<std::byte>& out) {
  const size_t at = Begin(out);
  Writer w(out);
  OkHead(w);
  End(out, at, Resp(verb), id);
}

// ---- decoding ----

Result<FrameHeader> DecodeHeader(std::span<const std::byte> header) {
  if (header.size() != kHeaderSize) return Bad("header (size)");
  Reader r(header);
  FrameHeader h;
  if (!r.Get(h.body_len) || !r.Get(h.opcode) || !r.Get(h.flags) || !r.Get(h.request_id))
    return Bad("header");
  if (h.body_len > kMaxBody)
    return Status::InvalidArgument("wire: frame body of " + std::to_string(h.body_len) +
                                   " bytes exceeds the limit of " + std::to_string(kMaxBody));
  if (h.flags != 0) return Bad("header (flags must be 0)");
  if (!IsKnownVerb(uint16_t(h.opcode & ~kResponseBit)))
    return Status::InvalidArgument("wire: unknown verb " +
                                   std::to_string(h.opcode & ~kResponseBit));
  return h;
}

Result<HelloRequest> DecodeHello(std::span<const std::byte> body) {
  Reader r(body);
  HelloRequest h;
  uint16_t tl = 0, sl = 0;
  if (!r.Get(h.version) || !r.Get(h.flags) || !r.Get(h.fingerprint) || !r.Get(h.block_tokens) ||
      !r.Get(tl) || !r.Get(sl))
    return Bad("hello");
  if (tl > kMaxNameLen || sl > kMaxNameLen) return Bad("hello (tenant or secret too long)");
  if (r.left() != size_t(tl) + sl) return Bad("hello (length)");
  if (!r.Str(tl, h.tenant) || !r.Str(sl, h.secret)) return Bad("hello");
  return h;
}

Result<LookupRequest> DecodeLookup(std::span<const std::byte> body) {
  Reader r(body);
  LookupRequest q;
  uint32_t n = 0;
  if (!r.Get(q.ns) || !r.Get(q.fingerprint) || !r.Get(q.required) || !r.Zeros(3) || !r.Get(n))
    return Bad("lookup");
  if (!CountFits(n, 16, r.left())) return Bad("lookup (key count)");
  q.keys.resize(n);
  for (BlockKey& k : q.keys) r.Key(k);
  return q;
}

Result<GetRequest> DecodeGet(std::span<const std::byte> body) {
  Reader r(body);
  GetRequest q;
  uint32_t n = 0;
  if (!r.Get(q.ns) || !r.Get(q.fingerprint) || !r.Get(q.families) || !r.Zeros(3) ||
      !r.Get(q.lease_ms) || !r.Get(n) || !r.Zeros(4))
    return Bad("get");
  if (!CountFits(n, 16, r.left())) return Bad("get (key count)");
  q.keys.resize(n);
  for (BlockKey& k : q.keys) r.Key(k);
  return q;
}

namespace {
// RESERVE's 72-byte item, also PUT's first 72 bytes; `what` names the verb in the error.
Status GetReserveItem(Reader& r, ReserveItem& i, const std::string& what) {
  uint8_t hp = 0;
  if (!r.Get(i.ns) || !r.Key(i.key) || !r.Get(i.fingerprint) || !r.Get(i.size) ||
      !r.Get(i.family) || !r.Get(hp) || !r.Zeros(2) || !r.Get(i.depth) || !r.Key(i.parent) ||
      !r.Get(i.value_per_byte))
    return Bad(what + " (item)");
  if (hp > 1) return Bad(what + " (has_parent)");
  i.has_parent = hp == 1;
  return Status::Ok();
}
}  // namespace

Result<ReserveRequest> DecodeReserve(std::span<const std::byte> body) {
  Reader r(body);
  ReserveRequest q;
  uint32_t n = 0;
  if (!r.Get(n) || !r.Zeros(4)) return Bad("reserve");
  if (!CountFits(n, 72, r.left())) return Bad("reserve (item count)");
  q.items.resize(n);
  for (ReserveItem& i : q.items) STRATA_RETURN_IF_ERROR(GetReserveItem(r, i, "reserve"));
  return q;
}

Result<PutRequest> DecodePut(std::span<const std::byte> body) {
  Reader r(body);
  PutRequest q;
  uint32_t n = 0;
  if (!r.Get(n) || !r.Zeros(4)) return Bad("put");
  if (!CountFits(n, 80, r.left())) return Bad("put (item count)");
  q.items.resize(n);
  for (PutItem& i : q.items) {
    STRATA_RETURN_IF_ERROR(GetReserveItem(r, i.item, "put"));
    if (!r.Get(i.offset)) return Bad("put (item)");
  }
  return q;
}

Result<IdList> DecodeIds(std::span<const std::byte> body) {
  Reader r(body);
  IdList q;
  uint32_t n = 0;
  if (!r.Get(n) || !r.Zeros(4)) return Bad("id list");
  if (!CountFits(n, 8, r.left())) return Bad("id list (count)");
  q.ids.resize(n);
  for (uint64_t& x : q.ids) r.Get(x);
  return q;
}

Result<DeleteRequest> DecodeDelete(std::span<const std::byte> body) {
  Reader r(body);
  DeleteRequest q;
  if (!r.Get(q.ns) || r.left() != 0) return Bad("delete");
  return q;
}

Status DecodeEmpty(std::span<const std::byte> body) {
  if (!body.empty()) return Bad("frame (body must be empty)");
  return Status::Ok();
}

Result<ResponseHead> DecodeResponseHead(std::span<const std::byte> body,
                                        std::span<const std::byte>* payload) {
  Reader r(body);
  uint16_t st = 0, ml = 0;
  if (!r.Get(st) || !r.Get(ml)) return Bad("response head");
  if (st > 0xff || !ValidWireStatus(uint8_t(st))) return Bad("response head (status)");
  ResponseHead h;
  h.status = WireStatus(st);
  if (!r.Str(ml, h.message)) return Bad("response head (message)");
  if (h.status != WireStatus::kOk && r.left() != 0) return Bad("error response (payload)");
  if (payload) *payload = r.rest();
  return h;
}

Result<HelloResponse> DecodeHelloResponse(std::span<const std::byte> payload) {
  Reader r(payload);
  HelloResponse h;
  uint8_t swa = 0;
  if (!r.Get(h.version) || !r.Get(h.capabilities) || !r.Get(h.server_epoch) ||
      !r.Get(h.arena_bytes) || !r.Key(h.root) || !r.Get(h.max_body) || !r.Get(h.max_batch) ||
      !r.Get(swa) || !r.Zeros(7) || r.left() != 0)
    return Bad("hello response");
  if (swa > uint8_t(SwaPolicyWire::kRecompute)) return Bad("hello response (swa policy)");
  h.swa_policy = SwaPolicyWire(swa);
  return h;
}

Result<LookupResponse> DecodeLookupResponse(std::span<const std::byte> payload) {
  Reader r(payload);
  LookupResponse q;
  uint32_t n = 0;
  if (!r.Get(q.hit_blocks) || !r.Get(n) || !r.Get(q.best_checkpoint) || !r.Zeros(4))
    return Bad("lookup response");
  for (uint64_t& b : q.hit_bytes)
    if (!r.Get(b)) return Bad("lookup response");
  if (!CountFits(n, 8, r.left())) return Bad("lookup response (block count)");
  if (q.hit_blocks > n || q.best_checkpoint > q.hit_blocks)
    return Bad("lookup response (hit count)");
  q.blocks.resize(n);
  for (BlockPresenceWire& b : q.blocks) {
    r.Get(b.families);
    for (uint8_t& t : b.tier) r.Get(t);
    if (!r.Zeros(2)) return Bad("lookup response (padding)");
  }
  return q;
}

Result<GetResponse> DecodeGetResponse(std::span<const std::byte> payload) {
  Reader r(payload);
  GetResponse q;
  uint32_t n = 0;
  if (!r.Get(n) || !r.Zeros(4)) return Bad("get response");
  if (!CountFits(n, 32, r.left())) return Bad("get response (item count)");
  q.items.resize(n);
  for (GetItem& i : q.items) {
    uint8_t st = 0;
    r.Get(st);
    if (!ValidWireStatus(st)) return Bad("get response (status)");
    i.status = WireStatus(st);
    r.Get(i.tier);
    r.Get(i.family);
    if (!r.Zeros(5)) return Bad("get response (padding)");
    r.Get(i.offset);
    r.Get(i.size);
    r.Get(i.lease);
  }
  return q;
}

Result<ReserveResponse> DecodeReserveResponse(std::span<const std::byte> payload) {
  Reader r(payload);
  ReserveResponse q;
  uint32_t n = 0;
  if (!r.Get(n) || !r.Zeros(4)) return Bad("reserve response");
  if (!CountFits(n, 24, r.left())) return Bad("reserve response (item count)");
  q.items.resize(n);
  for (ReserveResult& i : q.items) {
    uint8_t st = 0;
    r.Get(st);
    if (!ValidWireStatus(st)) return Bad("reserve response (status)");
    i.status = WireStatus(st);
    if (!r.Zeros(7)) return Bad("reserve response (padding)");
    r.Get(i.offset);
    r.Get(i.reservation);
  }
  return q;
}

Result<StatusList> DecodeStatusList(std::span<const std::byte> payload) {
  Reader r(payload);
  StatusList q;
  uint32_t n = 0;
  if (!r.Get(n) || !r.Zeros(4)) return Bad("status list");
  STRATA_RETURN_IF_ERROR(ReadStatuses(r, n, q.statuses));
  return q;
}

Result<StatsResponse> DecodeStatsResponse(std::span<const std::byte> payload) {
  Reader r(payload);
  StatsResponse q;
  uint32_t n = 0;
  if (!r.Get(n)) return Bad("stats response");
  // Each counter takes at least 10 bytes: bounds the reservation by the payload.
  if (n > r.left() / 10) return Bad("stats response (count)");
  q.counters.resize(n);
  for (auto& [name, value] : q.counters) {
    uint16_t len = 0;
    if (!r.Get(len) || !r.Str(len, name) || !r.Get(value)) return Bad("stats response (counter)");
  }
  if (r.left() != 0) return Bad("stats response (length)");
  return q;
}

Result<Verb> DecodeRequestFrame(std::span<const std::byte> frame) {
  if (frame.size() < kHeaderSize) return Bad("frame (shorter than a header)");
  STRATA_ASSIGN_OR_RETURN(FrameHeader h, DecodeHeader(frame.first(kHeaderSize)));
  if (h.opcode & kResponseBit) return Bad("frame (a response where a request belongs)");
  const auto body = frame.subspan(kHeaderSize);
  if (body.size() != h.body_len) return Bad("frame (body length)");
  const Verb v = Verb(h.opcode);
  switch (v) {
    case Verb::kHello:
      STRATA_RETURN_IF_ERROR(DecodeHello(body).status());
      break;
    case Verb::kLookup:
      STRATA_RETURN_IF_ERROR(DecodeLookup(body).status());
      break;
    case Verb::kGet:
    case Verb::kPrefetch:
      STRATA_RETURN_IF_ERROR(DecodeGet(body).status());
      break;
    case Verb::kReserve:
      STRATA_RETURN_IF_ERROR(DecodeReserve(body).status());
      break;
    case Verb::kCommit:
    case Verb::kAbort:
    case Verb::kRelease:
      STRATA_RETURN_IF_ERROR(DecodeIds(body).status());
      break;
    case Verb::kPut:
      STRATA_RETURN_IF_ERROR(DecodePut(body).status());
      break;
    case Verb::kDelete:
      STRATA_RETURN_IF_ERROR(DecodeDelete(body).status());
      break;
    case Verb::kFlush:
    case Verb::kStats:
    case Verb::kPing:
      STRATA_RETURN_IF_ERROR(DecodeEmpty(body));
      break;
  }
  return v;
}

}  // namespace strata::wire
