// The strata-server wire protocol, version 1 (DESIGN.md, "Daemon"), byte by byte.
//
// Transport: a Unix stream socket. The client sends request frames, the server answers each with
// one response frame, in request order (a client may pipeline). Bulk bytes never cross the
// socket: the HELLO response passes the tenant's host arena (a memfd) with SCM_RIGHTS, and the
// connection's staging region where clients write new objects (kCapStaging); objects are read
// and written in those shared mappings, and frames carry only keys, offsets, sizes, leases and
// statuses.
//
// Every integer is little-endian; doubles are IEEE-754 binary64, little-endian. Keys are two
// u64 (hi, lo). Offsets are byte offsets into the tenant's arena mapping (RESERVE's: into the
// staging region, with kCapStaging).
//
// Frame header (16 bytes):
//   0  u32 body_len   bytes after the header; at most kMaxBody
//   4  u16 opcode     a Verb for a request; Verb | kResponseBit for its response
//   6  u16 flags      must be 0
//   8  u64 request_id chosen by the client, echoed in the response
//
// Response body:
//   0  u16 status     a WireStatus for the whole frame
//   2  u16 msg_len    length of a UTF-8 message (an error's explanation; may be 0)
//   4  msg_len bytes
//   then the verb's payload below, present only when status == kOk.
//
// Request bodies and response payloads by verb (n: item count, at most kMaxBatch; a body
// whose length is not exactly what its counts imply is malformed):
//
// HELLO (1), first frame of a connection, exactly once:
//   0 u32 version (kWireVersion)   4 u32 flags (kHelloReadOnly: the client only reads)
//   8 u64 layout fingerprint      16 u32 block_tokens          20 u16 tenant_len
//  22 u16 secret_len              24 tenant bytes, then secret bytes (each at most 255)
//   -> 0 u32 version   4 u32 capabilities (kCap*)   8 u64 server_epoch (new at every start)
//     16 u64 arena_bytes  24 u64 root.hi  32 u64 root.lo (the tenant's chain root for this
//     layout: k0 of keys.h)  40 u32 max_body  44 u32 max_batch  48 u8 swa_policy (SwaPolicyWire)
//     49 u8[7] zero.  The response carries the arena's memfd (SCM_RIGHTS), read-only when
//     kHelloReadOnly was asked for. Map it MAP_SHARED over arena_bytes. With kCapStaging the
//     arena is sealed (F_SEAL_FUTURE_WRITE: it maps only PROT_READ) and, unless kHelloReadOnly,
//     a second descriptor follows in the same message: this connection's staging region, a
//     memfd to map PROT_READ | PROT_WRITE, MAP_SHARED over its size (fstat).
//
// LOOKUP (2):
//   0 u64 ns  8 u64 fingerprint  16 u8 required families  17 u8[3] zero  20 u32 n
//  24 n x (u64 hi, u64 lo)
//   -> 0 u32 hit_blocks  4 u32 n_blocks  8 u32 best_checkpoint (b: blocks 0..b-1 restore
//      through the checkpoint stored at block b-1, b <= hit_blocks; 0: none)  12 u32 zero
//     16 5 x u64 hit_bytes by Tier   56 n_blocks x 8: u8 families, u8 tier[5] by Family, u8[2]
//
// GET (3) and PREFETCH (11):
//   0 u64 ns  8 u64 fingerprint  16 u8 families  17 u8[3] zero  20 u32 lease_ms (GET: the
//  lease expires after it, 0: held until released or the connection ends; PREFETCH: 0)
//  24 u32 n   28 u32 zero   32 n x (u64 hi, u64 lo)
//   GET -> 0 u32 n_items  4 u32 zero  8 n_items x 32 (key-major, families in Family order):
//     0 u8 status  1 u8 tier (where it was)  2 u8 family  3 u8[5] zero  8 u64 offset
//    16 u64 size  24 u64 lease (0 unless status == kOk; pass to RELEASE)
//   PREFETCH -> 0 u32 n_items  4 u32 zero  8 n_items x u8 status (kOk: in DRAM now; kPending:
//     being read into DRAM, a later GET finds it there; kNotFound), padded with zeros to a
//     multiple of 8.
//
// RESERVE (4): space for new objects; the client writes each payload at its offset, then
// COMMITs (the object becomes visible) or ABORTs. The offset is into the staging region with
// kCapStaging (COMMIT copies the bytes into the arena; the staging space is free again after
// COMMIT or ABORT, and a RESERVE that does not fit in it is kNoSpace), else into the arena.
//   0 u32 n  4 u32 zero  8 n x 72:
//     0 u64 ns  8 u64 key.hi  16 u64 key.lo  24 u64 fingerprint  32 u64 size  40 u8 family
//    41 u8 has_parent  42 u16 zero  44 u32 depth  48 u64 parent.hi  56 u64 parent.lo
//    64 f64 value_per_byte   (PutHints of store.h)
//   -> 0 u32 n  4 u32 zero  8 n x 24: 0 u8 status  1 u8[7] zero  8 u64 offset
//     16 u64 reservation (0 unless kOk)
//
// PUT (13), with kCapPut (a connection with a staging region): new objects the client has
// already written into its staging region, at offsets of its own choosing, in one round trip (a
// RESERVE and COMMIT without the RESERVE). The server reads each payload from the staging region
// while it handles the frame (after the response the space is the client's again), checksums
// what it copied into the arena and publishes it. An offset range outside the staging region, or
// one overlapping a reservation this connection holds there, is kInvalid.
//   0 u32 n  4 u32 zero  8 n x 80: a RESERVE item (72 bytes, as above), then 72 u64 offset
//   -> 0 u32 n  4 u32 zero  8 n x u8 status, padded with zeros to a multiple of 8 (as COMMIT's).
//
// COMMIT (5), ABORT (6), RELEASE (7): 0 u32 n  4 u32 zero  8 n x u64 (reservations; leases)
//   -> 0 u32 n  4 u32 zero  8 n x u8 status, padded with zeros to a multiple of 8.
//   A reservation or lease this connection does not hold: kNotYours.
//
// DELETE (8): 0 u64 ns -> empty.       FLUSH (9): empty -> empty.      PING (12): empty -> empty.
// STATS (10): empty -> 0 u32 n  then n x (u16 name_len, name bytes, u64 value): the tenant's
//   counters and per tier and family occupancy ("host.csa.objects", ...).
//
// Errors: a frame that cannot be parsed (bad header, unknown verb, body_len over kMaxBody,
// malformed body, a request before HELLO or a second HELLO) is answered with kFrame (or kAuth,
// kVersion) and the connection is closed; everything else gets a status per frame or per item.
// A header that cannot be decoded names no verb to answer: the error then goes out as a PING
// response with request_id 0, which every client can decode.
// Thread safety: values and pure functions only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "strata/family.h"
#include "strata/keys.h"
#include "strata/status.h"

