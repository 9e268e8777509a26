// The cache store API (DESIGN.md, "Store"): Lookup, Put, Get, Release, Delete, Flush, Stats.
//
// The in-process store (OpenStore) and, later, the strata-server client implement this same
// interface; the engine does not know which it has.
//
// Objects are named by (namespace, block key, family). Every object carries the layout
// fingerprint it was written under; Lookup and Get only see objects of the fingerprint they ask
// for, so bytes are never served across layouts.
//
// Thread safety: every method is safe for concurrent use without external synchronization.
// Views returned by Get stay valid and unchanged until Release is called for their pin.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "strata/family.h"
#include "strata/keys.h"
#include "strata/status.h"

namespace strata {

// The tiers, fastest first. The values are fixed (the daemon's wire format and the index carry
// them): kDevice is GPU HBM owned by a CUDA backend, kCluster the tier shared across nodes.
enum class Tier : uint8_t { kNone = 0, kDevice = 1, kHost = 2, kNvme = 3, kCluster = 4 };
// Size of a Tier-indexed array (slot 0, kNone, stays unused or counts misses).
inline constexpr int kNumTiers = 5;
inline constexpr std::array<Tier, kNumTiers - 1> kAllTiers = {Tier::kDevice, Tier::kHost,
                                                              Tier::kNvme, Tier::kCluster};
std::string_view TierName(Tier t);

struct ObjectKey {
  NamespaceId ns = 0;
  BlockKey block;
  Family family = Family::kCsa;
  auto operator<=>(const ObjectKey&) const = default;
};

struct ObjectKeyHash {
  size_t operator()(const ObjectKey& k) const noexcept {
    return BlockKeyHash{}(k.block) ^ (k.ns * 0xff51afd7ed558ccdull) ^ static_cast<size_t>(k.family);
  }
};

// What Lookup found for one block.
struct BlockPresence {
  FamilyMask families;                    // families stored for this block
  std::array<Tier, kNumFamilies> tier{};  // the fastest tier holding each family
};

struct LookupResult {
  // Number of leading keys whose blocks hold every `required` family.
  size_t hit_blocks = 0;
  // One entry per key examined: the hit blocks, then (if any) the first block that missed.
  std::vector<BlockPresence> blocks;
  // Payload bytes of every family stored for the hit blocks, by the fastest tier holding each.
  std::array<uint64_t, kNumTiers> hit_bytes{};
};

// A pinned, read-only view of one object. `data` is null when the object was not found (or was
// found corrupt, which counts as a miss); such a view holds no pin.
struct ObjectView {
  ObjectKey key;
  const std::byte* data = nullptr;
  size_t size = 0;
  Tier served_from = Tier::kNone;  // where the bytes were when Get was called
  uint64_t pin = 0;                // pass to Release; 0 for a miss
  // A miss because the object failed verification (a bad record, or a host copy changed after
  // it was stored): counted and dropped. The daemon reports it as such.
  bool corrupt = false;
  bool found() const { return data != nullptr; }
};

enum class DeviceKind : uint8_t {
  kAuto = 0,     // io_uring if the kernel allows it, else posix
  kIoUring = 1,  // io_uring, O_DIRECT
  kPosix = 2,    // pread/pwrite, O_DIRECT
  kMemory = 3,   // RAM only, for tests; nothing survives the process
};
std::string_view DeviceKindName(DeviceKind k);

enum class CodecKind : uint8_t {
  kNone = 0,         // stored raw
  kLz4 = 1,          // LZ4 on the raw bytes
  kLz4Shuffle2 = 2,  // byte-shuffle 2-byte lanes (BF16), then LZ4
  kLz4Shuffle4 = 3,  // byte-shuffle 4-byte lanes (fp32), then LZ4
  kZstd = 4,         // zstd (level 1) on the raw bytes: finds V4's FP8 entries' skewed bytes
};
inline constexpr CodecKind kLastCodecKind = CodecKind::kZstd;
std::string_view CodecKindName(CodecKind k);

struct HostTierConfig {
  uint64_t capacity_bytes = 1ull << 30;  // DRAM arena size
  // Fault the whole arena in at open (MAP_POPULATE): a cache's memory is used anyway, and a
  // first-touch page fault per 4 KiB on the put path costs more than the copy itself.
  bool prefault = true;
  // Placement (DESIGN.md, "Store"): the eviction policy of the DRAM tier ("lru", "s3fifo",
  // "cost") and which objects it takes ("all"; "second-use": only objects already hit).
  std::string eviction = "lru";
  std::string admission = "all";
  // Host-tier bytes one namespace (tenant) may hold; 0: no limit. A put over it evicts the
  // namespace's own objects first.
  uint64_t namespace_quota_bytes = 0;
};

struct NvmeTierConfig {
  // Empty: no NVMe tier (host-only store; evictions drop).
  std::string data_dir;
  uint64_t capacity_bytes = 16ull << 30;  // segment files' total size, preallocated
  uint64_t segment_bytes = 256ull << 20;  // size of one segment file; a multiple of 4 KiB
  DeviceKind device = DeviceKind::kAuto;
  uint32_t queue_depth = 32;  // I/Os in flight per submitting thread
  // io_uring set-up (cachestore/nvme/device.h, UringOptions): the segment files registered with
  // every ring, and SQPOLL rings (a kernel thread per ring polls; idle after sqpoll_idle_ms).
  bool registered_files = false;
  bool sqpoll = false;
  uint32_t sqpoll_idle_ms = 50;
  uint32_t max_io_bytes = 1u << 20;  // large records are split into I/Os of this size
  // At open, read every record whole and drop those whose payload checksum fails (default: read
  // only headers; payloads are verified on every read anyway, so a bad one is never served).
  bool verify_payloads_on_open = false;
  // Which demoted objects NVMe takes: "all", or "second-use" (only objects hit at least once
  // since their put; the others are dropped when DRAM evicts them). Flush writes every object.
  std::string admission = "all";
  // More drives: directories on other drives that hold segments too (empty: one drive). Segment
  // i lives on drive i mod (1 + drives.size()), drive 0 being data_dir's; a segment on another
  // drive is a file in that drive's directory with a link to it under data_dir/segments, so the
  // index, recovery and fsck see one numbered set of segments. Each drive has its own io_uring
  // ring and submitting thread. Every directory holds an identity file naming the store and its
  // place in it (cachestore/nvme/drives.h).
  std::vector<std::string> drives;
  // A drive missing or not this store's at open: "error" (default) refuses to open; "degrade"
  // opens without it: its records are misses and its segments take no writes.
  std::string missing_drive = "error";
};

struct StoreConfig {
  HostTierConfig host;
  NvmeTierConfig nvme;
  // Codec per family on the NVMe tier. Measured by `strata bench store` on V4-shaped state:
  // FP8/FP4 entries do not shrink under LZ4 (1.00-1.02x with any shuffle) while costing ~1 GB/s
  // of one core, so every family is stored raw by default; fp32-heavy state can opt in.
  std::array<CodecKind, kNumFamilies> codec = {CodecKind::kNone, CodecKind::kNone, CodecKind::kNone,
                                               CodecKind::kNone, CodecKind::kNone};

