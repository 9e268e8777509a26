// `strata replay` (tools/store_replay.h): the real store behind compare's request loop.
#include "tools/store_replay.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "bench/v4_payload.h"
#include "cachestore/nvme/drives.h"
#include "cachestore/nvme/record.h"
#include "cachestore/placement/clock.h"
#include "cachestore/placement/thin_swa.h"
#include "cachestore/store/tiered_store.h"

namespace strata::tools {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

LatencyUs LatencyOf(std::vector<double>& us) {
  LatencyUs l;
  l.count = us.size();
  if (us.empty()) return l;
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[std::min(us.size() - 1, size_t(q * double(us.size())))]; };
  l.p50 = at(0.50), l.p99 = at(0.99), l.p999 = at(0.999), l.max = us.back();
  return l;
}

// Times each read from the moment the device hands it to the kernel (its BeforeSubmit) to its
// completion (OnComplete), while `record` is on. The op's own observer, if any, still gets both
// calls. Everything else goes to the wrapped device.
class TimedDevice final : public cachestore::Device {
 public:
  explicit TimedDevice(std::unique_ptr<cachestore::Device> inner)
      : Device(inner->kind(), inner->segment_bytes(), inner->segment_count(), inner->queue_depth()),
        inner_(std::move(inner)) {}

  std::atomic<bool> record{false};

  std::vector<double> TakeReadUs() {
    std::lock_guard<std::mutex> l(mu_);
    return std::exchange(read_us_, {});
  }
  void RegisterMemory(std::span<std::byte> region) override { inner_->RegisterMemory(region); }

 protected:
  Status SubmitImpl(std::span<cachestore::IoOp> ops) override {
    if (!record.load(std::memory_order_relaxed)) return inner_->Submit(ops);
    std::vector<Probe> probes(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
      probes[i].owner = this;
      probes[i].original = ops[i].observer;
      ops[i].observer = &probes[i];
    }
    Status s = inner_->Submit(ops);
    for (size_t i = 0; i < ops.size(); ++i) ops[i].observer = probes[i].original;
    return s;
  }
  Status SyncImpl() override { return inner_->Sync(); }

 private:
  struct Probe final : cachestore::IoObserver {
    TimedDevice* owner = nullptr;
    cachestore::IoObserver* original = nullptr;
    Clock::time_point start{};
    void BeforeSubmit(cachestore::IoOp& op) override {
      start = Clock::now();
      if (original) original->BeforeSubmit(op);
    }
    void OnComplete(cachestore::IoOp& op) override {
      if (op.kind == cachestore::IoKind::kRead) {
        const double us = Seconds(start, Clock::now()) * 1e6;
        std::lock_guard<std::mutex> l(owner->mu_);
        owner->read_us_.push_back(us);
      }
      if (original) original->OnComplete(op);
    }
  };

  std::unique_ptr<cachestore::Device> inner_;
  std::mutex mu_;
  std::vector<double> read_us_;
};

// The stamp at the head of every payload: its key, so a Get that serves another object's bytes
// is caught (the store's checksums catch damaged bytes, not misplaced ones).
struct Stamp {
  uint64_t lo, hi, family_and_size;
};
uint64_t FamilyAndSize(const ObjectKey& k, uint64_t size) {
  return (uint64_t(k.family) << 56) | (size & ((1ull << 56) - 1));
}

