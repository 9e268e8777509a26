// strata::Client (include/strata/client.h) over client/socket.h and the codec of wire.h.
//
// Connections and mappings: every (re)connection gets a local generation number and maps the
// arena its HELLO passes. Pins and reservations handed to the caller are local handles that
// remember the generation they were made under, so a handle of a dead connection is never sent
// to a newer one (the server already freed it when that connection ended, and its ids may name
// something else on the new one). A mapping stays while handles made under it are outstanding:
// the current connection's until it is dropped, an older one until its last handle is released
// (views of it keep pointing at mapped, unchanged memory) and then it is unmapped, so a client
// that reconnects often does not pile up mappings of dead arenas.
#include "strata/client.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "client/socket.h"

namespace strata {

using client_internal::Deadline;
using client_internal::Frame;
using client_internal::Socket;
using client_internal::UniqueFd;
using Clock = std::chrono::steady_clock;
using wire::Verb;
using wire::WireStatus;

Status StatusFromWire(WireStatus s, std::string_view what) {
  std::string msg(what);
  msg += msg.empty() ? "" : ": ";
  msg += wire::WireStatusName(s);
  switch (s) {
    case WireStatus::kOk:
    case WireStatus::kPending:  // a prefetch under way is a success
      return Status::Ok();
    case WireStatus::kNotFound:
    case WireStatus::kExpired:
      return Status::NotFound(std::move(msg));
    case WireStatus::kCorrupt:
      return Status::Corruption(std::move(msg));
    case WireStatus::kNoSpace:
      return Status::NoSpace(std::move(msg));
    case WireStatus::kNotAdmitted:
      return Status::ResourceExhausted(std::move(msg));
    case WireStatus::kInvalid:
    case WireStatus::kFrame:
    case WireStatus::kLayout:
      return Status::InvalidArgument(std::move(msg));
    case WireStatus::kNotYours:
    case WireStatus::kAuth:
      return Status::FailedPrecondition(std::move(msg));
    case WireStatus::kVersion:
      return Status::NotSupported(std::move(msg));
    case WireStatus::kShutdown:
    case WireStatus::kError:
      return Status::IoError(std::move(msg));
  }
  return Status::Internal(msg + " (unknown wire status " + std::to_string(int(s)) + ")");
}

namespace {

// The extra polling of a staged COMMIT (FinishManyLocked): the server's copy at an assumed
// 4 GB/s (4,000 bytes a microsecond), for at most 2 ms; a longer wait sleeps, its wake-up then
// small against it.
constexpr uint64_t kStagedCopyBytesPerUs = 4000;
constexpr uint64_t kMaxCopySpinUs = 2000;

// Frame-level statuses after which the server closes the connection.
bool ClosesConnection(WireStatus s) {
  return s == WireStatus::kFrame || s == WireStatus::kAuth || s == WireStatus::kVersion ||
         s == WireStatus::kShutdown;
}

// Whether a response body of `fixed + per_item * n` bytes (after the 4-byte head) and a request
// body of `req_fixed + req_per_item * n` bytes fit `max_body`: the largest such n, at least 1.
size_t ChunkItems(uint32_t max_body, uint32_t max_batch, size_t req_fixed, size_t req_per_item,
                  size_t resp_fixed, size_t resp_per_item) {
  const size_t body = max_body;
  size_t n = max_batch;
  if (body > req_fixed) n = std::min(n, (body - req_fixed) / req_per_item);
  if (body > 4 + resp_fixed) n = std::min(n, (body - 4 - resp_fixed) / resp_per_item);
  return std::max<size_t>(n, 1);
}

// RESERVE's item, also PUT's: the object and its PutHints.
wire::ReserveItem WireItem(const ObjectKey& key, uint64_t fp, uint64_t size, const PutHints& h) {
  wire::ReserveItem item;
  item.ns = key.ns, item.key = key.block, item.fingerprint = fp, item.size = size;
  item.family = uint8_t(key.family), item.has_parent = h.has_parent;
  item.depth = h.depth, item.parent = h.parent;
  item.value_per_byte = h.value_per_byte;
  return item;
}

enum class Reconnect { kYes, kNo };
enum class HandleKind : uint8_t { kLease, kReservation };

}  // namespace

class Client::Impl {
 public:
  explicit Impl(ClientOptions o) : opts_(std::move(o)) {}
  ~Impl() {
    std::lock_guard l(mu_);
    (void)SendQueued(Clock::now() + opts_.deadline);  // the releases waiting for a request
    sock_.Close();
    for (auto& [gen, m] : mappings_) m.Unmap();
  }

  Status ConnectNow() {
    std::lock_guard l(mu_);
    return EnsureConnected(Clock::now() + opts_.deadline);
  }

  Result<LookupResult> Lookup(NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys,
                              FamilyMask required);
  Result<std::vector<ObjectView>> Get(NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys,
                                      FamilyMask families);
  void Release(std::span<const uint64_t> pins) {
    std::lock_guard l(mu_);
    ReleaseLocked(pins, HandleKind::kLease);
  }
  Status Put(const ObjectKey& key, uint64_t fp, std::span<const std::byte> bytes,
             const PutHints& hints);
  std::vector<Status> PutMany(uint64_t fp, std::span<const PutSpec> items) {
    std::lock_guard l(mu_);
    return PutManyLocked(fp, items);
  }
  Result<Reservation> Reserve(const ObjectKey& key, uint64_t fp, uint64_t size,
                              const PutHints& hints) {
    std::lock_guard l(mu_);
    return ReserveLocked(key, fp, size, hints);
  }
  Status Finish(const Reservation& r, Verb verb) {
    std::lock_guard l(mu_);
    return FinishLocked(r, verb);
  }
  std::vector<Result<Reservation>> ReserveMany(uint64_t fp, std::span<const ReserveSpec> specs) {
    std::lock_guard l(mu_);
    return ReserveManyLocked(fp, specs);
  }
  std::vector<Status> FinishMany(std::span<const Reservation> rs, Verb verb) {
    std::lock_guard l(mu_);
    return FinishManyLocked(rs, verb);
  }
  Status Prefetch(NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys, FamilyMask families);
  Status Simple(Verb verb, uint64_t ns = 0);
  Result<std::vector<std::pair<std::string, uint64_t>>> RawStats();
  BlockKey root() {
    std::lock_guard l(mu_);
    return hello_.root;
  }
  uint64_t epoch() {
    std::lock_guard l(mu_);
    return hello_.server_epoch;
  }
  void VisitOwnCounters(const CounterVisitor& visit) const {
    visit("client.connects", connects_.load(std::memory_order_relaxed));
    visit("client.dropped_connections", drops_.load(std::memory_order_relaxed));
    visit("client.bad_items", bad_items_.load(std::memory_order_relaxed));
  }

