"""strata_client.Client: a strata-server client over a Unix socket and the tenant's shared arena.

The protocol is include/strata/wire.h (codec: wire.py). HELLO passes the tenant's arena, a memfd,
with SCM_RIGHTS; the client maps it once (read-only when it only reads, or when the server sealed
it: CAP_STAGING). GET answers offsets into that mapping, so the client hands out numpy views over
it (no copy); RESERVE answers offsets the client writes into before COMMIT: into the connection's
staging region (a second memfd of the HELLO) with CAP_STAGING, else into the arena. Bulk bytes
never cross the socket.

Failures: every call has one deadline (`timeout` seconds) covering a reconnect, the request and
its response. When the server goes away the call in flight fails -- lookup, get and the exists
helpers report misses, the others raise StrataConnectionError -- and the next call reconnects,
redoes the handshake and maps the new arena. Views of the old arena stay mapped (unchanged bytes)
while referenced; the server released their leases when the connection ended.

Thread safety: a Client may be shared between threads; requests are serialised on its one
connection. Leases and Reservations objects belong to one thread at a time.
"""

from __future__ import annotations

import array
import mmap
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import numpy as np

from . import wire
from .keys import BlockKey, KeyLike, as_key, chain_block_keys
from .results import (DEFAULT_HIT_FAMILIES, BlockInfo, FamiliesLike, LeaseItem, Leases,
                      LookupResult, ReservedItem, Reservations, ReserveSpec,
                      StrataConnectionError, StrataError, StrataTimeoutError, families_in,
                      family_mask)
from .wire import Family, Tier, Verb, WireStatus

# ---- the connection ----


@dataclass
class _Connection:
    sock: socket.socket
    hello: wire.HelloResponse
    mm: mmap.mmap
    arena: np.ndarray  # uint8 over the whole mapping
    generation: int
    next_id: int = 1
    # CAP_STAGING: the connection's staging region, where reservations are written
    staging_mm: Optional[mmap.mmap] = None
    staging: Optional[np.ndarray] = None
    # Staged ranges (offset, size) of this connection's reservations not yet committed or
    # aborted, by reservation id: PUT writes around them.
    reserved: Dict[int, Tuple[int, int]] = field(default_factory=dict)
    # Where the next PUT frame starts: frames up to wire.STAGING_ALTERNATE_MAX_BYTES alternate
    # between two areas of the staging region, from offset 0 and from where the frame from 0
    # ended; a larger one is followed by one where it began (as the C++ client).
    put_next_begin: int = 0


def _fit_from(at: int, size: int, limit: int, busy: List[Tuple[int, int]]) -> Optional[int]:
    """The first offset >= at where [offset, offset + size) ends by `limit` and overlaps none
    of `busy` (sorted [begin, end) ranges); None when there is none. A page or more starts on a
    page, a smaller object on a cache line (as the C++ client)."""
    align = 4096 if size >= 4096 else 64
    while True:
        at = (at + align - 1) & ~(align - 1)
        if at + size > limit:
            return None
        for b, e in busy:
            if b >= at + size:
                break
            if e > at:
                at = e
                break
        else:
            return at


