// What a record codec would do to a layout's NVMe records, measured on this machine: each
// family's objects (V4-shaped bytes, bench/v4_payload.h: the entries' real formats, FP8 with
// per-64 scales, FP4 indexer entries, fp32 carry) encoded and decoded on one core. `strata
// compare --codec` stores the simulator's NVMe records at raw / ratio bytes and restores them at
// min(PCIe, drive x ratio, decode threads x decode speed) (cachestore/nvme/codec_rule.h's rule);
// the figures it reports from these are estimates, which the output says.
// Thread safety: pure functions.
#pragma once

#include <array>
#include <string>

#include "cachestore/nvme/codec_rule.h"
#include "strata/layout.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::tools {

struct CodecEstimate {
  CodecKind codec = CodecKind::kNone;
  std::array<cachestore::CodecSample, kNumFamilies> samples{};  // families the layout has
  // raw / stored per family (1 for a family the codec does not shrink or the layout lacks).
  std::array<double, kNumFamilies> ratio{1, 1, 1, 1, 1};
  double decode_bytes_per_s = 0;  // one core, raw bytes, over every sampled family
  double min_ratio() const;       // over the layout's families
  // Restore rate in raw bytes/s from a drive reading `drive_bytes_per_s` over a link of
  // `link_bytes_per_s`, `decode_threads` decoding at once.
  double RestoreBytesPerS(double drive_bytes_per_s, double link_bytes_per_s,
                          uint32_t decode_threads) const;
};

// Encodes and decodes `objects` objects of every family of `layout` with `codec` (at least
// 64 MiB of each family is run through, so small objects time well).
Result<CodecEstimate> MeasureCodec(CodecKind codec, const CacheLayout& layout, int objects = 4);

// One line per family: "csa 1.158x, decode 950 MB/s per core".
std::string DescribeCodec(const CodecEstimate& e, const CacheLayout& layout);

}  // namespace strata::tools