 private:
  struct Mapping {
    std::byte* base = nullptr;
    uint64_t bytes = 0;
    uint64_t outstanding = 0;  // handles made under this mapping's connection, not yet released
    // The connection's staging region (wire::kCapStaging): where its reservations are written.
    std::byte* staging = nullptr;
    uint64_t staging_bytes = 0;
    void Unmap() const {
      ::munmap(base, bytes);
      if (staging) ::munmap(staging, staging_bytes);
    }
  };
  struct Handle {
    uint64_t generation = 0;
    uint64_t server_id = 0;  // lease or reservation on that connection
    HandleKind kind = HandleKind::kLease;
    // A reservation in the staging region: [staged_at, staged_at + staged_size), which PUT
    // leaves alone.
    uint64_t staged_at = 0, staged_size = 0;
  };
  struct Response {
    std::vector<std::byte> body;
    size_t payload_at = 0;
    std::span<const std::byte> payload() const { return std::span(body).subspan(payload_at); }
  };

  bool Live(uint64_t generation) const { return sock_.connected() && generation == generation_; }
  Status EnsureConnected(Deadline d);
  void Drop();
  // Reads the responses of deferred RELEASEs; an error drops the connection.
  Status ReadDeferredReleases(Deadline d);
  // Releases leases or aborts reservations the client refused (bad items); statuses ignored.
  void GiveBack(Verb verb, std::vector<uint64_t> ids) {
    if (ids.empty()) return;
    const wire::IdList list{std::move(ids)};
    (void)Call(verb, Reconnect::kNo,
               [&](uint64_t id, auto& f) { wire::EncodeIds(id, verb, list, f); });
  }
  template <class Encode>
  Result<Response> Call(Verb verb, Reconnect reconnect, Encode&& encode);
  uint64_t NewHandle(uint64_t server_id, HandleKind kind);
  // Forgets a handle; unmaps its mapping when it was the last handle of a dead connection.
  void EraseHandle(std::unordered_map<uint64_t, Handle>::iterator it);
  void ReleaseLocked(std::span<const uint64_t> pins, HandleKind kind);
  Result<Reservation> ReserveLocked(const ObjectKey& key, uint64_t fp, uint64_t size,
                                    const PutHints& hints);
  std::vector<Result<Reservation>> ReserveManyLocked(uint64_t fp,
                                                     std::span<const ReserveSpec> specs);
  Status FinishLocked(const Reservation& r, Verb verb);
  std::vector<Status> FinishManyLocked(std::span<const Reservation> rs, Verb verb);
  Status PutOneReserved(const ObjectKey& key, uint64_t fp, std::span<const std::byte> bytes,
                        const PutHints& hints);
  std::vector<Status> PutManyLocked(uint64_t fp, std::span<const PutSpec> items);
  // A staged COMMIT or a PUT is answered after the server has copied `bytes` into the arena:
  // with polling on, the next response's wait polls through that copy too (reset to
  // spin_us after the call).
  void SpinThroughCopy(uint64_t bytes) {
    if (opts_.spin_us > 0)
      sock_.set_spin(std::chrono::microseconds(
          opts_.spin_us + std::min<uint64_t>(bytes / kStagedCopyBytesPerUs, kMaxCopySpinUs)));
  }
  // One PUT frame of items[i..], as many as fit (in the staging region at once, in a frame);
  // sets their statuses in `out` and returns the index after the last one it took.
  size_t PutFrame(uint64_t fp, std::span<const PutSpec> items, size_t i, std::vector<Status>& out);
  // The arena span [offset, offset + size) of the current mapping, or null when it is outside;
  // InStaging: the same in its staging region, or in the arena without one (in-place writes).
  std::byte* InArena(uint64_t offset, uint64_t size) const;
  std::byte* InStaging(uint64_t offset, uint64_t size) const;

