"""The codec against byte layouts written out by hand from include/strata/wire.h (offsets and
widths copied from the header's comments; nothing here is computed by the code under test)."""

import pytest

from strata_client import wire
from strata_client.wire import Verb, WireFormatError, WireStatus


def h(text: str) -> bytes:
    """Hex with spaces and | as readability separators."""
    return bytes.fromhex(text.replace("|", " "))


KEY_A = (0x0102030405060708, 0x1112131415161718)
KEY_A_LE = "0807060504030201 1817161514131211"
KEY_B = (0xA0A1A2A3A4A5A6A7, 0xB0B1B2B3B4B5B6B7)
KEY_B_LE = "a7a6a5a4a3a2a1a0 b7b6b5b4b3b2b1b0"


def test_header_of_ping():
    # body_len 0 | opcode 12 | flags 0 | request_id 7
    assert wire.encode_empty(7, Verb.PING) == h("00000000 | 0c00 | 0000 | 0700000000000000")
    assert wire.encode_empty(1, Verb.FLUSH) == h("00000000 0900 0000 0100000000000000")
    assert wire.encode_empty(2, Verb.STATS) == h("00000000 0a00 0000 0200000000000000")


def test_hello_request():
    req = wire.HelloRequest(fingerprint=0x1122334455667788, block_tokens=256, tenant=b"ab",
                            secret=b"xyz", flags=wire.HELLO_READ_ONLY)
    body = h("01000000 | 01000000 | 8877665544332211 | 00010000 | 0200 | 0300") + b"ab" + b"xyz"
    assert len(body) == 29
    assert wire.encode_hello(5, req) == h("1d000000 0100 0000 0500000000000000") + body
    assert wire.decode_hello(body) == req


def test_lookup_request():
    req = wire.LookupRequest(ns=3, fingerprint=0xDEADBEEF, required=0b00111, keys=[KEY_A, KEY_B])
    body = h("0300000000000000 | efbeadde00000000 | 07 | 000000 | 02000000 |" + KEY_A_LE + "|" +
             KEY_B_LE)
    assert len(body) == 24 + 32
    assert wire.encode_lookup(9, req) == h("38000000 0200 0000 0900000000000000") + body


def test_get_and_prefetch_requests():
    req = wire.GetRequest(ns=1, fingerprint=2, families=0b10001, keys=[KEY_A], lease_ms=1500)
    body = h("0100000000000000 | 0200000000000000 | 11 | 000000 | dc050000 | 01000000 | 00000000 |"
             + KEY_A_LE)
    assert len(body) == 48
    assert wire.encode_get(4, Verb.GET, req) == h("30000000 0300 0000 0400000000000000") + body
    assert (wire.encode_get(4, Verb.PREFETCH, req) ==
            h("30000000 0b00 0000 0400000000000000") + body)
    with pytest.raises(WireFormatError):
        wire.encode_get(4, Verb.LOOKUP, req)


def test_reserve_request():
    item = wire.ReserveItem(ns=2, key=KEY_A, fingerprint=0x77, size=4096, family=3,
                            has_parent=True, depth=5, parent=KEY_B, value_per_byte=0.5)
    body = h("01000000 00000000 |"  # n, zero
             "0200000000000000 |"  # ns
             + KEY_A_LE + "|"  # key.hi, key.lo
             "7700000000000000 |"  # fingerprint
             "0010000000000000 |"  # size
             "03 | 01 | 0000 | 05000000 |"  # family, has_parent, zero, depth
             + KEY_B_LE + "|"  # parent
             "000000000000e03f")  # 0.5 as binary64 LE
    assert len(body) == 8 + 72
    assert wire.encode_reserve(1, [item]) == h("50000000 0400 0000 0100000000000000") + body


