#include "cachestore/cluster/cluster_tier.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "cachestore/nvme/record.h"

namespace strata::cachestore::cluster {

struct ClusterTier::Counters {
  std::atomic<uint64_t> puts{0}, put_bytes{0}, put_failures{0};
  std::atomic<uint64_t> gets{0}, hits{0}, hit_bytes{0}, misses{0}, corrupt{0}, timeouts{0};
};

Status ClusterTierOptions::Validate() const {
  if (prefix.empty() || prefix.find_first_of(":{}") != std::string::npos)
    return Status::InvalidArgument("cluster tier: prefix '" + prefix +
                                   "' must be non-empty, without ':', '{' or '}'");
  if (deadline.count() <= 0)
    return Status::InvalidArgument("cluster tier: the deadline must be positive");
  if (io_threads < 1 || io_threads > kMaxIoThreads)
    return Status::InvalidArgument(
        fmt::format("cluster tier: io_threads {} is outside 1..{}", io_threads, kMaxIoThreads));
  return redis.Validate();
}

Result<std::unique_ptr<ClusterTier>> ClusterTier::Open(const ClusterTierOptions& options) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  std::vector<std::unique_ptr<RedisCluster>> redis;
  for (uint32_t i = 0; i < options.io_threads; ++i) {
    STRATA_ASSIGN_OR_RETURN(auto r, RedisCluster::Connect(options.redis));
    redis.push_back(std::move(r));
  }
  return std::unique_ptr<ClusterTier>(new ClusterTier(options, std::move(redis)));
}

ClusterTier::ClusterTier(ClusterTierOptions options,
                         std::vector<std::unique_ptr<RedisCluster>> redis)
    : options_(std::move(options)),
      redis_(std::move(redis)),
      counters_(std::make_unique<Counters>()) {}

std::vector<Result<RedisReply>> ClusterTier::Execute(std::span<const RedisCommand> commands) {
  const auto deadline = Deadline();
  const size_t first = turn_.fetch_add(1, std::memory_order_relaxed);
  const size_t parts = std::min(redis_.size(), commands.size());
  if (parts <= 1) return redis_[first % redis_.size()]->Execute(commands, deadline);
  std::vector<RedisCluster::PendingPtr> pending;
  size_t at = 0;
  for (size_t p = 0; p < parts; ++p) {
    const size_t n = commands.size() / parts + (p < commands.size() % parts ? 1 : 0);
    pending.push_back(
        redis_[(first + p) % redis_.size()]->Start(commands.subspan(at, n), deadline));
    at += n;
  }
  std::vector<Result<RedisReply>> out;
  out.reserve(commands.size());
  for (auto& p : pending)
    for (auto& r : RedisCluster::Wait(std::move(p))) out.push_back(std::move(r));
  return out;
}

ClusterTier::~ClusterTier() = default;

std::string ClusterTier::KeyFor(std::string_view prefix, const ObjectKey& key,
                                uint64_t fingerprint) {
  return fmt::format("{}:{{{:016x}.{:016x}.{:016x}.{:016x}}}:{}", prefix, key.ns, fingerprint,
                     key.block.hi, key.block.lo, FamilyName(key.family));
}

std::string ClusterTier::EncodeHeader(const PutItem& item) {
  std::string v(kRecordHeaderSize, '\0');
  RecordHeader h;
  h.key = item.key;
  h.codec = CodecKind::kNone;
  h.fingerprint = item.fingerprint;
  h.raw_size = h.stored_size = item.payload.size();
  h.payload_checksum = PayloadChecksum(item.payload);
  EncodeRecordHeader(h, std::span<std::byte, kRecordHeaderSize>(
                            reinterpret_cast<std::byte*>(v.data()), kRecordHeaderSize));
  return v;
}

std::string ClusterTier::EncodeValue(const PutItem& item) {
  std::string v = EncodeHeader(item);
  v.append(reinterpret_cast<const char*>(item.payload.data()), item.payload.size());
  return v;
}

Result<std::span<const std::byte>> ClusterTier::VerifyValue(std::string_view value,
                                                            const ObjectKey& key,
                                                            uint64_t fingerprint) {
  if (value.size() < kRecordHeaderSize)
    return Status::Corruption(
        fmt::format("cluster value of {} bytes is shorter than a record header", value.size()));
  const auto* p = reinterpret_cast<const std::byte*>(value.data());
  auto h = DecodeRecordHeader(std::span<const std::byte, kRecordHeaderSize>(p, kRecordHeaderSize));
  if (!h.ok()) return Status::Corruption("cluster value: " + std::string(h.status().message()));
  if (!(h->key == key) || h->fingerprint != fingerprint)
    return Status::Corruption("cluster value holds another object than its key names");
  if (h->codec != CodecKind::kNone || h->stored_size != value.size() - kRecordHeaderSize)
    return Status::Corruption(fmt::format("cluster value: stored size {} but {} payload bytes",
                                          h->stored_size, value.size() - kRecordHeaderSize));
  std::span<const std::byte> payload(p + kRecordHeaderSize, value.size() - kRecordHeaderSize);
  if (PayloadChecksum(payload) != h->payload_checksum)
    return Status::Corruption("cluster value: payload checksum mismatch");
  return payload;
}

std::vector<Result<RedisReply>> ClusterTier::PerKey(std::string_view verb,
                                                    std::span<const ObjectKey> keys,
                                                    uint64_t fingerprint) {
  std::vector<std::string> names;
  names.reserve(keys.size());
  for (const ObjectKey& k : keys) names.push_back(KeyFor(options_.prefix, k, fingerprint));
  std::vector<RedisCommand> cmds;
  cmds.reserve(keys.size());
  for (const std::string& n : names) cmds.push_back({{verb, n}});
  return Execute(cmds);
}

