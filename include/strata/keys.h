// Block keys: 128-bit chained hashes that name a block of tokens and everything before it.
//
//   k0 = H(namespace secret, layout fingerprint)
//   k_i = H(k_{i-1}, tokens of block i)
//
// H is XXH3-128 (implemented in api/keys.cc). Keys are keyed per namespace through the
// secret: a tenant that does not know another namespace's secret cannot compute, and so cannot
// aim a collision at, that namespace's keys. XXH3 is not a cryptographic MAC; a deployment that
// must resist an adversary who can observe keys should rotate secrets per tenant.
// Thread safety: values and pure functions only.
#pragma once

#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace strata {

// Identifies a namespace (a tenant, or a model deployment). Chosen by the caller; the store
// treats it as an opaque 64-bit value. NamespaceIdFromName hashes a human-readable name.
using NamespaceId = uint64_t;

struct BlockKey {
  uint64_t hi = 0;
  uint64_t lo = 0;
  auto operator<=>(const BlockKey&) const = default;
  std::string ToHex() const;  // 32 lowercase hex digits, hi first
};

struct BlockKeyHash {
  size_t operator()(const BlockKey& k) const noexcept {
    return k.lo ^ (k.hi * 0x9E3779B97F4A7C15ull);
  }
};

NamespaceId NamespaceIdFromName(std::string_view name);

// k0 of a namespace for a given layout.
BlockKey RootKey(std::span<const std::byte> namespace_secret, uint64_t layout_fingerprint);

// k_i from k_{i-1} and the tokens of block i.
BlockKey ChainKey(const BlockKey& prev, std::span<const int32_t> block_tokens);

// Keys of every complete block of `tokens` (tokens.size() / block_size of them).
std::vector<BlockKey> ChainBlockKeys(const BlockKey& root, std::span<const int32_t> tokens,
                                     uint32_t block_size);

}  // namespace strata