namespace strata::wire {

inline constexpr uint32_t kWireVersion = 1;
inline constexpr size_t kHeaderSize = 16;
inline constexpr uint32_t kMaxBody = 8u << 20;
inline constexpr uint32_t kMaxBatch = 65536;
inline constexpr uint16_t kResponseBit = 0x8000;
inline constexpr size_t kMaxNameLen = 255;

enum class Verb : uint16_t {
  kHello = 1,
  kLookup = 2,
  kGet = 3,
  kReserve = 4,
  kCommit = 5,
  kAbort = 6,
  kRelease = 7,
  kDelete = 8,
  kFlush = 9,
  kStats = 10,
  kPrefetch = 11,
  kPing = 12,
  kPut = 13,
};
std::string_view VerbName(Verb v);
bool IsKnownVerb(uint16_t v);

enum class WireStatus : uint8_t {
  kOk = 0,
  kNotFound = 1,     // no such object (a miss)
  kCorrupt = 2,      // the object failed verification: counted, dropped, a miss
  kNoSpace = 3,      // the tier (or the tenant's quota, the staging region, the connection's
                     // leases: GET past max_leases_per_connection) has no room
  kNotAdmitted = 4,  // the store declined the object (admission policy, tenant SWA policy)
  kError = 5,        // an internal or I/O error
  kInvalid = 6,      // a bad argument (size, family, offset, fingerprint other than HELLO's)
  kNotYours = 7,     // a lease or reservation this connection does not hold
  kAuth = 8,         // unknown tenant or wrong credential
  kVersion = 9,      // unsupported protocol version
  kLayout = 10,      // a layout the tenant may not use
  kFrame = 11,       // a malformed or out-of-order frame; the connection is closed
  kShutdown = 12,    // the server is stopping
  kPending = 13,     // PREFETCH: being read into DRAM
  kExpired = 14,     // RELEASE: the lease had expired (already released)
};
std::string_view WireStatusName(WireStatus s);

// HELLO flags and capabilities.
inline constexpr uint32_t kHelloReadOnly = 1u << 0;
inline constexpr uint32_t kCapPrefetch = 1u << 0;
inline constexpr uint32_t kCapLeaseTimeout = 1u << 1;
inline constexpr uint32_t kCapNvme = 1u << 2;
inline constexpr uint32_t kCapStaging = 1u << 3;  // sealed arena, writes through a staging region
inline constexpr uint32_t kCapPut = 1u << 4;      // PUT from the staging region

// Where staged batches are written (a performance rule both sides follow, not part of the
// format): a batch of up to this many bytes goes where the batch before last was, not into the
// lines the server has just read (the server's core would first have to give them back); a
// larger batch goes where the last one was, as most of it has left that core's caches and two
// areas of it would not fit the shared cache. Measured on the 2-core VM, one core writing and the
// other reading each batch: 4.2 MB batches 150-153 us alternating against 184-189 us into the
// same area; 36 MB batches 3,330-3,610 us alternating against 2,640-2,760 us.
inline constexpr uint64_t kStagingAlternateMaxBytes = 16ull << 20;

enum class SwaPolicyWire : uint8_t { kFull = 0, kCheckpoint = 1, kRecompute = 2 };

struct FrameHeader {
  uint32_t body_len = 0;
  uint16_t opcode = 0;
  uint16_t flags = 0;
  uint64_t request_id = 0;
};

struct HelloRequest {
  uint32_t version = kWireVersion;
  uint32_t flags = 0;
  uint64_t fingerprint = 0;
  uint32_t block_tokens = 0;
  std::string tenant;
  std::string secret;
};
struct HelloResponse {
  uint32_t version = kWireVersion;
  uint32_t capabilities = 0;
  uint64_t server_epoch = 0;
  uint64_t arena_bytes = 0;
  BlockKey root;
  uint32_t max_body = kMaxBody;
  uint32_t max_batch = kMaxBatch;
  SwaPolicyWire swa_policy = SwaPolicyWire::kFull;
};

struct LookupRequest {
  uint64_t ns = 0;
  uint64_t fingerprint = 0;
  uint8_t required = 0;  // FamilyMask bits
  std::vector<BlockKey> keys;
};
struct BlockPresenceWire {
  uint8_t families = 0;
  uint8_t tier[kNumFamilies] = {};  // strata::Tier values
};
struct LookupResponse {
  uint32_t hit_blocks = 0;
  uint32_t best_checkpoint = 0;
  uint64_t hit_bytes[5] = {};  // by Tier
  std::vector<BlockPresenceWire> blocks;
};

// GET and PREFETCH share the request layout.
struct GetRequest {
  uint64_t ns = 0;
  uint64_t fingerprint = 0;
  uint8_t families = 0;
  uint32_t lease_ms = 0;
  std::vector<BlockKey> keys;
};
struct GetItem {
  WireStatus status = WireStatus::kNotFound;
  uint8_t tier = 0;
  uint8_t family = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t lease = 0;
};
struct GetResponse {
  std::vector<GetItem> items;
};

struct ReserveItem {
  uint64_t ns = 0;
  BlockKey key;
  uint64_t fingerprint = 0;
  uint64_t size = 0;
  uint8_t family = 0;
  bool has_parent = false;
  uint32_t depth = 0;
  BlockKey parent;
  double value_per_byte = 0;
};
struct ReserveRequest {
  std::vector<ReserveItem> items;
};
struct ReserveResult {
  WireStatus status = WireStatus::kError;
  uint64_t offset = 0;
  uint64_t reservation = 0;
};
struct ReserveResponse {
  std::vector<ReserveResult> items;
};

// PUT: a RESERVE item and where its payload is in the staging region.
struct PutItem {
  ReserveItem item;
  uint64_t offset = 0;
};
struct PutRequest {
  std::vector<PutItem> items;
};

// COMMIT, ABORT and RELEASE: a list of ids; PREFETCH's response and theirs: a status per item.
struct IdList {
  std::vector<uint64_t> ids;
};
struct StatusList {
  std::vector<WireStatus> statuses;
};

struct DeleteRequest {
  uint64_t ns = 0;
};

struct StatsResponse {
  std::vector<std::pair<std::string, uint64_t>> counters;
};

// A response's frame-level part.
struct ResponseHead {
  WireStatus status = WireStatus::kOk;
  std::string message;
};

// ---- Encoding: appends one whole frame (header + body) to `out`. ----
void EncodeHeader(const FrameHeader& h, std::vector<std::byte>& out);
void EncodeHello(uint64_t id, const HelloRequest& r, std::vector<std::byte>& out);
void EncodeLookup(uint64_t id, const LookupRequest& r, std::vector<std::byte>& out);
void EncodeGet(uint64_t id, Verb verb, const GetRequest& r, std::vector<std::byte>& out);
void EncodeReserve(uint64_t id, const ReserveRequest& r, std::vector<std::byte>& out);
void EncodeIds(uint64_t id, Verb verb, const IdList& r, std::vector<std::byte>& out);
void EncodePut(uint64_t id, const PutRequest& r, std::vector<std::byte>& out);
void EncodeDelete(uint64_t id, const DeleteRequest& r, std::vector<std::byte>& out);
void EncodeEmpty(uint64_t id, Verb verb, std::vector<std::byte>& out);  // FLUSH, STATS, PING

// Responses. An error response (head.status != kOk) has no payload: EncodeError.
void EncodeError(uint64_t id, Verb verb, const ResponseHead& head, std::vector<std::byte>& out);
void EncodeHelloResponse(uint64_t id, const HelloResponse& r, std::vector<std::byte>& out);
void EncodeLookupResponse(uint64_t id, const LookupResponse& r, std::vector<std::byte>& out);
void EncodeGetResponse(uint64_t id, const GetResponse& r, std::vector<std::byte>& out);
void EncodeReserveResponse(uint64_t id, const ReserveResponse& r, std::vector<std::byte>& out);
// COMMIT, ABORT, RELEASE, PREFETCH, PUT.
void EncodeStatusList(uint64_t id, Verb verb, const StatusList& r, std::vector<std::byte>& out);
void EncodeStatsResponse(uint64_t id, const StatsResponse& r, std::vector<std::byte>& out);
void EncodeOkEmpty(uint64_t id, Verb verb, std::vector<std::byte>& out);  // DELETE, FLUSH, PING

// ---- Decoding: pure functions over bytes; never read outside `body`. A malformed input gives
// InvalidArgument with the reason. ----
Result<FrameHeader> DecodeHeader(std::span<const std::byte> header);  // exactly kHeaderSize
Result<HelloRequest> DecodeHello(std::span<const std::byte> body);
Result<LookupRequest> DecodeLookup(std::span<const std::byte> body);
Result<GetRequest> DecodeGet(std::span<const std::byte> body);  // GET and PREFETCH
Result<ReserveRequest> DecodeReserve(std::span<const std::byte> body);
Result<IdList> DecodeIds(std::span<const std::byte> body);
Result<PutRequest> DecodePut(std::span<const std::byte> body);
Result<DeleteRequest> DecodeDelete(std::span<const std::byte> body);
Status DecodeEmpty(std::span<const std::byte> body);

// A response body: the head, and in `payload` the bytes after it (empty unless kOk).
Result<ResponseHead> DecodeResponseHead(std::span<const std::byte> body,
                                        std::span<const std::byte>* payload);
Result<HelloResponse> DecodeHelloResponse(std::span<const std::byte> payload);
Result<LookupResponse> DecodeLookupResponse(std::span<const std::byte> payload);
Result<GetResponse> DecodeGetResponse(std::span<const std::byte> payload);
Result<ReserveResponse> DecodeReserveResponse(std::span<const std::byte> payload);
Result<StatusList> DecodeStatusList(std::span<const std::byte> payload);
Result<StatsResponse> DecodeStatsResponse(std::span<const std::byte> payload);

// Decodes one whole request frame (header + body), as the server's dispatcher sees it: the
// fuzz target's entry point. Returns the verb, or the reason the frame is malformed.
Result<Verb> DecodeRequestFrame(std::span<const std::byte> frame);

}  // namespace strata::wire
