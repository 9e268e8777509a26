#include "engine/weights.h"

#include <sys/mman.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>

#include "engine/safetensors.h"
#include "engine/weights_spec.h"
#include "kernels/fp4_math.h"
#include "kernels/fp8_math.h"
#include "kernels/thread_pool.h"

namespace strata::engine {
namespace {

Result<std::vector<float>> ScaleFloats(const TensorView& s) {
  if (s.dtype != DType::kF8E8M0) return ToFloats(s);
  std::vector<float> out(size_t(s.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = kernels::Ue8m0ToFloat(uint8_t(s.bytes[i]));
  return out;
}

// An FP8 e4m3 weight [o, i] with one scale per 128x128 block.
Result<std::vector<float>> DequantFp8(const TensorView& w, const TensorView& s) {
  STRATA_ASSIGN_OR_RETURN(std::vector<float> scales, ScaleFloats(s));
  const int64_t o = w.shape[0], in = w.shape[1], sc_cols = (in + 127) / 128;
  std::vector<float> out(size_t(o * in));
  for (int64_t r = 0; r < o; ++r)
    for (int64_t c = 0; c < in; ++c)
      out[size_t(r * in + c)] = kernels::Fp8E4m3ToFloat(uint8_t(w.bytes[size_t(r * in + c)])) *
                                scales[size_t((r / 128) * sc_cols + c / 128)];
  return out;
}

// An FP4 e2m1 weight [o, i / 2 bytes], element 2k in the low nibble, one UE8M0 scale per 32.
Result<std::vector<float>> DequantFp4(const TensorView& w, const TensorView& s, int64_t in) {
  STRATA_ASSIGN_OR_RETURN(std::vector<float> scales, ScaleFloats(s));
  const int64_t o = w.shape[0];
  std::vector<float> out(size_t(o * in));
  for (int64_t r = 0; r < o; ++r)
    for (int64_t c = 0; c < in; ++c) {
      const uint8_t byte = uint8_t(w.bytes[size_t(r * (in / 2) + c / 2)]);
      const uint8_t code = (c & 1) ? uint8_t(byte >> 4) : uint8_t(byte & 0xf);
      out[size_t(r * in + c)] =
          kernels::Fp4E2m1ToFloat(code) * scales[size_t(r * (in / 32) + c / 32)];
    }
  return out;
}

// splitmix64: a tiny, well-mixed generator; one stream per tensor so tensors fill in parallel.
struct SplitMix {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform on [-sqrt(3), sqrt(3)): zero mean, unit variance.
  float Uniform() {
    return (float(Next() >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * 1.7320508f;
  }
};

uint64_t NameSeed(const std::string& name, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool Contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

FloatStorage::FloatStorage(size_t n) : n_(n), bytes_(n * sizeof(float)) {
  if (n == 0) return;
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  if (bytes_ >= (size_t(4) << 20)) madvise(p, bytes_, MADV_HUGEPAGE);
  p_ = static_cast<float*>(p);
}

FloatStorage::~FloatStorage() {
  if (p_) munmap(p_, bytes_);
}

FloatStorage& FloatStorage::operator=(FloatStorage&& o) noexcept {
  if (this != &o) {
    if (p_) munmap(p_, bytes_);
    p_ = o.p_, n_ = o.n_, bytes_ = o.bytes_;
    o.p_ = nullptr, o.n_ = o.bytes_ = 0;
  }
  return *this;
}

Result<std::unique_ptr<ModelWeights>> ModelWeights::Load(const ModelConfig& config,
                                                         const std::string& path) {
  STRATA_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  STRATA_RETURN_IF_ERROR(CheckWeights(*file, config));
  auto w = std::unique_ptr<ModelWeights>(new ModelWeights());
  for (const TensorSpec& spec : ExpectedTensors(config)) {
    STRATA_ASSIGN_OR_RETURN(TensorView t, file->Get(spec.name));
    if (spec.kind == TensorKind::kInt32) {
      std::vector<int32_t> v(size_t(t.numel()));
      std::memcpy(v.data(), t.bytes.data(), v.size() * 4);
      for (int32_t e : v)
        if (e < 0 || e >= config.n_routed_experts)
          return Status::InvalidArgument(spec.name + " routes to expert " + std::to_string(e) +
                                         ", outside [0, " +
                                         std::to_string(config.n_routed_experts) + ")");
      w->bytes_ += v.size() * 4;
      w->i_[spec.name] = std::move(v);
      continue;
    }
    std::vector<float> v;
    if (t.dtype == DType::kF8E4M3) {
      STRATA_ASSIGN_OR_RETURN(TensorView s, file->Get(ScaleName(spec.name)));
      STRATA_ASSIGN_OR_RETURN(v, DequantFp8(t, s));
    } else if (t.dtype == DType::kI8 || t.dtype == DType::kU8) {
      STRATA_ASSIGN_OR_RETURN(TensorView s, file->Get(ScaleName(spec.name)));
      STRATA_ASSIGN_OR_RETURN(v, DequantFp4(t, s, spec.shape[1]));
    } else {
      STRATA_ASSIGN_OR_RETURN(v, ToFloats(t));
    }
    for (float x : v)
      if (!std::isfinite(x))
        return Status::InvalidArgument(path + ": tensor " + spec.name +
                                       " holds a non-finite value");
    w->bytes_ += v.size() * 4;
    FloatStorage st(v.size());
    std::memcpy(st.data(), v.data(), v.size() * 4);
    w->f_[spec.name] = std::move(st);
  }
  // The id: every tensor's name and values, in name order.
  std::vector<std::string> names;
  for (const auto& [n, t] : w->f_) names.push_back(n);
  for (const auto& [n, t] : w->i_) names.push_back(n);
  std::sort(names.begin(), names.end());
  XXH3_state_t* hs = XXH3_createState();
  XXH3_64bits_reset(hs);
  for (const std::string& n : names) {
    XXH3_64bits_update(hs, n.data(), n.size());
    if (auto it = w->f_.find(n); it != w->f_.end())
      XXH3_64bits_update(hs, it->second.data(), it->second.size() * 4);
    else
      XXH3_64bits_update(hs, w->i_[n].data(), w->i_[n].size() * 4);
  }
  w->id_ = XXH3_64bits_digest(hs);
  XXH3_freeState(hs);
  return w;
}

std::unique_ptr<ModelWeights> ModelWeights::Random(const ModelConfig& config, uint64_t seed) {
  auto w = std::unique_ptr<ModelWeights>(new ModelWeights());
  const uint64_t tag[2] = {0x52414e444f4d5754ull /* "RANDOMWT" */, seed};
  w->id_ = XXH3_64bits(tag, sizeof tag);
  const std::vector<TensorSpec> specs = ExpectedTensors(config);
  for (const TensorSpec& spec : specs) {
    const int64_t n =
        std::accumulate(spec.shape.begin(), spec.shape.end(), int64_t{1}, std::multiplies<>());
    if (spec.kind == TensorKind::kInt32) {
      std::vector<int32_t> v(static_cast<size_t>(n));
      SplitMix rng{NameSeed(spec.name, seed)};
      const int e = config.n_routed_experts, k = int(spec.shape[1]);
      std::vector<int32_t> perm(static_cast<size_t>(e));
      for (int64_t row = 0; row < spec.shape[0]; ++row) {
        std::iota(perm.begin(), perm.end(), 0);
        for (int i = 0; i < k; ++i) {  // partial Fisher-Yates: k distinct experts
          const int j = i + int(rng.Next() % uint64_t(e - i));
          std::swap(perm[size_t(i)], perm[size_t(j)]);
          v[size_t(row * k + i)] = perm[size_t(i)];
        }
      }
      w->bytes_ += v.size() * 4;
      w->i_[spec.name] = std::move(v);
    } else {
      w->f_[spec.name] = FloatStorage(size_t(n));
      w->bytes_ += size_t(n) * 4;
    }
  }
  // Fill in parallel, in chunks of 1M values with their own streams, so the result does not
  // depend on the number of threads.
  struct Chunk {
    FloatStorage* v;
    size_t begin, end;
    float mean, scale;
    uint64_t seed;
  };
  std::vector<Chunk> chunks;
  for (const TensorSpec& spec : specs) {
    if (spec.kind == TensorKind::kInt32) continue;
    const std::string& nm = spec.name;
    float mean = 0.0f, scale = 0.02f;
    if (Contains(nm, "norm")) {
      mean = 1.0f, scale = 0.1f;
    } else if (Contains(nm, "attn_sink")) {
      scale = 0.5f;
    } else if (Contains(nm, ".ape")) {
      scale = 0.2f;
    } else if (Contains(nm, "gate.bias") || Contains(nm, "_base")) {
      scale = 0.1f;
    } else if (Contains(nm, "_scale")) {
      mean = 1.0f, scale = 0.1f;
    }
    FloatStorage& v = w->f_[nm];
    const size_t kChunk = size_t(1) << 20;
    for (size_t b = 0; b < v.size(); b += kChunk)
      chunks.push_back(
          {&v, b, std::min(v.size(), b + kChunk), mean, scale, NameSeed(nm, seed) + b / kChunk});
  }
  kernels::ThreadPool::Default().ParallelFor(chunks.size(), [&](size_t i) {
    const Chunk& c = chunks[i];
    SplitMix rng{c.seed};
    float* d = c.v->data();
    for (size_t j = c.begin; j < c.end; ++j) d[j] = c.mean + c.scale * rng.Uniform();
  });
  return w;
}

const float* ModelWeights::F(const std::string& name) const {
  auto it = f_.find(name);
  if (it == f_.end()) std::abort();  // the model asks only for names ExpectedTensors lists
  return it->second.data();
}

const int32_t* ModelWeights::I(const std::string& name) const {
  auto it = i_.find(name);
  if (it == i_.end()) std::abort();
  return it->second.data();
}

}  // namespace strata::engine
