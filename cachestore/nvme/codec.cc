#include "cachestore/nvme/codec.h"

#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

namespace strata::cachestore {
namespace {

size_t LaneOf(CodecKind c) {
  switch (c) {
    case CodecKind::kLz4Shuffle2:
      return 2;
    case CodecKind::kLz4Shuffle4:
      return 4;
    default:
      return 0;
  }
}

// zstd level 1: V4's FP8 entries carry about 6.5 bits per byte; level 1 takes most of that at
// hundreds of MB/s per core (higher levels gain little on such bytes and cost much more).
constexpr int kZstdLevel = 1;

ZSTD_CCtx* ZstdCompressor() {
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> c(ZSTD_createCCtx(),
                                                                    ZSTD_freeCCtx);
  return c.get();
}
ZSTD_DCtx* ZstdDecompressor() {
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(),
                                                                    ZSTD_freeDCtx);
  return d.get();
}

std::vector<std::byte>& Scratch(size_t n) {
  thread_local std::vector<std::byte> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

}  // namespace

void Shuffle(std::span<const std::byte> in, std::span<std::byte> out, size_t lane) {
  const size_t n = in.size() / lane;
  const std::byte* src = in.data();
  std::byte* dst = out.data();
  for (size_t j = 0; j < lane; ++j)
    for (size_t i = 0; i < n; ++i) dst[j * n + i] = src[i * lane + j];
  std::memcpy(dst + n * lane, src + n * lane, in.size() - n * lane);
}

void Unshuffle(std::span<const std::byte> in, std::span<std::byte> out, size_t lane) {
  const size_t n = in.size() / lane;
  const std::byte* src = in.data();
  std::byte* dst = out.data();
  for (size_t j = 0; j < lane; ++j)
    for (size_t i = 0; i < n; ++i) dst[i * lane + j] = src[j * n + i];
  std::memcpy(dst + n * lane, src + n * lane, in.size() - n * lane);
}

size_t MaxEncodedSize(size_t raw_size) {
  const size_t lz = size_t(LZ4_compressBound(
      int(raw_size < size_t(LZ4_MAX_INPUT_SIZE) ? raw_size : size_t(LZ4_MAX_INPUT_SIZE))));
  return std::max({lz, ZSTD_compressBound(raw_size), raw_size});
}

Encoded EncodeRecord(CodecKind codec, std::span<const std::byte> raw, std::span<std::byte> out) {
  auto store_raw = [&]() {
    std::memcpy(out.data(), raw.data(), raw.size());
    return Encoded{CodecKind::kNone, raw.size()};
  };
  if (codec == CodecKind::kNone || raw.empty()) return store_raw();
  if (codec == CodecKind::kZstd) {
    // Only a result smaller than raw is worth keeping: cap the output there.
    const size_t n = ZSTD_compressCCtx(ZstdCompressor(), out.data(), raw.size() - 1, raw.data(),
                                       raw.size(), kZstdLevel);
    if (ZSTD_isError(n)) return store_raw();  // dstSize_tooSmall: it did not shrink
    return Encoded{codec, n};
  }
  if (raw.size() > size_t(LZ4_MAX_INPUT_SIZE)) return store_raw();
  std::span<const std::byte> src = raw;
  if (size_t lane = LaneOf(codec)) {
    auto& tmp = Scratch(raw.size());
    Shuffle(raw, std::span(tmp.data(), raw.size()), lane);
    src = std::span<const std::byte>(tmp.data(), raw.size());
  }
  // Only a result smaller than raw is worth keeping: cap the output there.
  const int cap = int(raw.size() - 1);
  const int n = LZ4_compress_default(reinterpret_cast<const char*>(src.data()),
                                     reinterpret_cast<char*>(out.data()), int(src.size()), cap);
  if (n <= 0) return store_raw();
  return Encoded{codec, size_t(n)};
}

Status DecodeRecord(CodecKind codec, std::span<const std::byte> stored, std::span<std::byte> raw) {
  if (codec == CodecKind::kNone) {
    if (stored.size() != raw.size())
      return Status::Corruption("raw record size " + std::to_string(stored.size()) +
                                " != expected " + std::to_string(raw.size()));
    std::memcpy(raw.data(), stored.data(), raw.size());
    return Status::Ok();
  }
  if (codec == CodecKind::kZstd) {
    const size_t n = ZSTD_decompressDCtx(ZstdDecompressor(), raw.data(), raw.size(), stored.data(),
                                         stored.size());
    if (ZSTD_isError(n))
      return Status::Corruption(std::string("zstd payload does not decode: ") +
                                ZSTD_getErrorName(n));
    if (n != raw.size())
      return Status::Corruption("zstd payload decodes to " + std::to_string(n) +
                                " bytes, expected " + std::to_string(raw.size()));
    return Status::Ok();
  }
  const size_t lane = LaneOf(codec);
  if (codec != CodecKind::kLz4 && lane == 0)
    return Status::Corruption("unknown codec " + std::to_string(int(codec)));
  std::span<std::byte> dst = raw;
  if (lane) dst = std::span(Scratch(raw.size()).data(), raw.size());
  const int n =
      LZ4_decompress_safe(reinterpret_cast<const char*>(stored.data()),
                          reinterpret_cast<char*>(dst.data()), int(stored.size()), int(dst.size()));
  if (n != int(raw.size()))
    return Status::Corruption("lz4 payload decodes to " + std::to_string(n) + " bytes, expected " +
                              std::to_string(raw.size()));
  if (lane) Unshuffle(dst, raw, lane);
  return Status::Ok();
}

}  // namespace strata::cachestore
