// StoreConfig validation and the API's enum names.
#include <string>

#include "strata/store.h"

namespace strata {

std::string_view TierName(Tier t) {
  switch (t) {
    case Tier::kNone:
      return "none";
    case Tier::kDevice:
      return "device";
    case Tier::kHost:
      return "host";
    case Tier::kNvme:
      return "nvme";
    case Tier::kCluster:
      return "cluster";
  }
  return "?";
}

std::string_view DeviceKindName(DeviceKind k) {
  switch (k) {
    case DeviceKind::kAuto:
      return "auto";
    case DeviceKind::kIoUring:
      return "io_uring";
    case DeviceKind::kPosix:
      return "posix";
    case DeviceKind::kMemory:
      return "memory";
  }
  return "?";
}

std::string_view CodecKindName(CodecKind k) {
  switch (k) {
    case CodecKind::kNone:
      return "none";
    case CodecKind::kLz4:
      return "lz4";
    case CodecKind::kLz4Shuffle2:
      return "lz4+shuffle2";
    case CodecKind::kLz4Shuffle4:
      return "lz4+shuffle4";
    case CodecKind::kZstd:
      return "zstd";
  }
  return "?";
}

Status StoreConfig::Validate() const {
  if (host.capacity_bytes < 4096)
    return Status::InvalidArgument("host.capacity_bytes must be at least 4096");
  auto one_of = [](const std::string& v, std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (v == n) return true;
    return false;
  };
  if (!one_of(host.eviction, {"lru", "s3fifo", "cost"}))
    return Status::InvalidArgument("host.eviction '" + host.eviction +
                                   "' is not one of lru, s3fifo, cost");
  if (!one_of(host.admission, {"all", "second-use"}))
    return Status::InvalidArgument("host.admission '" + host.admission +
                                   "' is not one of all, second-use");
  if (!one_of(nvme.admission, {"all", "second-use"}))
    return Status::InvalidArgument("nvme.admission '" + nvme.admission +
                                   "' is not one of all, second-use");
  const CodecRule& r = codec_rule;
  if (r.any()) {
    if (uint8_t(r.candidate) > uint8_t(kLastCodecKind) || r.candidate == CodecKind::kNone)
      return Status::InvalidArgument("codec_rule.candidate must be a codec other than none");
    if (!(r.drive_read_bytes_per_s > 0) || r.drive_write_bytes_per_s < 0)
      return Status::InvalidArgument(
          "codec_rule: drive_read_gbps must be > 0 and drive_write_gbps >= 0");
    if (r.decode_threads == 0 || r.encode_threads == 0 || r.sample_objects == 0)
      return Status::InvalidArgument(
          "codec_rule: decode_threads, encode_threads and sample_objects must be >= 1");
    if (!(r.min_ratio >= 1.0)) return Status::InvalidArgument("codec_rule.min_ratio must be >= 1");
  }
  if (nvme.data_dir.empty()) return Status::Ok();
  const auto& n = nvme;
  if (n.segment_bytes < (1u << 20) || n.segment_bytes % 4096)
    return Status::InvalidArgument("nvme.segment_bytes must be a multiple of 4096, >= 1 MiB");
  if (n.capacity_bytes / n.segment_bytes < 2)
    return Status::InvalidArgument("nvme.capacity_bytes must hold at least 2 segments of " +
                                   std::to_string(n.segment_bytes) + " bytes");
  if (n.capacity_bytes / n.segment_bytes > (1u << 20))
    return Status::InvalidArgument("nvme: more than 2^20 segments; use larger segments");
  if ((n.registered_files || n.sqpoll) &&
      (n.device == DeviceKind::kPosix || n.device == DeviceKind::kMemory))
    return Status::InvalidArgument(
        "nvme.registered_files and nvme.sqpoll need the io_uring device");
  if (n.queue_depth == 0 || n.queue_depth > 4096)
    return Status::InvalidArgument("nvme.queue_depth must be in 1..4096");
  if (!one_of(n.missing_drive, {"error", "degrade"}))
    return Status::InvalidArgument("nvme.missing_drive '" + n.missing_drive +
                                   "' is not one of error, degrade");
  for (size_t i = 0; i < n.drives.size(); ++i) {
    if (n.drives[i].empty()) return Status::InvalidArgument("nvme.drives: an empty directory");
    if (n.drives[i] == n.data_dir)
      return Status::InvalidArgument("nvme.drives: " + n.drives[i] + " is the data_dir");
    for (size_t k = 0; k < i; ++k)
      if (n.drives[k] == n.drives[i])
        return Status::InvalidArgument("nvme.drives: " + n.drives[i] + " given twice");
  }
  if (!n.drives.empty() && n.device == DeviceKind::kMemory)
    return Status::InvalidArgument("nvme.drives: not with the memory device");
  if (n.capacity_bytes / n.segment_bytes < 1 + n.drives.size())
    return Status::InvalidArgument("nvme: fewer segments than drives");
  if (n.max_io_bytes < 4096 || n.max_io_bytes % 4096)
    return Status::InvalidArgument("nvme.max_io_bytes must be a positive multiple of 4096");
  for (CodecKind c : codec)
    if (uint8_t(c) > uint8_t(kLastCodecKind)) return Status::InvalidArgument("unknown codec");
  return Status::Ok();
}

}  // namespace strata