// The real store as a ReplayStore: payloads of the requested sizes (pseudo-random bytes, the
// object's key stamped at the front), Get and Put timed, device reads on the restore path timed.
class RealReplayStore final : public ReplayStore {
 public:
  static Result<std::unique_ptr<RealReplayStore>> Open(const cachestore::SimConfig& sc,
                                                       const CacheLayout& layout,
                                                       const StoreReplayOptions& o,
                                                       cachestore::DecisionLog* log) {
    auto self = std::unique_ptr<RealReplayStore>(new RealReplayStore());
    self->layout_ = layout;
    StoreConfig c = sc.store;
    c.codec.fill(o.codec);
    cachestore::TieredStoreOptions to;
    if (!c.nvme.data_dir.empty()) {
      c.nvme.data_dir = o.data_dir;
      c.nvme.device = o.device;
      c.nvme.queue_depth = o.queue_depth;
      cachestore::FileDeviceOptions fo;
      fo.dir = (fs::path(o.data_dir) / "segments").string();
      std::error_code ec;
      fs::create_directories(fo.dir, ec);
      if (ec) return Status::IoError("cannot create " + fo.dir + ": " + ec.message());
      fo.segment_bytes = c.nvme.segment_bytes;
      fo.segment_count = uint32_t(c.nvme.capacity_bytes / c.nvme.segment_bytes);
      fo.queue_depth = c.nvme.queue_depth;
      c.nvme.drives = o.drives;
      STRATA_ASSIGN_OR_RETURN(cachestore::DriveSet drives, cachestore::OpenDrives(c.nvme));
      if (drives.segment_dirs.size() > 1) {
        fo.drive_dirs = drives.segment_dirs;
        fo.drive_alive = drives.alive;
      }
      STRATA_ASSIGN_OR_RETURN(auto dev, cachestore::OpenFileDevice(c.nvme.device, fo));
      if (o.wrap_device) dev = o.wrap_device(std::move(dev));
      auto timed = std::make_unique<TimedDevice>(std::move(dev));
      self->device_ = timed.get();
      to.device = std::move(timed);
    }
    to.clock = &self->clock_;
    to.decision_log = log;
    to.layouts = sc.layouts;
    self->layouts_ = sc.layouts;
    STRATA_ASSIGN_OR_RETURN(self->store_, cachestore::OpenTieredStore(c, std::move(to)));
    return self;
  }

  void SetTime(uint64_t micros) override { clock_.Set(micros); }
  Result<LookupResult> Lookup(NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys,
                              FamilyMask required) override {
    return store_->Lookup(ns, fp, keys, required);
  }
  Status Put(const ObjectKey& key, uint64_t fp, uint64_t bytes, const PutHints& hints) override {
    // Bytes shaped like the family's real entries (FP8 with scales, FP4 indexer entries, fp32
    // carry), so a codec finds what it would on real state; objects are the layout's size or
    // scaled down from it, so a prefix of the family's payload.
    std::vector<std::byte>& pattern = patterns_[size_t(key.family)];
    if (pattern.empty())
      pattern = bench::MakeFamilyPayload(layout_, key.family, 0x5eed + uint64_t(key.family));
    if (pattern.size() < bytes)
      return Status::InvalidArgument(
          fmt::format("replay: a {}-byte {} object is larger than the layout's {} bytes", bytes,
                      FamilyName(key.family), pattern.size()));
    scratch_.assign(pattern.begin(), pattern.begin() + ptrdiff_t(bytes));
    const Stamp st{key.block.lo, key.block.hi, FamilyAndSize(key, bytes)};
    std::memcpy(scratch_.data(), &st, std::min(sizeof st, size_t(bytes)));
    const auto t0 = Clock::now();
    Status s = store_->Put(key, fp, scratch_, hints);
    put_us_.push_back(Seconds(t0, Clock::now()) * 1e6);
    return s;
  }
  Result<std::vector<cachestore::SimObject>> Get(NamespaceId ns, uint64_t fp,
                                                 std::span<const BlockKey> keys,
                                                 FamilyMask families) override {
    if (device_) device_->record = true;
    const auto t0 = Clock::now();
    auto views = store_->Get(ns, fp, keys, families);
    const double s = Seconds(t0, Clock::now());
    if (device_) device_->record = false;
    read_s_ += s;
    get_us_.push_back(s * 1e6);
    if (!views.ok()) return views.status();
    std::vector<cachestore::SimObject> out;
    out.reserve(views->size());
    uint64_t from_nvme = 0;
    for (const ObjectView& v : *views) {
      if (v.found() && v.served_from == Tier::kNvme) from_nvme += v.size;
      cachestore::SimObject o;
      o.key = v.key;
      if (v.corrupt) ++corrupt_;
      if (v.found()) {
        o.size = v.size;
        o.served_from = v.served_from;
        o.pin = v.pin;
        if (!SameBytes(v)) ++mismatches_;
      }
      out.push_back(o);
    }
    if (from_nvme) {
      nvme_get_bytes_ += from_nvme;
      nvme_get_s_ += s;
    }
    return out;
  }
  void Release(std::span<const uint64_t> pins) override { store_->Release(pins); }
  StoreStats Stats() const override { return store_->Stats(); }
  void VisitCounters(const CounterVisitor& visit) const override { store_->VisitCounters(visit); }
  std::optional<double> TakeReadSeconds() override { return std::exchange(read_s_, 0.0); }