  const ClientOptions opts_;
  std::mutex mu_;
  Socket sock_;                   // GUARDED_BY(mu_)
  uint64_t generation_ = 0;       // GUARDED_BY(mu_): of the last connection
  wire::HelloResponse hello_;     // GUARDED_BY(mu_)
  uint64_t next_request_ = 1;     // GUARDED_BY(mu_)
  uint32_t unread_releases_ = 0;  // GUARDED_BY(mu_): RELEASE responses not read yet (deferred)
  // GUARDED_BY(mu_): RELEASE frames not sent yet (coalesce_releases); counted in unread_releases_.
  std::vector<std::byte> queued_;
  Status SendQueued(Deadline d);
  std::map<uint64_t, Mapping> mappings_;          // GUARDED_BY(mu_), by generation
  std::unordered_map<uint64_t, Handle> handles_;  // GUARDED_BY(mu_), by local handle
  // GUARDED_BY(mu_): where the next PUT frame starts in the staging region. Frames of up to
  // wire::kStagingAlternateMaxBytes alternate between two areas, from offset 0 and from where
  // the frame from 0 ended; a larger frame is followed by one where it began. Never a ring
  // through the whole region (lines long out of the caches: 5.0 against 7.9 GB/s for 4.2 MB
  // batches).
  uint64_t put_next_begin_ = 0;
  uint64_t next_handle_ = 1;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> connects_{0}, drops_{0}, bad_items_{0};
};

Status Client::Impl::EnsureConnected(Deadline d) {
  // Responses of deferred RELEASEs make the socket readable. While none has arrived yet, the
  // connection is live as far as anyone can tell: the request goes out now and Call reads them
  // after it (waiting for them here would cost a round trip per request). Once one has arrived
  // (or EOF), read them before telling a stale connection (readable while nothing is due) from
  // a live one.
  if (sock_.connected() && unread_releases_ > 0) {
    if (!sock_.Stale()) return Status::Ok();
    (void)ReadDeferredReleases(d);
  }
  if (sock_.connected() && !sock_.Stale()) return Status::Ok();
  if (sock_.connected()) Drop();
  const std::string& path = opts_.socket_path;
  STRATA_ASSIGN_OR_RETURN(Socket s, Socket::Connect(path, d));
  s.set_spin(std::chrono::microseconds(opts_.spin_us));
  wire::HelloRequest req;
  req.flags = opts_.read_only ? wire::kHelloReadOnly : 0;
  req.fingerprint = opts_.fingerprint;
  req.block_tokens = opts_.block_tokens;
  req.tenant = opts_.tenant;
  req.secret = opts_.secret;
  const uint64_t id = next_request_++;
  std::vector<std::byte> frame;
  wire::EncodeHello(id, req, frame);
  STRATA_RETURN_IF_ERROR(s.SendAll(frame, d).WithContext("hello"));
  std::vector<UniqueFd> fds;
  STRATA_ASSIGN_OR_RETURN(Frame f, s.RecvFrame(d, wire::kMaxBody, &fds));
  if (f.header.opcode != (uint16_t(Verb::kHello) | wire::kResponseBit) || f.header.request_id != id)
    return Status::IoError("hello: the response is not HELLO's");
  std::span<const std::byte> payload;
  STRATA_ASSIGN_OR_RETURN(wire::ResponseHead head, wire::DecodeResponseHead(f.body, &payload));
  if (head.status != WireStatus::kOk)
    return StatusFromWire(head.status,
                          "hello to " + path + (head.message.empty() ? "" : ": ") + head.message);
  STRATA_ASSIGN_OR_RETURN(wire::HelloResponse hello, wire::DecodeHelloResponse(payload));
  if (hello.version != wire::kWireVersion)
    return Status::NotSupported("hello: server speaks version " + std::to_string(hello.version));
  // With staged writes the arena is sealed (it maps only read-only) and, for a writing client,
  // the connection's staging region comes second.
  const bool staged = hello.capabilities & wire::kCapStaging;
  const size_t want_fds = staged && !opts_.read_only ? 2 : 1;
  if (fds.size() != want_fds)
    return Status::IoError("hello: expected " + std::to_string(want_fds) + " descriptor(s), got " +
                           std::to_string(fds.size()));
  // A file shorter than the mapping would fault (SIGBUS) on access, not fail: check first.
  struct stat st {};
  if (::fstat(fds[0].get(), &st) != 0 || uint64_t(st.st_size) < hello.arena_bytes ||
      hello.arena_bytes == 0)
    return Status::IoError("hello: the arena descriptor is smaller than the arena");
  const int prot = PROT_READ | (opts_.read_only || staged ? 0 : PROT_WRITE);
  // MAP_POPULATE: the page tables of the whole arena now, not a minor fault per 4 KiB on the
  // first read of every object (that costs more than the copy itself).
  void* base = ::mmap(nullptr, hello.arena_bytes, prot, MAP_SHARED | MAP_POPULATE, fds[0].get(), 0);
  if (base == MAP_FAILED)
    return Status::IoError(std::string("hello: mmap of the arena: ") + std::strerror(errno));
  Mapping mapping{static_cast<std::byte*>(base), hello.arena_bytes, 0};
  if (want_fds == 2) {
    if (::fstat(fds[1].get(), &st) != 0 || st.st_size <= 0) {
      ::munmap(base, hello.arena_bytes);
      return Status::IoError("hello: the staging descriptor is empty");
    }
    void* staging =
        ::mmap(nullptr, uint64_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fds[1].get(), 0);
    if (staging == MAP_FAILED) {
      const int err = errno;
      ::munmap(base, hello.arena_bytes);
      return Status::IoError(std::string("hello: mmap of the staging region: ") +
                             std::strerror(err));
    }
    mapping.staging = static_cast<std::byte*>(staging);
    mapping.staging_bytes = uint64_t(st.st_size);
  }
  // The mappings keep the memfds alive; the descriptors themselves are no longer needed.
  fds.clear();
  hello.max_body = std::clamp<uint32_t>(hello.max_body, 4096, wire::kMaxBody);
  hello.max_batch = std::clamp<uint32_t>(hello.max_batch, 1, wire::kMaxBatch);
  ++generation_;
  mappings_[generation_] = mapping;
  hello_ = hello;
  sock_ = std::move(s);
  connects_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

void Client::Impl::Drop() {
  unread_releases_ = 0;  // they went with the connection
  queued_.clear();
  if (!sock_.connected()) return;
  sock_.Close();
  drops_.fetch_add(1, std::memory_order_relaxed);
  auto it = mappings_.find(generation_);
  if (it != mappings_.end() && it->second.outstanding == 0) {
    it->second.Unmap();
    mappings_.erase(it);
  }
}

Status Client::Impl::SendQueued(Deadline d) {
  if (queued_.empty() || !sock_.connected()) return Status::Ok();
  Status s = sock_.SendAll(queued_, d);
  queued_.clear();
  if (!s.ok()) Drop();
  return s;
}

Status Client::Impl::ReadDeferredReleases(Deadline d) {
  STRATA_RETURN_IF_ERROR(SendQueued(d).WithContext("release"));
  while (unread_releases_ > 0) {
    auto f = sock_.RecvFrame(d, wire::kMaxBody, nullptr);
    if (!f.ok()) {
      Drop();
      return f.status().WithContext("release");
    }
    --unread_releases_;
    std::span<const std::byte> payload;
    auto head = wire::DecodeResponseHead(f->body, &payload);
    if (f->header.opcode != (uint16_t(Verb::kRelease) | wire::kResponseBit) || !head.ok() ||
        ClosesConnection(head->status)) {
      Drop();
      return Status::IoError("release: response out of order or connection closed");
    }
  }
  return Status::Ok();
}

template <class Encode>
Result<Client::Impl::Response> Client::Impl::Call(Verb verb, Reconnect reconnect, Encode&& encode) {
  const Deadline d = Clock::now() + opts_.deadline;
  const std::string what(wire::VerbName(verb));
  if (reconnect == Reconnect::kYes) {
    STRATA_RETURN_IF_ERROR(EnsureConnected(d).WithContext(what));
  } else if (!sock_.connected()) {
    return Status::IoError(what + ": not connected");
  }
  const uint64_t id = next_request_++;
  std::vector<std::byte> frame;
  if (!queued_.empty()) frame.swap(queued_);  // the RELEASEs waiting for this request go first
  encode(id, frame);
  if (Status s = sock_.SendAll(frame, d); !s.ok()) {
    Drop();
    return s.WithContext(what);
  }
  STRATA_RETURN_IF_ERROR(ReadDeferredReleases(d).WithContext(what));
  auto f = sock_.RecvFrame(d, wire::kMaxBody, nullptr);
  if (!f.ok()) {
    Drop();
    return f.status().WithContext(what);
  }
  if (f->header.opcode != (uint16_t(verb) | wire::kResponseBit) || f->header.request_id != id) {
    Drop();
    return Status::IoError(what + ": response out of order");
  }
  std::span<const std::byte> payload;
  auto head = wire::DecodeResponseHead(f->body, &payload);
  if (!head.ok()) {
    Drop();
    return head.status().WithContext(what);
  }
  if (head->status != WireStatus::kOk) {
    if (ClosesConnection(head->status)) Drop();
    return StatusFromWire(head->status, what + (head->message.empty() ? "" : ": ") + head->message);
  }
  Response r;
  r.payload_at = size_t(payload.data() - f->body.data());
  if (payload.empty()) r.payload_at = f->body.size();
  r.body = std::move(f->body);
  return r;
}

uint64_t Client::Impl::NewHandle(uint64_t server_id, HandleKind kind) {
  const uint64_t h = next_handle_++;
  handles_[h] = Handle{generation_, server_id, kind};
  mappings_[generation_].outstanding++;
  return h;
}

void Client::Impl::EraseHandle(std::unordered_map<uint64_t, Handle>::iterator it) {
  const uint64_t gen = it->second.generation;
  handles_.erase(it);
  auto m = mappings_.find(gen);
  if (m == mappings_.end()) return;
  if (--m->second.outstanding == 0 && !Live(gen)) {
    m->second.Unmap();
    mappings_.erase(m);
  }
}

std::byte* Client::Impl::InArena(uint64_t offset, uint64_t size) const {
  auto m = mappings_.find(generation_);
  if (m == mappings_.end()) return nullptr;
  const uint64_t cap = m->second.bytes;
  if (offset > cap || size > cap - offset) return nullptr;
  return m->second.base + offset;
}

std::byte* Client::Impl::InStaging(uint64_t offset, uint64_t size) const {
  auto m = mappings_.find(generation_);
  if (m == mappings_.end()) return nullptr;
  if (!m->second.staging) return InArena(offset, size);
  const uint64_t cap = m->second.staging_bytes;
  if (offset > cap || size > cap - offset) return nullptr;
  return m->second.staging + offset;
}

Result<LookupResult> Client::Impl::Lookup(NamespaceId ns, uint64_t fp,
                                          std::span<const BlockKey> keys, FamilyMask required) {
  std::lock_guard l(mu_);
  LookupResult out;
  // A failure is a miss of the whole chain: the engine then computes what it would have read.
  auto miss = [&] {
    LookupResult m;
    if (!keys.empty()) m.blocks.resize(1);
    return m;
  };
  if (keys.empty()) return out;
  if (!EnsureConnected(Clock::now() + opts_.deadline).ok()) return miss();
  const size_t chunk = ChunkItems(hello_.max_body, hello_.max_batch, 24, 16, 56, 8);
  size_t i = 0;
  while (i < keys.size()) {
    const size_t n = std::min(keys.size() - i, chunk);
    wire::LookupRequest req;
    req.ns = ns, req.fingerprint = fp, req.required = required.bits();
    req.keys.assign(keys.begin() + long(i), keys.begin() + long(i + n));
    auto resp = Call(Verb::kLookup, Reconnect::kYes,
                     [&](uint64_t id, auto& f) { wire::EncodeLookup(id, req, f); });
    if (!resp.ok()) return miss();
    auto lr = wire::DecodeLookupResponse(resp->payload());
    if (!lr.ok() || lr->hit_blocks > n || lr->blocks.size() > n ||
        lr->blocks.size() < lr->hit_blocks) {
      bad_items_.fetch_add(1, std::memory_order_relaxed);
      Drop();
      return miss();
    }
    for (const auto& b : lr->blocks) {
      BlockPresence p;
      p.families = FamilyMask(uint8_t(b.families & FamilyMask::All().bits()));
      for (int f = 0; f < kNumFamilies; ++f)
        p.tier[size_t(f)] = b.tier[f] < kNumTiers ? Tier(b.tier[f]) : Tier::kNone;
      out.blocks.push_back(p);
    }
    for (int t = 0; t < kNumTiers; ++t) out.hit_bytes[size_t(t)] += lr->hit_bytes[t];
    out.hit_blocks += lr->hit_blocks;
    if (lr->hit_blocks < n) break;
    i += n;
  }
  return out;
}

Result<std::vector<ObjectView>> Client::Impl::Get(NamespaceId ns, uint64_t fp,
                                                  std::span<const BlockKey> keys,
                                                  FamilyMask families) {
  std::lock_guard l(mu_);
  std::vector<Family> fams;
  for (Family f : kAllFamilies)
    if (families.Has(f)) fams.push_back(f);
  std::vector<ObjectView> out;
  out.reserve(keys.size() * fams.size());
  for (const BlockKey& k : keys)
    for (Family f : fams)
      out.push_back(ObjectView{ObjectKey{ns, k, f}, nullptr, 0, Tier::kNone, 0});
  if (out.empty()) return out;
  // On any failure every view of the call is a miss: leases of earlier chunks are released (or
  // were freed with the connection), so no view of a failed call is left half-valid.
  auto fail = [&] {
    std::vector<uint64_t> pins;
    for (auto& v : out) {
      if (v.pin) pins.push_back(v.pin);
      v.data = nullptr, v.size = 0, v.pin = 0, v.served_from = Tier::kNone;
    }
    ReleaseLocked(pins, HandleKind::kLease);
    return out;
  };
  const size_t nf = fams.size();
  if (!EnsureConnected(Clock::now() + opts_.deadline).ok()) return fail();
  // Items (keys x families) count against the batch limit too.
  const size_t chunk =
      std::max<size_t>(std::min(ChunkItems(hello_.max_body, hello_.max_batch, 32, 16, 8, 32 * nf),
                                size_t(hello_.max_batch) / nf),
                       1);
  size_t i = 0;
  while (i < keys.size()) {
    const size_t n = std::min(keys.size() - i, chunk);
    wire::GetRequest req;
    req.ns = ns, req.fingerprint = fp, req.families = families.bits(),
    req.lease_ms = opts_.lease_ms;
    req.keys.assign(keys.begin() + long(i), keys.begin() + long(i + n));
    auto resp = Call(Verb::kGet, Reconnect::kYes,
                     [&](uint64_t id, auto& f) { wire::EncodeGet(id, Verb::kGet, req, f); });
    if (!resp.ok()) return fail();
    auto gr = wire::DecodeGetResponse(resp->payload());
    if (!gr.ok() || gr->items.size() != n * nf) {
      bad_items_.fetch_add(1, std::memory_order_relaxed);
      Drop();
      return fail();
    }
    std::vector<uint64_t> refused;  // leases of items whose bytes are not served
    for (size_t j = 0; j < gr->items.size(); ++j) {
      const wire::GetItem& it = gr->items[j];
      ObjectView& v = out[i * nf + j];
      v.corrupt = it.status == WireStatus::kCorrupt;
      if (it.status != WireStatus::kOk) continue;
      std::byte* data = InArena(it.offset, it.size);
      if (!data || it.family != uint8_t(v.key.family)) {
        // A bad offset or a mixed-up item is a miss, never a pointer outside the arena.
        bad_items_.fetch_add(1, std::memory_order_relaxed);
        if (it.lease) refused.push_back(it.lease);
        continue;
      }
      v.data = data;
      v.size = size_t(it.size);
      v.served_from = it.tier < kNumTiers ? Tier(it.tier) : Tier::kNone;
      v.pin = NewHandle(it.lease, HandleKind::kLease);
    }
    GiveBack(Verb::kRelease, std::move(refused));
    i += n;
  }
  return out;
}

void Client::Impl::ReleaseLocked(std::span<const uint64_t> pins, HandleKind kind) {
  std::vector<uint64_t> live;
  for (uint64_t pin : pins) {
    auto it = handles_.find(pin);
    if (it == handles_.end() || it->second.kind != kind) continue;
    // A lease of a dead connection was freed by the server when that connection ended.
    if (Live(it->second.generation) && it->second.server_id) live.push_back(it->second.server_id);
    EraseHandle(it);
  }
  const size_t chunk =
      ChunkItems(hello_.max_body, hello_.max_batch, 8, 8, 16, 1);  // statuses padded to 8
  for (size_t i = 0; i < live.size() && sock_.connected(); i += chunk) {
    wire::IdList ids;
    ids.ids.assign(live.begin() + long(i), live.begin() + long(std::min(live.size(), i + chunk)));
    // Statuses per item (not yours, expired) need no action; a failed call drops the connection,
    // which releases everything it held.
    if (!opts_.defer_release_acks) {
      (void)Call(Verb::kRelease, Reconnect::kNo,
                 [&](uint64_t id, auto& f) { wire::EncodeIds(id, Verb::kRelease, ids, f); });
      continue;
    }
    const Deadline d = Clock::now() + opts_.deadline;
    if (opts_.coalesce_releases) {
      wire::EncodeIds(next_request_++, Verb::kRelease, ids, queued_);  // appends
      if (++unread_releases_ >= 16) (void)ReadDeferredReleases(d);     // sends them first
      continue;
    }
    std::vector<std::byte> frame;
    wire::EncodeIds(next_request_++, Verb::kRelease, ids, frame);
    if (!sock_.SendAll(frame, d).ok()) {
      Drop();
      continue;
    }
    // Bounded, so that unread responses never fill the socket and stall the server's writes.
    if (++unread_releases_ >= 16) (void)ReadDeferredReleases(d);
  }
}

Result<Client::Reservation> Client::Impl::ReserveLocked(const ObjectKey& key, uint64_t fp,
                                                        uint64_t size, const PutHints& hints) {
  const ReserveSpec spec{key, size, hints};
  return std::move(ReserveManyLocked(fp, std::span(&spec, 1))[0]);
}

std::vector<Result<Client::Reservation>> Client::Impl::ReserveManyLocked(
    uint64_t fp, std::span<const ReserveSpec> specs) {
  std::vector<Result<Reservation>> out;
  out.reserve(specs.size());
  if (opts_.read_only) {
    for (size_t k = 0; k < specs.size(); ++k)
      out.emplace_back(Status::FailedPrecondition("reserve: the client is read-only"));
    return out;
  }
  size_t chunk = 1;  // set once connected (HELLO's limits)
  for (size_t i = 0; i < specs.size();) {
    if (sock_.connected()) chunk = ChunkItems(hello_.max_body, hello_.max_batch, 8, 72, 8, 24);
    const size_t n = std::min(specs.size() - i, chunk);
    wire::ReserveRequest req;
    for (size_t j = i; j < i + n; ++j) {
      const ReserveSpec& sp = specs[j];
      req.items.push_back(WireItem(sp.key, fp, sp.size, sp.hints));
    }
    auto resp = Call(Verb::kReserve, Reconnect::kYes,
                     [&](uint64_t id, auto& f) { wire::EncodeReserve(id, req, f); });
    auto rr = resp.ok() ? wire::DecodeReserveResponse(resp->payload())
                        : Result<wire::ReserveResponse>(resp.status());
    if (resp.ok() && (!rr.ok() || rr->items.size() != n)) {
      bad_items_.fetch_add(1, std::memory_order_relaxed);
      Drop();
      rr = Status::IoError("reserve: malformed response");
    }
    if (!rr.ok()) {
      for (size_t j = 0; j < n; ++j) out.emplace_back(rr.status());
      i += n;
      continue;
    }
    std::vector<uint64_t> refused;  // reservations at offsets outside the arena
    for (size_t j = 0; j < n; ++j) {
      const wire::ReserveResult& r = rr->items[j];
      if (r.status != WireStatus::kOk) {
        out.emplace_back(StatusFromWire(r.status, "reserve"));
        continue;
      }
      std::byte* data = InStaging(r.offset, specs[i + j].size);
      if (!data) {
        bad_items_.fetch_add(1, std::memory_order_relaxed);
        refused.push_back(r.reservation);
        out.emplace_back(Status::IoError("reserve: the server gave an offset outside the region"));
        continue;
      }
      const uint64_t h = NewHandle(r.reservation, HandleKind::kReservation);
      if (mappings_[generation_].staging) {
        handles_[h].staged_at = r.offset;
        handles_[h].staged_size = specs[i + j].size;
      }
      out.emplace_back(Reservation{data, h, specs[i + j].size});
    }
    GiveBack(Verb::kAbort, std::move(refused));
    i += n;
  }
  return out;
}

Status Client::Impl::FinishLocked(const Reservation& r, Verb verb) {
  return FinishManyLocked(std::span(&r, 1), verb)[0];
}

std::vector<Status> Client::Impl::FinishManyLocked(std::span<const Reservation> rs, Verb verb) {
  const std::string what(wire::VerbName(verb));
  std::vector<Status> out(rs.size(), Status::Ok());
  std::vector<size_t> sent;  // indexes of `rs` whose ids go to the server
  std::vector<uint64_t> ids;
  for (size_t k = 0; k < rs.size(); ++k) {
    auto it = handles_.find(rs[k].id);
    if (it == handles_.end() || it->second.kind != HandleKind::kReservation) {
      out[k] = Status::InvalidArgument(what + ": unknown reservation");
      continue;
    }
    const bool live = Live(it->second.generation);
    const uint64_t server_id = it->second.server_id;
    // The reservation is used up whatever happens next; its mapping may go once it is.
    EraseHandle(it);
    if (!live) {
      // The server freed it with the connection that made it: an abort has nothing left to do,
      // a commit lost its object.
      if (verb != Verb::kAbort)
        out[k] = Status::IoError(what + ": the connection that made the reservation is gone");
      continue;
    }
    sent.push_back(k);
    ids.push_back(server_id);
  }
  const size_t chunk =
      ChunkItems(hello_.max_body, hello_.max_batch, 8, 8, 16, 1);  // statuses padded to 8
  for (size_t i = 0; i < ids.size(); i += chunk) {
    const size_t n = std::min(ids.size() - i, chunk);
    wire::IdList list;
    list.ids.assign(ids.begin() + long(i), ids.begin() + long(i + n));
    // A COMMIT of staged writes is answered after the server has copied their bytes into the
    // arena: with polling on, poll through that copy too instead of sleeping through it and
    // paying the wake-up on top.
    const auto m = mappings_.find(generation_);
    const bool staged = m != mappings_.end() && m->second.staging;
    if (verb == Verb::kCommit && staged) {
      uint64_t bytes = 0;
      for (size_t j = 0; j < n; ++j) bytes += rs[sent[i + j]].size;
      SpinThroughCopy(bytes);
    }
    auto resp = Call(verb, Reconnect::kNo,
                     [&](uint64_t id, auto& f) { wire::EncodeIds(id, verb, list, f); });
    sock_.set_spin(std::chrono::microseconds(opts_.spin_us));
    auto sl = resp.ok() ? wire::DecodeStatusList(resp->payload())
                        : Result<wire::StatusList>(resp.status());
    if (resp.ok() && (!sl.ok() || sl->statuses.size() != n)) {
      Drop();
      sl = Status::IoError(what + ": malformed response");
    }
    for (size_t j = 0; j < n; ++j) {
      Status& s = out[sent[i + j]];
      if (!sl.ok()) {
        s = sl.status();
      } else if (sl->statuses[j] != WireStatus::kNotAdmitted) {
        // A cache may decline an object (admission): like the in-process store, that is no error.
        s = StatusFromWire(sl->statuses[j], what);
      }
    }
  }
  return out;
}

Status Client::Impl::Put(const ObjectKey& key, uint64_t fp, std::span<const std::byte> bytes,
                         const PutHints& hints) {
  std::lock_guard l(mu_);
  const PutSpec spec{key, bytes, hints};
  return PutManyLocked(fp, std::span(&spec, 1))[0];
}

std::vector<Status> Client::Impl::PutManyLocked(uint64_t fp, std::span<const PutSpec> items) {
  std::vector<Status> out(items.size(), Status::Ok());
  if (opts_.read_only) {
    for (Status& s : out) s = Status::FailedPrecondition("put: the client is read-only");
    return out;
  }
  for (size_t i = 0; i < items.size();) {
    if (Status c = EnsureConnected(Clock::now() + opts_.deadline); !c.ok()) {
      for (; i < items.size(); ++i) out[i] = c.WithContext("put");
      break;
    }
    const auto m = mappings_.find(generation_);
    if (m == mappings_.end() || !m->second.staging || !(hello_.capabilities & wire::kCapPut)) {
      // A server without PUT: reserve, copy and commit, one object at a time.
      out[i] = PutOneReserved(items[i].key, fp, items[i].bytes, items[i].hints);
      ++i;
      continue;
    }
    i = PutFrame(fp, items, i, out);
  }
  return out;
}

namespace {

// The first offset at or after `at` where [offset, offset + size) ends at or before `limit`
// and overlaps none of `busy` ([begin, end) ranges sorted by begin); nullopt when there is none.
// Objects of a page or more start on a page, as the server's own staging extents do; smaller
// ones on a cache line, so a batch of small objects does not take a page each.
std::optional<uint64_t> FitFrom(uint64_t at, uint64_t size, uint64_t limit,
                                const std::vector<std::pair<uint64_t, uint64_t>>& busy) {
  const uint64_t align = size >= 4096 ? 4096 : 64;
  for (;;) {
    at = (at + align - 1) & ~(align - 1);
    if (at > limit || size > limit - at) return std::nullopt;
    bool moved = false;
    for (const auto& [b, e] : busy) {
      if (b >= at + size) break;
      if (e > at) {
        at = e, moved = true;
        break;
      }
    }
    if (!moved) return at;
  }
}

}  // namespace

size_t Client::Impl::PutFrame(uint64_t fp, std::span<const PutSpec> items, size_t i,
                              std::vector<Status>& out) {
  const Mapping& m = mappings_.at(generation_);
  const uint64_t cap = m.staging_bytes;
  // This connection's reservations are being written in the staging region: not there.
  std::vector<std::pair<uint64_t, uint64_t>> busy;
  for (const auto& [h, x] : handles_)
    if (x.generation == generation_ && x.kind == HandleKind::kReservation && x.staged_size > 0)
      busy.emplace_back(x.staged_at, x.staged_at + x.staged_size);
  std::sort(busy.begin(), busy.end());
  const size_t chunk = ChunkItems(hello_.max_body, hello_.max_batch, 8, 80, 8, 1);
  wire::PutRequest req;
  std::vector<size_t> sent;  // indexes of `items` in the frame
  uint64_t bytes = 0;
  // The frame's items go one after the other from `begin`, wrapping around once, never reaching
  // where the frame began.
  const uint64_t begin = put_next_begin_ < cap ? put_next_begin_ : 0;
  uint64_t cursor = begin;
  bool wrapped = false;
  for (; i < items.size() && req.items.size() < chunk; ++i) {
    const PutSpec& it = items[i];
    const uint64_t size = it.bytes.size();
    auto at = FitFrom(cursor, size, wrapped ? begin : cap, busy);
    if (!at && !wrapped) {
      wrapped = true;
      at = FitFrom(0, size, begin, busy);
    }
    if (!at && req.items.empty()) at = FitFrom(0, size, cap, busy);  // alone, anywhere
    if (!at) {
      if (!req.items.empty()) break;  // the next frame has the whole region again
      out[i] = Status::NoSpace("put: no room for it in the connection's staging region");
      continue;
    }
    if (size > 0) std::memcpy(m.staging + *at, it.bytes.data(), size);
    cursor = *at + size;
    req.items.push_back({WireItem(it.key, fp, size, it.hints), *at});
    sent.push_back(i);
    bytes += size;
  }
  if (req.items.empty()) return i;
  put_next_begin_ = bytes > wire::kStagingAlternateMaxBytes ? begin : begin == 0 ? cursor : 0;
  SpinThroughCopy(bytes);  // the server answers after copying the bytes into the arena
  auto resp =
      Call(Verb::kPut, Reconnect::kNo, [&](uint64_t id, auto& f) { wire::EncodePut(id, req, f); });
  sock_.set_spin(std::chrono::microseconds(opts_.spin_us));
  auto sl =
      resp.ok() ? wire::DecodeStatusList(resp->payload()) : Result<wire::StatusList>(resp.status());
  if (resp.ok() && (!sl.ok() || sl->statuses.size() != sent.size())) {
    bad_items_.fetch_add(1, std::memory_order_relaxed);
    Drop();
    sl = Status::IoError("put: malformed response");
  }
  for (size_t j = 0; j < sent.size(); ++j) {
    Status& s = out[sent[j]];
    if (!sl.ok()) {
      s = sl.status();
    } else if (sl->statuses[j] != WireStatus::kNotAdmitted) {
      // As through RESERVE and COMMIT: an object the store declines is no error.
      s = StatusFromWire(sl->statuses[j], "put");
    }
  }
  return i;
}

Status Client::Impl::PutOneReserved(const ObjectKey& key, uint64_t fp,
                                    std::span<const std::byte> bytes, const PutHints& hints) {
  auto r = ReserveLocked(key, fp, bytes.size(), hints);
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kResourceExhausted) return Status::Ok();  // declined
    return r.status().WithContext("put");
  }
  if (!bytes.empty()) std::memcpy(r->data, bytes.data(), bytes.size());
  return FinishLocked(*r, Verb::kCommit).WithContext("put");
}

