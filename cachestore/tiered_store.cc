#include "cachestore/tiered_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>

#include "cachestore/rebuild.h"
#include "cachestore/record.h"

namespace strata::cachestore {
namespace {

uint64_t NowSeconds() {
  return uint64_t(std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

// Dirty bytes demoted per eviction round: large enough to batch I/O, small enough not to
// evict far more than needed.
constexpr uint64_t kDemoteBatchBytes = 64ull << 20;

// How long an allocation waits for pins to be released before it reports the host tier full.
constexpr auto kPinWait = std::chrono::milliseconds(200);

}  // namespace

uint64_t TieredStore::NvmeLoc::span() const { return RecordSpan(stored_size); }

TieredStore::TieredStore(const StoreConfig& config, std::unique_ptr<HostArena> arena)
    : config_(config), arena_(std::move(arena)), eviction_(std::make_unique<LruPolicy>()) {}

TieredStore::~TieredStore() = default;

Result<std::unique_ptr<Store>> OpenTieredStore(const StoreConfig& config,
                                               TieredStoreOptions options) {
  STRATA_RETURN_IF_ERROR(config.Validate());
  STRATA_ASSIGN_OR_RETURN(auto arena,
                          HostArena::Create(config.host.capacity_bytes, config.host.prefault));
  std::unique_ptr<TieredStore> store(new TieredStore(config, std::move(arena)));
  if (!config.nvme.data_dir.empty()) {
    STRATA_RETURN_IF_ERROR(store->OpenNvme(options));
  }
  return std::unique_ptr<Store>(std::move(store));
}

Status TieredStore::OpenNvme(TieredStoreOptions& options) {
  const auto& nv = config_.nvme;
  const std::filesystem::path dir(nv.data_dir);
  const uint32_t segment_count = uint32_t(nv.capacity_bytes / nv.segment_bytes);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("create data directory " + nv.data_dir + ": " + ec.message());
  STRATA_ASSIGN_OR_RETURN(dir_lock_, DataDirLock::Acquire(nv.data_dir));
  if (IndexPresent(nv.data_dir))  // left by a rebuild that stopped right after its swap
    std::filesystem::remove_all(dir / "index.old", ec);
  index_env_ = options.index_env;
  auto geometry_error = [&](const IndexMeta& m, const std::string& what) {
    return Status::FailedPrecondition(
        "data directory " + nv.data_dir + " " + what + " " + std::to_string(m.segment_count) +
        " segments of " + std::to_string(m.segment_bytes) + " bytes; the config asks for " +
        std::to_string(segment_count) + " of " + std::to_string(nv.segment_bytes));
  };

  // Why the index has to be rebuilt from the segments (empty: it need not). Only corruption
  // leads there; any other failure (e.g. another process holding the directory) is reported.
  std::string rebuild;
  auto note_corruption = [&](const Status& s) {
    if (!s.IsCorruption()) return s;
    if (rebuild.empty()) rebuild = s.ToString();
    return Status::Ok();
  };
  std::optional<IndexMeta> meta;
  if (!IndexPresent(nv.data_dir) && SegmentsUsed(nv.data_dir)) {
    STRATA_ASSIGN_OR_RETURN(IndexMeta g, GeometryFromSegments(nv.data_dir));
    if (g.segment_bytes != nv.segment_bytes || g.segment_count != segment_count)
      return geometry_error(g, "has no index and");
    rebuild = "the index is missing";
  } else {
    auto idx = Index::Open((dir / "index").string(), index_env_);
    if (idx.ok()) {
      index_ = std::move(idx).value();
      auto m = index_->GetMeta();
      if (m.ok())
        meta = *m;
      else
        STRATA_RETURN_IF_ERROR(note_corruption(m.status()));
    } else {
      STRATA_RETURN_IF_ERROR(note_corruption(idx.status()));
    }
  }
  if (meta && (meta->segment_bytes != nv.segment_bytes || meta->segment_count != segment_count))
    return geometry_error(*meta, "was created with");
  if (options.device) {
    device_ = std::move(options.device);
  } else {
    FileDeviceOptions fo;
    fo.dir = (dir / "segments").string();
    fo.segment_bytes = nv.segment_bytes;
    fo.segment_count = segment_count;
    fo.queue_depth = nv.queue_depth;
    STRATA_ASSIGN_OR_RETURN(device_, OpenFileDevice(nv.device, fo));
  }
  if (device_->segment_bytes() != nv.segment_bytes || device_->segment_count() != segment_count)
    return Status::InvalidArgument("device geometry does not match the config");
  if (index_ && rebuild.empty() && !meta) {
    IndexMeta m;
    m.segment_bytes = nv.segment_bytes;
    m.segment_count = segment_count;
    STRATA_RETURN_IF_ERROR(index_->PutMeta(m));
  }
  device_->RegisterMemory(arena_->region());
  log_ = std::make_unique<SegmentLog>(nv.segment_bytes, segment_count);
  seg_members_.resize(segment_count);

  STRATA_ASSIGN_OR_RETURN(DeleteLog deletes, DeleteLog::Load(nv.data_dir));
  if (deletes.damaged_entries())
    spdlog::warn(
        "strata: {} damaged entries in {}/{}: records older than the next entry are "
        "treated as deleted",
        deletes.damaged_entries(), nv.data_dir, kDeleteLogFile);
  deletes_ = std::make_unique<DeleteLog>(std::move(deletes));
  // The cross-check: a log that RocksDB cut short at recovery opens without complaint, but its
  // durable sequence is then below the marker's, which is written only after the index synced.
  auto marker = ReadSequenceMarker(nv.data_dir);
  if (marker.ok()) {
    if (*marker) marker_ = **marker;
  } else {
    STRATA_RETURN_IF_ERROR(note_corruption(marker.status()));
  }
  uint64_t index_durable = 0;
  if (index_ && rebuild.empty()) {
    auto d = index_->GetDurableSequence();
    if (d.ok()) {
      index_durable = *d;
      if (index_durable < marker_.durable_sequence)
        rebuild = "the index holds what was flushed up to sequence " +
                  std::to_string(index_durable) + " but sequence " +
                  std::to_string(marker_.durable_sequence) + " was made durable (log cut short?)";
    } else {
      STRATA_RETURN_IF_ERROR(note_corruption(d.status()));
    }
  }

  const bool verify = options.verify_payloads_on_open || nv.verify_payloads_on_open;
  if (rebuild.empty()) {
    Status s = Recover(verify);
    if (s.IsCorruption()) {
      rebuild = s.ToString();
      ResetNvmeState();
    } else if (!s.ok()) {
      return s;
    }
  }
  if (!rebuild.empty()) {
    STRATA_RETURN_IF_ERROR(RebuildIndexFromSegments(rebuild, verify));
    STRATA_ASSIGN_OR_RETURN(index_durable, index_->GetDurableSequence());
  }
  // Numbers from here on are above every number handed out before, in any earlier process.
  next_sequence_ = std::max(
      {next_sequence_, index_durable + 1, marker_.sequence_limit, deletes_->max_sequence()});
  marker_.durable_sequence = std::max(marker_.durable_sequence, index_durable);
  marker_.sequence_limit = next_sequence_ + kSequencesPerOpen;
  return WriteSequenceMarker(nv.data_dir, marker_).WithContext("sequence marker");
}

// --- lookups ---------------------------------------------------------------------------------

TieredStore::Entry* TieredStore::FindAny(const ObjectKey& key) {
  auto it = blocks_.find(BlockId{key.ns, key.block});
  if (it == blocks_.end()) return nullptr;
  return it->second.fam[int(key.family)].get();
}

TieredStore::Entry* TieredStore::Find(const ObjectKey& key, uint64_t fingerprint) {
  Entry* e = FindAny(key);
  return e && e->fingerprint == fingerprint ? e : nullptr;
}

std::byte* TieredStore::Payload(const Entry& e) const {
  return arena_->base() + e.ext.offset + kRecordHeaderSize;
}

Result<LookupResult> TieredStore::Lookup(NamespaceId ns, uint64_t fingerprint,
                                         std::span<const BlockKey> keys, FamilyMask required) {
  counters_.lookups.fetch_add(1, std::memory_order_relaxed);
  LookupResult r;
  std::lock_guard lk(mu_);
  for (const BlockKey& k : keys) {
    BlockPresence p;
    auto it = blocks_.find(BlockId{ns, k});
    if (it != blocks_.end()) {
      for (Family f : kAllFamilies) {
        const Entry* e = it->second.fam[int(f)].get();
        if (!e || e->fingerprint != fingerprint) continue;
        if (e->resident && !e->loading) {
          p.families.Add(f);
          p.tier[int(f)] = Tier::kHost;
        } else if (e->on_nvme) {
          p.families.Add(f);
          p.tier[int(f)] = Tier::kNvme;
        }
      }
    }
    const bool hit = !p.families.empty() && p.families.Contains(required);
    r.blocks.push_back(p);
    if (!hit) break;
    ++r.hit_blocks;
  }
  counters_.lookup_blocks_hit.fetch_add(r.hit_blocks, std::memory_order_relaxed);
  return r;
}

// --- eviction bookkeeping --------------------------------------------------------------------

void TieredStore::Untrack(Entry& e) { eviction_->Untrack(e.id); }

void TieredStore::MaybeTrack(Entry& e) {
  if (e.resident && !e.doomed && e.pins == 0 && !e.loading && !e.writing) eviction_->Track(e.id, ObjectFacts{e.ext.size, e.key.family});
}

void TieredStore::DropHostCopy(Entry& e) {
  Untrack(e);
  if (e.resident || e.loading) arena_->Free(e.ext);
  e.resident = false;
  e.dirty = false;
}

void TieredStore::DropNvmeCopy(Entry& e, std::vector<ObjectKey>* index_deletes) {
  if (!e.on_nvme) return;
  log_->Release(e.nv.offset, e.nv.span());
  seg_members_[log_->SegmentOf(e.nv.offset)].erase(&e);
  e.on_nvme = false;
  if (index_deletes) index_deletes->push_back(e.key);
}

void TieredStore::Remove(Entry* e) {
  auto it = blocks_.find(BlockId{e->key.ns, e->key.block});
  std::unique_ptr<Entry> owned = std::move(it->second.fam[int(e->key.family)]);
  bool empty = true;
  for (auto& f : it->second.fam) empty &= (f == nullptr);
  if (empty) blocks_.erase(it);
  Untrack(*e);
  e->doomed = true;
  if (e->pins || e->loading || e->writing) {
    doomed_[e->id] = std::move(owned);
    return;
  }
  FreeIfUnused(owned.release());
}

// Frees a doomed entry once nothing uses it.
void TieredStore::FreeIfUnused(Entry* e) {
  if (!e->doomed || e->pins || e->loading || e->writing) return;
  if (e->resident) arena_->Free(e->ext);
  e->resident = false;
  if (e->on_nvme) DropNvmeCopy(*e, nullptr);  // index entry already replaced or deleted
  by_id_.erase(e->id);
  auto it = doomed_.find(e->id);
  if (it != doomed_.end())
    doomed_.erase(it);  // deletes e
  else
    delete e;
}

void TieredStore::EraseEntryIfEmpty(Entry* e) {
  if (!e->resident && !e->on_nvme && !e->loading && !e->writing && !e->doomed) Remove(e);
}

Result<Extent> TieredStore::MakeRoom(std::unique_lock<std::mutex>& lk, uint64_t bytes) {
  if (HostArena::SizeClass(bytes) > arena_->capacity())
    return Status::InvalidArgument("object of " + std::to_string(bytes) +
                                   " bytes does not fit the host tier (" +
                                   std::to_string(arena_->capacity()) + " bytes)");
  const auto deadline = std::chrono::steady_clock::now() + kPinWait;
  for (;;) {
    if (auto ext = arena_->Allocate(bytes)) return *ext;
    std::vector<Entry*> demote;
    uint64_t demote_bytes = 0, freed = 0;
    while (freed < bytes && demote_bytes < kDemoteBatchBytes) {
      auto victim = eviction_->Victim();
      if (!victim) break;
      Entry* e = by_id_.at(*victim);
      Untrack(*e);
      if (e->dirty && device_) {
        e->writing = true;
        demote.push_back(e);
        demote_bytes += e->ext.size;
        freed += e->ext.size;
        continue;
      }
      freed += e->ext.size;
      if (e->on_nvme) {
        DropHostCopy(*e);
      } else {
        counters_.evictions_dropped.fetch_add(1, std::memory_order_relaxed);
        DropHostCopy(*e);
        Remove(e);
      }
      if (auto ext = arena_->Allocate(bytes)) {
        for (Entry* d : demote) {  // not needed after all: back to evictable
          d->writing = false;
          MaybeTrack(*d);
        }
        return *ext;
      }
    }
    if (demote.empty()) {
      if (auto ext = arena_->Allocate(bytes)) return *ext;
      if (freed == 0) {
        // Everything resident is pinned or under I/O: wait a little for a Release or a
        // demotion to finish, then give up.
        if (std::chrono::steady_clock::now() > deadline) {
          uint64_t pinned = 0, io = 0, resident = 0;
          for (const auto& [id, slot] : blocks_)
            for (const auto& e : slot.fam)
              if (e && (e->resident || e->loading)) {
                ++resident;
                pinned += e->pins > 0;
                io += e->writing || e->loading;
              }
          return Status::ResourceExhausted(fmt::format(
              "host tier: no room for {} bytes ({} of {} bytes in use by {} objects: {} pinned, "
              "{} under I/O, {} evictable, {} doomed; largest free extent {})",
              bytes, arena_->used(), arena_->capacity(), resident, pinned, io, eviction_->size(),
              doomed_.size(), arena_->largest_free()));
        }
        io_cv_.wait_for(lk, std::chrono::milliseconds(5));
      }
      continue;
    }
    counters_.demotions.fetch_add(demote.size(), std::memory_order_relaxed);
    Status s = WriteRecords(lk, demote);
    for (Entry* e : demote) {
      if (e->doomed) {
        FreeIfUnused(e);
        continue;
      }
      if (e->dirty) {
        // The write failed: the copy was never acknowledged as durable, drop it.
        counters_.demote_errors.fetch_add(1, std::memory_order_relaxed);
        if (e->pins) continue;
        DropHostCopy(*e);
        EraseEntryIfEmpty(e);
      } else if (e->pins == 0) {
        DropHostCopy(*e);
      }
    }
    if (!s.ok()) spdlog::warn("strata: demotion to NVMe failed: {}", s.ToString());
  }
}

// --- Put / Get / Release / Delete ------------------------------------------------------------

Status TieredStore::Put(const ObjectKey& key, uint64_t fingerprint,
                        std::span<const std::byte> bytes, const PutHints&) {
  if (int(key.family) >= kNumFamilies) return Status::InvalidArgument("bad family");
  if (device_ && RecordSpan(bytes.size()) > config_.nvme.segment_bytes)
    return Status::InvalidArgument("object of " + std::to_string(bytes.size()) +
                                   " bytes is larger than an NVMe segment (" +
                                   std::to_string(config_.nvme.segment_bytes) + " bytes)");
  const uint64_t need = RecordSpan(bytes.size());
  std::unique_lock lk(mu_);
  STRATA_ASSIGN_OR_RETURN(Extent ext, MakeRoom(lk, need));
  lk.unlock();
  std::byte* dst = arena_->base() + ext.offset;
  std::memcpy(dst + kRecordHeaderSize, bytes.data(), bytes.size());
  std::memset(dst + kRecordHeaderSize + bytes.size(), 0, need - kRecordHeaderSize - bytes.size());
  lk.lock();

  auto e = std::make_unique<Entry>();
  e->id = next_id_++;
  e->key = key;
  e->fingerprint = fingerprint;
  e->raw_size = bytes.size();
  e->resident = true;
  e->ext = ext;
  e->dirty = true;
  e->last_access = NowSeconds();
  Entry* raw = e.get();
  BlockSlot& slot = blocks_[BlockId{key.ns, key.block}];
  if (Entry* old = slot.fam[int(key.family)].get()) {
    std::vector<ObjectKey> unused;
    if (old->on_nvme) DropNvmeCopy(*old, &unused);  // the new record's index entry replaces it
    Remove(old);
  }
  blocks_[BlockId{key.ns, key.block}].fam[int(key.family)] = std::move(e);
  by_id_[raw->id] = raw;
  MaybeTrack(*raw);
  counters_.puts.fetch_add(1, std::memory_order_relaxed);
  counters_.put_bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
  return Status::Ok();
}

Result<std::vector<ObjectView>> TieredStore::Get(NamespaceId ns, uint64_t fingerprint,
                                                 std::span<const BlockKey> keys,
                                                 FamilyMask families) {
  std::vector<ObjectView> views;
  std::vector<Entry*> to_load;
  std::vector<size_t> load_view;  // views index per to_load entry
  std::unique_lock lk(mu_);
  for (const BlockKey& k : keys) {
    for (Family f : kAllFamilies) {
      if (!families.Has(f)) continue;
      counters_.gets.fetch_add(1, std::memory_order_relaxed);
      ObjectView v;
      v.key = ObjectKey{ns, k, f};
      for (;;) {
        Entry* e = Find(v.key, fingerprint);
        if (!e) break;
        if (e->loading) {
          io_cv_.wait(lk);  // another Get is loading it
          continue;
        }
        if (e->resident) {
          ++e->pins;
          ++e->hits;
          e->last_access = NowSeconds();
          Untrack(*e);
          v.data = Payload(*e);
          v.size = e->raw_size;
          v.served_from = Tier::kHost;
          v.pin = e->id;
          counters_.get_hits_host.fetch_add(1, std::memory_order_relaxed);
          break;
        }
        if (!e->on_nvme) break;
        const uint64_t id = e->id;
        auto ext = MakeRoom(lk, RecordSpan(e->raw_size));  // may release the lock
        Entry* again = Find(v.key, fingerprint);
        if (!ext.ok()) {
          // No room in the host tier (everything pinned): this object is a miss.
          spdlog::warn("strata: get: {}", ext.status().ToString());
          break;
        }
        if (again != e || e->id != id || e->resident || e->loading || !e->on_nvme) {
          arena_->Free(*ext);
          continue;  // the world changed while unlocked: look again
        }
        e->ext = *ext;
        e->loading = true;
        ++e->pins;
        ++e->hits;
        e->last_access = NowSeconds();
        log_->AddReader(e->nv.offset);
        to_load.push_back(e);
        load_view.push_back(views.size());
        v.served_from = Tier::kNvme;
        v.pin = e->id;
        break;
      }
      if (!v.pin) counters_.get_misses.fetch_add(1, std::memory_order_relaxed);
      views.push_back(v);
    }
  }
  if (!to_load.empty()) {
    std::vector<Status> results(to_load.size());
    LoadRecords(lk, to_load, results);
    std::vector<ObjectKey> index_deletes;
    for (size_t i = 0; i < to_load.size(); ++i) {
      Entry* e = to_load[i];
      ObjectView& v = views[load_view[i]];
      log_->RemoveReader(e->nv.offset);
      e->loading = false;
      if (results[i].ok()) {
        e->resident = true;
        v.data = Payload(*e);
        v.size = e->raw_size;
        counters_.get_hits_nvme.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      // Unreadable or corrupt: a miss. A corrupt record is counted and removed; after an I/O
      // error the record stays (the next Get tries again).
      const bool corrupt = results[i].IsCorruption();
      (corrupt ? counters_.corrupt_records : counters_.nvme_read_errors)
          .fetch_add(1, std::memory_order_relaxed);
      counters_.get_misses.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("strata: NVMe record {}/{} {}: {}", e->key.block.ToHex(),
                   FamilyName(e->key.family), corrupt ? "dropped" : "unreadable",
                   results[i].ToString());
      --e->pins;
      v.pin = 0;
      v.served_from = Tier::kNone;
      arena_->Free(e->ext);
      if (!e->doomed && corrupt) DropNvmeCopy(*e, &index_deletes);
      if (e->doomed)
        FreeIfUnused(e);
      else
        EraseEntryIfEmpty(e);
    }
    if (!index_deletes.empty()) {
      Status s = index_->Delete(index_deletes);
      if (!s.ok()) spdlog::warn("strata: index delete failed: {}", s.ToString());
    }
    io_cv_.notify_all();
  }
  return views;
}

void TieredStore::Release(std::span<const uint64_t> pins) {
  std::lock_guard lk(mu_);
  for (uint64_t pin : pins) {
    auto it = by_id_.find(pin);
    if (it == by_id_.end()) continue;
    Entry* e = it->second;
    if (e->pins == 0) continue;
    if (--e->pins > 0) continue;
    if (e->doomed)
      FreeIfUnused(e);
    else
      MaybeTrack(*e);
  }
  io_cv_.notify_all();
}

Status TieredStore::Delete(NamespaceId ns) {
  std::lock_guard lk(mu_);
  // Durable before anything goes: a rebuild of the index skips the namespace's older records.
  if (deletes_) STRATA_RETURN_IF_ERROR(deletes_->Append(ns, next_sequence_).WithContext("delete"));
  std::vector<Entry*> victims;
  for (auto& [id, slot] : blocks_)
    if (id.ns == ns)
      for (auto& f : slot.fam)
        if (f) victims.push_back(f.get());
  for (Entry* e : victims) {
    if (e->on_nvme) DropNvmeCopy(*e, nullptr);
    Remove(e);
  }
  if (index_) return index_->DeleteNamespace(ns);
  return Status::Ok();
}

// --- Flush / stats ---------------------------------------------------------------------------

Status TieredStore::Flush() {
  if (!device_) return Status::FailedPrecondition("Flush: the store has no NVMe tier");
  std::unique_lock lk(mu_);
  std::vector<Entry*> batch;
  for (auto& [id, slot] : blocks_)
    for (auto& f : slot.fam)
      if (f && f->dirty && f->resident && !f->writing) {
        f->writing = true;
        Untrack(*f);
        batch.push_back(f.get());
      }
  Status s = batch.empty() ? Status::Ok() : WriteRecords(lk, batch);
  for (Entry* e : batch) {
    if (e->doomed)
      FreeIfUnused(e);
    else
      MaybeTrack(*e);
  }
  // Writes started by evictions before this call must land too.
  io_cv_.wait(lk, [&] { return writes_inflight_ == 0; });
  const uint64_t durable = next_sequence_ - 1;
  lk.unlock();
  if (!s.ok()) return s.WithContext("flush");
  STRATA_RETURN_IF_ERROR(device_->Sync().WithContext("flush: segment sync"));
  return MarkDurable(durable).WithContext("flush");
}

StoreStats TieredStore::Stats() const {
  std::lock_guard lk(mu_);
  StoreStats st;
  for (const auto& [id, slot] : blocks_)
    for (const auto& e : slot.fam) {
      if (!e) continue;
      const int f = int(e->key.family);
      if (e->resident) {
        st[Tier::kHost].families[f].objects++;
        st[Tier::kHost].families[f].bytes += e->raw_size;
      }
      if (e->on_nvme) {
        st[Tier::kNvme].families[f].objects++;
        st[Tier::kNvme].families[f].bytes += e->raw_size;
      }
    }
  st[Tier::kHost].capacity = arena_->capacity();
  st[Tier::kHost].used = arena_->used();
  if (log_) {
    st[Tier::kNvme].capacity = log_->segment_bytes() * log_->segment_count();
    st[Tier::kNvme].used = log_->live_bytes();
  }
  return st;
}

void TieredStore::VisitCounters(const CounterVisitor& visit) const {
  const Counters& c = counters_;
  auto v = [&](std::string_view name, const std::atomic<uint64_t>& a) {
    visit(name, a.load(std::memory_order_relaxed));
  };
  v("puts", c.puts);
  v("put_bytes", c.put_bytes);
  v("gets", c.gets);
  v("get_hits_host", c.get_hits_host);
  v("get_hits_nvme", c.get_hits_nvme);
  v("get_misses", c.get_misses);
  v("lookups", c.lookups);
  v("lookup_blocks_hit", c.lookup_blocks_hit);
  v("evictions_dropped", c.evictions_dropped);
  v("demotions", c.demotions);
  v("demote_errors", c.demote_errors);
  v("corrupt_records", c.corrupt_records);
  v("nvme_read_errors", c.nvme_read_errors);
  v("nvme_records_written", c.nvme_records_written);
  v("nvme_bytes_written", c.nvme_bytes_written);
  v("nvme_records_read", c.nvme_records_read);
  v("nvme_bytes_read", c.nvme_bytes_read);
  v("nvme_read_us", c.nvme_read_us);    // wall time inside device reads
  v("nvme_write_us", c.nvme_write_us);  // wall time inside device writes
  v("segments_reclaimed", c.segments_reclaimed);
  v("records_relocated", c.records_relocated);
  v("records_dropped_by_reclaim", c.records_dropped_by_reclaim);
  v("recovered_records", c.recovered_records);
  v("recovery_dropped", c.recovery_dropped);
  v("index_rebuilds", c.index_rebuilds);    // this open rebuilt the index from the segments
  v("records_rebuilt", c.records_rebuilt);  // entries that rebuild wrote
  if (device_) {
    const auto& d = device_->counters();
    v("device_reads", d.reads);
    v("device_writes", d.writes);
    v("device_read_bytes", d.read_bytes);
    v("device_write_bytes", d.write_bytes);
    v("device_errors", d.errors);
    v("device_syncs", d.syncs);
  }
}

}  // namespace strata::cachestore

namespace strata {

Result<std::unique_ptr<Store>> OpenStore(const StoreConfig& config) {
  return cachestore::OpenTieredStore(config, cachestore::TieredStoreOptions{});
}

}  // namespace strata
