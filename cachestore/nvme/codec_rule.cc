#include "cachestore/nvme/codec_rule.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace strata::cachestore {

CodecDecision DecideCodec(const StoreConfig::CodecRule& rule, const CodecSample& s) {
  const double ratio = s.ratio();
  const double decode = rule.decode_threads * s.decode_bytes_per_s();
  const double encode = rule.encode_threads * s.encode_bytes_per_s();
  const double drive_r = rule.drive_read_bytes_per_s, drive_w = rule.drive_write_bytes_per_s;
  const std::string figures = fmt::format(
      "{}: size ratio {:.3f}, decode {:.0f} MB/s x {} threads, encode {:.0f} MB/s x {} threads, "
      "drive read {:.0f} MB/s, write {}",
      CodecKindName(rule.candidate), ratio, s.decode_bytes_per_s() / 1e6, rule.decode_threads,
      s.encode_bytes_per_s() / 1e6, rule.encode_threads, drive_r / 1e6,
      drive_w > 0 ? fmt::format("{:.0f} MB/s", drive_w / 1e6) : std::string("not a condition"));
  if (ratio < rule.min_ratio)
    return {CodecKind::kNone,
            fmt::format("none ({}; saves less than {:.2f}x)", figures, rule.min_ratio)};
  // With the codec a restore runs at min(drive * ratio, decode): never below the drive's rate
  // exactly when the decoders keep up with the drive.
  if (decode < drive_r)
    return {CodecKind::kNone,
            fmt::format("none ({}; restores would run at {:.0f} MB/s, below the drive)", figures,
                        std::min(drive_r * ratio, decode) / 1e6)};
  if (drive_w > 0 && encode < drive_w)
    return {CodecKind::kNone,
            fmt::format("none ({}; demotions would run below the drive)", figures)};
  return {rule.candidate, fmt::format("{} ({})", CodecKindName(rule.candidate), figures)};
}

CodecChooser::CodecChooser(const StoreConfig& config) : rule_(config.codec_rule) {
  for (int f = 0; f < kNumFamilies; ++f)
    chosen_[size_t(f)].store(rule_.families[size_t(f)] ? -1 : int(config.codec[size_t(f)]));
}

CodecKind CodecChooser::Want(Family f, bool* sample) const {
  const int c = chosen_[size_t(f)].load(std::memory_order_acquire);
  *sample = c < 0;
  return c < 0 ? rule_.candidate : CodecKind(c);
}

void CodecChooser::AddSample(Family f, uint64_t raw, uint64_t stored, double encode_s,
                             double decode_s) {
  std::lock_guard l(mu_);
  if (chosen_[size_t(f)].load() >= 0) return;  // another thread's sample decided already
  CodecSample& s = samples_[size_t(f)];
  s.raw_bytes += raw, s.stored_bytes += stored;
  if (stored < raw) s.decoded_bytes += raw;
  s.encode_seconds += encode_s, s.decode_seconds += decode_s;
  if (++s.objects < rule_.sample_objects) return;
  const CodecDecision d = DecideCodec(rule_, s);
  spdlog::info("strata nvme codec rule, family {}: {}", FamilyName(f), d.why);
  chosen_[size_t(f)].store(int(d.codec), std::memory_order_release);
}

void CodecChooser::VisitCounters(const CounterVisitor& visit) const {
  std::lock_guard l(mu_);
  for (Family f : kAllFamilies) {
    const std::string p = fmt::format("nvme_codec_{}", FamilyName(f));
    const int c = chosen_[size_t(f)].load();
    const CodecSample& s = samples_[size_t(f)];
    visit(p, uint64_t(c < 0 ? 0 : c));
    visit(p + "_decided", c >= 0);
    visit(p + "_ratio_milli", s.objects ? uint64_t(s.ratio() * 1000 + 0.5) : 0);
    visit(p + "_encode_mbps", uint64_t(s.encode_bytes_per_s() / 1e6));
    visit(p + "_decode_mbps", uint64_t(s.decode_bytes_per_s() / 1e6));
  }
}

}  // namespace strata::cachestore
