#include "tools/store_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace strata::tools {

Result<uint64_t> ParseBytes(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return Status::InvalidArgument("not a byte size: '" + std::string(text) + "'");
  uint64_t v = 0;
  for (size_t k = 0; k < i; ++k) {
    if (v > (UINT64_MAX - 9) / 10) return Status::InvalidArgument("byte size too large");
    v = v * 10 + uint64_t(text[k] - '0');
  }
  std::string unit;
  for (char ch : text.substr(i)) unit += char(std::toupper(static_cast<unsigned char>(ch)));
  int shift = 0;
  if (unit.empty() || unit == "B")
    shift = 0;
  else if (unit == "K" || unit == "KB" || unit == "KIB")
    shift = 10;
  else if (unit == "M" || unit == "MB" || unit == "MIB")
    shift = 20;
  else if (unit == "G" || unit == "GB" || unit == "GIB")
    shift = 30;
  else if (unit == "T" || unit == "TB" || unit == "TIB")
    shift = 40;
  else
    return Status::InvalidArgument("unknown size unit in '" + std::string(text) + "'");
  if (shift && v > (UINT64_MAX >> shift)) return Status::InvalidArgument("byte size too large");
  return v << shift;
}

namespace {

using nlohmann::json;

Result<uint64_t> BytesField(const json& j, const char* key, uint64_t fallback) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_string()) return ParseBytes(it->get<std::string>());
  return Status::InvalidArgument(std::string("'") + key +
                                 "' must be a byte count or a size string");
}

Result<DeviceKind> ParseDevice(const std::string& s) {
  for (DeviceKind k :
       {DeviceKind::kAuto, DeviceKind::kIoUring, DeviceKind::kPosix, DeviceKind::kMemory})
    if (DeviceKindName(k) == s) return k;
  return Status::InvalidArgument("unknown device '" + s + "' (auto, io_uring, posix, memory)");
}

Result<StoreConfig> ParseStoreConfigUnchecked(std::string_view json_text, const std::string& name) {
  json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument(name + ": not a JSON object");
  StoreConfig c;
  auto ctx = [&](Status s) { return s.WithContext(name); };
  if (auto h = j.find("host"); h != j.end()) {
    auto v = BytesField(*h, "capacity", c.host.capacity_bytes);
    if (!v.ok()) return ctx(v.status());
    c.host.capacity_bytes = *v;
    auto q = BytesField(*h, "namespace_quota", c.host.namespace_quota_bytes);
    if (!q.ok()) return ctx(q.status());
    c.host.namespace_quota_bytes = *q;
    if (h->contains("eviction")) c.host.eviction = (*h)["eviction"].get<std::string>();
    if (h->contains("admission")) c.host.admission = (*h)["admission"].get<std::string>();
  }
  if (j.contains("thin_swa_on_demotion"))
    c.thin_swa_on_demotion = j["thin_swa_on_demotion"].get<bool>();
  if (auto n = j.find("nvme"); n != j.end() && !n->is_null()) {
    if (n->contains("data_dir")) c.nvme.data_dir = (*n)["data_dir"].get<std::string>();
    for (auto [key, field] : {std::pair{"capacity", &c.nvme.capacity_bytes},
                              std::pair{"segment_size", &c.nvme.segment_bytes}}) {
      auto v = BytesField(*n, key, *field);
      if (!v.ok()) return ctx(v.status());
      *field = *v;
    }
    auto io = BytesField(*n, "max_io_size", c.nvme.max_io_bytes);
    if (!io.ok()) return ctx(io.status());
    c.nvme.max_io_bytes = uint32_t(*io);
    if (n->contains("queue_depth")) c.nvme.queue_depth = (*n)["queue_depth"].get<uint32_t>();
    if (n->contains("registered_files"))
      c.nvme.registered_files = (*n)["registered_files"].get<bool>();
    if (n->contains("sqpoll")) c.nvme.sqpoll = (*n)["sqpoll"].get<bool>();
    if (n->contains("sqpoll_idle_ms"))
      c.nvme.sqpoll_idle_ms = (*n)["sqpoll_idle_ms"].get<uint32_t>();
    if (n->contains("admission")) c.nvme.admission = (*n)["admission"].get<std::string>();
    if (n->contains("drives")) c.nvme.drives = (*n)["drives"].get<std::vector<std::string>>();
    if (n->contains("missing_drive"))
      c.nvme.missing_drive = (*n)["missing_drive"].get<std::string>();
    if (n->contains("verify_on_open")) {
      const std::string v = (*n)["verify_on_open"].get<std::string>();
      if (v != "headers" && v != "payloads")
        return Status::InvalidArgument(name + ": verify_on_open must be headers or payloads");
      c.nvme.verify_payloads_on_open = v == "payloads";
    }
    if (n->contains("device")) {
      auto d = ParseDevice((*n)["device"].get<std::string>());
      if (!d.ok()) return ctx(d.status());
      c.nvme.device = *d;
    }
  }
  // "codec": "auto" (every family) or {"csa": "zstd", "swa": "auto", ...}; "auto" leaves the
  // family to the codec rule ("codec_rule").
  auto set_codec = [&](Family f, const std::string& v) -> Status {
    if (v == "auto") {
      c.codec_rule.families[int(f)] = true;
      c.codec[int(f)] = CodecKind::kNone;
      return Status::Ok();
    }
    auto k = ParseCodec(v);
    if (!k.ok())
      return ctx(Status::InvalidArgument(std::string(k.status().message()) +
                                         "; or auto: the codec rule picks"));
    c.codec_rule.families[int(f)] = false;
    c.codec[int(f)] = *k;
    return Status::Ok();
  };
  if (auto cd = j.find("codec"); cd != j.end()) {
    if (cd->is_string()) {
      for (Family f : kAllFamilies) STRATA_RETURN_IF_ERROR(set_codec(f, cd->get<std::string>()));
    } else {
      for (auto& [fam, val] : cd->items()) {
        auto f = ParseFamily(fam);
        if (!f) return Status::InvalidArgument(name + ": unknown family '" + fam + "' in codec");
        STRATA_RETURN_IF_ERROR(set_codec(*f, val.get<std::string>()));
      }
    }
  }
  if (auto cr = j.find("codec_rule"); cr != j.end()) {
    StoreConfig::CodecRule& r = c.codec_rule;
    for (auto& [key, val] : cr->items()) {
      if (key == "candidate") {
        auto k = ParseCodec(val.get<std::string>());
        if (!k.ok()) return ctx(k.status());
        r.candidate = *k;
      } else if (key == "drive_read_gbps") {
        r.drive_read_bytes_per_s = val.get<double>() * 1e9;
      } else if (key == "drive_write_gbps") {
        r.drive_write_bytes_per_s = val.get<double>() * 1e9;
      } else if (key == "decode_threads") {
        r.decode_threads = val.get<uint32_t>();
      } else if (key == "encode_threads") {
        r.encode_threads = val.get<uint32_t>();
      } else if (key == "min_ratio") {
        r.min_ratio = val.get<double>();
      } else if (key == "sample_objects") {
        r.sample_objects = val.get<uint32_t>();
      } else {
        return Status::InvalidArgument(
            name + ": unknown codec_rule field '" + key +
            "' (candidate, drive_read_gbps, drive_write_gbps, decode_threads, encode_threads, "
            "min_ratio, sample_objects)");
      }
    }
  }
  STRATA_RETURN_IF_ERROR(ctx(c.Validate()));
  return c;
}

}  // namespace

