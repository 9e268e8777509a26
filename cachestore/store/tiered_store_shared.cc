// TieredStore and the tier shared across nodes: the uploader thread (write-behind of what the
// core's share policy picks) and the read path on a local miss.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "cachestore/nvme/record.h"
#include "cachestore/store/tiered_store.h"

namespace strata::cachestore {

void TieredStore::StartUploader() {
  uploader_ = std::thread([this] { UploadLoop(); });
}

void TieredStore::StopUploader() {
  if (!uploader_.joinable()) return;
  stopping_ = true;
  core_->StopShares();
  uploader_.join();
}

void TieredStore::UploadLoop() {
  constexpr size_t kBatch = 16;  // objects per pipelined upload
  while (!stopping_) {
    auto items = core_->TakeShares(kBatch, std::chrono::milliseconds(100));
    if (items.empty()) continue;
    std::vector<SharedTier::PutItem> puts;
    std::vector<uint64_t> pins;
    for (const auto& it : items) {
      pins.push_back(it.pin);
      if (!it.data) continue;  // gone or replaced since it was queued
      const std::span<const std::byte> payload(it.data, it.size);
      // A host copy a client changed after Commit is never spread to other nodes.
      if (it.sum && PayloadChecksum(payload) != *it.sum) {
        shared_skipped_corrupt_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      puts.push_back({it.key, it.fingerprint, payload});
    }
    if (!puts.empty()) {
      const auto st = shared_->Put(puts);
      for (const Status& s : st) {
        (s.ok() ? shared_uploads_ : shared_upload_errors_).fetch_add(1, std::memory_order_relaxed);
      }
      if (const auto bad = std::find_if(st.begin(), st.end(), [](auto& s) { return !s.ok(); });
          bad != st.end())
        spdlog::debug("strata: shared-tier upload: {}", bad->ToString());
    }
    core_->SharesDone(pins);
  }
  // Shutdown: give back the pins of what is still queued.
  for (;;) {
    auto items = core_->TakeShares(1024, std::chrono::milliseconds(0));
    if (items.empty()) break;
    std::vector<uint64_t> pins;
    for (const auto& it : items) pins.push_back(it.pin);
    core_->SharesDone(pins);
  }
}

size_t TieredStore::FetchShared(NamespaceId ns, uint64_t fingerprint,
                                std::span<const BlockKey> keys, FamilyMask families,
                                FamilyMask required, size_t first_depth, const BlockKey* parent) {
  constexpr size_t kBlocksPerBatch = 8;  // one pipelined round trip per 8 blocks
  size_t put = 0;
  std::vector<Family> fams;
  for (Family f : kAllFamilies)
    if (families.Has(f)) fams.push_back(f);
  if (fams.empty()) return 0;
  for (size_t b0 = 0; b0 < keys.size(); b0 += kBlocksPerBatch) {
    const size_t nb = std::min(kBlocksPerBatch, keys.size() - b0);
    std::vector<ObjectKey> want;
    for (size_t b = 0; b < nb; ++b)
      for (Family f : fams) want.push_back({ns, keys[b0 + b], f});
    auto got = shared_->Get(want, fingerprint);
    for (size_t b = 0; b < nb; ++b) {
      bool complete = true;
      for (size_t j = 0; j < fams.size(); ++j)
        if (required.Has(fams[j]) && !got[b * fams.size() + j].ok()) complete = false;
      if (!complete) return put;  // the chain continues no further in the shared tier
      PutHints hints;
      hints.depth = uint32_t(first_depth + b0 + b);
      const BlockKey* prev = b0 + b ? &keys[b0 + b - 1] : parent;
      if (prev) hints.has_parent = true, hints.parent = *prev;
      for (size_t j = 0; j < fams.size(); ++j) {
        const auto& r = got[b * fams.size() + j];
        if (!r.ok()) continue;
        const auto payload = r->payload();
        const Status s = core_->Put(want[b * fams.size() + j], fingerprint, payload.size(), payload,
                                    hints, PlacementCore::Origin::kFromSharedTier);
        if (!s.ok()) {
          spdlog::warn("strata: shared-tier object not kept here: {}", s.ToString());
          return put;
        }
        ++put;
        shared_fetched_.fetch_add(1, std::memory_order_relaxed);
        shared_fetched_bytes_.fetch_add(payload.size(), std::memory_order_relaxed);
      }
    }
  }
  return put;
}

bool TieredStore::FetchLaterSharedCheckpoint(NamespaceId ns, uint64_t fingerprint,
                                             std::span<const BlockKey> keys,
                                             const LookupResult& r) {
  const size_t hit = std::min(r.hit_blocks, keys.size());
  if (hit == 0 || r.blocks.size() < hit) return false;
  const size_t from = LaterCheckpointSearchFrom(std::span(r.blocks).first(hit));
  if (from >= hit) return false;
  std::vector<ObjectKey> want;
  for (size_t i = from; i < hit; ++i) want.push_back({ns, keys[i], Family::kCheckpoint});
  const std::vector<bool> there = shared_->Exists(want, fingerprint);
  for (size_t k = want.size(); k-- > 0;) {
    if (!there[k]) continue;
    // The latest one only: each is a whole SWA window (megabytes), the earlier ones restore less.
    return FetchSharedObjects(fingerprint, std::span(&want[k], 1)) == 1;
  }
  return false;
}

size_t TieredStore::FetchSharedObjects(uint64_t fingerprint, std::span<const ObjectKey> keys) {
  auto got = shared_->Get(keys, fingerprint);
  size_t put = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!got[i].ok()) continue;
    const auto payload = got[i]->payload();
    const Status s = core_->Put(keys[i], fingerprint, payload.size(), payload, PutHints{},
                                PlacementCore::Origin::kFromSharedTier);
    if (!s.ok()) {
      spdlog::warn("strata: shared-tier object not kept here: {}", s.ToString());
      continue;
    }
    ++put;
    shared_fetched_.fetch_add(1, std::memory_order_relaxed);
    shared_fetched_bytes_.fetch_add(payload.size(), std::memory_order_relaxed);
  }
  return put;
}

}  // namespace strata::cachestore
