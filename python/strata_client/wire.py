"""The strata-server wire protocol, version 1: a struct-based codec of include/strata/wire.h.

That header documents every frame byte by byte; this module follows it field for field. Every
integer is little-endian, doubles are IEEE-754 binary64 little-endian, keys are two u64 (hi, lo).

Encoders return one whole frame (16-byte header + body) as bytes. Decoders are pure functions
over bytes: they never read outside what they are given, and a malformed input raises
WireFormatError with the reason (the body length must be exactly what its counts imply).
Requests are encoded and responses decoded by the client; the opposite directions exist for
tests (a scripted server) and tools.

Thread safety: values and pure functions only.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

WIRE_VERSION = 1
HEADER_SIZE = 16
MAX_BODY = 8 << 20
MAX_BATCH = 65536
RESPONSE_BIT = 0x8000
MAX_NAME_LEN = 255

HELLO_READ_ONLY = 1 << 0
CAP_PREFETCH = 1 << 0
CAP_LEASE_TIMEOUT = 1 << 1
CAP_NVME = 1 << 2
CAP_STAGING = 1 << 3  # sealed arena; RESERVE writes go to the connection's staging region
CAP_PUT = 1 << 4  # PUT: objects the client placed in its staging region, in one round trip
# Staged batches up to this size alternate between two areas of the staging region; a larger
# one is followed by one where it was (include/strata/wire.h, kStagingAlternateMaxBytes).
STAGING_ALTERNATE_MAX_BYTES = 16 << 20

NUM_FAMILIES = 5
NUM_TIERS = 5


class Verb(enum.IntEnum):
    HELLO = 1
    LOOKUP = 2
    GET = 3
    RESERVE = 4
    COMMIT = 5
    ABORT = 6
    RELEASE = 7
    DELETE = 8
    FLUSH = 9
    STATS = 10
    PREFETCH = 11
    PING = 12
    PUT = 13


class WireStatus(enum.IntEnum):
    OK = 0
    NOT_FOUND = 1  # no such object (a miss)
    CORRUPT = 2  # failed verification: counted, dropped, a miss
    NO_SPACE = 3  # the tier (or the tenant's quota) has no room
    NOT_ADMITTED = 4  # the store declined the object
    ERROR = 5  # an internal or I/O error
    INVALID = 6  # a bad argument
    NOT_YOURS = 7  # a lease or reservation this connection does not hold
    AUTH = 8  # unknown tenant or wrong credential
    VERSION = 9  # unsupported protocol version
    LAYOUT = 10  # a layout the tenant may not use
    FRAME = 11  # a malformed or out-of-order frame; the connection is closed
    SHUTDOWN = 12  # the server is stopping
    PENDING = 13  # PREFETCH: being read into DRAM
    EXPIRED = 14  # RELEASE: the lease had expired

    @property
    def wire_name(self) -> str:
        """The status's name as logs and errors spell it ("not_found")."""
        return self.name.lower()


def status_of(value: int):
    """A WireStatus, or the raw int for a value this client does not know (a newer server)."""
    try:
        return WireStatus(value)
    except ValueError:
        return value


class Family(enum.IntEnum):
    CSA = 0  # per CSA layer, B/4 main entries
    CSA_INDEX = 1  # per CSA layer, B/4 FP4 indexer entries
    HCA = 2  # per HCA layer, B/128 main entries
    SWA = 3  # per layer incl. MTP, B SWA entries (full policy only)
    CHECKPOINT = 4  # per layer incl. MTP, the last window of SWA entries + compressor carry

    @property
    def wire_name(self) -> str:
        return self.name.lower()


class Tier(enum.IntEnum):
    NONE = 0
    DEVICE = 1
    HOST = 2
    NVME = 3
    CLUSTER = 4


class SwaPolicy(enum.IntEnum):
    FULL = 0
    CHECKPOINT = 1
    RECOMPUTE = 2


class WireFormatError(ValueError):
    """A frame or body that does not follow wire.h."""


Key = Tuple[int, int]  # (hi, lo)


# ---- messages ----


@dataclass
class FrameHeader:
    body_len: int
    opcode: int
    flags: int
    request_id: int


@dataclass
class HelloRequest:
    fingerprint: int
    block_tokens: int
    tenant: bytes = b"default"
    secret: bytes = b""
    flags: int = 0
    version: int = WIRE_VERSION


@dataclass
class HelloResponse:
    version: int
    capabilities: int
    server_epoch: int
    arena_bytes: int
    root: Key
    max_body: int
    max_batch: int
    swa_policy: int


@dataclass
class LookupRequest:
    ns: int
    fingerprint: int
    required: int
    keys: Sequence[Key]


@dataclass
class BlockPresence:
    families: int  # bit per Family
    tier: Tuple[int, ...]  # 5 Tier values, by Family


