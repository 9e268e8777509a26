"""The client's transport against a scripted server: descriptor passing and zero-copy views,
deadlines, broken connections reported as misses, reconnects, refusals as clear errors."""

import time

import numpy as np
import pytest

from scripted_server import CLOSE, ScriptedServer, get_response
from strata_client import (BlockKey, Client, Family, StrataConnectionError, StrataError,
                           StrataTimeoutError, Tier, WireStatus, wire)

FP = 0xF00D
KEY = BlockKey(1, 2)


def ping_ok(verb, rid, body, arena):
    if verb == wire.Verb.PING:
        return wire.encode_ok_empty(rid, verb)
    return None


@pytest.fixture
def sock_path(tmp_path):
    return tmp_path / "s.sock"


def test_handshake_maps_the_arena_and_views_are_zero_copy(sock_path):
    def handler(verb, rid, body, arena):
        if verb == wire.Verb.GET:
            arena[4096:4096 + 8] = b"abcdefgh"
            return get_response(rid, [(0, int(Tier.HOST), int(Family.CSA), 4096, 8, 77)])
        if verb == wire.Verb.RELEASE:
            return wire.encode_status_list(rid, verb, [0])
        return None

    srv = ScriptedServer(sock_path, handler)
    try:
        with Client.connect(sock_path, "t1", "s1", fingerprint=FP, block_tokens=64,
                            timeout=5) as c:
            hello = srv.hellos[0]
            assert (hello.tenant, hello.secret, hello.fingerprint, hello.block_tokens,
                    hello.flags) == (b"t1", b"s1", FP, 64, 0)
            assert c.root == BlockKey(0x1111, 0x2222)
            assert c.arena.size == srv.arena_bytes
            with c.get([KEY], Family.CSA) as leases:
                v = leases[KEY, Family.CSA]
                assert bytes(v) == b"abcdefgh"
                assert np.shares_memory(v, c.arena)
                assert not v.flags.writeable
                # The same physical pages: the server's write shows through the view.
                srv.arena[4096] = ord("Z")
                assert v[0] == ord("Z")
                assert leases.item(KEY, "csa").tier == Tier.HOST
                assert leases.hit_blocks == 1
            assert leases.released
    finally:
        srv.close()


def test_read_only_client_asks_for_a_read_only_arena(sock_path):
    srv = ScriptedServer(sock_path, ping_ok)
    try:
        with Client.connect(sock_path, fingerprint=FP, block_tokens=64, read_only=True) as c:
            assert srv.hellos[0].flags == wire.HELLO_READ_ONLY
            assert not c.arena.flags.writeable
            with pytest.raises(StrataError) as e:
                c.reserve([(KEY, Family.CSA, 16)])
            assert e.value.status == WireStatus.INVALID
    finally:
        srv.close()


def test_refused_handshake_is_a_clear_error(sock_path):
    srv = ScriptedServer(sock_path, hello_status=WireStatus.AUTH)
    try:
        with pytest.raises(StrataError) as e:
            Client.connect(sock_path, "t", "wrong", fingerprint=FP, block_tokens=64)
        assert e.value.status == WireStatus.AUTH and e.value.status_name == "auth"
        assert "scripted refusal" in str(e.value) and not isinstance(e.value,
                                                                    StrataConnectionError)
    finally:
        srv.close()


def test_unreachable_server(tmp_path):
    with pytest.raises(StrataConnectionError):
        Client.connect(tmp_path / "nobody.sock", fingerprint=FP, block_tokens=64, timeout=1)


