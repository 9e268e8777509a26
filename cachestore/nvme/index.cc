#include "cachestore/nvme/index.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <vector>

namespace strata::cachestore {
namespace {

constexpr size_t kKeySize = 25;
constexpr size_t kValueSize = 88;
constexpr uint8_t kValueVersion = 1;

void PutBE(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = char(v & 0xff);
}
uint64_t GetBE(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | uint8_t(p[i]);
  return v;
}
void PutLE(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint64_t GetLE(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

Status FromRocks(const rocksdb::Status& s, const char* what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsNoSpace()) return Status::NoSpace(msg);
  return Status::IoError(msg);
}

std::string EncodeValue(const IndexEntry& e) {
  std::string v(kValueSize, '\0');
  v[0] = char(kValueVersion);
  v[1] = char(e.codec);
  char* p = v.data();
  PutLE(p + 8, e.fingerprint);
  PutLE(p + 16, e.sequence);
  PutLE(p + 24, e.offset);
  PutLE(p + 32, e.raw_size);
  PutLE(p + 40, e.stored_size);
  PutLE(p + 48, e.checksum);
  PutLE(p + 56, e.last_access);
  PutLE(p + 64, e.hits);
  return v;
}

Result<IndexEntry> Decode(const rocksdb::Slice& k, const rocksdb::Slice& v) {
  if (k.size() != kKeySize || v.size() != kValueSize || uint8_t(v[0]) != kValueVersion)
    return Status::Corruption("malformed index entry");
  IndexEntry e;
  e.key.ns = GetBE(k.data());
  e.key.block.hi = GetBE(k.data() + 8);
  e.key.block.lo = GetBE(k.data() + 16);
  const uint8_t fam = uint8_t(k[24]), codec = uint8_t(v[1]);
  if (fam >= kNumFamilies || codec > uint8_t(kLastCodecKind))
    return Status::Corruption("index entry with bad family or codec");
  e.key.family = Family(fam);
  e.codec = CodecKind(codec);
  const char* p = v.data();
  e.fingerprint = GetLE(p + 8);
  e.sequence = GetLE(p + 16);
  e.offset = GetLE(p + 24);
  e.raw_size = GetLE(p + 32);
  e.stored_size = GetLE(p + 40);
  e.checksum = GetLE(p + 48);
  e.last_access = GetLE(p + 56);
  e.hits = GetLE(p + 64);
  return e;
}

// RocksDB's messages go to strata's log instead of a LOG file in the index directory: a LOG file
// on a full disk is one more thing that fails (and asserts in Debian's RocksDB build).
class SpdLogger final : public rocksdb::Logger {
 public:
  SpdLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    vsnprintf(buf, sizeof buf, format, ap);
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL)
      spdlog::error("strata index (rocksdb): {}", buf);
    else
      spdlog::warn("strata index (rocksdb): {}", buf);
  }
};

}  // namespace

std::string Index::EncodeKey(const ObjectKey& key) {
  std::string k(kKeySize, '\0');
  PutBE(k.data(), key.ns);
  PutBE(k.data() + 8, key.block.hi);
  PutBE(k.data() + 16, key.block.lo);
  k[24] = char(key.family);
  return k;
}