Status Client::Impl::Prefetch(NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys,
                              FamilyMask families) {
  std::lock_guard l(mu_);
  STRATA_RETURN_IF_ERROR(EnsureConnected(Clock::now() + opts_.deadline).WithContext("prefetch"));
  const size_t chunk = std::max<size_t>(
      std::min(ChunkItems(hello_.max_body, hello_.max_batch, 32, 16, 16, kNumFamilies),
               size_t(hello_.max_batch) / kNumFamilies),
      1);
  size_t i = 0;
  while (i < keys.size()) {
    const size_t n = std::min(keys.size() - i, chunk);
    wire::GetRequest req;
    req.ns = ns, req.fingerprint = fp, req.families = families.bits();
    req.keys.assign(keys.begin() + long(i), keys.begin() + long(i + n));
    STRATA_ASSIGN_OR_RETURN(Response resp,
                            Call(Verb::kPrefetch, Reconnect::kYes, [&](uint64_t id, auto& f) {
                              wire::EncodeGet(id, Verb::kPrefetch, req, f);
                            }));
    auto sl = wire::DecodeStatusList(resp.payload());
    if (!sl.ok()) {
      Drop();
      return Status::IoError("prefetch: malformed response");
    }
    i += n;
  }
  return Status::Ok();
}

