#include "tools/codec_estimate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "bench/v4_payload.h"
#include "cachestore/nvme/codec.h"

namespace strata::tools {

double CodecEstimate::min_ratio() const {
  double m = 0;
  for (Family f : kAllFamilies)
    if (samples[size_t(f)].objects) m = m == 0 ? ratio[size_t(f)] : std::min(m, ratio[size_t(f)]);
  return m == 0 ? 1 : m;
}

double CodecEstimate::RestoreBytesPerS(double drive, double link, uint32_t decode_threads) const {
  double rate = std::min(link, drive);
  if (codec == CodecKind::kNone) return rate;
  rate = std::min(link, drive * min_ratio());
  if (decode_bytes_per_s > 0) rate = std::min(rate, decode_bytes_per_s * double(decode_threads));
  return rate;
}

Result<CodecEstimate> MeasureCodec(CodecKind codec, const CacheLayout& layout, int objects) {
  if (objects < 1) return Status::InvalidArgument("codec estimate: at least one object");
  CodecEstimate e;
  e.codec = codec;
  if (codec == CodecKind::kNone) return e;
  using Clock = std::chrono::steady_clock;
  constexpr uint64_t kMinBytes = 64ull << 20;
  uint64_t decoded = 0;
  double decode_s = 0;
  for (Family f : kAllFamilies) {
    const uint64_t size = layout.FamilyBlockBytes(f);
    if (size == 0) continue;
    cachestore::CodecSample& s = e.samples[size_t(f)];
    std::vector<std::vector<std::byte>> raws;
    for (int i = 0; i < objects; ++i)
      raws.push_back(bench::MakeFamilyPayload(layout, f, 0xc0dec + uint64_t(i)));
    std::vector<std::byte> out(cachestore::MaxEncodedSize(size)), back(size);
    const int passes = int(std::max<uint64_t>(1, kMinBytes / (size * uint64_t(objects))));
    for (int pass = 0; pass < passes; ++pass)
      for (const std::vector<std::byte>& raw : raws) {
        const auto t0 = Clock::now();
        const cachestore::Encoded enc = cachestore::EncodeRecord(codec, raw, out);
        const auto t1 = Clock::now();
        s.raw_bytes += size;
        s.stored_bytes += enc.size;
        ++s.objects;
        s.encode_seconds += std::chrono::duration<double>(t1 - t0).count();
        if (enc.codec == CodecKind::kNone) continue;  // stored raw: nothing to decode
        STRATA_RETURN_IF_ERROR(cachestore::DecodeRecord(enc.codec, {out.data(), enc.size}, back));
        s.decode_seconds += std::chrono::duration<double>(Clock::now() - t1).count();
        s.decoded_bytes += size;
        if (pass == 0 && back != raw)
          return Status::Internal(fmt::format("codec estimate: {} did not round-trip {}",
                                              CodecKindName(codec), FamilyName(f)));
      }
    e.ratio[size_t(f)] = std::max(1.0, s.ratio());
    decoded += s.decoded_bytes;
    decode_s += s.decode_seconds;
  }
  e.decode_bytes_per_s = decode_s > 0 ? double(decoded) / decode_s : 0;
  return e;
}

std::string DescribeCodec(const CodecEstimate& e, const CacheLayout& layout) {
  std::string out;
  for (Family f : kAllFamilies) {
    if (layout.FamilyBlockBytes(f) == 0) continue;
    const cachestore::CodecSample& s = e.samples[size_t(f)];
    out += fmt::format("  {:<11} {:.3f}x  encode {:.0f} MB/s, ", FamilyName(f), e.ratio[size_t(f)],
                       s.encode_bytes_per_s() / 1e6);
    out += s.decoded_bytes
               ? fmt::format("decode {:.0f} MB/s per core\n", s.decode_bytes_per_s() / 1e6)
               : std::string("nothing shrank: stored raw\n");
  }
  return out;
}

}  // namespace strata::tools