std::chrono::steady_clock::time_point ClusterTier::Deadline() const {
  return std::chrono::steady_clock::now() + options_.deadline;
}

std::vector<Status> ClusterTier::Put(std::span<const PutItem> items) {
  // The value is the header followed by the payload, sent from the caller's memory.
  std::vector<std::string> keys, headers;
  keys.reserve(items.size()), headers.reserve(items.size());
  std::vector<RedisCommand> cmds;
  cmds.reserve(items.size());
  for (const PutItem& it : items) {
    keys.push_back(KeyFor(options_.prefix, it.key, it.fingerprint));
    headers.push_back(EncodeHeader(it));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& payload = items[i].payload;
    cmds.push_back({{"SET", keys[i], headers[i]},
                    {reinterpret_cast<const char*>(payload.data()), payload.size()}});
  }
  auto replies = Execute(cmds);
  std::vector<Status> out;
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& r = replies[i];
    if (!r.ok()) {
      if (r.status().message().starts_with("deadline")) counters_->timeouts++;
      out.push_back(r.status());
    } else if (r->type == RedisReply::Type::kError) {
      out.push_back(Status::IoError("cluster SET refused: " + r->str));
    } else {
      out.push_back(Status::Ok());
    }
    if (out.back().ok()) {
      counters_->puts++;
      counters_->put_bytes += items[i].payload.size();
    } else {
      counters_->put_failures++;
    }
  }
  return out;
}

std::vector<Result<SharedTier::Value>> ClusterTier::Get(std::span<const ObjectKey> keys,
                                                        uint64_t fingerprint) {
  auto replies = PerKey("GET", keys, fingerprint);
  std::vector<Result<Value>> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    counters_->gets++;
    auto& r = replies[i];
    if (!r.ok()) {
      if (r.status().message().starts_with("deadline")) counters_->timeouts++;
      counters_->misses++;
      out.push_back(Status::NotFound("cluster: " + std::string(r.status().message())));
      continue;
    }
    if (r->type == RedisReply::Type::kNil) {
      counters_->misses++;
      out.push_back(Status::NotFound("cluster: no such object"));
      continue;
    }
    if (r->type != RedisReply::Type::kString) {
      counters_->misses++;
      out.push_back(Status::NotFound("cluster GET refused: " + r->str));
      continue;
    }
    auto payload = VerifyValue(r->str, keys[i], fingerprint);
    if (!payload.ok()) {
      counters_->corrupt++;
      counters_->misses++;
      out.push_back(payload.status());
      continue;
    }
    counters_->hits++;
    const size_t size = payload->size();
    counters_->hit_bytes += size;
    out.push_back(Value{std::move(r->str), kRecordHeaderSize, size});
  }
  return out;
}

std::vector<bool> ClusterTier::Exists(std::span<const ObjectKey> keys, uint64_t fingerprint) {
  auto replies = PerKey("EXISTS", keys, fingerprint);
  std::vector<bool> out(keys.size(), false);
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto& r = replies[i];
    if (!r.ok() && r.status().message().starts_with("deadline")) counters_->timeouts++;
    out[i] = r.ok() && r->type == RedisReply::Type::kInteger && r->integer == 1;
  }
  return out;
}

ClusterTierStats ClusterTier::stats() const {
  ClusterTierStats s;
  s.puts = counters_->puts, s.put_bytes = counters_->put_bytes;
  s.put_failures = counters_->put_failures, s.gets = counters_->gets, s.hits = counters_->hits;
  s.hit_bytes = counters_->hit_bytes, s.misses = counters_->misses;
  s.corrupt = counters_->corrupt, s.timeouts = counters_->timeouts;
  return s;
}

RedisClusterStats ClusterTier::redis_stats() const {
  RedisClusterStats s;
  for (const auto& r : redis_) {
    const RedisClusterStats x = r->stats();
    s.commands += x.commands, s.moved += x.moved, s.ask += x.ask, s.retries += x.retries;
    s.timeouts += x.timeouts, s.connect_errors += x.connect_errors;
    s.slot_map_refreshes += x.slot_map_refreshes;
    s.bytes_sent += x.bytes_sent, s.bytes_received += x.bytes_received;
  }
  return s;
}

void ClusterTier::VisitCounters(const CounterVisitor& visit) const {
  const ClusterTierStats s = stats();
  visit("cluster_puts", s.puts);
  visit("cluster_put_bytes", s.put_bytes);
  visit("cluster_put_failures", s.put_failures);
  visit("cluster_gets", s.gets);
  visit("cluster_hits", s.hits);
  visit("cluster_hit_bytes", s.hit_bytes);
  visit("cluster_misses", s.misses);
  visit("cluster_corrupt", s.corrupt);
  visit("cluster_timeouts", s.timeouts);
  const RedisClusterStats r = redis_stats();
  visit("cluster_redis_commands", r.commands);
  visit("cluster_redis_moved", r.moved);
  visit("cluster_redis_ask", r.ask);
  visit("cluster_redis_retries", r.retries);
  visit("cluster_redis_timeouts", r.timeouts);
  visit("cluster_redis_connect_errors", r.connect_errors);
  visit("cluster_redis_slot_map_refreshes", r.slot_map_refreshes);
}

}  // namespace strata::cachestore::cluster