Status Client::Impl::Simple(Verb verb, uint64_t ns) {
  std::lock_guard l(mu_);
  return Call(verb, Reconnect::kYes,
              [&](uint64_t id, auto& f) {
                if (verb == Verb::kDelete)
                  wire::EncodeDelete(id, wire::DeleteRequest{ns}, f);
                else
                  wire::EncodeEmpty(id, verb, f);
              })
      .status();
}

Result<std::vector<std::pair<std::string, uint64_t>>> Client::Impl::RawStats() {
  std::lock_guard l(mu_);
  STRATA_ASSIGN_OR_RETURN(
      Response resp, Call(Verb::kStats, Reconnect::kYes,
                          [&](uint64_t id, auto& f) { wire::EncodeEmpty(id, Verb::kStats, f); }));
  auto sr = wire::DecodeStatsResponse(resp.payload());
  if (!sr.ok()) {
    Drop();
    return sr.status().WithContext("stats");
  }
  return std::move(sr->counters);
}

// ---- Client ---------------------------------------------------------------------------------

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (options.socket_path.empty()) return Status::InvalidArgument("client: no socket path");
  if (options.deadline.count() <= 0) return Status::InvalidArgument("client: deadline <= 0");
  auto impl = std::make_unique<Impl>(options);
  STRATA_RETURN_IF_ERROR(impl->ConnectNow());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<LookupResult> Client::Lookup(NamespaceId ns, uint64_t fingerprint,
                                    std::span<const BlockKey> keys, FamilyMask required) {
  return impl_->Lookup(ns, fingerprint, keys, required);
}