  // Whether `v` holds exactly the bytes Put wrote for its key: the family's pattern with the
  // key's stamp at the front.
  bool SameBytes(const ObjectView& v) const {
    const std::vector<std::byte>& pattern = patterns_[size_t(v.key.family)];
    const Stamp want{v.key.block.lo, v.key.block.hi, FamilyAndSize(v.key, v.size)};
    const size_t head = std::min(sizeof want, v.size);
    if (pattern.size() >= v.size && std::memcmp(v.data, &want, head) == 0 &&
        std::memcmp(v.data + head, pattern.data() + head, v.size - head) == 0)
      return true;
    // A checkpoint the store thinned from the block's SWA on demotion: the thinning of the SWA
    // bytes Put wrote for that block.
    if (v.key.family != Family::kCheckpoint || layouts_.empty()) return false;
    const CacheLayout& l = layouts_.front();
    const uint64_t swa_bytes = l.FamilyBlockBytes(Family::kSwa);
    const std::vector<std::byte>& swa_pattern = patterns_[size_t(Family::kSwa)];
    if (v.size != l.FamilyBlockBytes(Family::kCheckpoint) || swa_pattern.size() < swa_bytes)
      return false;
    std::vector<std::byte> swa(swa_pattern.begin(), swa_pattern.begin() + ptrdiff_t(swa_bytes));
    const ObjectKey swa_key{v.key.ns, v.key.block, Family::kSwa};
    const Stamp st{swa_key.block.lo, swa_key.block.hi, FamilyAndSize(swa_key, swa_bytes)};
    std::memcpy(swa.data(), &st, std::min(sizeof st, swa.size()));
    std::vector<std::byte> thinned(v.size);
    if (!cachestore::ThinSwaToCheckpoint(l, swa, thinned).ok()) return false;
    return std::memcmp(v.data, thinned.data(), v.size) == 0;
  }

  uint64_t Counter(std::string_view name) const {
    uint64_t out = 0;
    store_->VisitCounters([&](std::string_view n, uint64_t v) {
      if (n == name) out = v;
    });
    return out;
  }
  std::vector<double> TakeRestoreReadUs() {
    return device_ ? device_->TakeReadUs() : std::vector<double>{};
  }
  std::vector<double>& get_us() { return get_us_; }
  std::vector<double>& put_us() { return put_us_; }
  uint64_t mismatches() const { return mismatches_; }
  double nvme_restore_bytes_per_s() const {
    return nvme_get_s_ > 0 ? double(nvme_get_bytes_) / nvme_get_s_ : 0;
  }
  uint64_t corrupt() const { return corrupt_; }

 private:
  RealReplayStore() = default;
  CacheLayout layout_;
  uint64_t nvme_get_bytes_ = 0;
  double nvme_get_s_ = 0;
  cachestore::ManualClock clock_;
  TimedDevice* device_ = nullptr;  // owned by the store
  std::unique_ptr<Store> store_;
  std::vector<CacheLayout> layouts_;  // those whose SWA the store may thin
  std::array<std::vector<std::byte>, kNumFamilies> patterns_;
  std::vector<std::byte> scratch_;
  std::vector<double> get_us_, put_us_;
  double read_s_ = 0;
  uint64_t mismatches_ = 0, corrupt_ = 0;
};

}  // namespace

std::string DescribeStorage(const std::string& dir) {
  const cachestore::Mount m = cachestore::MountOf(dir);
  if (m.source.empty()) return "unknown";
  return fmt::format("{} ({}, mounted at {})", m.source, m.fstype, m.point);
}