@dataclass
class LookupResponse:
    hit_blocks: int
    best_checkpoint: int
    hit_bytes: Tuple[int, ...]  # 5, by Tier
    blocks: List[BlockPresence]


@dataclass
class GetRequest:  # GET and PREFETCH
    ns: int
    fingerprint: int
    families: int
    keys: Sequence[Key]
    lease_ms: int = 0


@dataclass
class GetItem:
    status: int
    tier: int
    family: int
    offset: int
    size: int
    lease: int


@dataclass
class ReserveItem:
    ns: int
    key: Key
    fingerprint: int
    size: int
    family: int
    has_parent: bool = False
    depth: int = 0
    parent: Key = (0, 0)
    value_per_byte: float = 0.0


@dataclass
class PutItem:
    """PUT: a RESERVE item and where its payload already is in the staging region."""
    item: ReserveItem
    offset: int


@dataclass
class ReserveResult:
    status: int
    offset: int
    reservation: int


@dataclass
class ResponseHead:
    status: int
    message: str
    payload: bytes = field(default=b"", repr=False)


# ---- layouts (offsets in wire.h) ----

_HEADER = struct.Struct("<IHHQ")  # body_len, opcode, flags, request_id
_HELLO_REQ = struct.Struct("<IIQIHH")  # version, flags, fingerprint, block_tokens, lens
_HELLO_RESP = struct.Struct("<IIQQQQIIB7x")  # 56 bytes
_RESP_HEAD = struct.Struct("<HH")  # status, msg_len
_LOOKUP_REQ = struct.Struct("<QQB3xI")  # ns, fingerprint, required, n
_KEY = struct.Struct("<QQ")
_LOOKUP_RESP = struct.Struct("<IIII5Q")  # hit_blocks, n_blocks, best_checkpoint, 0, hit_bytes
_BLOCK = struct.Struct("<B5B2x")  # families, tier by family
_GET_REQ = struct.Struct("<QQB3xII4x")  # ns, fingerprint, families, lease_ms, n
_COUNT = struct.Struct("<I4x")  # n, zero
_GET_ITEM = struct.Struct("<BBB5xQQQ")  # status, tier, family, offset, size, lease
_RESERVE_ITEM = struct.Struct("<QQQQQBBxxIQQd")  # 72 bytes
_RESERVE_RESULT = struct.Struct("<B7xQQ")  # status, offset, reservation
_U64 = struct.Struct("<Q")
_STAT_NAME_LEN = struct.Struct("<H")

assert _HELLO_RESP.size == 56 and _GET_REQ.size == 32 and _RESERVE_ITEM.size == 72


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def _check_count(n: int, what: str) -> None:
    if n > MAX_BATCH:
        raise WireFormatError(f"{what}: {n} items, at most {MAX_BATCH}")


def _frame(opcode: int, request_id: int, body: bytes) -> bytes:
    if len(body) > MAX_BODY:
        raise WireFormatError(f"body of {len(body)} bytes, at most {MAX_BODY}")
    return _HEADER.pack(len(body), opcode, 0, request_id) + body


def _pack_keys(keys: Sequence[Key]) -> bytes:
    return b"".join(_KEY.pack(hi, lo) for hi, lo in keys)


# ---- requests: encode (client) ----


def encode_header(h: FrameHeader) -> bytes:
    return _HEADER.pack(h.body_len, h.opcode, h.flags, h.request_id)


def encode_hello(request_id: int, r: HelloRequest) -> bytes:
    if len(r.tenant) > MAX_NAME_LEN or len(r.secret) > MAX_NAME_LEN:
        raise WireFormatError(f"tenant and secret are at most {MAX_NAME_LEN} bytes")
    body = _HELLO_REQ.pack(r.version, r.flags, r.fingerprint, r.block_tokens, len(r.tenant),
                           len(r.secret)) + r.tenant + r.secret
    return _frame(Verb.HELLO, request_id, body)


def encode_lookup(request_id: int, r: LookupRequest) -> bytes:
    _check_count(len(r.keys), "LOOKUP")
    body = _LOOKUP_REQ.pack(r.ns, r.fingerprint, r.required, len(r.keys)) + _pack_keys(r.keys)
    return _frame(Verb.LOOKUP, request_id, body)


def encode_get(request_id: int, verb: Verb, r: GetRequest) -> bytes:
    if verb not in (Verb.GET, Verb.PREFETCH):
        raise WireFormatError(f"encode_get: {verb!r} is neither GET nor PREFETCH")
    _check_count(len(r.keys), verb.name)
    body = _GET_REQ.pack(r.ns, r.fingerprint, r.families, r.lease_ms, len(r.keys))
    return _frame(verb, request_id, body + _pack_keys(r.keys))