Status Client::Put(const ObjectKey& key, uint64_t fingerprint, std::span<const std::byte> bytes,
                   const PutHints& hints) {
  return impl_->Put(key, fingerprint, bytes, hints);
}
std::vector<Status> Client::PutMany(uint64_t fingerprint, std::span<const PutSpec> items) {
  return impl_->PutMany(fingerprint, items);
}

Result<std::vector<ObjectView>> Client::Get(NamespaceId ns, uint64_t fingerprint,
                                            std::span<const BlockKey> keys, FamilyMask families) {
  return impl_->Get(ns, fingerprint, keys, families);
}

void Client::Release(std::span<const uint64_t> pins) { impl_->Release(pins); }
Status Client::Delete(NamespaceId ns) { return impl_->Simple(Verb::kDelete, ns); }
Status Client::Flush() { return impl_->Simple(Verb::kFlush); }
Status Client::Ping() { return impl_->Simple(Verb::kPing); }

Result<Client::Reservation> Client::Reserve(const ObjectKey& key, uint64_t fingerprint,
                                            uint64_t size, const PutHints& hints) {
  return impl_->Reserve(key, fingerprint, size, hints);
}
Status Client::Commit(const Reservation& r) { return impl_->Finish(r, Verb::kCommit); }
std::vector<Result<Client::Reservation>> Client::ReserveMany(uint64_t fingerprint,
                                                             std::span<const ReserveSpec> specs) {
  return impl_->ReserveMany(fingerprint, specs);
}
std::vector<Status> Client::CommitMany(std::span<const Reservation> reservations) {
  return impl_->FinishMany(reservations, Verb::kCommit);
}
Status Client::Abort(const Reservation& r) { return impl_->Finish(r, Verb::kAbort); }