def test_put_request():
    # RESERVE's 72-byte item, then the staging offset: 80 bytes an item.
    item = wire.ReserveItem(ns=2, key=KEY_A, fingerprint=0x77, size=4096, family=3,
                            has_parent=False, depth=0, parent=(0, 0), value_per_byte=0.0)
    body = h("01000000 00000000 |"  # n, zero
             "0200000000000000 |"  # ns
             + KEY_A_LE + "|"  # key.hi, key.lo
             "7700000000000000 |"  # fingerprint
             "0010000000000000 |"  # size
             "03 | 00 | 0000 | 00000000 |"  # family, has_parent, zero, depth
             "00000000000000000000000000000000 |"  # parent
             "0000000000000000 |"  # value_per_byte
             "8877665544332211")  # offset in the staging region
    assert len(body) == 8 + 80
    assert (wire.encode_put(9, [wire.PutItem(item, 0x1122334455667788)]) ==
            h("58000000 0d00 0000 0900000000000000") + body)


def test_id_lists_and_delete():
    body = h("02000000 00000000 | 2a00000000000000 | ffffffffffffffff")
    assert wire.encode_ids(3, Verb.COMMIT, [42, 2**64 - 1]) == h(
        "18000000 0500 0000 0300000000000000") + body
    assert wire.encode_ids(3, Verb.ABORT, [42, 2**64 - 1])[4:6] == h("0600")
    assert wire.encode_ids(3, Verb.RELEASE, [42, 2**64 - 1])[4:6] == h("0700")
    assert wire.encode_delete(6, 0x0102) == h("08000000 0800 0000 0600000000000000 "
                                              "0201000000000000")


def test_response_header_and_head():
    hd = wire.decode_header(h("0a000000 | 0c80 | 0000 | 0700000000000000"))
    assert (hd.body_len, hd.opcode, hd.flags, hd.request_id) == (10, 0x800C, 0, 7)
    with pytest.raises(WireFormatError):  # flags must be 0
        wire.decode_header(h("00000000 0c80 0100 0700000000000000"))
    with pytest.raises(WireFormatError):  # body_len over kMaxBody (8 MiB)
        wire.decode_header(h("01008000 0c80 0000 0700000000000000"))
    with pytest.raises(WireFormatError):
        wire.decode_header(h("00000000 0c80 0000"))
    # An error: status kAuth (8), a 5-byte message, no payload.
    head = wire.decode_response_head(h("0800 0500") + b"nope!")
    assert head.status == WireStatus.AUTH and head.message == "nope!" and head.payload == b""
    ok = wire.decode_response_head(h("0000 0000 aabb"))
    assert ok.status == WireStatus.OK and ok.payload == h("aabb")
    with pytest.raises(WireFormatError):  # message overruns the body
        wire.decode_response_head(h("0800 0600") + b"nope!")
    with pytest.raises(WireFormatError):  # a payload after an error status
        wire.decode_response_head(h("0500 0000 00"))


def test_hello_response():
    p = h("01000000 | 07000000 | 0900000000000000 | 0000001000000000 |"  # ver caps epoch arena
          + KEY_A_LE + "|"  # root
          "00008000 | 00000100 | 01 | 00000000000000")  # max_body max_batch swa zero
    assert len(p) == 56
    r = wire.decode_hello_response(p)
    assert r == wire.HelloResponse(1, wire.CAP_PREFETCH | wire.CAP_LEASE_TIMEOUT | wire.CAP_NVME,
                                   9, 1 << 28, KEY_A, 8 << 20, 65536, wire.SwaPolicy.CHECKPOINT)
    with pytest.raises(WireFormatError):
        wire.decode_hello_response(p[:-1])
    # The scripted server's encoder gives the same bytes behind a 16+4 byte head.
    assert wire.encode_hello_response(2, r) == h("3c000000 0180 0000 0200000000000000 0000 0000"
                                                ) + p