def _pack_reserve_item(it: ReserveItem) -> bytes:
    return _RESERVE_ITEM.pack(it.ns, it.key[0], it.key[1], it.fingerprint, it.size, it.family,
                              1 if it.has_parent else 0, it.depth, it.parent[0], it.parent[1],
                              it.value_per_byte)


def encode_reserve(request_id: int, items: Sequence[ReserveItem]) -> bytes:
    _check_count(len(items), "RESERVE")
    parts = [_COUNT.pack(len(items))]
    parts.extend(_pack_reserve_item(it) for it in items)
    return _frame(Verb.RESERVE, request_id, b"".join(parts))


def encode_put(request_id: int, items: Sequence[PutItem]) -> bytes:
    """PUT: each item is RESERVE's 72 bytes, then the u64 offset in the staging region."""
    _check_count(len(items), "PUT")
    parts = [_COUNT.pack(len(items))]
    for p in items:
        parts.append(_pack_reserve_item(p.item))
        parts.append(_U64.pack(p.offset))
    return _frame(Verb.PUT, request_id, b"".join(parts))


def encode_ids(request_id: int, verb: Verb, ids: Sequence[int]) -> bytes:
    """COMMIT, ABORT and RELEASE: a list of reservation or lease ids."""
    if verb not in (Verb.COMMIT, Verb.ABORT, Verb.RELEASE):
        raise WireFormatError(f"encode_ids: {verb!r} takes no id list")
    _check_count(len(ids), verb.name)
    body = _COUNT.pack(len(ids)) + struct.pack(f"<{len(ids)}Q", *ids)
    return _frame(verb, request_id, body)


def encode_delete(request_id: int, ns: int) -> bytes:
    return _frame(Verb.DELETE, request_id, _U64.pack(ns))


def encode_empty(request_id: int, verb: Verb) -> bytes:
    """FLUSH, STATS and PING."""
    if verb not in (Verb.FLUSH, Verb.STATS, Verb.PING):
        raise WireFormatError(f"encode_empty: {verb!r} has a body")
    return _frame(verb, request_id, b"")


# ---- responses: decode (client) ----


def decode_header(data: bytes) -> FrameHeader:
    if len(data) != HEADER_SIZE:
        raise WireFormatError(f"header of {len(data)} bytes, want {HEADER_SIZE}")
    h = FrameHeader(*_HEADER.unpack(data))
    if h.flags != 0:
        raise WireFormatError(f"header flags {h.flags:#x}, must be 0")
    if h.body_len > MAX_BODY:
        raise WireFormatError(f"body_len {h.body_len} over {MAX_BODY}")
    return h


def decode_response_head(body: bytes) -> ResponseHead:
    """The frame-level status and message; `payload` is the rest (empty unless OK)."""
    if len(body) < _RESP_HEAD.size:
        raise WireFormatError(f"response body of {len(body)} bytes, shorter than its head")
    status, msg_len = _RESP_HEAD.unpack_from(body, 0)
    end = _RESP_HEAD.size + msg_len
    if end > len(body):
        raise WireFormatError(f"message of {msg_len} bytes overruns a {len(body)}-byte body")
    payload = bytes(body[end:])
    if status != WireStatus.OK and payload:
        raise WireFormatError(f"status {status} with a {len(payload)}-byte payload")
    message = bytes(body[_RESP_HEAD.size:end]).decode("utf-8", errors="replace")
    return ResponseHead(status_of(status), message, payload)


def decode_hello_response(p: bytes) -> HelloResponse:
    if len(p) != _HELLO_RESP.size:
        raise WireFormatError(f"HELLO payload of {len(p)} bytes, want {_HELLO_RESP.size}")
    (version, caps, epoch, arena, root_hi, root_lo, max_body, max_batch,
     swa) = _HELLO_RESP.unpack(p)
    return HelloResponse(version, caps, epoch, arena, (root_hi, root_lo), max_body, max_batch,
                         swa)


def decode_lookup_response(p: bytes) -> LookupResponse:
    if len(p) < _LOOKUP_RESP.size:
        raise WireFormatError(f"LOOKUP payload of {len(p)} bytes, shorter than its head")
    hit_blocks, n, best, _, *hit_bytes = _LOOKUP_RESP.unpack_from(p, 0)
    _check_count(n, "LOOKUP response")
    if len(p) != _LOOKUP_RESP.size + n * _BLOCK.size:
        raise WireFormatError(f"LOOKUP payload of {len(p)} bytes for {n} blocks")
    if hit_blocks > n or best > hit_blocks:
        raise WireFormatError(f"LOOKUP hit_blocks {hit_blocks}, best_checkpoint {best}, "
                              f"{n} blocks")
    blocks = []
    for i in range(n):
        fam, *tiers = _BLOCK.unpack_from(p, _LOOKUP_RESP.size + i * _BLOCK.size)
        blocks.append(BlockPresence(fam, tuple(tiers)))
    return LookupResponse(hit_blocks, best, tuple(hit_bytes), blocks)


