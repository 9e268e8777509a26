// Prints block keys computed by the C++ code (api/keys.cc), one 32-digit hex key (hi first) per
// line, so tests in other languages (python/tests) can check that they compute the same keys.
//
//   strata_print_keys chain ROOT_HEX BLOCK_TOKENS TOKEN...   ChainBlockKeys(root, tokens, block)
//   strata_print_keys root SECRET FINGERPRINT                RootKey(secret bytes, fingerprint)
//
// ROOT_HEX is 32 hex digits, hi first (BlockKey::ToHex); tokens are decimal int32 values.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "strata/keys.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: strata_print_keys chain ROOT_HEX BLOCK_TOKENS TOKEN...\n"
               "       strata_print_keys root SECRET FINGERPRINT\n");
  return 2;
}

bool ParseU64(const char* s, int base, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  *out = std::strtoull(s, &end, base);
  return errno == 0 && end != s && *end == '\0';
}

bool ParseRoot(const std::string& hex, strata::BlockKey* key) {
  if (hex.size() != 32) return false;
  return ParseU64(hex.substr(0, 16).c_str(), 16, &key->hi) &&
         ParseU64(hex.substr(16).c_str(), 16, &key->lo);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "root") == 0) {
    uint64_t fingerprint = 0;
    if (!ParseU64(argv[3], 0, &fingerprint)) return Usage();
    const std::string secret = argv[2];
    const auto key =
        strata::RootKey(std::as_bytes(std::span(secret.data(), secret.size())), fingerprint);
    std::printf("%s\n", key.ToHex().c_str());
    return 0;
  }
  if (argc < 4 || std::strcmp(argv[1], "chain") != 0) return Usage();
  strata::BlockKey root;
  uint64_t block = 0;
  if (!ParseRoot(argv[2], &root) || !ParseU64(argv[3], 10, &block) || block > UINT32_MAX)
    return Usage();
  std::vector<int32_t> tokens;
  for (int i = 4; i < argc; ++i) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(argv[i], &end, 10);
    if (errno != 0 || end == argv[i] || *end != '\0' || v < INT32_MIN || v > INT32_MAX)
      return Usage();
    tokens.push_back(static_cast<int32_t>(v));
  }
  for (const auto& k : strata::ChainBlockKeys(root, tokens, static_cast<uint32_t>(block)))
    std::printf("%s\n", k.ToHex().c_str());
  return 0;
}
