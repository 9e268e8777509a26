"""Block keys computed in Python equal the C++ code's (api/keys.cc) on the same tokens.

The C++ side is tests/tools/print_keys.cc, found through STRATA_PRINT_KEYS (ctest sets it);
without it only the fixed vectors below run. Those vectors were printed by that tool."""

import os
import random
import subprocess

import numpy as np
import pytest

from strata_client import BlockKey, as_key, chain_block_keys, chain_key, root_key

PRINT_KEYS = os.environ.get("STRATA_PRINT_KEYS", "")

needs_cpp = pytest.mark.skipif(not (PRINT_KEYS and os.access(PRINT_KEYS, os.X_OK)),
                               reason="STRATA_PRINT_KEYS (the C++ key printer) not set")


def cpp(*args) -> list:
    out = subprocess.run([PRINT_KEYS, *map(str, args)], check=True, capture_output=True,
                         text=True, timeout=30).stdout
    return out.split()


def test_fixed_vectors_from_the_cpp_code():
    # strata_print_keys root sec 0x1234; strata_print_keys chain <root> 4 0 1 2 ... 9
    root = root_key(b"sec", 0x1234)
    assert root.hex() == "dc1eec14bce8f03209abba11e777f37a"
    assert [k.hex() for k in chain_block_keys(root, range(10), 4)] == [
        "145136b64b044f3b2de8887c0851baa9", "02c703b6ce49d7bd2625a31d24e2d3cd"]


@needs_cpp
@pytest.mark.parametrize("secret,fingerprint", [(b"", 0), (b"sec", 0x1234),
                                                (b"tenant-a/secret", 2**64 - 1)])
def test_root_equals_cpp(secret, fingerprint):
    assert root_key(secret, fingerprint).hex() == cpp("root", secret.decode(), fingerprint)[0]


@needs_cpp
@pytest.mark.parametrize("block", [1, 3, 16, 64, 256])
def test_chain_equals_cpp(block):
    rng = random.Random(block)
    root = BlockKey(rng.getrandbits(64), rng.getrandbits(64))
    # Full int32 range, negatives included, and a partial last block that gets no key.
    tokens = [rng.randint(-2**31, 2**31 - 1) for _ in range(block * 5 + block // 2)]
    want = cpp("chain", root.hex(), block, *tokens)
    assert len(want) == 5
    assert [k.hex() for k in chain_block_keys(root, tokens, block)] == want
    # numpy input of any integer dtype gives the same keys.
    assert chain_block_keys(root, np.array(tokens, dtype=np.int64), block) == \
        chain_block_keys(root, np.array(tokens, dtype=np.int32), block)


@needs_cpp
def test_short_and_empty_inputs_equal_cpp():
    root = root_key(b"x", 7)
    assert cpp("chain", root.hex(), 4, 1, 2, 3) == []
    assert chain_block_keys(root, [1, 2, 3], 4) == []
    assert chain_block_keys(root, [], 4) == []


def test_chain_is_a_prefix_chain():
    root = root_key(b"s", 1)
    keys = chain_block_keys(root, range(12), 4)
    assert keys[0] == chain_key(root, [0, 1, 2, 3])
    assert keys[2] == chain_key(keys[1], [8, 9, 10, 11])
    assert chain_block_keys(root, range(8), 4) == keys[:2]
    assert chain_block_keys(root, [0, 1, 2, 3, 4, 5, 6, 99, 8, 9, 10, 11], 4)[1:] != keys[1:]


def test_key_forms():
    k = BlockKey(0x0123456789ABCDEF, 0xFEDCBA9876543210)
    assert k.hex() == "0123456789abcdeffedcba9876543210"
    assert as_key(k.hex()) == k == as_key((k.hi, k.lo)) == as_key((k.hi << 64) | k.lo)
    with pytest.raises(ValueError):
        as_key((1 << 64, 0))
    with pytest.raises(ValueError):
        chain_key(k, [2**31])