def _decode_count(p: bytes, what: str) -> int:
    if len(p) < _COUNT.size:
        raise WireFormatError(f"{what} payload of {len(p)} bytes, shorter than its count")
    (n,) = _COUNT.unpack_from(p, 0)
    _check_count(n, what)
    return n


def decode_get_response(p: bytes) -> List[GetItem]:
    n = _decode_count(p, "GET")
    if len(p) != _COUNT.size + n * _GET_ITEM.size:
        raise WireFormatError(f"GET payload of {len(p)} bytes for {n} items")
    return [GetItem(*_GET_ITEM.unpack_from(p, _COUNT.size + i * _GET_ITEM.size))
            for i in range(n)]


def decode_reserve_response(p: bytes) -> List[ReserveResult]:
    n = _decode_count(p, "RESERVE")
    if len(p) != _COUNT.size + n * _RESERVE_RESULT.size:
        raise WireFormatError(f"RESERVE payload of {len(p)} bytes for {n} items")
    return [ReserveResult(*_RESERVE_RESULT.unpack_from(p, _COUNT.size + i * _RESERVE_RESULT.size))
            for i in range(n)]


def decode_status_list(p: bytes) -> List[int]:
    """COMMIT, ABORT, RELEASE and PREFETCH: a status per item, padded to a multiple of 8."""
    n = _decode_count(p, "status list")
    if len(p) != _COUNT.size + _pad8(n):
        raise WireFormatError(f"status list of {len(p)} bytes for {n} items")
    return [status_of(s) for s in p[_COUNT.size:_COUNT.size + n]]


def decode_stats_response(p: bytes) -> List[Tuple[str, int]]:
    if len(p) < 4:
        raise WireFormatError(f"STATS payload of {len(p)} bytes, shorter than its count")
    (n,) = struct.unpack_from("<I", p, 0)
    pos, out = 4, []
    for i in range(n):
        if pos + 2 > len(p):
            raise WireFormatError(f"STATS counter {i} of {n} truncated")
        (name_len,) = _STAT_NAME_LEN.unpack_from(p, pos)
        end = pos + 2 + name_len + 8
        if end > len(p):
            raise WireFormatError(f"STATS counter {i} of {n} truncated")
        name = bytes(p[pos + 2:pos + 2 + name_len]).decode("utf-8", errors="replace")
        (value,) = _U64.unpack_from(p, pos + 2 + name_len)
        out.append((name, value))
        pos = end
    if pos != len(p):
        raise WireFormatError(f"STATS payload has {len(p) - pos} bytes after {n} counters")
    return out


def decode_empty(p: bytes) -> None:
    """DELETE, FLUSH and PING answer with no payload."""
    if p:
        raise WireFormatError(f"{len(p)}-byte payload where none is expected")


# ---- responses: encode (a scripted server in tests) ----


def _response(verb: Verb, request_id: int, payload: bytes, status: int = WireStatus.OK,
              message: str = "") -> bytes:
    msg = message.encode("utf-8")
    return _frame(verb | RESPONSE_BIT, request_id,
                  _RESP_HEAD.pack(status, len(msg)) + msg + payload)


def encode_error(request_id: int, verb: Verb, status: int, message: str = "") -> bytes:
    return _response(verb, request_id, b"", status, message)


def encode_hello_response(request_id: int, r: HelloResponse) -> bytes:
    p = _HELLO_RESP.pack(r.version, r.capabilities, r.server_epoch, r.arena_bytes, r.root[0],
                         r.root[1], r.max_body, r.max_batch, r.swa_policy)
    return _response(Verb.HELLO, request_id, p)


def encode_ok_empty(request_id: int, verb: Verb) -> bytes:
    return _response(verb, request_id, b"")


def encode_status_list(request_id: int, verb: Verb, statuses: Sequence[int]) -> bytes:
    p = _COUNT.pack(len(statuses)) + bytes(statuses)
    return _response(verb, request_id, p + bytes(_pad8(len(statuses)) - len(statuses)))


# ---- requests: decode (a scripted server in tests) ----


def decode_hello(body: bytes) -> HelloRequest:
    if len(body) < _HELLO_REQ.size:
        raise WireFormatError(f"HELLO body of {len(body)} bytes")
    version, flags, fp, block, tlen, slen = _HELLO_REQ.unpack_from(body, 0)
    if len(body) != _HELLO_REQ.size + tlen + slen or tlen > MAX_NAME_LEN or slen > MAX_NAME_LEN:
        raise WireFormatError(f"HELLO body of {len(body)} bytes for names of {tlen} and {slen}")
    tenant = bytes(body[24:24 + tlen])
    secret = bytes(body[24 + tlen:])
    return HelloRequest(fp, block, tenant, secret, flags, version)
