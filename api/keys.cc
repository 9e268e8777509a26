// Block key chaining (include/strata/keys.h) on XXH3-128.
#define XXH_STATIC_LINKING_ONLY
#include "strata/keys.h"

#include <xxhash.h>

#include <cstring>

namespace strata {
namespace {

BlockKey FromHash(XXH128_hash_t h) { return BlockKey{h.high64, h.low64}; }

}  // namespace

std::string BlockKey::ToHex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kDigits[(hi >> (4 * i)) & 0xf];
    out[31 - i] = kDigits[(lo >> (4 * i)) & 0xf];
  }
  return out;
}

NamespaceId NamespaceIdFromName(std::string_view name) {
  return XXH3_64bits_withSeed(name.data(), name.size(), 0x5354524154414e53ull /* "STRATANS" */);
}

BlockKey RootKey(std::span<const std::byte> namespace_secret, uint64_t layout_fingerprint) {
  XXH3_state_t st;
  XXH3_128bits_reset(&st);
  XXH3_128bits_update(&st, namespace_secret.data(), namespace_secret.size());
  XXH3_128bits_update(&st, &layout_fingerprint, sizeof layout_fingerprint);
  return FromHash(XXH3_128bits_digest(&st));
}

BlockKey ChainKey(const BlockKey& prev, std::span<const int32_t> block_tokens) {
  XXH3_state_t st;
  XXH3_128bits_reset(&st);
  const uint64_t words[2] = {prev.hi, prev.lo};
  XXH3_128bits_update(&st, words, sizeof words);
  XXH3_128bits_update(&st, block_tokens.data(), block_tokens.size_bytes());
  return FromHash(XXH3_128bits_digest(&st));
}

std::vector<BlockKey> ChainBlockKeys(const BlockKey& root, std::span<const int32_t> tokens,
                                     uint32_t block_size) {
  std::vector<BlockKey> keys;
  if (block_size == 0) return keys;
  keys.reserve(tokens.size() / block_size);
  BlockKey k = root;
  for (size_t off = 0; off + block_size <= tokens.size(); off += block_size) {
    k = ChainKey(k, tokens.subspan(off, block_size));
    keys.push_back(k);
  }
  return keys;
}

}  // namespace strata
