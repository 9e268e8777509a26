// Power-loss simulation for the NVMe tier and the index, in the manner of LevelDB's and RocksDB's
// fault-injection environments. SIGKILL keeps the page cache, so it cannot catch a missing or
// misordered fdatasync; these wrappers can.
//
// One CrashClock counts every write, fdatasync, index file append, index sync and directory sync
// of a run. When it reaches the chosen crash point the power "fails": that operation and every
// later one that would change persistent state is refused (IoError), as if the process died
// there. After the store is closed, ResolvePowerLoss() decides, per write not yet made durable by
// a sync, whether it reached the medium whole, not at all (the region reverts to its old bytes),
// or torn (a prefix of 512-byte sectors landed, the rest reverted); index files lose or tear
// their unsynced tails, and files created since their directory's last fsync may vanish.
//
// PowerLossDevice wraps any cachestore::Device (memory, posix, io_uring): batches are forwarded as
// batches (so io_uring sees them whole, with fixed buffers, since RegisterMemory is forwarded), the
// old bytes of every write are read back first so they can be restored. PowerLossFs is a
// rocksdb::FileSystemWrapper (Debian's RocksDB ships no fault-injection file system) that tracks
// each file's synced length and each directory's unsynced entry changes (creates, renames) on the
// same clock.
//
// Thread safety: every member is safe for concurrent use (one mutex each).
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cachestore/nvme/device.h"
#include "tests/testing/fault_device.h"

namespace strata::testing {

// Counts persistent-state events; at event number `crash_at` (1-based) the power fails.
class CrashClock {
 public:
  explicit CrashClock(int64_t crash_at = 0) : crash_at_(crash_at) {}

  // Counts one event; returns false (and remembers `what`) if the power is off at it.
  bool Tick(const char* what) {
    std::lock_guard lk(mu_);
    if (crashed_) return false;
    ++events_;
    labels_.push_back(what);
    if (crash_at_ > 0 && events_ >= crash_at_) {
      crashed_ = true;
      crashed_at_ = what;
      return false;
    }
    return true;
  }
  bool crashed() const {
    std::lock_guard lk(mu_);
    return crashed_;
  }
  int64_t events() const {
    std::lock_guard lk(mu_);
    return events_;
  }
  // The kind of every event so far, in order (event n is labels()[n - 1]).
  std::vector<std::string> labels() const {
    std::lock_guard lk(mu_);
    return labels_;
  }
  std::string crashed_at() const {
    std::lock_guard lk(mu_);
    return crashed_at_;
  }

 private:
  mutable std::mutex mu_;
  const int64_t crash_at_;
  int64_t events_ = 0;
  bool crashed_ = false;
  std::string crashed_at_;
  std::vector<std::string> labels_;
};

// What a crash does to one unsynced write (or file tail).
enum class LossKind { kKept, kDropped, kTorn };

// --- the device ---------------------------------------------------------------------------

// Unsynced writes of a device, with the bytes each one overwrote. Outlives the store (and the
// wrapper) so that the crash can be applied after the store is closed.
struct DeviceLossLog {
  struct Write {
    uint64_t offset = 0;
    std::vector<std::byte> old_bytes;  // what the region held before this write
  };
  std::mutex mu;
  std::vector<Write> unsynced;  // in issue order
  uint64_t writes_dropped = 0, writes_torn = 0, writes_kept = 0;
};

class PowerLossDevice final : public cachestore::Device {
 public:
  PowerLossDevice(std::shared_ptr<cachestore::Device> inner, std::shared_ptr<CrashClock> clock,
                  std::shared_ptr<DeviceLossLog> log)
      : Device(inner->kind(), inner->segment_bytes(), inner->segment_count(), inner->queue_depth()),
        inner_(std::move(inner)),
        clock_(std::move(clock)),
        log_(std::move(log)) {}

  // Fails the n-th write op (1-based, counted over this wrapper's life) with EIO while the rest
  // of its batch goes through: one failing op inside an io_uring batch.
  std::atomic<int64_t> fail_write_number{0};

  void RegisterMemory(std::span<std::byte> region) override { inner_->RegisterMemory(region); }