Result<StoreReplayResult> ReplayThroughStore(const Trace& trace, const TraceSummary& summary,
                                             const CompareSetup& setup, const CompareConfig& cfg,
                                             const StoreReplayOptions& o,
                                             const ReplayProgress& progress) {
  if (cfg.multi_node())
    return Status::InvalidArgument("strata replay runs one node without a cluster tier");
  if (cfg.nvme_bytes && o.data_dir.empty())
    return Status::InvalidArgument("an NVMe tier needs a data directory (--data-dir)");
  std::vector<std::string> dirs;
  if (!o.data_dir.empty()) dirs.push_back(o.data_dir);
  if (!o.drives.empty() && dirs.empty())
    return Status::InvalidArgument("more drives need a data directory first");
  dirs.insert(dirs.end(), o.drives.begin(), o.drives.end());
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::string& d = dirs[i];
    for (size_t k = 0; k < i; ++k)
      if (fs::weakly_canonical(dirs[k]) == fs::weakly_canonical(d))
        return Status::InvalidArgument("data directory " + d + " given twice");
    std::error_code ec;
    if (fs::exists(d, ec) && !fs::is_empty(d, ec))
      return Status::InvalidArgument("data directory " + d +
                                     " is not empty: a replay starts from an empty store (remove "
                                     "it or give another)");
  }
  if (o.speed < 0) return Status::InvalidArgument("speed: 0 (as fast as possible) or > 0");

  StoreReplayResult res;
  std::set<std::string> devices;
  for (const std::string& d : dirs) {
    res.ran_on += (res.ran_on.empty() ? "" : "; ") +
                  (dirs.size() > 1 ? d + " on " : std::string()) + DescribeStorage(d);
    devices.insert(cachestore::MountSourceOf(d));
  }
  res.drives = dirs.size();
  res.distinct_devices = devices.size();
  cachestore::DecisionLog store_log, sim_log;
  std::unique_ptr<RealReplayStore> real;
  const auto wall0 = Clock::now();
  auto last_sample = wall0;
  const uint64_t first_us = trace.requests.empty() ? 0 : trace.requests.front().arrival_us;
  const size_t n = trace.requests.size();

  auto sample = [&](size_t i, const TraceRequest& q, const CompareResult& r) {
    ReplaySample s;
    s.wall_s = Seconds(wall0, Clock::now());
    s.trace_s = double(q.arrival_us - first_us) / 1e6;
    s.requests = i + 1;
    s.device_read_bytes = real->Counter("device_read_bytes");
    s.device_write_bytes = real->Counter("device_write_bytes");
    const StoreStats st = real->Stats();
    s.host_bytes = st[Tier::kHost].used;
    s.nvme_bytes = st[Tier::kNvme].used;
    s.input_tokens = r.input_tokens;
    s.hit_tokens = r.hit_tokens;
    s.restored_tokens = r.restored_tokens;
    res.samples.push_back(s);
  };

  ReplayHooks hooks;
  hooks.store = [&](const cachestore::SimConfig& sc) -> Result<ReplayStore*> {
    STRATA_ASSIGN_OR_RETURN(real, RealReplayStore::Open(sc, setup.layout, o, &store_log));
    return static_cast<ReplayStore*>(real.get());
  };
  hooks.before = [&](size_t, const TraceRequest& q) {
    if (o.speed <= 0) return;
    const double at = double(q.arrival_us - first_us) / 1e6 / o.speed;
    std::this_thread::sleep_until(
        wall0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at)));
  };
  hooks.after = [&](size_t i, const TraceRequest& q, const CompareResult& r) {
    if (i == 0 || i + 1 == n || Seconds(last_sample, Clock::now()) >= o.sample_every_s) {
      last_sample = Clock::now();
      sample(i, q, r);
    }
  };
  STRATA_ASSIGN_OR_RETURN(res.store, Replay(trace, summary, setup, cfg, progress, hooks));
  res.wall_s = Seconds(wall0, Clock::now());
  res.trace_s = n ? double(trace.requests.back().arrival_us - first_us) / 1e6 : 0;
  res.device_read_bytes = real->Counter("device_read_bytes");
  res.device_write_bytes = real->Counter("device_write_bytes");
  res.device_reads = real->Counter("device_reads");
  res.device_writes = real->Counter("device_writes");
  res.segments_reclaimed = real->Counter("segments_reclaimed");
  res.store_nvme_bytes_written = real->Counter("nvme_bytes_written");
  res.store_nvme_bytes_read = real->Counter("nvme_bytes_read");
  std::vector<double> reads = real->TakeRestoreReadUs();
  res.restore_read_us = LatencyOf(reads);
  res.get_us = LatencyOf(real->get_us());
  res.put_us = LatencyOf(real->put_us());
  res.payload_mismatches = real->mismatches();
  res.nvme_restore_bytes_per_s = real->nvme_restore_bytes_per_s();
  {
    const StoreStats st = real->Stats();
    const TierStats& nv = st[Tier::kNvme];
    const Family probe = setup.layout.FamilyBlockBytes(Family::kCsa) ? Family::kCsa : Family::kHca;
    const double tokens =
        double(nv.families[size_t(probe)].objects) * double(setup.layout.block_size());
    // Scaled-down objects: the capacity held K times the state an unscaled tier would.
    if (nv.capacity)
      res.nvme_tokens_per_tb =
          tokens / (double(nv.capacity) * double(std::max<uint32_t>(1, setup.scale_down)) / 1e12);
    for (const FamilyStats& f : nv.families) res.nvme_raw_bytes += f.bytes;
    res.nvme_stored_bytes = nv.used;
  }
  res.corrupt_misses = real->corrupt();
  real.reset();  // closes the store
  for (const cachestore::Decision& d : store_log.entries) {
    using cachestore::DecisionKind;
    if ((d.kind == DecisionKind::kDemote || d.kind == DecisionKind::kThin ||
         d.kind == DecisionKind::kWriteBack) &&
        d.to == Tier::kNvme)
      res.placed_nvme_bytes += d.bytes;
    if (d.kind == DecisionKind::kRelocate && d.to == Tier::kNvme) res.relocated_bytes += d.bytes;
  }
  res.store_decisions = store_log.entries.size();

  if (o.compare_with_simulator) {
    ReplayHooks sim_hooks;
    std::unique_ptr<ReplayStore> sim;
    sim_hooks.store = [&](const cachestore::SimConfig& sc) -> Result<ReplayStore*> {
      STRATA_ASSIGN_OR_RETURN(sim, OpenSimReplayStore(sc, &sim_log));
      return sim.get();
    };
    STRATA_ASSIGN_OR_RETURN(res.sim, Replay(trace, summary, setup, cfg, {}, sim_hooks));
    sim->VisitCounters([&](std::string_view name, uint64_t v) {
      if (name == "nvme_bytes_written") res.sim_nvme_bytes_written = v;
      if (name == "nvme_bytes_read") res.sim_nvme_bytes_read = v;
    });
    res.compared = true;
    res.sim_decisions = sim_log.entries.size();
    uint64_t relocated = 0;  // the simulator stores raw: a record's span is that of its raw size
    for (const cachestore::Decision& d : sim_log.entries)
      if (d.kind == cachestore::DecisionKind::kRelocate && d.to == Tier::kNvme)
        relocated += cachestore::RecordSpan(d.bytes);
    res.sim_device_write_bytes = res.sim_nvme_bytes_written + relocated;
    res.sim_device_read_bytes = res.sim_nvme_bytes_read + relocated;
    const size_t common = std::min(store_log.entries.size(), sim_log.entries.size());
    for (size_t k = 0; k < common; ++k) {
      if (store_log.entries[k] == sim_log.entries[k]) continue;
      res.first_divergence = int64_t(k);
      res.divergence = "store: " + store_log.entries[k].ToString() +
                       "; simulator: " + sim_log.entries[k].ToString();
      break;
    }
    if (res.first_divergence < 0 && store_log.entries.size() != sim_log.entries.size()) {
      res.first_divergence = int64_t(common);
      res.divergence = store_log.entries.size() > common
                           ? "store: " + store_log.entries[common].ToString() + "; simulator: end"
                           : "store: end; simulator: " + sim_log.entries[common].ToString();
    }
  }
  return res;
}

}  // namespace strata::tools