def test_lookup_response():
    p = h("01000000 | 02000000 | 01000000 | 00000000 |"  # hit, n_blocks, best_ckpt, zero
          "0000000000000000 | 0000000000000000 | 0010000000000000 | 0020000000000000 |"
          "0000000000000000 |"  # hit_bytes by tier: device 0, host 4096, nvme 8192
          "17 | 0202030002 | 0000 |"  # block 0: csa, csa_index, hca, checkpoint
          "01 | 0300000000 | 0000")  # block 1: csa on nvme only
    r = wire.decode_lookup_response(p)
    assert r.hit_blocks == 1 and r.best_checkpoint == 1
    assert r.hit_bytes == (0, 0, 4096, 8192, 0)
    assert [b.families for b in r.blocks] == [0x17, 0x01]
    assert r.blocks[0].tier == (2, 2, 3, 0, 2) and r.blocks[1].tier == (3, 0, 0, 0, 0)
    with pytest.raises(WireFormatError):  # n_blocks says 2, one block present
        wire.decode_lookup_response(p[:-8])
    with pytest.raises(WireFormatError):  # hit_blocks above n_blocks
        wire.decode_lookup_response(h("03000000") + p[4:])


def test_get_response():
    p = h("02000000 00000000 |"
          "00 | 02 | 01 | 0000000000 | 0010000000000000 | 8000000000000000 | 0900000000000000 |"
          "01 | 00 | 02 | 0000000000 | 0000000000000000 | 0000000000000000 | 0000000000000000")
    items = wire.decode_get_response(p)
    assert items == [wire.GetItem(0, 2, 1, 4096, 128, 9), wire.GetItem(1, 0, 2, 0, 0, 0)]
    with pytest.raises(WireFormatError):
        wire.decode_get_response(p[:-1])
    with pytest.raises(WireFormatError):
        wire.decode_get_response(p + bytes(32))


def test_reserve_response():
    p = h("02000000 00000000 |"
          "00 | 00000000000000 | 0020000000000000 | 0500000000000000 |"
          "03 | 00000000000000 | 0000000000000000 | 0000000000000000")
    assert wire.decode_reserve_response(p) == [wire.ReserveResult(0, 0x2000, 5),
                                               wire.ReserveResult(WireStatus.NO_SPACE, 0, 0)]
    with pytest.raises(WireFormatError):
        wire.decode_reserve_response(p[:-24] + bytes(23))


def test_status_lists_are_padded_to_8():
    p = h("03000000 00000000 | 00 07 0e | 0000000000")
    assert wire.decode_status_list(p) == [WireStatus.OK, WireStatus.NOT_YOURS,
                                          WireStatus.EXPIRED]
    with pytest.raises(WireFormatError):  # no padding
        wire.decode_status_list(h("03000000 00000000 00070e"))
    assert wire.decode_status_list(h("00000000 00000000")) == []
    assert wire.decode_status_list(h("08000000 00000000 0001020304050607")) == list(range(8))
    assert wire.encode_status_list(1, Verb.RELEASE, [0, 7, 14]) == h(
        "14000000 0780 0000 0100000000000000 0000 0000") + p


def test_stats_response():
    p = h("02000000 | 0300") + b"a.b" + h("2a00000000000000 | 0000 | 0100000000000000")
    assert wire.decode_stats_response(p) == [("a.b", 42), ("", 1)]
    with pytest.raises(WireFormatError):
        wire.decode_stats_response(p[:-1])
    with pytest.raises(WireFormatError):
        wire.decode_stats_response(p + b"\0")


def test_empty_payloads():
    wire.decode_empty(b"")
    with pytest.raises(WireFormatError):
        wire.decode_empty(b"\0")


def test_batch_limits():
    with pytest.raises(WireFormatError):
        wire.encode_ids(1, Verb.RELEASE, [1] * (wire.MAX_BATCH + 1))
    with pytest.raises(WireFormatError):
        wire.encode_hello(1, wire.HelloRequest(1, 1, tenant=b"t" * 256))
