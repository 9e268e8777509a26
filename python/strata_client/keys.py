"""Block keys: 128-bit chained XXH3 hashes, computed exactly as include/strata/keys.h does.

    k0  = XXH3_128(namespace secret || fingerprint as u64 LE)       (the server sends k0 in HELLO)
    k_i = XXH3_128(k_{i-1}.hi as u64 LE || k_{i-1}.lo as u64 LE || block i's tokens as int32 LE)

A key is (hi, lo): hi is XXH3-128's high 64 bits. Its hex form is 32 lowercase digits, hi first
(BlockKey::ToHex). python/tests checks these against the C++ code on the same tokens.
Thread safety: values and pure functions only.
"""

from __future__ import annotations

import struct
from typing import Iterable, List, NamedTuple, Sequence, Union

import numpy as np
import xxhash

_MASK64 = (1 << 64) - 1
_KEY_WORDS = struct.Struct("<QQ")
_NAMESPACE_SEED = 0x5354524154414E53  # "STRATANS", as NamespaceIdFromName


class BlockKey(NamedTuple):
    hi: int
    lo: int

    def hex(self) -> str:
        return f"{self.hi:016x}{self.lo:016x}"

    @classmethod
    def from_hex(cls, text: str) -> "BlockKey":
        if len(text) != 32:
            raise ValueError(f"a block key is 32 hex digits, got {len(text)}")
        return cls(int(text[:16], 16), int(text[16:], 16))

    def __str__(self) -> str:
        return self.hex()


KeyLike = Union[BlockKey, Sequence[int], str, int]


def as_key(k: KeyLike) -> BlockKey:
    """A BlockKey from a BlockKey, an (hi, lo) pair, its 32-digit hex form or a 128-bit int."""
    if isinstance(k, BlockKey):
        return k
    if isinstance(k, str):
        return BlockKey.from_hex(k)
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        v = int(k)
        if not 0 <= v < (1 << 128):
            raise ValueError("a 128-bit key out of range")
        return BlockKey(v >> 64, v & _MASK64)
    hi, lo = k
    hi, lo = int(hi), int(lo)
    if not (0 <= hi <= _MASK64 and 0 <= lo <= _MASK64):
        raise ValueError(f"key halves out of u64 range: {hi}, {lo}")
    return BlockKey(hi, lo)


def _from_digest(d: int) -> BlockKey:
    return BlockKey(d >> 64, d & _MASK64)


def root_key(namespace_secret: bytes, fingerprint: int) -> BlockKey:
    """k0 of a namespace for a layout (RootKey). A client normally takes it from HELLO."""
    h = xxhash.xxh3_128()
    h.update(namespace_secret)
    h.update(struct.pack("<Q", fingerprint))
    return _from_digest(h.intdigest())


def _tokens_i32(tokens) -> np.ndarray:
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError(f"tokens must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == np.dtype("<i4"):
        return arr
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"tokens must be integers, got {arr.dtype}")
    if arr.size and (arr.min() < -(1 << 31) or arr.max() >= (1 << 31)):
        raise ValueError("a token does not fit in int32")
    return arr.astype("<i4")


def chain_key(prev: KeyLike, block_tokens) -> BlockKey:
    """k_i from k_{i-1} and the tokens of block i (ChainKey)."""
    prev = as_key(prev)
    h = xxhash.xxh3_128()
    h.update(_KEY_WORDS.pack(prev.hi, prev.lo))
    h.update(_tokens_i32(block_tokens).tobytes())
    return _from_digest(h.intdigest())


def chain_block_keys(root: KeyLike, tokens, block_tokens: int) -> List[BlockKey]:
    """Keys of every complete block of `tokens` (len(tokens) // block_tokens of them)."""
    if block_tokens <= 0:
        return []
    arr = _tokens_i32(tokens)
    k = as_key(root)
    keys = []
    for off in range(0, arr.size - block_tokens + 1, block_tokens):
        k = chain_key(k, arr[off:off + block_tokens])
        keys.append(k)
    return keys


def namespace_id_from_name(name: Union[str, bytes]) -> int:
    """A 64-bit namespace id from a readable name (NamespaceIdFromName)."""
    data = name.encode("utf-8") if isinstance(name, str) else name
    return xxhash.xxh3_64_intdigest(data, seed=_NAMESPACE_SEED)


def keys_of(keys: Iterable[KeyLike]) -> List[BlockKey]:
    return [as_key(k) for k in keys]
