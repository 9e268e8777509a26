// State families: the kinds of per-block state strata stores (DESIGN.md, "Terms").
// Thread safety: constants and pure functions only.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace strata {

enum class Family : uint8_t {
  kCsa = 0,         // per CSA layer, B/4 main entries
  kCsaIndex = 1,    // per CSA layer, B/4 FP4 indexer entries
  kHca = 2,         // per HCA layer, B/128 main entries
  kSwa = 3,         // per layer incl. MTP, B SWA entries (full policy only)
  kCheckpoint = 4,  // per layer incl. MTP, the last window of SWA entries + compressor carry
};

inline constexpr int kNumFamilies = 5;
inline constexpr std::array<Family, kNumFamilies> kAllFamilies = {
    Family::kCsa, Family::kCsaIndex, Family::kHca, Family::kSwa, Family::kCheckpoint};

inline constexpr std::string_view FamilyName(Family f) {
  constexpr std::array<std::string_view, kNumFamilies> kNames = {"csa", "csa_index", "hca", "swa",
                                                                 "checkpoint"};
  return kNames[static_cast<int>(f)];
}

inline std::optional<Family> ParseFamily(std::string_view name) {
  for (Family f : kAllFamilies)
    if (FamilyName(f) == name) return f;
  return std::nullopt;
}

// A set of families, one bit each.
class FamilyMask {
 public:
  constexpr FamilyMask() = default;
  constexpr explicit FamilyMask(uint8_t bits) : bits_(bits) {}
  constexpr FamilyMask(std::initializer_list<Family> fs) {
    for (Family f : fs) Add(f);
  }
  static constexpr FamilyMask All() { return FamilyMask(uint8_t{(1u << kNumFamilies) - 1}); }

  constexpr void Add(Family f) { bits_ |= uint8_t(1u << static_cast<int>(f)); }
  constexpr bool Has(Family f) const { return bits_ & (1u << static_cast<int>(f)); }
  constexpr bool Contains(FamilyMask o) const { return (bits_ & o.bits_) == o.bits_; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr uint8_t bits() const { return bits_; }
  constexpr bool operator==(const FamilyMask&) const = default;

 private:
  uint8_t bits_ = 0;
};

}  // namespace strata