 protected:
  Status SubmitImpl(std::span<cachestore::IoOp> ops) override {
    std::vector<size_t> index;  // the ops that go to the device
    std::vector<DeviceLossLog::Write> undo;
    Status first;
    // Old bytes of every write, read in one batch before the writes go out.
    std::vector<cachestore::AlignedBuffer> old;
    std::vector<cachestore::IoOp> reads;
    for (auto& op : ops) {
      if (op.kind != cachestore::IoKind::kWrite) continue;
      old.emplace_back(op.len);
      reads.push_back({cachestore::IoKind::kRead, op.offset, old.back().data(), op.len});
    }
    if (!reads.empty()) {
      Status r = inner_->Submit(reads);
      if (!r.ok()) return r;
    }
    size_t w = 0;
    for (size_t i = 0; i < ops.size(); ++i) {
      auto& op = ops[i];
      if (op.kind == cachestore::IoKind::kWrite) {
        const size_t my = w++;
        const int64_t n = ++writes_seen_;
        if (n == fail_write_number.load()) {
          op.error = EIO;
          if (first.ok()) first = Status::IoError("injected write error (one op of a batch)");
          continue;
        }
        if (!clock_->Tick("device write")) {
          op.error = EIO;
          if (first.ok()) first = Status::IoError("power lost");
          continue;
        }
        DeviceLossLog::Write u;
        u.offset = op.offset;
        u.old_bytes.assign(old[my].data(), old[my].data() + op.len);
        undo.push_back(std::move(u));
      }
      index.push_back(i);
    }
    if (!undo.empty()) {
      // Logged before the writes land, so a crash resolution sees every write that may have.
      std::lock_guard lk(log_->mu);
      for (auto& u : undo) log_->unsynced.push_back(std::move(u));
    }
    return ForwardBatch(*inner_, ops, index, first);
  }

  Status SyncImpl() override {
    if (!clock_->Tick("device fdatasync")) return Status::IoError("power lost at fdatasync");
    // Writes logged before the sync started are durable once it returns.
    size_t n;
    {
      std::lock_guard lk(log_->mu);
      n = log_->unsynced.size();
    }
    Status s = inner_->Sync();
    if (!s.ok()) return s;
    std::lock_guard lk(log_->mu);
    log_->unsynced.erase(log_->unsynced.begin(), log_->unsynced.begin() + ptrdiff_t(n));
    return Status::Ok();
  }

 private:
  std::shared_ptr<cachestore::Device> inner_;
  std::shared_ptr<CrashClock> clock_;
  std::shared_ptr<DeviceLossLog> log_;
  std::atomic<int64_t> writes_seen_{0};
};

// Applies the crash to `dev` (the unwrapped device): newest write first, each kept, dropped or
// torn at a 512-byte sector boundary, chosen by `rng`.
inline Status ResolveDeviceLoss(cachestore::Device& dev, DeviceLossLog& log, std::mt19937_64& rng) {
  std::lock_guard lk(log.mu);
  for (auto it = log.unsynced.rbegin(); it != log.unsynced.rend(); ++it) {
    const size_t len = it->old_bytes.size();
    const auto kind = LossKind(rng() % 3);
    if (kind == LossKind::kKept) {
      ++log.writes_kept;
      continue;
    }
    // Bytes [keep, len) revert to what they were.
    size_t keep = 0;
    if (kind == LossKind::kTorn) {
      keep = size_t(rng() % (len / 512)) * 512;
      ++log.writes_torn;
    } else {
      ++log.writes_dropped;
    }
    const size_t page0 = keep / cachestore::kIoAlign * cachestore::kIoAlign;
    cachestore::AlignedBuffer buf(len - page0);
    STRATA_RETURN_IF_ERROR(dev.Read(it->offset + page0, buf.data(), len - page0));
    std::memcpy(buf.data() + (keep - page0), it->old_bytes.data() + keep, len - keep);
    STRATA_RETURN_IF_ERROR(dev.Write(it->offset + page0, buf.data(), len - page0));
  }
  log.unsynced.clear();
  return dev.Sync();
}

// --- the index's file system ----------------------------------------------------------------

class PowerLossFs final : public rocksdb::FileSystemWrapper {
 public:
  PowerLossFs(std::shared_ptr<rocksdb::FileSystem> base, std::shared_ptr<CrashClock> clock)
      : FileSystemWrapper(std::move(base)), clock_(std::move(clock)) {}