  // The codec rule (`"codec": {"csa": "auto"}`, cachestore/nvme/codec_rule.h): for the families
  // marked here, the NVMe tier times `candidate` on the family's first `sample_objects` objects
  // (written raw meanwhile) and keeps it only when it saves capacity (size ratio >= min_ratio)
  // and the cores keep up with the drive: restores (decode_threads x decode speed >= the drive's
  // read rate) and, when drive_write_bytes_per_s is set, demotions too. The default drive rate is
  // a PCIe 4.0 drive's, so a default rule never makes restores slower than such a drive; set the
  // drive's own fio figure to let slower drives gain capacity.
  struct CodecRule {
    std::array<bool, kNumFamilies> families{};
    CodecKind candidate = CodecKind::kZstd;
    double drive_read_bytes_per_s = 7e9;
    double drive_write_bytes_per_s = 0;  // 0: demotion speed is not a condition
    uint32_t decode_threads = 1;         // restores decoding at once (Get callers)
    uint32_t encode_threads = 1;         // demotion threads encoding at once
    double min_ratio = 1.05;
    uint32_t sample_objects = 8;
    bool any() const {
      for (bool b : families)
        if (b) return true;
      return false;
    }
  };
  CodecRule codec_rule;

  // Demotion thins SWA: a block's full SWA in DRAM goes to NVMe as the block-end checkpoint
  // (DESIGN.md, "Store"). Needs the layout of the object's fingerprint (OpenStore options).
  bool thin_swa_on_demotion = false;

