// Read-only safetensors files over mmap (the format of the released checkpoints and of the
// conformance cases): an 8-byte little-endian header length, a JSON header mapping tensor
// names to {dtype, shape, data_offsets}, then the raw data. Tensors are views into the mapping;
// nothing is copied.
//
// Every malformed file is a clear error naming the file and, where one is at fault, the
// tensor: short files, a header that is not JSON, unknown dtypes, shapes that disagree with
// the byte ranges, ranges outside the data or overlapping each other.
// Thread safety: immutable after Open; safe to share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::engine {

enum class DType : uint8_t {
  kF32,
  kBF16,
  kF16,
  kF8E4M3,  // FP8 e4m3 ("F8_E4M3")
  kF8E8M0,  // UE8M0 scales ("F8_E8M0")
  kI8,      // FP4 e2m1 packed two per byte is stored as I8 / U8 in the checkpoints
  kU8,
  kI32,
  kI64,
};

size_t DTypeSize(DType t);
const char* DTypeName(DType t);

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  size_t size() const { return tensors_.size(); }
  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }
  std::vector<std::string> Names() const;

  // NotFound naming the tensor if absent.
  Result<TensorView> Get(const std::string& name) const;
  // Also checks dtype and shape; InvalidArgument naming both if they differ.
  Result<TensorView> Get(const std::string& name, DType dtype,
                         const std::vector<int64_t>& shape) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, TensorView> tensors_;
};

// Converts a tensor of F32 / BF16 / F16 values to floats (other dtypes: InvalidArgument).
Result<std::vector<float>> ToFloats(const TensorView& t);

}  // namespace strata::engine