  static const char* kClassName() { return "StrataPowerLossFs"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    if (!clock_->Tick("index file create")) return Lost();
    auto s = target()->NewWritableFile(f, o, r, dbg);
    if (s.ok()) {
      Track(f, /*created=*/true, 0);
      *r = std::make_unique<File>(std::move(*r), this, f, 0);
    }
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    if (!clock_->Tick("index file reopen")) return Lost();
    uint64_t size = 0;
    const bool existed = target()->GetFileSize(f, rocksdb::IOOptions(), &size, dbg).ok();
    auto s = target()->ReopenWritableFile(f, o, r, dbg);
    if (s.ok()) {
      Track(f, !existed, existed ? size : 0);
      *r = std::make_unique<File>(std::move(*r), this, f, existed ? size : 0);
    }
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string&, const std::string&,
                                      const rocksdb::FileOptions&,
                                      std::unique_ptr<rocksdb::FSWritableFile>*,
                                      rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("ReuseWritableFile (power-loss test fs)");
  }
  rocksdb::IOStatus NewRandomRWFile(const std::string&, const rocksdb::FileOptions&,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>*,
                                    rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("NewRandomRWFile (power-loss test fs)");
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewDirectory(name, io, r, dbg);
    if (s.ok()) *r = std::make_unique<Dir>(std::move(*r), this, name);
    return s;
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& io,
                               rocksdb::IODebugContext* dbg) override {
    if (!clock_->Tick("index file delete")) return Lost();
    auto s = target()->DeleteFile(f, io, dbg);
    if (s.ok()) {
      std::lock_guard lk(mu_);
      files_.erase(Normal(f));
    }
    return s;
  }
  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to,
                               const rocksdb::IOOptions& io,
                               rocksdb::IODebugContext* dbg) override {
    if (!clock_->Tick("index file rename")) return Lost();
    // The bytes a rename replaces (RocksDB's CURRENT), so that undoing it can restore them.
    std::optional<std::string> replaced;
    {
      std::ifstream in(to, std::ios::binary);
      if (in) replaced = std::string(std::istreambuf_iterator<char>(in), {});
    }
    auto s = target()->RenameFile(from, to, io, dbg);
    if (s.ok()) {
      std::lock_guard lk(mu_);
      auto it = files_.find(Normal(from));
      FileState st = it != files_.end() ? it->second : FileState{};
      if (it != files_.end()) files_.erase(it);
      files_[Normal(to)] = st;
      DirOps(to).push_back({DirOp::kRename, Normal(from), Normal(to), std::move(replaced)});
    }
    return s;
  }
  rocksdb::IOStatus Truncate(const std::string& f, size_t size, const rocksdb::IOOptions& io,
                             rocksdb::IODebugContext* dbg) override {
    if (!clock_->Tick("index file truncate")) return Lost();
    return target()->Truncate(f, size, io, dbg);
  }
  rocksdb::IOStatus LinkFile(const std::string&, const std::string&, const rocksdb::IOOptions&,
                             rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("LinkFile (power-loss test fs)");
  }

  // After the DB is closed: cuts every file back to what a power loss could have left. In each
  // directory, the entry changes since its last fsync survive as a prefix (journaled file systems
  // keep their order); unsynced file tails are kept, dropped or torn. Returns what it did.
  std::string Resolve(std::mt19937_64& rng) {
    std::lock_guard lk(mu_);
    std::string what;
    std::error_code ec;
    for (auto& [dir, ops] : dir_ops_) {
      const size_t keep = rng() % (ops.size() + 1);
      for (size_t i = ops.size(); i-- > keep;) {
        const DirOp& op = ops[i];
        const std::string leaf = std::filesystem::path(op.name).filename().string();
        if (op.kind == DirOp::kCreate) {
          std::filesystem::remove(op.name, ec);
          files_.erase(op.name);
          what += " vanished:" + leaf;
        } else {
          std::filesystem::rename(op.name, op.from, ec);
          auto it = files_.find(op.name);
          if (it != files_.end()) {
            files_[op.from] = it->second;
            files_.erase(it);
          }
          if (op.replaced) {
            std::ofstream out(op.name, std::ios::binary | std::ios::trunc);
            out << *op.replaced;
          }
          what += " unrenamed:" + leaf;
        }
      }
    }
    for (auto& [name, st] : files_) {
      if (!std::filesystem::exists(name, ec)) continue;
      const uint64_t size = std::filesystem::file_size(name, ec);
      if (ec || size <= st.synced) continue;
      const auto kind = LossKind(rng() % 3);
      uint64_t to = size;
      if (kind == LossKind::kDropped) to = st.synced;
      if (kind == LossKind::kTorn) to = st.synced + rng() % (size - st.synced);
      if (to != size) {
        std::filesystem::resize_file(name, to, ec);
        what += " cut:" + std::filesystem::path(name).filename().string() + "@" +
                std::to_string(to) + "/" + std::to_string(size);
      }
    }
    files_.clear();
    dir_ops_.clear();
    return what;
  }