Result<std::unique_ptr<Index>> Index::Open(const std::string& dir, rocksdb::Env* env) {
  rocksdb::DBOptions opts;
  if (env) opts.env = env;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  opts.paranoid_checks = true;
  // The entries and the durable sequence reach table files together: the durable sequence must
  // never be in a table file while entries written before it are still only in the log (a log
  // cut short would then lose them unnoticed).
  opts.atomic_flush = true;
  opts.max_background_jobs = 2;
  opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  opts.info_log = std::make_shared<SpdLogger>();
  rocksdb::ColumnFamilyOptions cf;
  cf.OptimizeForPointLookup(64);
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {{rocksdb::kDefaultColumnFamilyName, cf},
                                                      {"meta", rocksdb::ColumnFamilyOptions()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);  // RocksDB logs an error when it is missing
  if (ec) return Status::IoError("create " + dir + ": " + ec.message());
  auto s = rocksdb::DB::Open(opts, dir, cfs, &handles, &raw);
  if (!s.ok()) return FromRocks(s, ("open index " + dir).c_str());
  auto idx = std::unique_ptr<Index>(new Index());
  idx->db_.reset(raw);
  idx->entries_ = handles[0];
  idx->meta_ = handles[1];
  return idx;
}

Index::~Index() {
  if (db_) {
    db_->DestroyColumnFamilyHandle(entries_);
    db_->DestroyColumnFamilyHandle(meta_);
    (void)db_->Close();
  }
}

Status Index::CheckHealthy() {
  if (!failed_.load()) return Status::Ok();
  auto s = db_->Resume();
  if (!s.ok()) return FromRocks(s, "index unusable after an earlier write error");
  failed_ = false;
  return Status::Ok();
}

Status Index::Write(rocksdb::WriteBatch* batch, const char* what) {
  std::lock_guard lk(write_mu_);
  STRATA_RETURN_IF_ERROR(CheckHealthy());
  auto s = db_->Write(rocksdb::WriteOptions(), batch);
  if (!s.ok()) failed_ = true;
  return FromRocks(s, what);
}

Status Index::Put(std::span<const IndexEntry> entries) {
  if (entries.empty()) return Status::Ok();
  rocksdb::WriteBatch b;
  for (const auto& e : entries) b.Put(entries_, EncodeKey(e.key), EncodeValue(e));
  return Write(&b, "index put");
}

Status Index::Delete(std::span<const ObjectKey> keys) {
  if (keys.empty()) return Status::Ok();
  rocksdb::WriteBatch b;
  for (const auto& k : keys) b.Delete(entries_, EncodeKey(k));
  return Write(&b, "index delete");
}

Status Index::DeleteNamespace(NamespaceId ns) {
  std::string begin(8, '\0'), end(8, '\0');
  PutBE(begin.data(), ns);
  rocksdb::WriteBatch b;
  if (ns == UINT64_MAX) {
    // No 8-byte end key above this namespace: delete key by key.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), entries_));
    for (it->Seek(begin); it->Valid(); it->Next()) b.Delete(entries_, it->key());
  } else {
    PutBE(end.data(), ns + 1);
    b.DeleteRange(entries_, begin, end);
  }
  return Write(&b, "index delete namespace");
}

Status Index::Sync() {
  std::lock_guard lk(write_mu_);
  STRATA_RETURN_IF_ERROR(CheckHealthy());
  auto s = db_->SyncWAL();
  if (!s.ok()) failed_ = true;
  return FromRocks(s, "index sync");
}

Status Index::Scan(const std::function<bool(const IndexEntry&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), entries_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto e = Decode(it->key(), it->value());
    if (!e.ok()) return e.status();
    if (!visit(*e)) break;
  }
  return FromRocks(it->status(), "index scan");
}

Result<std::optional<IndexMeta>> Index::GetMeta() const {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), meta_, "geometry", &v);
  if (s.IsNotFound()) return std::optional<IndexMeta>();
  if (!s.ok()) return FromRocks(s, "index meta");
  if (v.size() != 24)
    return Status::Corruption("index meta has " + std::to_string(v.size()) + " bytes");
  IndexMeta m;
  m.format_version = uint32_t(GetLE(v.data()));
  m.segment_bytes = GetLE(v.data() + 8);
  m.segment_count = uint32_t(GetLE(v.data() + 16));
  return std::optional<IndexMeta>(m);
}

Status Index::PutMeta(const IndexMeta& m) {
  std::string v(24, '\0');
  PutLE(v.data(), m.format_version);
  PutLE(v.data() + 8, m.segment_bytes);
  PutLE(v.data() + 16, m.segment_count);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::lock_guard lk(write_mu_);
  return FromRocks(db_->Put(wo, meta_, "geometry", v), "index meta put");
}

Result<uint64_t> Index::GetDurableSequence() const {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions(), meta_, "durable_sequence", &v);
  if (s.IsNotFound()) return uint64_t(0);
  if (!s.ok()) return FromRocks(s, "index durable sequence");
  if (v.size() != 8)
    return Status::Corruption("index durable sequence has " + std::to_string(v.size()) + " bytes");
  return GetLE(v.data());
}

Status Index::PutDurableSequence(uint64_t sequence) {
  std::lock_guard lk(write_mu_);
  STRATA_RETURN_IF_ERROR(CheckHealthy());
  std::string v(8, '\0');
  PutLE(v.data(), sequence);
  auto s = db_->Put(rocksdb::WriteOptions(), meta_, "durable_sequence", v);
  if (!s.ok()) failed_ = true;
  return FromRocks(s, "index durable sequence put");
}

Status Index::FlushMemtables() {
  std::lock_guard lk(write_mu_);
  STRATA_RETURN_IF_ERROR(CheckHealthy());
  rocksdb::FlushOptions fo;
  fo.wait = true;
  auto s = db_->Flush(fo, {entries_, meta_});
  if (!s.ok()) failed_ = true;
  return FromRocks(s, "index flush");
}

}  // namespace strata::cachestore