  Status Validate() const;
};

// Counters are reported through a visitor: name, value.
using CounterVisitor = std::function<void(std::string_view name, uint64_t value)>;

struct FamilyStats {
  uint64_t objects = 0;
  uint64_t bytes = 0;  // raw payload bytes
};

struct TierStats {
  std::array<FamilyStats, kNumFamilies> families{};
  // Host: arena bytes. NVMe: segment bytes, `used` those holding live records.
  uint64_t capacity = 0, used = 0;
};

struct StoreStats {
  std::array<TierStats, kNumTiers> tiers{};  // indexed by Tier
  TierStats& operator[](Tier t) { return tiers[static_cast<int>(t)]; }
  const TierStats& operator[](Tier t) const { return tiers[static_cast<int>(t)]; }
};

// What the caller knows about an object that the store cannot see in its bytes; eviction and
// admission use it (DESIGN.md, "Store"). All optional.
struct PutHints {
  uint32_t depth = 0;         // the block's index in its chain (0: the first block)
  bool has_parent = false;    // `parent` is set: the block this one extends
  BlockKey parent;            // lets the store keep chains without holes and prefer leaves
  double value_per_byte = 0;  // prefill seconds a hit on this object saves, per stored byte
};

class Store {
 public:
  virtual ~Store() = default;

  // Walks `keys` in order and returns the longest prefix whose blocks hold all `required`
  // families under `fingerprint`, plus what each examined block holds and where.
  virtual Result<LookupResult> Lookup(NamespaceId ns, uint64_t fingerprint,
                                      std::span<const BlockKey> keys, FamilyMask required) = 0;

  // Stores a copy of `bytes` in the host tier, replacing any object of the same key. The object
  // becomes durable at the next Flush (or when demoted to NVMe).
  virtual Status Put(const ObjectKey& key, uint64_t fingerprint, std::span<const std::byte> bytes,
                     const PutHints& hints) = 0;
  Status Put(const ObjectKey& key, uint64_t fingerprint, std::span<const std::byte> bytes) {
    return Put(key, fingerprint, bytes, PutHints{});
  }

  // Returns one view per (key, family) pair, key-major, families in Family order. Objects on
  // NVMe are read into the host tier first. Found views are pinned until Release.
  virtual Result<std::vector<ObjectView>> Get(NamespaceId ns, uint64_t fingerprint,
                                              std::span<const BlockKey> keys,
                                              FamilyMask families) = 0;

  // Drops the pins of views returned by Get. Unknown or zero pins are ignored.
  virtual void Release(std::span<const uint64_t> pins) = 0;

  // Removes every object of a namespace, in every tier (pinned ones go when released).
  virtual Status Delete(NamespaceId ns) = 0;

  // Returns once every object Put before the call is durable on NVMe, with its index entry.
  // Without an NVMe tier, returns FailedPrecondition.
  virtual Status Flush() = 0;

  virtual StoreStats Stats() const = 0;
  virtual void VisitCounters(const CounterVisitor& visit) const = 0;
};

// Opens (or creates) the in-process tiered store. With an NVMe tier, reopening the same data
// directory serves every record that verifies and drops index entries whose records do not.
Result<std::unique_ptr<Store>> OpenStore(const StoreConfig& config);

// Releases a set of pins when it goes out of scope.
class PinGuard {
 public:
  PinGuard(Store& store, std::vector<ObjectView> views)
      : store_(&store), views_(std::move(views)) {}
  PinGuard(const PinGuard&) = delete;
  PinGuard& operator=(const PinGuard&) = delete;
  ~PinGuard() {
    std::vector<uint64_t> pins;
    for (const auto& v : views_)
      if (v.pin) pins.push_back(v.pin);
    store_->Release(pins);
  }
  const std::vector<ObjectView>& views() const { return views_; }

 private:
  Store* store_;
  std::vector<ObjectView> views_;
};

}  // namespace strata