def test_a_call_is_bounded_by_the_deadline_then_reconnects(sock_path):
    stall = {"on": True}

    def handler(verb, rid, body, arena):
        if verb == wire.Verb.PING and not stall["on"]:
            return wire.encode_ok_empty(rid, verb)
        return None  # never answer

    srv = ScriptedServer(sock_path, handler)
    try:
        c = Client.connect(sock_path, fingerprint=FP, block_tokens=64, timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(StrataTimeoutError) as e:
            c.ping()
        assert 0.4 < time.monotonic() - t0 < 3
        assert e.value.status_name == "timeout"
        # Lookup and get report a miss, not an exception, when the call times out.
        t0 = time.monotonic()
        r = c.lookup([KEY], Family.CSA)
        assert r.connection_lost and r.hit_blocks == 0 and time.monotonic() - t0 < 3
        got = c.get([KEY], [Family.CSA, Family.HCA])
        assert got.connection_lost and [it.status for it in got] == [WireStatus.NOT_FOUND] * 2
        assert got[KEY, Family.HCA] is None
        stall["on"] = False
        c.ping()
        assert c.generation == 4 and c.reconnects == 3 and len(srv.hellos) == 4
        c.close()
    finally:
        srv.close()


def test_broken_connection_is_a_miss_and_the_next_call_reconnects(sock_path):
    calls = {"lookup": 0}

    def handler(verb, rid, body, arena):
        if verb in (wire.Verb.LOOKUP, wire.Verb.RESERVE):
            calls["lookup"] += verb == wire.Verb.LOOKUP
            return CLOSE  # dies while the request is in flight
        return ping_ok(verb, rid, body, arena)

    srv = ScriptedServer(sock_path, handler)
    try:
        with Client.connect(sock_path, fingerprint=FP, block_tokens=64, timeout=5) as c:
            r = c.lookup([KEY], Family.CSA)
            assert r.connection_lost and r.hit_blocks == 0 and calls["lookup"] == 1
            assert c.batch_exists([KEY], Family.CSA) == 0
            c.ping()
            assert c.reconnects == 2 and srv.epoch == 3
            t0 = time.monotonic()
            with pytest.raises(StrataConnectionError) as e:
                c.reserve([(KEY, Family.CSA, 16)])  # writes report the error
            assert not isinstance(e.value, StrataTimeoutError) and time.monotonic() - t0 < 2
    finally:
        srv.close()


def test_a_connection_the_server_closed_while_idle_reconnects_before_sending(sock_path):
    srv = ScriptedServer(sock_path, ping_ok)
    try:
        with Client.connect(sock_path, fingerprint=FP, block_tokens=64, timeout=5) as c:
            c.ping()
            srv.drop_connections()
            time.sleep(0.2)
            c.ping()  # not an error: the dead connection is noticed before the request
            assert c.reconnects == 1
    finally:
        srv.close()


def test_leases_of_an_earlier_connection_are_not_released_again(sock_path):
    released = []

    def handler(verb, rid, body, arena):
        if verb == wire.Verb.GET:
            return get_response(rid, [(0, 2, 0, 0, 4, 5)])
        if verb == wire.Verb.RELEASE:
            released.append(body)
            return wire.encode_status_list(rid, verb, [0])
        return ping_ok(verb, rid, body, arena)

    srv = ScriptedServer(sock_path, handler)
    try:
        with Client.connect(sock_path, fingerprint=FP, block_tokens=64, timeout=5) as c:
            old = c.get([KEY], Family.CSA)
            srv.drop_connections()
            time.sleep(0.2)
            c.ping()
            assert c.release(old) == [] and released == []
            assert old[KEY, Family.CSA] is not None  # the old mapping is still readable
            with c.get([KEY], Family.CSA):
                pass
            assert len(released) == 1
    finally:
        srv.close()


def test_views_never_reach_past_the_arena(sock_path):
    def handler(verb, rid, body, arena):
        if verb == wire.Verb.GET:
            return get_response(rid, [(0, 2, 0, (1 << 20) - 4, 8, 5)])
        if verb == wire.Verb.RELEASE:
            return wire.encode_status_list(rid, verb, [0])
        return None

    srv = ScriptedServer(sock_path, handler)
    try:
        with Client.connect(sock_path, fingerprint=FP, block_tokens=64, timeout=5) as c:
            got = c.get([KEY], Family.CSA)
            assert got.items[0].status == WireStatus.INVALID and got[KEY, Family.CSA] is None
    finally:
        srv.close()


def test_bad_arguments_are_invalid_not_a_lost_connection(sock_path):
    srv = ScriptedServer(sock_path, ping_ok)
    try:
        with Client.connect(sock_path, fingerprint=FP, block_tokens=64, timeout=5) as c:
            with pytest.raises(StrataError) as e:
                c.lookup([KEY], Family.CSA, ns=-1)  # not a u64
            assert e.value.status == WireStatus.INVALID
            with pytest.raises(StrataError) as e:
                c.get([KEY], Family.CSA, lease_ms=1 << 32)
            assert e.value.status == WireStatus.INVALID
            with pytest.raises(StrataError) as e:
                c.lookup([KEY] * (wire.MAX_BATCH + 1), Family.CSA)
            assert e.value.status == WireStatus.INVALID
            with pytest.raises(ValueError):
                c.lookup([KEY], 1 << 5)  # no such family
            c.ping()
            assert c.reconnects == 0  # none of those touched the connection
    finally:
        srv.close()