Result<CodecKind> ParseCodec(const std::string& s) {
  for (CodecKind k : {CodecKind::kNone, CodecKind::kLz4, CodecKind::kLz4Shuffle2,
                      CodecKind::kLz4Shuffle4, CodecKind::kZstd})
    if (CodecKindName(k) == s) return k;
  return Status::InvalidArgument("unknown codec '" + s +
                                 "' (none, lz4, lz4+shuffle2, lz4+shuffle4, zstd)");
}

Result<StoreConfig> ParseStoreConfig(std::string_view json_text, const std::string& name) {
  try {
    return ParseStoreConfigUnchecked(json_text, name);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(name + ": " + e.what());
  }
}

Result<StoreConfig> LoadStoreConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read store config " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseStoreConfig(ss.str(), path);
}

std::string DescribeStoreConfig(const StoreConfig& c) {
  std::string codecs;
  for (Family f : kAllFamilies)
    codecs += fmt::format(
        "{}{}={}", codecs.empty() ? "" : ",", FamilyName(f),
        c.codec_rule.families[int(f)] ? std::string_view("auto") : CodecKindName(c.codec[int(f)]));
  if (c.codec_rule.any())
    codecs += fmt::format(
        " (auto: {} where it saves >= {:.2f}x and {} decode threads keep up "
        "with {:.1f} GB/s of drive reads)",
        CodecKindName(c.codec_rule.candidate), c.codec_rule.min_ratio, c.codec_rule.decode_threads,
        c.codec_rule.drive_read_bytes_per_s / 1e9);
  const std::string host = fmt::format("host={} bytes (eviction {}, admission {})",
                                       c.host.capacity_bytes, c.host.eviction, c.host.admission);
  if (c.nvme.data_dir.empty()) return fmt::format("{}, no NVMe tier, codecs {}", host, codecs);
  return fmt::format(
      "{}, nvme={} bytes in segments of {} at {} (device {}, qd {}{}{}, admission {}), SWA "
      "thinning on demotion {}, codecs {}",
      host, c.nvme.capacity_bytes, c.nvme.segment_bytes,
      c.nvme.drives.empty()
          ? c.nvme.data_dir
          : fmt::format("{} and {} more drives ({}; missing drive: {})", c.nvme.data_dir,
                        c.nvme.drives.size(), fmt::join(c.nvme.drives, ", "), c.nvme.missing_drive),
      DeviceKindName(c.nvme.device), c.nvme.queue_depth,
      c.nvme.registered_files ? ", registered files" : "",
      c.nvme.sqpoll ? fmt::format(", SQPOLL idle {} ms", c.nvme.sqpoll_idle_ms) : "",
      c.nvme.admission, c.thin_swa_on_demotion ? "on" : "off", codecs);
}

}  // namespace strata::tools