def _as_u8(data) -> np.ndarray:
    """A flat uint8 view of an array or bytes-like object (a copy only if not contiguous)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    a = np.ascontiguousarray(np.asarray(data))
    return a.reshape(-1).view(np.uint8)


class Client:
    """A connection to strata-server for one tenant and one layout (fingerprint, block size).

    Open one with `Client.connect(...)`; use it as a context manager or call `close()`."""

    def __init__(self, socket_path: str, tenant: str = "default", secret: str = "", *,
                 fingerprint: int, block_tokens: int, read_only: bool = False,
                 timeout: float = 10.0):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.socket_path = os.fspath(socket_path)
        self.tenant = tenant
        self._secret = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        self.fingerprint = int(fingerprint)
        self.block_tokens = int(block_tokens)
        self.read_only = read_only
        self.timeout = float(timeout)
        self.reconnects = 0  # successful handshakes after the first
        self._lock = threading.RLock()
        self._conn: Optional[_Connection] = None
        self._generation = 0
        self._closed = False

    @classmethod
    def connect(cls, socket_path: str, tenant: str = "default", secret: str = "", *,
                fingerprint: int, block_tokens: int, read_only: bool = False,
                timeout: float = 10.0) -> "Client":
        """Connects and handshakes; raises StrataError (status "auth", "version", "layout")
        when the server refuses, StrataConnectionError when it is unreachable."""
        c = cls(socket_path, tenant, secret, fingerprint=fingerprint, block_tokens=block_tokens,
                read_only=read_only, timeout=timeout)
        with c._lock:
            c._connect(time.monotonic() + c.timeout)
        return c

    # -- session facts from the handshake --

    def _hello(self) -> wire.HelloResponse:
        with self._lock:
            if self._conn is None:
                self._ensure_connected(time.monotonic() + self.timeout)
            return self._conn.hello

    @property
    def root(self) -> BlockKey:
        """The tenant's chain root for this layout (k0), from the handshake."""
        return BlockKey(*self._hello().root)

    @property
    def server_epoch(self) -> int:
        return self._hello().server_epoch

    @property
    def capabilities(self) -> int:
        return self._hello().capabilities

    @property
    def arena(self) -> np.ndarray:
        """The whole mapped arena as uint8 (read-only for a read-only client)."""
        with self._lock:
            self._hello()
            return self._conn.arena

    @property
    def generation(self) -> int:
        """Increments at every handshake; leases of an older generation died with it."""
        return self._generation

    def block_keys(self, tokens) -> List[BlockKey]:
        """Keys of every complete block of `tokens`, chained from this tenant's root."""
        return chain_block_keys(self.root, tokens, self.block_tokens)

    # -- lifecycle --

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _drop(self) -> None:
        """Forgets the connection. The old mapping stays while views reference it."""
        if self._conn is not None:
            try:
                self._conn.sock.close()
            finally:
                self._conn = None

    @staticmethod
    def _remaining(deadline: float, verb: str) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise StrataTimeoutError("deadline passed", verb)
        return left

    def _connect(self, deadline: float) -> None:
        if self._closed:
            raise StrataConnectionError("client closed")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        fds: List[int] = []
        try:
            try:
                sock.settimeout(self._remaining(deadline, "HELLO"))
                sock.connect(self.socket_path)
                req = wire.HelloRequest(self.fingerprint, self.block_tokens,
                                        self.tenant.encode("utf-8"), self._secret,
                                        wire.HELLO_READ_ONLY if self.read_only else 0)
                self._send(sock, wire.encode_hello(0, req), deadline, "HELLO")
                head = self._read_response(sock, Verb.HELLO, 0, wire.MAX_BODY, deadline, fds)
                if head.status != WireStatus.OK:
                    raise StrataError(head.status, head.message, "HELLO")
                hello = wire.decode_hello_response(head.payload)
            except (OSError, wire.WireFormatError) as e:
                raise self._transport_error(e, "HELLO") from e
            if hello.version != wire.WIRE_VERSION:
                raise StrataError(WireStatus.VERSION,
                                  f"server speaks version {hello.version}", "HELLO")
            # Staged writes: the arena is sealed (maps only read-only) and a writing client
            # gets its staging region as a second descriptor.
            staged = bool(hello.capabilities & wire.CAP_STAGING)
            want = 2 if staged and not self.read_only else 1
            if len(fds) != want:
                raise StrataError(WireStatus.FRAME,
                                  f"HELLO passed {len(fds)} descriptors, want {want}", "HELLO")
            mm = self._map_arena(fds[0], hello.arena_bytes, writable=not staged)
            staging_mm = None
            if want == 2:
                size = os.fstat(fds[1]).st_size
                if size <= 0:
                    raise StrataError(WireStatus.FRAME, "empty staging region", "HELLO")
                staging_mm = mmap.mmap(fds[1], size, flags=mmap.MAP_SHARED,
                                       prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            sock.close()
            for fd in fds:
                os.close(fd)
            raise
        for fd in fds:
            os.close(fd)
        self._generation += 1
        if self._generation > 1:
            self.reconnects += 1
        self._drop()
        arena = np.frombuffer(mm, dtype=np.uint8)
        self._conn = _Connection(sock, hello, mm, arena, self._generation)
        if staging_mm is not None:
            self._conn.staging_mm = staging_mm
            self._conn.staging = np.frombuffer(staging_mm, dtype=np.uint8)

    def _map_arena(self, fd: int, size: int, writable: bool = True) -> mmap.mmap:
        if size <= 0:
            raise StrataError(WireStatus.FRAME, f"arena of {size} bytes", "HELLO")
        # A mapping longer than the file would SIGBUS on first touch: refuse it instead.
        if os.fstat(fd).st_size < size:
            raise StrataError(WireStatus.FRAME, f"arena descriptor smaller than {size} bytes",
                              "HELLO")
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable and not self.read_only else 0)
        # MAP_POPULATE (as the C++ client): the whole arena's page tables now, not a minor
        # fault per 4 KiB on the first touch of every object. Python >= 3.10 names it.
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        return mmap.mmap(fd, size, flags=flags, prot=prot)

    @staticmethod
    def _transport_error(e: BaseException, verb: str) -> StrataConnectionError:
        if isinstance(e, StrataConnectionError):
            return e
        if isinstance(e, socket.timeout):
            return StrataTimeoutError("no answer before the deadline", verb)
        if isinstance(e, wire.WireFormatError):
            return StrataConnectionError(f"malformed response: {e}", verb)
        return StrataConnectionError(f"{type(e).__name__}: {e}", verb)

    def _send(self, sock: socket.socket, frame: bytes, deadline: float, verb: str) -> None:
        sock.settimeout(self._remaining(deadline, verb))
        sock.sendall(frame)  # the timeout bounds the whole sendall (Python >= 3.5)

    def _recv_exact(self, sock: socket.socket, n: int, deadline: float, verb: str,
                    fds: Optional[List[int]]) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            sock.settimeout(self._remaining(deadline, verb))
            if fds is None:
                r = sock.recv_into(view[got:])
            else:
                # The descriptor rides on the response's first bytes; keep every one that comes
                # so none leaks.
                r, anc, flags, _ = sock.recvmsg_into([view[got:]], socket.CMSG_SPACE(4 * 4))
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.extend(array.array("i", data[:len(data) - len(data) % 4]))
                if flags & socket.MSG_CTRUNC:
                    raise StrataConnectionError("descriptors truncated", verb)
            if r == 0:
                raise StrataConnectionError("the server closed the connection", verb)
            got += r
        return bytes(buf)

    def _read_response(self, sock: socket.socket, verb: Verb, request_id: int, max_body: int,
                       deadline: float, fds: Optional[List[int]] = None) -> wire.ResponseHead:
        name = verb.name
        h = wire.decode_header(self._recv_exact(sock, wire.HEADER_SIZE, deadline, name, fds))
        if h.opcode != (verb | wire.RESPONSE_BIT) or h.request_id != request_id:
            raise wire.WireFormatError(
                f"answer opcode {h.opcode:#x} id {h.request_id} to {name} id {request_id}")
        if h.body_len > max_body:
            raise wire.WireFormatError(f"body of {h.body_len} bytes over {max_body}")
        return wire.decode_response_head(self._recv_exact(sock, h.body_len, deadline, name, fds))

    def _alive(self, conn: _Connection) -> bool:
        """False when the server has closed the connection (or sent what nobody asked for)."""
        try:
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if not readable:
                return True
            conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True  # a spurious wake-up
        except (OSError, ValueError):
            pass
        return False

    def _ensure_connected(self, deadline: float) -> _Connection:
        if self._closed:
            raise StrataConnectionError("client closed")
        if self._conn is not None and not self._alive(self._conn):
            self._drop()
        if self._conn is None:
            self._connect(deadline)
        return self._conn

    def _call(self, verb: Verb, encode: Callable[[int], bytes],
              decode: Callable[[bytes], object], on: Optional[_Connection] = None):
        """One request and its response under the call's deadline. Raises StrataError for a
        frame-level refusal and StrataConnectionError when the connection broke (dropped; the
        next call reconnects). With `on`, the request goes on that connection or not at all
        (PUT: its bytes are in that connection's staging region)."""
        with self._lock:
            deadline = time.monotonic() + self.timeout
            if on is not None and (self._conn is not on or not self._alive(on)):
                if self._conn is on:
                    self._drop()
                raise StrataConnectionError("the connection broke before the request", verb.name)
            conn = on if on is not None else self._ensure_connected(deadline)
            rid = conn.next_id
            conn.next_id += 1
            try:
                frame = encode(rid)
            except (wire.WireFormatError, struct.error) as e:  # a bad argument, not the link
                raise StrataError(WireStatus.INVALID, str(e), verb.name) from e
            try:
                self._send(conn.sock, frame, deadline, verb.name)
                head = self._read_response(conn.sock, verb, rid, conn.hello.max_body + 4096,
                                           deadline)
            except (OSError, wire.WireFormatError, StrataConnectionError) as e:
                self._drop()
                raise self._transport_error(e, verb.name) from e
            if head.status != WireStatus.OK:
                if head.status in (WireStatus.FRAME, WireStatus.AUTH, WireStatus.VERSION,
                                   WireStatus.SHUTDOWN):
                    self._drop()  # the server closes these connections
                raise StrataError(head.status, head.message, verb.name)
            try:
                return decode(head.payload), conn
            except wire.WireFormatError as e:
                self._drop()
                raise StrataConnectionError(f"malformed {verb.name} response: {e}",
                                            verb.name) from e

    def _check_batch(self, n: int, verb: str) -> None:
        limit = self._conn.hello.max_batch if self._conn else wire.MAX_BATCH
        if n > min(limit, wire.MAX_BATCH):
            raise StrataError(WireStatus.INVALID, f"{n} items, at most {limit} per call", verb)

    def _view(self, conn: _Connection, offset: int, size: int) -> Optional[np.ndarray]:
        if offset + size > conn.hello.arena_bytes:
            return None  # never hand out a view past the mapping
        return conn.arena[offset:offset + size]

    def _writable_view(self, conn: _Connection, offset: int, size: int) -> Optional[np.ndarray]:
        """Where a reservation is written: the staging region, else the arena itself."""
        if conn.staging is None:
            return self._view(conn, offset, size)
        if offset + size > len(conn.staging):
            return None
        return conn.staging[offset:offset + size]

    # -- verbs --

    def lookup(self, keys: Sequence[KeyLike], required: FamiliesLike = DEFAULT_HIT_FAMILIES,
               ns: int = 0) -> LookupResult:
        """The longest prefix of `keys` whose blocks hold every `required` family, what each
        examined block holds and where. A broken connection reports a miss."""
        ks = [as_key(k) for k in keys]
        mask = family_mask(required)
        self._check_batch(len(ks), "LOOKUP")
        try:
            r, _ = self._call(
                Verb.LOOKUP,
                lambda rid: wire.encode_lookup(
                    rid, wire.LookupRequest(ns, self.fingerprint, mask, ks)),
                wire.decode_lookup_response)
        except StrataConnectionError:
            return LookupResult(0, 0, {t: 0 for t in Tier}, [], connection_lost=True)
        blocks = []
        for b in r.blocks:
            fams = families_in(b.families)
            blocks.append(BlockInfo(frozenset(fams), {f: Tier(b.tier[int(f)]) for f in fams}))
        return LookupResult(r.hit_blocks, r.best_checkpoint,
                            {t: r.hit_bytes[int(t)] for t in Tier}, blocks)

    def get(self, keys: Sequence[KeyLike], families: FamiliesLike, ns: int = 0,
            lease_ms: int = 0) -> Leases:
        """Leases on every (key, family) found, with zero-copy read-only views into the arena.
        Objects on NVMe are read into the arena first. A broken connection reports misses."""
        ks = [as_key(k) for k in keys]
        mask = family_mask(families)
        fams = families_in(mask)
        self._check_batch(len(ks) * len(fams), "GET")

        def missed(status=WireStatus.NOT_FOUND) -> List[LeaseItem]:
            return [LeaseItem(k, f, status, Tier.NONE, 0, 0, 0, None) for k in ks for f in fams]

        try:
            items, conn = self._call(
                Verb.GET,
                lambda rid: wire.encode_get(
                    rid, Verb.GET, wire.GetRequest(ns, self.fingerprint, mask, ks, lease_ms)),
                wire.decode_get_response)
        except StrataConnectionError:
            return Leases(self, missed(), len(fams), self._generation, connection_lost=True)
        if len(items) != len(ks) * len(fams):
            self.release([it.lease for it in items if it.lease])
            raise StrataError(WireStatus.FRAME,
                              f"{len(items)} GET items for {len(ks)} keys x {len(fams)} families",
                              "GET")
        out, bad = [], []
        for i, it in enumerate(items):
            status, lease = wire.status_of(it.status), it.lease
            view = None
            if status == WireStatus.OK:
                view = self._view(conn, it.offset, it.size)
                if view is None:  # outside the mapping: a miss, its lease given back
                    status, lease = WireStatus.INVALID, 0
                    bad.append(it.lease)
                else:
                    view.flags.writeable = False
            out.append(LeaseItem(ks[i // len(fams)], fams[i % len(fams)], status,
                                 Tier(it.tier) if it.tier < wire.NUM_TIERS else Tier.NONE,
                                 it.offset, it.size, lease, view))
        if bad:
            self.release(bad)
        return Leases(self, out, len(fams), conn.generation)

    def release(self, leases: Union[Leases, Iterable[int]]) -> List[Union[WireStatus, int]]:
        """Drops leases (a Leases object or lease ids). Leases of an earlier connection and a
        broken connection are no-ops: the server released them when the connection ended."""
        if isinstance(leases, Leases):
            if leases.released:
                return []
            leases.released = True
            if leases.generation != self._generation:
                return []
            ids = leases.lease_ids
        else:
            ids = [int(i) for i in leases]
        if not ids:
            return []
        try:
            return self._ids_call(Verb.RELEASE, ids)
        except StrataConnectionError:
            return [WireStatus.NOT_YOURS] * len(ids)

    def _ids_call(self, verb: Verb, ids: List[int]) -> List[Union[WireStatus, int]]:
        self._check_batch(len(ids), verb.name)
        with self._lock:
            if verb in (Verb.COMMIT, Verb.ABORT) and self._conn is not None:
                for i in ids:  # used up whatever the answer: their staging space is PUT's again
                    self._conn.reserved.pop(i, None)
            statuses, _ = self._call(verb, lambda rid: wire.encode_ids(rid, verb, ids),
                                     wire.decode_status_list)
        if len(statuses) != len(ids):
            raise StrataError(WireStatus.FRAME, f"{len(statuses)} statuses for {len(ids)} ids",
                              verb.name)
        return statuses

    def _reserve_item(self, s: ReserveSpec) -> wire.ReserveItem:
        fm = family_mask(s.family)
        if fm == 0 or fm & (fm - 1):
            raise ValueError(f"reserve: one family per item, got mask {fm:#x}")
        return wire.ReserveItem(
            s.ns, as_key(s.key), self.fingerprint, int(s.size), fm.bit_length() - 1,
            s.parent is not None, int(s.depth),
            as_key(s.parent) if s.parent is not None else (0, 0), float(s.value_per_byte))

    def _can_put(self) -> bool:
        """PUT is there: a staging region of this connection's and a server that has the verb."""
        with self._lock:
            if self.read_only:
                return False
            self._hello()
            return self._conn.staging is not None and bool(
                self._conn.hello.capabilities & wire.CAP_PUT)

    def _put_staged(self, specs: Sequence[ReserveSpec], srcs: Sequence[np.ndarray]
                    ) -> List[Union[WireStatus, int]]:
        """Stores objects in one PUT round trip per frame: each source is copied into the
        staging region at a place of the client's own, then the server copies it into the
        arena. A status per item (NO_SPACE for one larger than the free staging space)."""
        items = [self._reserve_item(s) for s in specs]
        out: List[Union[WireStatus, int]] = [WireStatus.ERROR] * len(items)
        i = 0
        while i < len(items):
            with self._lock:
                conn = self._ensure_connected(time.monotonic() + self.timeout)
                if conn.staging is None or not conn.hello.capabilities & wire.CAP_PUT:
                    # Reconnected to a server without PUT: reserve and commit the rest.
                    out[i:] = self._put_reserved(specs[i:], srcs[i:])
                    break
                cap = len(conn.staging)
                limit = max(1, min(conn.hello.max_batch, (conn.hello.max_body - 8) // 80,
                                   wire.MAX_BATCH))
                busy = sorted((o, o + n) for o, n in conn.reserved.values() if n > 0)
                begin = conn.put_next_begin if conn.put_next_begin < cap else 0
                cursor, wrapped, frame, taken = begin, False, [], []
                while i < len(items) and len(frame) < limit:
                    size = int(srcs[i].size)
                    at = _fit_from(cursor, size, begin if wrapped else cap, busy)
                    if at is None and not wrapped:
                        wrapped = True
                        at = _fit_from(0, size, begin, busy)
                    if at is None and not frame:
                        at = _fit_from(0, size, cap, busy)  # alone, anywhere
                    if at is None:
                        if frame:
                            break  # the next frame has the whole region again
                        out[i] = WireStatus.NO_SPACE
                        i += 1
                        continue
                    conn.staging[at:at + size] = srcs[i]
                    items[i].size = size
                    frame.append(wire.PutItem(items[i], at))
                    taken.append(i)
                    cursor = at + size
                    i += 1
                if not frame:
                    continue
                frame_bytes = sum(p.item.size for p in frame)
                conn.put_next_begin = (begin if frame_bytes > wire.STAGING_ALTERNATE_MAX_BYTES
                                       else cursor if begin == 0 else 0)
                statuses, _ = self._call(Verb.PUT, lambda rid: wire.encode_put(rid, frame),
                                         wire.decode_status_list, on=conn)
                if len(statuses) != len(frame):
                    raise StrataError(WireStatus.FRAME,
                                      f"{len(statuses)} statuses for {len(frame)} items", "PUT")
                for j, st in zip(taken, statuses):
                    out[j] = st
        return out

    def reserve(self, items: Iterable[Union[ReserveSpec, tuple]]) -> Reservations:
        """Space for new objects (in the staging region, or the arena with in-place writes):
        items are ReserveSpec or (key, family, size[, ns]) tuples. Write each item's bytes into
        its view, then commit (or abort)."""
        if self.read_only:
            raise StrataError(WireStatus.INVALID, "a read-only client cannot reserve",
                              "RESERVE")
        specs = [it if isinstance(it, ReserveSpec) else ReserveSpec(*it) for it in items]
        wire_items = [self._reserve_item(s) for s in specs]
        self._check_batch(len(wire_items), "RESERVE")
        # Under the lock until the staged ranges are recorded: a PUT on another thread must
        # not place its bytes where these reservations are about to be written.
        with self._lock:
            results, conn = self._call(Verb.RESERVE,
                                       lambda rid: wire.encode_reserve(rid, wire_items),
                                       wire.decode_reserve_response)
            if len(results) != len(wire_items):
                raise StrataError(WireStatus.FRAME,
                                  f"{len(results)} results for {len(wire_items)} items",
                                  "RESERVE")
            out, stray = [], []
            for w, r in zip(wire_items, results):
                status, rid = wire.status_of(r.status), r.reservation
                view = (self._writable_view(conn, r.offset, w.size)
                        if status == WireStatus.OK else None)
                if status == WireStatus.OK and view is None:  # outside the mapping: given back
                    status, rid = WireStatus.INVALID, 0
                    stray.append(r.reservation)
                if status == WireStatus.OK and conn.staging is not None:
                    conn.reserved[rid] = (r.offset, w.size)
                out.append(ReservedItem(BlockKey(*w.key), Family(w.family), w.ns, w.size, status,
                                        r.offset, rid, view))
        if stray:
            self._ids_call(Verb.ABORT, stray)
        return Reservations(self, out, conn.generation)

    def _finish(self, verb: Verb, reservations) -> List[Union[WireStatus, int]]:
        if isinstance(reservations, Reservations):
            pending = [it for it in reservations.items if it.id and not it.done]
            if reservations.generation != self._generation:
                raise StrataConnectionError(
                    "the reservations died with an earlier connection", verb.name)
            if not pending:
                return []
            statuses = self._ids_call(verb, [it.id for it in pending])
            for it in pending:
                it.done = True
            return statuses
        return self._ids_call(verb, [int(i) for i in reservations])

    def commit(self, reservations: Union[Reservations, Iterable[int]]
               ) -> List[Union[WireStatus, int]]:
        """Makes reserved objects visible (the server checksums what was written)."""
        return self._finish(Verb.COMMIT, reservations)

    def abort(self, reservations: Union[Reservations, Iterable[int]]
              ) -> List[Union[WireStatus, int]]:
        return self._finish(Verb.ABORT, reservations)

    def put(self, key: KeyLike, family: FamiliesLike, data, ns: int = 0, *, depth: int = 0,
            parent: Optional[KeyLike] = None, value_per_byte: float = 0.0) -> None:
        """Stores `data` (a numpy array or bytes-like): copied into the staging region and sent
        with PUT (CAP_PUT), else reserve, copy it in, commit. Raises StrataError with the
        item's status when the store refuses it."""
        src = _as_u8(data)
        spec = ReserveSpec(key, family, src.size, ns, depth, parent, value_per_byte)
        if self._can_put():  # one round trip
            status = self._put_staged([spec], [src])[0]
            if status != WireStatus.OK:
                raise StrataError(status, f"object {as_key(key)}", "PUT")
            return
        with self.reserve([spec]) as res:
            it = res.items[0]
            if not it.ok:
                raise StrataError(it.status, f"object {it.key} {it.family.wire_name}", "RESERVE")
            it.view[:] = src

    def prefetch(self, keys: Sequence[KeyLike], families: FamiliesLike, ns: int = 0
                 ) -> List[Union[WireStatus, int]]:
        """Starts reading NVMe-resident objects into DRAM; a status per (key, family): OK (in
        DRAM now), PENDING (a later get finds it there) or NOT_FOUND."""
        ks = [as_key(k) for k in keys]
        mask = family_mask(families)
        n = len(ks) * len(families_in(mask))
        self._check_batch(n, "PREFETCH")
        try:
            statuses, _ = self._call(
                Verb.PREFETCH,
                lambda rid: wire.encode_get(
                    rid, Verb.PREFETCH, wire.GetRequest(ns, self.fingerprint, mask, ks, 0)),
                wire.decode_status_list)
        except StrataConnectionError:
            return [WireStatus.NOT_FOUND] * n
        return statuses

    def delete(self, ns: int = 0) -> None:
        """Removes every object of one of this tenant's namespaces, in every tier."""
        self._call(Verb.DELETE, lambda rid: wire.encode_delete(rid, ns), wire.decode_empty)

    def flush(self) -> None:
        """Returns once every object committed before the call is durable on NVMe."""
        self._call(Verb.FLUSH, lambda rid: wire.encode_empty(rid, Verb.FLUSH), wire.decode_empty)

    def stats(self) -> Dict[str, int]:
        """The tenant's counters and per tier and family occupancy ("host.csa.objects", ...)."""
        counters, _ = self._call(Verb.STATS, lambda rid: wire.encode_empty(rid, Verb.STATS),
                                 wire.decode_stats_response)
        return dict(counters)

    def ping(self) -> float:
        """Round-trip seconds of an empty request."""
        t0 = time.perf_counter()
        self._call(Verb.PING, lambda rid: wire.encode_empty(rid, Verb.PING), wire.decode_empty)
        return time.perf_counter() - t0

    # -- batch helpers by key chain (SGLang HiCacheStorage / vLLM connector shaped) --

    def exists(self, key: KeyLike, families: FamiliesLike = DEFAULT_HIT_FAMILIES,
               ns: int = 0) -> bool:
        return self.batch_exists([key], families, ns) == 1

    def batch_exists(self, keys: Sequence[KeyLike],
                     families: FamiliesLike = DEFAULT_HIT_FAMILIES, ns: int = 0) -> int:
        """How many leading keys of the chain hold every family (HiCacheStorage.batch_exists;
        times block_tokens: vLLM's get_num_new_matched_tokens). 0 when unreachable."""
        return self.lookup(keys, families, ns).hit_blocks if keys else 0

    def batch_get(self, keys: Sequence[KeyLike], families: FamiliesLike, ns: int = 0,
                  out: Optional[Sequence[Optional[Mapping[Family, np.ndarray]]]] = None
                  ) -> List[Optional[Dict[Family, np.ndarray]]]:
        """Copies each key's objects out of the arena and releases the leases at once. Per key:
        {family: uint8 array}, or None where any family missed. With `out` (per key, {family:
        writable array of the object's size}), the bytes land there (e.g. a pinned host buffer)
        and those arrays are returned."""
        fams = families_in(family_mask(families))
        result: List[Optional[Dict[Family, np.ndarray]]] = []
        with self.get(keys, families, ns) as leases:
            for i, key in enumerate(as_key(k) for k in keys):
                got = leases.items[i * len(fams):(i + 1) * len(fams)]
                if not got or not all(it.found for it in got):
                    result.append(None)
                    continue
                row = {}
                for it in got:
                    if out is not None and out[i] is not None:
                        dst = _as_u8_writable(out[i][it.family])
                        if dst.size != it.size:
                            raise ValueError(f"out[{i}][{it.family.wire_name}] has {dst.size} "
                                             f"bytes, the object {it.size}")
                        dst[:] = it.view
                        row[it.family] = out[i][it.family]
                    else:
                        row[it.family] = it.view.copy()
                result.append(row)
        return result

    def batch_set(self, keys: Sequence[KeyLike], values: Sequence[Mapping[FamiliesLike, object]],
                  ns: int = 0, *, first_depth: int = 0, parent: Optional[KeyLike] = None
                  ) -> List[bool]:
        """Stores a chain: values[i] is {family: array} for keys[i]. One PUT for the whole batch
        (CAP_PUT; else one RESERVE and one COMMIT); each key's parent hint is the key before it
        (`parent` for the first). Per key: True when every family was committed."""
        if len(values) != len(keys):
            raise ValueError(f"{len(keys)} keys, {len(values)} values")
        ks = [as_key(k) for k in keys]
        specs, srcs, owner = [], [], []
        for i, (k, row) in enumerate(zip(ks, values)):
            prev = ks[i - 1] if i else (as_key(parent) if parent is not None else None)
            for fam, data in row.items():
                src = _as_u8(data)
                specs.append(ReserveSpec(k, fam, src.size, ns, first_depth + i, prev))
                srcs.append(src)
                owner.append(i)
        ok = [True] * len(ks)
        if not specs:
            return ok
        if self._can_put():  # one round trip per frame
            for j, st in enumerate(self._put_staged(specs, srcs)):
                if st != WireStatus.OK:
                    ok[owner[j]] = False
            return ok
        for j, st in enumerate(self._put_reserved(specs, srcs)):
            if st != WireStatus.OK:
                ok[owner[j]] = False
        return ok

    def _put_reserved(self, specs: Sequence[ReserveSpec], srcs: Sequence[np.ndarray]
                      ) -> List[Union[WireStatus, int]]:
        """Stores objects with one RESERVE and one COMMIT (a server without PUT): a status per
        item, RESERVE's where it refused the item, else COMMIT's."""
        res = self.reserve(specs)
        try:
            for it, src in zip(res.items, srcs):
                if it.ok:
                    it.view[:] = src
        except BaseException:
            res.abort()
            raise
        out: List[Union[WireStatus, int]] = [it.status for it in res.items]
        pending = [j for j, it in enumerate(res.items) if it.ok]
        statuses = res.commit() if pending else []
        for j, st in zip(pending, statuses):
            out[j] = st
        return out


def _as_u8_writable(a) -> np.ndarray:
    if isinstance(a, (bytearray, memoryview)):
        return np.frombuffer(a, dtype=np.uint8)
    arr = np.asarray(a)
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        raise ValueError("an out buffer must be a writable contiguous array")
    return arr.reshape(-1).view(np.uint8)
