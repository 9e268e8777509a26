"""The client against a real strata-server process (the `server` fixture in conftest.py)."""

import threading
import time

import numpy as np
import pytest

from conftest import BLOCK_TOKENS, FINGERPRINT
from strata_client import wire
from strata_client import (Client, Family, ReserveSpec, StrataError, Tier, WireStatus,
                           root_key)

HIT = (Family.CSA, Family.CSA_INDEX, Family.HCA)


def connect(server, tenant="alpha", secret=None, **kw):
    secret = f"{tenant}-secret" if secret is None else secret
    kw.setdefault("timeout", 10)
    return Client.connect(server.socket_path, tenant, secret, fingerprint=FINGERPRINT,
                          block_tokens=BLOCK_TOKENS, **kw)


def payload(seed: int, size: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


def held_leases(c) -> int:
    s = c.stats()
    return s["server.leases_held"] if "server.leases_held" in s else s["connection.leases_held"]


def tokens(n_blocks: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 150_000, n_blocks * BLOCK_TOKENS,
                                                dtype=np.int32)


def test_connect_handshake(server):
    with connect(server) as c:
        assert c.ping() >= 0
        assert c.server_epoch != 0 and c.arena.size > 0
        # The tenant's chain root is keys.h's k0 over its key secret and the layout.
        assert c.root == root_key(b"alpha-keys", FINGERPRINT)
        assert c.block_keys(tokens(3)) == c.block_keys(tokens(3))
        assert len(c.block_keys(tokens(3))) == 3


def test_put_then_get_equal_bytes_zero_copy(server):
    with connect(server) as c:
        keys = c.block_keys(tokens(3, seed=1))
        data = {(k, f): payload(i * 5 + int(f), 4096 + 64 * i)
                for i, k in enumerate(keys) for f in (Family.CSA, Family.HCA)}
        for (k, f), arr in data.items():
            c.put(k, f, arr)
        with c.get(keys, [Family.CSA, Family.HCA]) as leases:
            assert leases.all_found and leases.hit_blocks == 3 and len(leases) == 6
            for it in leases:
                assert it.tier == Tier.HOST
                assert np.array_equal(it.view, data[(it.key, it.family)])
                # Zero copy: the view is the shared mapping itself, not a copy of it.
                assert np.shares_memory(it.view, c.arena)
                assert not it.view.flags.writeable
            assert held_leases(c) == 6
        assert held_leases(c) == 0


def test_typed_arrays_round_trip(server):
    with connect(server) as c:
        key = c.block_keys(tokens(1, seed=2))[0]
        arr = np.random.default_rng(3).standard_normal((16, 32)).astype(np.float32)
        c.put(key, Family.SWA, arr)
        with c.get([key], Family.SWA) as leases:
            back = leases[key, Family.SWA].view(np.float32).reshape(16, 32)
            assert np.array_equal(back, arr)


def test_reserve_write_commit_in_place(server):
    with connect(server, "gamma") as c:
        keys = c.block_keys(tokens(2, seed=4))
        want = [payload(40, 8192), payload(41, 100)]
        res = c.reserve([ReserveSpec(keys[0], Family.CSA, 8192),
                         ReserveSpec(keys[1], Family.CSA, 100, depth=1, parent=keys[0])])
        assert [it.status for it in res] == [WireStatus.OK] * 2
        for it, w in zip(res, want):
            assert np.shares_memory(it.view, c.arena) and it.view.flags.writeable
            it.view[:] = w  # written straight into the arena
        assert c.commit(res) == [WireStatus.OK] * 2
        with c.get(keys, Family.CSA) as leases:
            for it, w, r in zip(leases, want, res):
                assert np.array_equal(it.view, w)
                assert it.offset == r.offset  # served where it was written: no copy
        # As a context manager: committed on a clean exit.
        k2 = c.block_keys(tokens(1, seed=5))[0]
        with c.reserve([(k2, Family.HCA, 64)]) as res2:
            res2[0].view[:] = 7
        with c.get([k2], Family.HCA) as leases:
            assert np.all(leases[k2, Family.HCA] == 7)


def test_staged_writes_cannot_change_committed_bytes(server):
    """The default (staged writes): the arena maps read-only, reservations are views into the
    connection's staging region, and COMMIT copies them: a write after COMMIT changes nothing
    that GET serves."""
    with connect(server) as c, connect(server) as reader:
        assert c.capabilities & wire.CAP_STAGING
        assert not c.arena.flags.writeable
        with pytest.raises(ValueError):
            c.arena[0] = 1
        keys = c.block_keys(tokens(2, seed=14))
        want = [payload(50, 8192), payload(51, 100)]
        res = c.reserve([ReserveSpec(keys[0], Family.CSA, 8192),
                         ReserveSpec(keys[1], Family.CSA, 100, depth=1, parent=keys[0])])
        assert [it.status for it in res] == [WireStatus.OK] * 2
        for it, w in zip(res, want):
            assert it.view.flags.writeable and not np.shares_memory(it.view, c.arena)
            it.view[:] = w
        views = [it.view for it in res]
        assert c.commit(res) == [WireStatus.OK] * 2
        for v in views:
            v[:] = 0x5A  # the writer scribbles after COMMIT
        with reader.get(keys, Family.CSA) as leases:
            for it, w in zip(leases, want):
                assert np.array_equal(it.view, w)
                assert np.shares_memory(it.view, reader.arena)
        assert reader.stats()["server.corrupt"] == 0


def test_abort_and_failed_block_leave_nothing(server):
    with connect(server) as c:
        k = c.block_keys(tokens(1, seed=6))[0]
        res = c.reserve([(k, Family.CSA, 256)])
        res[0].view[:] = 1
        assert c.abort(res) == [WireStatus.OK]
        with pytest.raises(RuntimeError):
            with c.reserve([(k, Family.HCA, 256)]) as res2:
                res2[0].view[:] = 2
                raise RuntimeError("the writer failed")
        with c.get([k], [Family.CSA, Family.HCA]) as leases:
            assert [it.status for it in leases] == [WireStatus.NOT_FOUND] * 2
        assert c.stats().get("server.reservations_held", 0) == 0


def test_lookup_hits(server):
    with connect(server) as c:
        keys = c.block_keys(tokens(4, seed=7))
        sizes = {Family.CSA: 2048, Family.CSA_INDEX: 512, Family.HCA: 128}
        for i, k in enumerate(keys[:3]):
            for f, n in sizes.items():
                c.put(k, f, payload(100 + i, n), depth=i, parent=keys[i - 1] if i else None)
        r = c.lookup(keys, required=HIT)
        assert r.hit_blocks == 3 and not r.connection_lost
        assert len(r.blocks) == 4  # the hits, then the first block that missed
        assert r.blocks[0].families == frozenset(HIT)
        assert all(r.blocks[i].tiers == {f: Tier.HOST for f in HIT} for i in range(3))
        assert r.blocks[3].families == frozenset()
        assert r.hit_bytes[Tier.HOST] == 3 * sum(sizes.values())
        assert c.batch_exists(keys, HIT) == 3
        assert c.exists(keys[0], HIT) and not c.exists(keys[3], HIT)
        assert c.lookup(keys, required=[Family.SWA]).hit_blocks == 0


def test_batch_set_and_batch_get(server):
    with connect(server) as c:
        keys = c.block_keys(tokens(3, seed=8))
        values = [{Family.CSA: payload(200 + i, 1024), Family.HCA: payload(300 + i, 64)}
                  for i in range(3)]
        assert c.batch_set(keys, values) == [True] * 3
        got = c.batch_get(keys + c.block_keys(tokens(1, seed=9)), [Family.CSA, Family.HCA])
        assert got[3] is None
        for row, want in zip(got[:3], values):
            assert all(np.array_equal(row[f], want[f]) for f in want)
        out = [{Family.CSA: np.zeros(1024, np.uint8), Family.HCA: np.zeros(64, np.uint8)}
               for _ in range(3)]
        got = c.batch_get(keys, [Family.CSA, Family.HCA], out=out)
        assert got[1][Family.CSA] is out[1][Family.CSA]
        assert np.array_equal(out[2][Family.HCA], values[2][Family.HCA])
        assert held_leases(c) == 0


def test_put_and_batch_set_take_one_round_trip_around_reservations(server):
    # CAP_PUT: put and batch_set copy into the staging region (beta's is 1 MiB) and send PUT
    # frames, no RESERVE; 3 MiB wrap around the region; a reservation being written meanwhile
    # keeps its bytes; an object larger than the region is refused (NO_SPACE), the rest stored.
    with connect(server, "beta") as c:
        assert c.capabilities & wire.CAP_PUT
        keys = c.block_keys(tokens(24, seed=30))
        held = payload(31, 200_000)
        res = c.reserve([ReserveSpec(keys[0], Family.CSA, held.size)])
        res.items[0].view[:] = held
        before = c.stats()
        values = [{Family.CSA_INDEX: payload(400 + i, 130_000 + i)} for i in range(24)]
        assert c.batch_set(keys, values) == [True] * 24
        after = c.stats()
        assert after["server.reservations"] == before["server.reservations"]  # no RESERVE
        assert after["server.put_frames"] >= before["server.put_frames"] + 3
        assert res.commit() == [WireStatus.OK]
        got = c.batch_get(keys, [Family.CSA_INDEX])
        assert all(np.array_equal(row[Family.CSA_INDEX], want[Family.CSA_INDEX])
                   for row, want in zip(got, values))
        assert np.array_equal(c.batch_get(keys[:1], [Family.CSA])[0][Family.CSA], held)
        one = c.block_keys(tokens(1, seed=32))[0]
        c.put(one, Family.HCA, payload(33, 5000))
        with pytest.raises(StrataError) as e:
            c.put(one, Family.CSA, payload(34, 2 << 20))
        assert e.value.status == WireStatus.NO_SPACE
        assert np.array_equal(c.batch_get([one], [Family.HCA])[0][Family.HCA], payload(33, 5000))
        assert c.stats()["server.reservations"] == before["server.reservations"]
    # Without a staging region (a tenant writing in place) put reserves and commits.
    with connect(server, "gamma") as g:
        assert not g.capabilities & wire.CAP_PUT
        k = g.block_keys(tokens(1, seed=35))[0]
        g.put(k, Family.CSA, payload(36, 3000))
        assert np.array_equal(g.batch_get([k], [Family.CSA])[0][Family.CSA], payload(36, 3000))


def test_put_never_sends_for_bytes_left_in_a_broken_connection(server, monkeypatch):
    # The connection breaks after put copied the bytes into its staging region and before the
    # PUT goes out (injected: cannot be timed for real). Sending PUT on a new connection would
    # store that connection's empty staging region under the key; put raises instead, nothing
    # is stored, and the next call reconnects.
    from strata_client.results import StrataConnectionError
    with connect(server, "beta") as c:
        k = c.block_keys(tokens(1, seed=40))[0]
        assert c.capabilities & wire.CAP_PUT
        real_alive = Client._alive
        calls = []

        def alive_until_the_put(self, conn):
            calls.append(conn)
            return real_alive(self, conn) and len(calls) < 2  # the 2nd check: PUT's own

        monkeypatch.setattr(Client, "_alive", alive_until_the_put)
        with pytest.raises(StrataConnectionError):
            c.put(k, Family.CSA, payload(41, 8192))
        monkeypatch.setattr(Client, "_alive", real_alive)
        assert c.batch_get([k], [Family.CSA]) == [None]
        c.put(k, Family.CSA, payload(41, 8192))
        assert np.array_equal(c.batch_get([k], [Family.CSA])[0][Family.CSA], payload(41, 8192))


def test_namespaces_and_delete(server):
    with connect(server) as c:
        k = c.block_keys(tokens(1, seed=10))[0]
        c.put(k, Family.CSA, payload(1, 512), ns=1)
        c.put(k, Family.CSA, payload(2, 512), ns=2)
        c.delete(1)
        assert c.lookup([k], Family.CSA, ns=1).hit_blocks == 0
        with c.get([k], Family.CSA, ns=2) as leases:
            assert np.array_equal(leases[k, Family.CSA], payload(2, 512))


def test_wrong_secret_and_unknown_tenant_are_clear_errors(server):
    with pytest.raises(StrataError) as e:
        connect(server, secret="not-the-secret")
    assert e.value.status == WireStatus.AUTH and "auth" in str(e.value)
    with pytest.raises(StrataError) as e:
        connect(server, tenant="nobody", secret="x")
    assert e.value.status == WireStatus.AUTH


def test_tenants_do_not_see_each_other(server):
    with connect(server, "alpha") as a, connect(server, "beta") as b:
        k = a.block_keys(tokens(1, seed=11))[0]
        a.put(k, Family.CSA, payload(3, 256))
        # Beta, even with alpha's key and namespace, finds nothing.
        assert b.lookup([k], Family.CSA).hit_blocks == 0
        with b.get([k], Family.CSA) as leases:
            assert leases.items[0].status == WireStatus.NOT_FOUND
        assert not np.shares_memory(a.arena, b.arena)


def test_read_only_client(server):
    with connect(server) as w, connect(server, read_only=True) as r:
        k = w.block_keys(tokens(1, seed=12))[0]
        w.put(k, Family.HCA, payload(4, 300))
        assert not r.arena.flags.writeable
        with r.get([k], Family.HCA) as leases:
            v = leases[k, Family.HCA]
            assert np.array_equal(v, payload(4, 300)) and np.shares_memory(v, r.arena)
        with pytest.raises(StrataError):
            r.put(k, Family.CSA, payload(5, 10))


def test_prefetch_and_stats(server):
    with connect(server) as c:
        k = c.block_keys(tokens(1, seed=13))[0]
        c.put(k, Family.CSA, payload(6, 1000))
        assert c.prefetch([k], Family.CSA) == [WireStatus.OK]
        missing = c.block_keys(tokens(1, seed=14))[0]
        assert c.prefetch([missing], Family.CSA) == [WireStatus.NOT_FOUND]
        stats = c.stats()
        assert isinstance(stats, dict) and stats
        assert all(isinstance(v, int) for v in stats.values())


def test_server_restart_reconnects(server):
    c = connect(server, timeout=5)
    keys = c.block_keys(tokens(2, seed=15))
    for i, k in enumerate(keys):
        c.put(k, Family.CSA, payload(500 + i, 4096))
    c.flush()  # durable on NVMe: survives the crash below
    epoch = c.server_epoch
    held = c.get(keys[:1], Family.CSA)
    server.kill()
    # The server is gone: reads report misses, writes raise, nothing hangs.
    r = c.lookup(keys, Family.CSA)
    assert r.connection_lost and r.hit_blocks == 0
    assert c.get(keys, Family.CSA).connection_lost
    with pytest.raises(StrataError):
        c.put(keys[0], Family.HCA, payload(7, 10))
    # Old views stay readable (the old mapping lives while they do).
    assert np.array_equal(held[keys[0], Family.CSA], payload(500, 4096))
    server.start()
    c.ping()  # reconnects: new handshake, new arena
    assert c.server_epoch != epoch and c.reconnects >= 1
    assert c.release(held) == []  # those leases died with the old connection
    assert c.lookup(keys, Family.CSA).hit_blocks == 2
    with c.get(keys, Family.CSA) as leases:
        for i, it in enumerate(leases):
            assert np.array_equal(it.view, payload(500 + i, 4096))
            assert np.shares_memory(it.view, c.arena)
    c.close()


def test_connection_end_releases_leases(server):
    with connect(server) as watcher:
        k = watcher.block_keys(tokens(1, seed=16))[0]
        watcher.put(k, Family.CSA, payload(8, 128))
        c = connect(server)
        leases = c.get([k], Family.CSA)
        assert leases.all_found and held_leases(watcher) >= 1
        c.close()  # leases not released: the server reclaims them with the connection
        deadline = time.monotonic() + 5
        while held_leases(watcher) != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held_leases(watcher) == 0


def test_lease_timeout_expires(server):
    with connect(server) as c:
        k = c.block_keys(tokens(1, seed=17))[0]
        c.put(k, Family.CSA, payload(9, 64))
        leases = c.get([k], Family.CSA, lease_ms=100)
        assert leases.all_found
        deadline = time.monotonic() + 5
        while held_leases(c) != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held_leases(c) == 0
        assert c.release(leases) == [WireStatus.EXPIRED]


def test_bad_layout_is_a_clear_error(server):
    with pytest.raises(StrataError) as e:
        Client.connect(server.socket_path, "alpha", "alpha-secret", fingerprint=FINGERPRINT,
                       block_tokens=0)
    assert e.value.status == WireStatus.LAYOUT


def test_threads_share_one_client(server):
    errors = []
    with connect(server) as c:
        def worker(t):
            try:
                keys = c.block_keys(tokens(4, seed=100 + t))
                for i, k in enumerate(keys):
                    c.put(k, Family.CSA, payload(1000 * t + i, 2048))
                for _ in range(10):
                    with c.get(keys, Family.CSA) as leases:
                        for i, it in enumerate(leases):
                            assert np.array_equal(it.view, payload(1000 * t + i, 2048))
            except BaseException as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert held_leases(c) == 0
