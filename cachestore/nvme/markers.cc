#include "cachestore/nvme/markers.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace strata::cachestore {
namespace {

constexpr uint32_t kSequenceMagic = 0x51525453;  // "STRQ"
constexpr uint32_t kDeleteMagic = 0x58525453;    // "STRX"
constexpr uint16_t kMarkerVersion = 1;
constexpr size_t kSlotSize = 64;
constexpr size_t kDeleteEntrySize = 32;

template <typename T>
void Put(unsigned char* p, T v) {
  std::memcpy(p, &v, sizeof v);  // x86-64 and aarch64 Linux: little-endian
}
template <typename T>
T Get(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string Path(const std::string& dir, const char* name) {
  return (std::filesystem::path(dir) / name).string();
}

std::string Errno(int e) { return std::strerror(e); }

// Reads the whole file; nullopt when it does not exist.
Result<std::optional<std::vector<unsigned char>>> ReadAll(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<std::vector<unsigned char>>();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("open " + path);
  std::vector<unsigned char> b((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
  if (in.bad()) return Status::IoError("read " + path);
  return std::optional<std::vector<unsigned char>>(std::move(b));
}

// Makes a newly created file's directory entry durable.
Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("open " + dir + ": " + Errno(errno));
  const int rc = fsync(fd);
  const int e = errno;
  close(fd);
  if (rc != 0) return Status::IoError("fsync " + dir + ": " + Errno(e));
  return Status::Ok();
}

// pwrite + fdatasync; creates the file (and syncs its directory) when it is new.
Status WriteDurably(const std::string& dir, const char* name, uint64_t offset,
                    const unsigned char* data, size_t len) {
  const std::string path = Path(dir, name);
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("open " + path + ": " + Errno(errno));
  size_t done = 0;
  while (done < len) {
    ssize_t n = pwrite(fd, data + done, len - done, off_t(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : EIO;
      close(fd);
      return (e == ENOSPC ? Status::NoSpace("write " + path + ": " + Errno(e))
                          : Status::IoError("write " + path + ": " + Errno(e)));
    }
    done += size_t(n);
  }
  if (fdatasync(fd) != 0) {
    const int e = errno;
    close(fd);
    return Status::IoError("fdatasync " + path + ": " + Errno(e));
  }
  close(fd);
  return existed ? Status::Ok() : SyncDir(dir);
}

}  // namespace

Result<std::optional<SequenceMarker>> ReadSequenceMarker(const std::string& data_dir) {
  const std::string path = Path(data_dir, kSequenceMarkerFile);
  STRATA_ASSIGN_OR_RETURN(auto bytes, ReadAll(path));
  if (!bytes) return std::optional<SequenceMarker>();
  std::optional<SequenceMarker> best;
  for (size_t at = 0; at + kSlotSize <= bytes->size() && at < 2 * kSlotSize; at += kSlotSize) {
    const unsigned char* p = bytes->data() + at;
    if (Get<uint32_t>(p) != kSequenceMagic || Get<uint16_t>(p + 4) != kMarkerVersion ||
        Get<uint64_t>(p + 56) != XXH3_64bits(p, 56))
      continue;
    SequenceMarker m;
    m.generation = Get<uint64_t>(p + 8);
    m.durable_sequence = Get<uint64_t>(p + 16);
    m.sequence_limit = Get<uint64_t>(p + 24);
    if (!best || m.generation > best->generation) best = m;
  }
  if (!best) return Status::Corruption(path + ": no valid slot");
  return best;
}

Status WriteSequenceMarker(const std::string& data_dir, SequenceMarker& m) {
  unsigned char slot[kSlotSize] = {};
  const uint64_t gen = m.generation + 1;
  Put<uint32_t>(slot, kSequenceMagic);
  Put<uint16_t>(slot + 4, kMarkerVersion);
  Put<uint64_t>(slot + 8, gen);
  Put<uint64_t>(slot + 16, m.durable_sequence);
  Put<uint64_t>(slot + 24, m.sequence_limit);
  Put<uint64_t>(slot + 56, XXH3_64bits(slot, 56));
  STRATA_RETURN_IF_ERROR(
      WriteDurably(data_dir, kSequenceMarkerFile, (gen % 2) * kSlotSize, slot, kSlotSize));
  m.generation = gen;
  return Status::Ok();
}

Result<DeleteLog> DeleteLog::Load(const std::string& data_dir) {
  DeleteLog log;
  log.path_ = data_dir;
  STRATA_ASSIGN_OR_RETURN(auto bytes, ReadAll(Path(data_dir, kDeleteLogFile)));
  if (!bytes) return log;
  // Damaged entries wait for the next valid one, whose sequence bounds theirs.
  uint64_t pending_damaged = 0;
  for (size_t at = 0; at + kDeleteEntrySize <= bytes->size(); at += kDeleteEntrySize) {
    const unsigned char* p = bytes->data() + at;
    if (Get<uint32_t>(p) != kDeleteMagic || Get<uint16_t>(p + 4) != kMarkerVersion ||
        Get<uint64_t>(p + 24) != XXH3_64bits(p, 24)) {
      ++pending_damaged;
      continue;
    }
    const NamespaceId ns = Get<uint64_t>(p + 8);
    const uint64_t seq = Get<uint64_t>(p + 16);
    if (pending_damaged) {
      log.damaged_ += pending_damaged;
      log.all_below_ = std::max(log.all_below_, seq);
      pending_damaged = 0;
    }
    uint64_t& b = log.below_[ns];
    b = std::max(b, seq);
    log.max_sequence_ = std::max(log.max_sequence_, seq);
    log.append_offset_ = at + kDeleteEntrySize;
    ++log.entries_;
  }
  return log;
}

Status DeleteLog::Append(NamespaceId ns, uint64_t sequence) {
  unsigned char e[kDeleteEntrySize] = {};
  Put<uint32_t>(e, kDeleteMagic);
  Put<uint16_t>(e + 4, kMarkerVersion);
  Put<uint64_t>(e + 8, ns);
  Put<uint64_t>(e + 16, sequence);
  Put<uint64_t>(e + 24, XXH3_64bits(e, 24));
  STRATA_RETURN_IF_ERROR(WriteDurably(path_, kDeleteLogFile, append_offset_, e, kDeleteEntrySize)
                             .WithContext("delete log"));
  append_offset_ += kDeleteEntrySize;
  uint64_t& b = below_[ns];
  b = std::max(b, sequence);
  max_sequence_ = std::max(max_sequence_, sequence);
  ++entries_;
  return Status::Ok();
}

uint64_t DeleteLog::DeletedBelow(NamespaceId ns) const {
  auto it = below_.find(ns);
  return std::max(all_below_, it == below_.end() ? 0 : it->second);
}

Result<DataDirLock> DataDirLock::Acquire(const std::string& data_dir) {
  DataDirLock l;
  l.fd_ = open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (l.fd_ < 0) return Status::IoError("open " + data_dir + ": " + Errno(errno));
  if (flock(l.fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    if (e == EWOULDBLOCK)
      return Status::FailedPrecondition("data directory " + data_dir +
                                        " is in use (a store or an index rebuild has it open)");
    return Status::IoError("lock " + data_dir + ": " + Errno(e));
  }
  return l;
}

DataDirLock& DataDirLock::operator=(DataDirLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) close(fd_);  // releases the lock
}

}  // namespace strata::cachestore