Status Client::Prefetch(NamespaceId ns, uint64_t fingerprint, std::span<const BlockKey> keys,
                        FamilyMask families) {
  return impl_->Prefetch(ns, fingerprint, keys, families);
}

BlockKey Client::root() const { return impl_->root(); }
uint64_t Client::server_epoch() const { return impl_->epoch(); }

Result<std::vector<std::pair<std::string, uint64_t>>> Client::RawStats() const {
  return impl_->RawStats();
}

StoreStats Client::Stats() const {
  StoreStats st;
  auto raw = impl_->RawStats();
  if (!raw.ok()) return st;
  // Occupancy counters: "<tier>.<family>.objects|bytes" and "<tier>.capacity|used".
  for (const auto& [name, value] : *raw) {
    const size_t dot = name.find('.');
    if (dot == std::string::npos) continue;
    const std::string_view tier_name = std::string_view(name).substr(0, dot);
    const std::string_view rest = std::string_view(name).substr(dot + 1);
    int tier = -1;
    for (Tier t : kAllTiers)
      if (TierName(t) == tier_name) tier = int(t);
    if (tier < 0) continue;
    TierStats& ts = st.tiers[size_t(tier)];
    if (rest == "capacity") {
      ts.capacity = value;
    } else if (rest == "used") {
      ts.used = value;
    } else if (const size_t d2 = rest.find('.'); d2 != std::string_view::npos) {
      const auto fam = ParseFamily(rest.substr(0, d2));
      if (!fam) continue;
      const std::string_view field = rest.substr(d2 + 1);
      if (field == "objects") ts.families[size_t(*fam)].objects = value;
      if (field == "bytes") ts.families[size_t(*fam)].bytes = value;
    }
  }
  return st;
}

void Client::VisitCounters(const CounterVisitor& visit) const {
  if (auto raw = impl_->RawStats(); raw.ok())
    for (const auto& [name, value] : *raw) visit(name, value);
  impl_->VisitOwnCounters(visit);
}

}  // namespace strata