 private:
  struct FileState {
    uint64_t synced = 0;  // bytes made durable by Sync/Fsync
    uint64_t size = 0;    // bytes appended
  };
  // A directory entry change not yet made durable by an fsync of its directory.
  struct DirOp {
    enum Kind { kCreate, kRename } kind;
    std::string from;                     // kRename: the old name
    std::string name;                     // the entry created or renamed to
    std::optional<std::string> replaced;  // kRename: the bytes the rename replaced
  };
  std::vector<DirOp>& DirOps(const std::string& file) {
    return dir_ops_[std::filesystem::path(Normal(file)).parent_path().string()];
  }

  static rocksdb::IOStatus Lost() { return rocksdb::IOStatus::IOError("power lost"); }
  static std::string Normal(const std::string& f) {
    return std::filesystem::path(f).lexically_normal().string();
  }

  void Track(const std::string& f, bool created, uint64_t size) {
    std::lock_guard lk(mu_);
    FileState st;
    st.synced = st.size = size;
    files_[Normal(f)] = st;
    if (created) DirOps(f).push_back({DirOp::kCreate, "", Normal(f), std::nullopt});
  }
  void Appended(const std::string& f, uint64_t n) {
    std::lock_guard lk(mu_);
    files_[Normal(f)].size += n;
  }
  void Synced(const std::string& f, uint64_t size) {
    std::lock_guard lk(mu_);
    auto& st = files_[Normal(f)];
    st.synced = std::max(st.synced, size);
  }
  void DirSynced(const std::string& dir) {
    std::lock_guard lk(mu_);
    dir_ops_.erase(std::filesystem::path(Normal(dir + "/x")).parent_path().string());
  }

  class File final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, PowerLossFs* fs, std::string name,
         uint64_t start)
        : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), name_(std::move(name)), pos_(start) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (!fs_->clock_->Tick("index append")) return Lost();
      auto s = target()->Append(data, o, dbg);
      if (s.ok()) {
        fs_->Appended(name_, data.size());
        pos_ += data.size();
      }
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo&,
                             rocksdb::IODebugContext* dbg) override {
      return Append(data, o, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                       rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::NotSupported("PositionedAppend (power-loss test fs)");
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                       const rocksdb::DataVerificationInfo&,
                                       rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::NotSupported("PositionedAppend (power-loss test fs)");
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      return DoSync([&] { return target()->Sync(o, dbg); });
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      return DoSync([&] { return target()->Fsync(o, dbg); });
    }
    rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                                rocksdb::IODebugContext*) override {
      // A hint to start write-back; durability comes only from Sync/Fsync.
      return rocksdb::IOStatus::OK();
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
      if (!fs_->clock_->Tick("index file truncate")) return Lost();
      return target()->Truncate(size, o, dbg);
    }
    rocksdb::IOStatus Close(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      // Closing writes back RocksDB's buffered tail: after the crash nothing more may land.
      if (fs_->clock_->crashed()) return Lost();
      return target()->Close(o, dbg);
    }

   private:
    template <typename F>
    rocksdb::IOStatus DoSync(F sync) {
      if (!fs_->clock_->Tick("index sync")) return Lost();
      auto s = sync();
      if (s.ok()) fs_->Synced(name_, pos_);
      return s;
    }
    PowerLossFs* fs_;
    std::string name_;
    uint64_t pos_;  // the file's end (a reopened file starts at its old end)
  };

  class Dir final : public rocksdb::FSDirectoryWrapper {
   public:
    Dir(std::unique_ptr<rocksdb::FSDirectory> d, PowerLossFs* fs, std::string name)
        : FSDirectoryWrapper(std::move(d)), fs_(fs), name_(std::move(name)) {}
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (!fs_->clock_->Tick("index dir sync")) return Lost();
      auto s = FSDirectoryWrapper::Fsync(o, dbg);
      if (s.ok()) fs_->DirSynced(name_);
      return s;
    }
    rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                                          const rocksdb::DirFsyncOptions& d) override {
      if (!fs_->clock_->Tick("index dir sync")) return Lost();
      auto s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
      if (s.ok()) fs_->DirSynced(name_);
      return s;
    }

   private:
    PowerLossFs* fs_;
    std::string name_;
  };

  std::shared_ptr<CrashClock> clock_;
  std::mutex mu_;
  std::map<std::string, FileState> files_;  // GUARDED_BY(mu_): files written since the fs began
  std::map<std::string, std::vector<DirOp>> dir_ops_;  // GUARDED_BY(mu_), by directory
};

}  // namespace strata::testing
