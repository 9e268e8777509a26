#include "cachestore/sim/sim_store.h"

#include <algorithm>
#include <cmath>

#include "cachestore/host/extent_allocator.h"
#include "cachestore/nvme/record.h"
#include "cachestore/placement/placement_core.h"

namespace strata::cachestore {
namespace {

// The NVMe tier of the simulation: records have sizes only. It counts and times the traffic
// and can be told to fail writes; everything else always succeeds.
class SimLowerTier final : public LowerTier {
 public:
  SimLowerTier(const TierTiming& timing, CodecKind codec,
               const std::array<double, kNumFamilies>& ratio)
      : timing_(timing), codec_(codec), ratio_(ratio) {}
  Tier tier() const override { return Tier::kNvme; }
  void Encode(std::span<RecordIo> ios) override {
    for (RecordIo& io : ios)
      if (io.status.ok()) {
        const double r = ratio_[size_t(io.key.family)];
        io.codec = codec_ != CodecKind::kNone && r > 1 ? codec_ : CodecKind::kNone;
        io.stored_size = io.codec == CodecKind::kNone
                             ? io.raw_size
                             : std::max<uint64_t>(1, uint64_t(std::ceil(double(io.raw_size) / r)));
      }
  }
  Status Write(std::span<RecordIo> ios) override {
    for (RecordIo& io : ios) {
      if (!io.status.ok()) continue;
      if (fail_writes) {
        io.status = Status::IoError("injected write error (simulation)");
        continue;
      }
      io.checksum = io.sequence;  // any value; never verified
      write_s += Seconds(timing_.write_bytes_per_s, RecordSpan(io.stored_size));
    }
    return fail_writes ? Status::IoError("injected write error (simulation)") : Status::Ok();
  }
  Status Read(std::span<RecordIo> ios) override {
    for (RecordIo& io : ios) {
      io.status = Status::Ok();
      read_s += Seconds(timing_.read_bytes_per_s, RecordSpan(io.stored_size));
    }
    return Status::Ok();
  }
  void Copy(std::span<RecordMove> moves) override {
    for (RecordMove& m : moves) {
      m.ok = !fail_writes;
      read_s += Seconds(timing_.read_bytes_per_s, m.span);
      write_s += Seconds(timing_.write_bytes_per_s, m.span);
    }
  }
  Status Sync() override { return Status::Ok(); }

  bool fail_writes = false;
  double read_s = 0, write_s = 0;

 private:
  double Seconds(double bytes_per_s, uint64_t bytes) const {
    if (bytes_per_s <= 0) return 0;
    return timing_.latency_s + double(bytes) / bytes_per_s;
  }
  TierTiming timing_;
  CodecKind codec_;
  std::array<double, kNumFamilies> ratio_;
};

}  // namespace

struct SimStore::Impl {
  SimConfig config;
  ExtentAllocator host;
  ManualClock clock;
  NullRecordIndex index;
  std::unique_ptr<SimLowerTier> nvme;
  std::unique_ptr<PlacementCore> core;
  double host_read_s = 0, host_write_s = 0;

  explicit Impl(const SimConfig& c) : config(c), host(c.store.host.capacity_bytes / 4096 * 4096) {}

  double HostSeconds(double bytes_per_s, uint64_t bytes) const {
    const TierTiming& t = config.timing[int(Tier::kHost)];
    if (bytes_per_s <= 0) return 0;
    return t.latency_s + double(bytes) / bytes_per_s;
  }
};

SimStore::SimStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimStore::~SimStore() = default;

Result<std::unique_ptr<SimStore>> SimStore::Open(const SimConfig& config, DecisionLog* log) {
  STRATA_RETURN_IF_ERROR(config.store.Validate());
  auto impl = std::make_unique<Impl>(config);
  PlacementOptions po;
  po.config = config.store;
  po.host = &impl->host;
  po.clock = &impl->clock;
  po.log = log;
  po.layouts = config.layouts;
  if (!config.store.nvme.data_dir.empty()) {
    impl->nvme = std::make_unique<SimLowerTier>(config.timing[int(Tier::kNvme)], config.nvme_codec,
                                                config.nvme_ratio);
    po.lower = impl->nvme.get();
    po.index = &impl->index;
  }
  STRATA_ASSIGN_OR_RETURN(impl->core, PlacementCore::Create(std::move(po)));
  return std::unique_ptr<SimStore>(new SimStore(std::move(impl)));
}

void SimStore::SetTime(uint64_t micros) { impl_->clock.Set(micros); }
uint64_t SimStore::time() const { return impl_->clock.NowMicros(); }

Result<LookupResult> SimStore::Lookup(NamespaceId ns, uint64_t fingerprint,
                                      std::span<const BlockKey> keys, FamilyMask required) {
  return impl_->core->Lookup(ns, fingerprint, keys, required);
}

Status SimStore::Put(const ObjectKey& key, uint64_t fingerprint, uint64_t bytes,
                     const PutHints& hints) {
  Status s = impl_->core->Put(key, fingerprint, bytes, {}, hints);
  if (s.ok())
    impl_->host_write_s +=
        impl_->HostSeconds(impl_->config.timing[int(Tier::kHost)].write_bytes_per_s, bytes);
  return s;
}

Result<std::vector<SimObject>> SimStore::Get(NamespaceId ns, uint64_t fingerprint,
                                             std::span<const BlockKey> keys, FamilyMask families) {
  STRATA_ASSIGN_OR_RETURN(auto views, impl_->core->Get(ns, fingerprint, keys, families));
  std::vector<SimObject> out(views.size());
  for (size_t i = 0; i < views.size(); ++i) {
    out[i].key = views[i].key;
    out[i].size = views[i].size;
    out[i].served_from = views[i].pin ? views[i].served_from : Tier::kNone;
    out[i].pin = views[i].pin;
    if (views[i].pin)
      impl_->host_read_s += impl_->HostSeconds(
          impl_->config.timing[int(Tier::kHost)].read_bytes_per_s, views[i].size);
  }
  return out;
}

void SimStore::Release(std::span<const uint64_t> pins) { impl_->core->Release(pins); }

Status SimStore::Delete(NamespaceId ns) { return impl_->core->Delete(ns, nullptr); }

Status SimStore::Flush() { return impl_->core->FlushWrites().status(); }

StoreStats SimStore::Stats() const { return impl_->core->Stats(); }
StoreStats SimStore::RecountStats() const { return impl_->core->RecountStats(); }

void SimStore::VisitCounters(const CounterVisitor& visit) const {
  impl_->core->VisitCounters(visit);
}

std::array<double, kNumTiers> SimStore::TakeIoSeconds() {
  std::array<double, kNumTiers> s{};
  s[int(Tier::kHost)] = impl_->host_read_s + impl_->host_write_s;
  impl_->host_read_s = impl_->host_write_s = 0;
  if (impl_->nvme) {
    s[int(Tier::kNvme)] = impl_->nvme->read_s + impl_->nvme->write_s;
    impl_->nvme->read_s = impl_->nvme->write_s = 0;
  }
  return s;
}

void SimStore::InjectNvmeWriteErrors(bool on) {
  if (impl_->nvme) impl_->nvme->fail_writes = on;
}

}  // namespace strata::cachestore
