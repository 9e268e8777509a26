// The codec rule (issue 12, "Compression that pays"): which record codec a family gets on the
// NVMe tier. A codec pays when it stores more tokens per drive without making restores (and, if
// asked, demotions) slower than the drive itself:
//
//   restore rate, raw bytes/s:  without = drive_read;  with = min(drive_read * ratio,
//                                                              decode_threads * decode_speed)
//   chosen  <=>  ratio >= min_ratio  and  with >= without  (decode_threads * decode_speed >=
//                drive_read)  and, when drive_write is set, encode_threads * encode_speed >=
//                drive_write
//
// The ratio and speeds are measured on the family's own objects: the first `sample_objects` of
// each family marked "auto" are encoded with the candidate and decoded again, both timed, while
// they are still written raw; then the rule decides once, for the life of the store.
// Thread safety: CodecChooser is safe from any thread (a mutex around the samples; the decision
// is an atomic read on the write path).
#pragma once

#include <array>
#include <atomic>
#include <mutex>
#include <string>

#include "strata/store.h"

namespace strata::cachestore {

struct CodecSample {
  uint64_t raw_bytes = 0, stored_bytes = 0;
  uint64_t decoded_bytes = 0;  // raw bytes of the objects the codec shrank (those are decoded)
  double encode_seconds = 0, decode_seconds = 0;
  uint32_t objects = 0;
  double ratio() const { return stored_bytes ? double(raw_bytes) / double(stored_bytes) : 1.0; }
  double encode_bytes_per_s() const {
    return encode_seconds > 0 ? double(raw_bytes) / encode_seconds : 0;
  }
  double decode_bytes_per_s() const {
    return decode_seconds > 0 ? double(decoded_bytes) / decode_seconds : 0;
  }
};

struct CodecDecision {
  CodecKind codec = CodecKind::kNone;
  std::string why;  // one line for the log
};

// The rule itself: a pure function of the configuration and the measured sample.
CodecDecision DecideCodec(const StoreConfig::CodecRule& rule, const CodecSample& sample);

class CodecChooser {
 public:
  explicit CodecChooser(const StoreConfig& config);

  // The codec to write an object of `f` with, and whether it is to be sampled (timed with the
  // candidate, then written raw).
  CodecKind Want(Family f, bool* sample) const;
  // One sampled object: `stored` == `raw` when the codec did not shrink it (then not decoded).
  void AddSample(Family f, uint64_t raw, uint64_t stored, double encode_s, double decode_s);

  // Per family: "nvme_codec_<fam>" (the codec id written now), "nvme_codec_<fam>_decided",
  // "nvme_codec_<fam>_ratio_milli", "_encode_mbps", "_decode_mbps" (the sample's figures).
  void VisitCounters(const CounterVisitor& visit) const;

 private:
  const StoreConfig::CodecRule rule_;
  // The codec written per family: the fixed one, the rule's choice, or -1 while still sampling.
  std::array<std::atomic<int>, kNumFamilies> chosen_;
  mutable std::mutex mu_;
  std::array<CodecSample, kNumFamilies> samples_;  // GUARDED_BY(mu_)
};

}  // namespace strata::cachestore
