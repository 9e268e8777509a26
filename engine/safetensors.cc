#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace strata::engine {
namespace {

struct DTypeInfo {
  const char* name;
  DType type;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {"F32", DType::kF32, 4},        {"BF16", DType::kBF16, 2},      {"F16", DType::kF16, 2},
    {"F8_E4M3", DType::kF8E4M3, 1}, {"F8_E8M0", DType::kF8E8M0, 1}, {"I8", DType::kI8, 1},
    {"U8", DType::kU8, 1},          {"I32", DType::kI32, 4},        {"I64", DType::kI64, 8},
};

float Bf16ToFloat(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float F16ToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  int exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      exp = 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      u = sign | uint32_t(exp + 112) << 23 | (mant << 13);
    }
  } else {
    u = sign | uint32_t(exp + 112) << 23 | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::string ShapeString(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

size_t DTypeSize(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.size;
  return 0;
}

const char* DTypeName(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.name;
  return "?";
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, map_size_);
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  auto bad = [&](const std::string& what) {
    return Status::InvalidArgument("safetensors " + path + ": " + what);
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return Status::IoError("stat " + path + ": " + std::strerror(errno));
  }
  const size_t size = size_t(st.st_size);
  if (size < 8) {
    close(fd);
    return bad("file of " + std::to_string(size) + " bytes has no header");
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return Status::IoError("mmap " + path + ": " + std::strerror(errno));
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_ = map;
  f->map_size_ = size;
  const auto* base = static_cast<const std::byte*>(map);

  uint64_t header_len;
  std::memcpy(&header_len, base, 8);
  if (header_len > size - 8)
    return bad("header length " + std::to_string(header_len) + " exceeds the file");
  const char* hp = reinterpret_cast<const char*>(base + 8);
  nlohmann::json h = nlohmann::json::parse(hp, hp + header_len, nullptr, false);
  if (h.is_discarded() || !h.is_object()) return bad("header is not a JSON object");
  const std::byte* data = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (v.is_object())
        for (auto& [k, mv] : v.items())
          if (mv.is_string()) f->metadata_[k] = mv.get<std::string>();
      continue;
    }
    auto tb = [&](const std::string& what) { return bad("tensor '" + name + "': " + what); };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      return tb("needs dtype, shape and data_offsets");
    TensorView t;
    t.name = name;
    const auto& dt = v["dtype"];
    if (!dt.is_string()) return tb("dtype is not a string");
    const DTypeInfo* info = nullptr;
    for (const auto& d : kDTypes)
      if (dt.get<std::string>() == d.name) info = &d;
    if (!info) return tb("unsupported dtype " + dt.get<std::string>());
    t.dtype = info->type;
    if (!v["shape"].is_array()) return tb("shape is not an array");
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) return tb("bad shape");
      t.shape.push_back(d.get<int64_t>());
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      return tb("data_offsets must be two unsigned integers");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_size)
      return tb("data range [" + std::to_string(b) + ", " + std::to_string(e) + ") outside the " +
                std::to_string(data_size) + " data bytes");
    const uint64_t want = uint64_t(t.numel()) * info->size;
    if (e - b != want)
      return tb("shape " + ShapeString(t.shape) + " of " + info->name + " needs " +
                std::to_string(want) + " bytes, the range holds " + std::to_string(e - b));
    t.bytes = std::span<const std::byte>(data + b, e - b);
    ranges.push_back({b, e});
    f->tensors_.emplace(name, std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) return bad("tensor data ranges overlap");
  return f;
}

std::vector<std::string> SafetensorsFile::Names() const {
  std::vector<std::string> out;
  for (const auto& [n, t] : tensors_) out.push_back(n);
  return out;
}

Result<TensorView> SafetensorsFile::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return Status::NotFound(path_ + ": no tensor '" + name + "'");
  return it->second;
}

Result<TensorView> SafetensorsFile::Get(const std::string& name, DType dtype,
                                        const std::vector<int64_t>& shape) const {
  STRATA_ASSIGN_OR_RETURN(TensorView t, Get(name));
  if (t.dtype != dtype || t.shape != shape)
    return Status::InvalidArgument(path_ + ": tensor '" + name + "' is " + DTypeName(t.dtype) +
                                   " " + ShapeString(t.shape) + ", expected " + DTypeName(dtype) +
                                   " " + ShapeString(shape));
  return t;
}

Result<std::vector<float>> ToFloats(const TensorView& t) {
  std::vector<float> out(size_t(t.numel()));
  const std::byte* p = t.bytes.data();
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(out.data(), p, out.size() * 4);
      return out;
    case DType::kBF16:
    case DType::kF16:
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        out[i] = t.dtype == DType::kBF16 ? Bf16ToFloat(v) : F16ToFloat(v);
      }
      return out;
    default:
      return Status::InvalidArgument("tensor '" + t.name + "' of " + DTypeName(t.dtype) +
                                     " is not a float tensor");
  }
}

}  // namespace strata::engine
