#include "cachestore/server/server_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <sstream>

#include "cachestore/cluster/cluster_tier.h"
#include "tools/store_config.h"

namespace strata::server {
namespace {

using nlohmann::json;

constexpr const char* kTopKeys[] = {"socket",
                                    "socket_mode",
                                    "data_dir",
                                    "io_threads",
                                    "io_spin_us",
                                    "blocking_threads",
                                    "metrics_port",
                                    "default_lease_ms",
                                    "hello_timeout_ms",
                                    "max_leases_per_connection",
                                    "host",
                                    "nvme",
                                    "codec",
                                    "thin_swa_on_demotion",
                                    "tenants",
                                    "cluster"};
constexpr const char* kTenantKeys[] = {"name",
                                       "secret",
                                       "uids",
                                       "gids",
                                       "key_secret",
                                       "host_quota",
                                       "nvme_quota",
                                       "swa_policy",
                                       "weight",
                                       "cluster_user",
                                       "cluster_password",
                                       "cluster_prefix",
                                       "verify_host_copies",
                                       "client_writes",
                                       "staging_bytes"};
constexpr const char* kClusterKeys[] = {"seeds",      "deadline_ms", "connect_timeout_ms",
                                        "io_threads", "spin_us",     "share"};
constexpr const char* kShareKeys[] = {"min_uses", "checkpoints", "full_swa"};

Status UnknownKeys(const json& j, std::span<const char* const> allowed, const std::string& where) {
  for (auto& [key, _] : j.items()) {
    if (!key.empty() && key[0] == '_') continue;  // "_comment" and the like: notes for people
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }))
      return Status::InvalidArgument(where + ": unknown key '" + key + "'");
  }
  return Status::Ok();
}

Result<uint64_t> Bytes(const json& j, const char* key, const std::string& where) {
  const json& v = j.at(key);
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_string()) {
    auto r = tools::ParseBytes(v.get<std::string>());
    if (!r.ok()) return r.status().WithContext(where + "." + key);
    return r;
  }
  return Status::InvalidArgument(where + "." + key + " must be a byte count or a size string");
}

Result<std::vector<uint32_t>> Ids(const json& j, const char* key, const std::string& where) {
  std::vector<uint32_t> out;
  const json& v = j.at(key);
  if (!v.is_array()) return Status::InvalidArgument(where + "." + key + " must be a list of ids");
  for (const json& e : v) {
    if (!e.is_number_unsigned() || e.get<uint64_t>() > UINT32_MAX)
      return Status::InvalidArgument(where + "." + key + " holds a value that is not an id");
    out.push_back(e.get<uint32_t>());
  }
  return out;
}

Result<TenantConfig> ParseTenant(const json& j, size_t index) {
  std::string where = fmt::format("tenants[{}]", index);
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  STRATA_RETURN_IF_ERROR(UnknownKeys(j, kTenantKeys, where));
  TenantConfig t;
  if (!j.contains("name") || !j["name"].is_string())
    return Status::InvalidArgument(where + ".name is required (a string)");
  t.name = j["name"].get<std::string>();
  where = "tenant '" + t.name + "'";
  if (j.contains("secret")) t.secret = j["secret"].get<std::string>();
  if (j.contains("uids")) {
    STRATA_ASSIGN_OR_RETURN(t.uids, Ids(j, "uids", where));
  }
  if (j.contains("gids")) {
    STRATA_ASSIGN_OR_RETURN(t.gids, Ids(j, "gids", where));
  }
  t.key_secret = j.contains("key_secret") ? j["key_secret"].get<std::string>() : t.name;
  if (j.contains("host_quota")) {
    STRATA_ASSIGN_OR_RETURN(t.host_quota_bytes, Bytes(j, "host_quota", where));
  }
  if (j.contains("nvme_quota")) {
    STRATA_ASSIGN_OR_RETURN(t.nvme_quota_bytes, Bytes(j, "nvme_quota", where));
  }
  if (j.contains("swa_policy")) {
    const std::string p = j["swa_policy"].get<std::string>();
    if (p == "full")
      t.swa_policy = wire::SwaPolicyWire::kFull;
    else if (p == "checkpoint")
      t.swa_policy = wire::SwaPolicyWire::kCheckpoint;
    else if (p == "recompute")
      t.swa_policy = wire::SwaPolicyWire::kRecompute;
    else
      return Status::InvalidArgument(where + ".swa_policy '" + p +
                                     "' is not one of full, checkpoint, recompute");
  }
  if (j.contains("weight")) {
    if (!j["weight"].is_number())
      return Status::InvalidArgument(where + ".weight must be a number");
    t.weight = j["weight"].get<double>();
  }
  if (j.contains("cluster_user")) t.cluster_user = j["cluster_user"].get<std::string>();
  if (j.contains("cluster_password")) t.cluster_password = j["cluster_password"].get<std::string>();
  t.cluster_prefix = j.contains("cluster_prefix") ? j["cluster_prefix"].get<std::string>() : t.name;
  if (j.contains("verify_host_copies")) {
    if (!j["verify_host_copies"].is_boolean())
      return Status::InvalidArgument(where + ".verify_host_copies must be true or false");
    t.verify_host_copies = j["verify_host_copies"].get<bool>();
    if (!t.verify_host_copies) t.client_writes = TenantConfig::ClientWrites::kInPlace;
  }
  if (j.contains("client_writes")) {
    const json& w = j["client_writes"];
    if (w == "staging") {
      t.client_writes = TenantConfig::ClientWrites::kStaging;
    } else if (w == "in_place") {
      t.client_writes = TenantConfig::ClientWrites::kInPlace;
    } else {
      return Status::InvalidArgument(where + ".client_writes must be \"staging\" or \"in_place\"");
    }
  }
  if (j.contains("staging_bytes")) {
    STRATA_ASSIGN_OR_RETURN(t.staging_bytes, Bytes(j, "staging_bytes", where));
    if (t.staging_bytes < (1u << 20))
      return Status::InvalidArgument(where + ".staging_bytes must be at least 1MiB");
  }
  return t;
}

Result<ClusterConfig> ParseCluster(const json& j) {
  const std::string where = "cluster";
  if (!j.is_object()) return Status::InvalidArgument("cluster must be an object");
  STRATA_RETURN_IF_ERROR(UnknownKeys(j, kClusterKeys, where));
  ClusterConfig c;
  if (j.contains("seeds")) {
    if (!j["seeds"].is_array())
      return Status::InvalidArgument("cluster.seeds must be a list of \"host:port\"");
    for (const json& e : j["seeds"]) {
      if (!e.is_string())
        return Status::InvalidArgument("cluster.seeds must be a list of \"host:port\"");
      c.seeds.push_back(e.get<std::string>());
    }
  }
  if (j.contains("deadline_ms")) c.deadline_ms = j["deadline_ms"].get<uint32_t>();
  if (j.contains("connect_timeout_ms"))
    c.connect_timeout_ms = j["connect_timeout_ms"].get<uint32_t>();
  if (j.contains("io_threads")) c.io_threads = j["io_threads"].get<uint32_t>();
  if (j.contains("spin_us")) c.spin_us = j["spin_us"].get<uint32_t>();
  if (j.contains("share")) {
    const json& s = j["share"];
    if (!s.is_object()) return Status::InvalidArgument("cluster.share must be an object");
    STRATA_RETURN_IF_ERROR(UnknownKeys(s, kShareKeys, "cluster.share"));
    if (s.contains("min_uses")) c.share.min_uses = s["min_uses"].get<uint32_t>();
    if (s.contains("checkpoints")) c.share.checkpoints = s["checkpoints"].get<bool>();
    if (s.contains("full_swa")) c.share.full_swa = s["full_swa"].get<bool>();
  }
  c.share.enabled = !c.seeds.empty();
  return c;
}

Result<ServerConfig> ParseUnchecked(std::string_view text, const std::string& name) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument(name + ": not a JSON object");
  STRATA_RETURN_IF_ERROR(UnknownKeys(j, kTopKeys, name));
  ServerConfig c;
  if (j.contains("data_dir")) c.data_dir = j["data_dir"].get<std::string>();
  c.socket_path =
      j.contains("socket") ? j["socket"].get<std::string>() : c.data_dir + "/strata.sock";
  if (j.contains("socket_mode")) {
    const json& m = j["socket_mode"];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      size_t used = 0;
      unsigned long v = 0;
      try {
        v = std::stoul(s, &used, 8);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != s.size() || v > 0777)
        return Status::InvalidArgument(name + ": socket_mode '" + s + "' is not an octal mode");
      c.socket_mode = uint32_t(v);
    } else {
      return Status::InvalidArgument(name + ": socket_mode must be an octal string like \"0660\"");
    }
  }
  if (j.contains("io_threads")) c.io_threads = j["io_threads"].get<uint32_t>();
  if (j.contains("io_spin_us")) c.io_spin_us = j["io_spin_us"].get<uint32_t>();
  if (j.contains("blocking_threads")) c.blocking_threads = j["blocking_threads"].get<uint32_t>();
  if (j.contains("metrics_port")) c.metrics_port = j["metrics_port"].get<uint16_t>();
  if (j.contains("default_lease_ms")) c.default_lease_ms = j["default_lease_ms"].get<uint32_t>();
  if (j.contains("hello_timeout_ms")) {
    c.hello_timeout_ms = j["hello_timeout_ms"].get<uint32_t>();
    if (c.hello_timeout_ms == 0)
      return Status::InvalidArgument(name + ": hello_timeout_ms must be > 0");
  }
  if (j.contains("max_leases_per_connection")) {
    c.max_leases_per_connection = j["max_leases_per_connection"].get<uint32_t>();
    if (c.max_leases_per_connection == 0)
      return Status::InvalidArgument(name + ": max_leases_per_connection must be > 0");
  }

  // The store template through the store config reader (configs/store/*.json's keys). The
  // NVMe section gets a placeholder directory so its geometry is validated; each tenant's real
  // directory is data_dir/tenants/<name>.
  json store = json::object();
  for (const char* k : {"host", "nvme", "codec", "thin_swa_on_demotion"})
    if (j.contains(k) && !j[k].is_null()) store[k] = j[k];
  if (store.contains("nvme")) {
    if (!store["nvme"].is_object())
      return Status::InvalidArgument(name + ": nvme must be an object or null");
    if (store["nvme"].contains("data_dir"))
      return Status::InvalidArgument(
          name + ": nvme.data_dir is not used by the server (data_dir/tenants/<name>)");
    store["nvme"]["data_dir"] = c.data_dir;
  }
  STRATA_ASSIGN_OR_RETURN(c.store, tools::ParseStoreConfig(store.dump(), name));
  if (j.contains("host") && j["host"].contains("prefault"))
    c.store.host.prefault = j["host"]["prefault"].get<bool>();

  if (j.contains("cluster") && !j["cluster"].is_null()) {
    STRATA_ASSIGN_OR_RETURN(c.cluster, ParseCluster(j["cluster"]));
  }
  if (!j.contains("tenants") || !j["tenants"].is_array() || j["tenants"].empty())
    return Status::InvalidArgument(name + ": tenants must be a non-empty list");
  for (size_t i = 0; i < j["tenants"].size(); ++i) {
    auto t = ParseTenant(j["tenants"][i], i);
    if (!t.ok()) return t.status().WithContext(name);
    c.tenants.push_back(std::move(*t));
  }
  // Shares: tenants without an explicit quota split what the others leave, by weight.
  double weights = 0;
  uint64_t host_given = 0, nvme_given = 0;
  for (const TenantConfig& t : c.tenants) {
    if (!(t.weight > 0))
      return Status::InvalidArgument(name + ": tenant '" + t.name + "'.weight must be > 0");
    if (!t.host_quota_bytes || !t.nvme_quota_bytes) weights += t.weight;
    host_given += t.host_quota_bytes;
    nvme_given += t.nvme_quota_bytes;
  }
  const uint64_t host_left =
      c.store.host.capacity_bytes > host_given ? c.store.host.capacity_bytes - host_given : 0;
  const uint64_t nvme_left =
      c.store.nvme.capacity_bytes > nvme_given ? c.store.nvme.capacity_bytes - nvme_given : 0;
  const uint64_t seg = c.store.nvme.segment_bytes;
  for (TenantConfig& t : c.tenants) {
    if (!t.host_quota_bytes)
      t.host_quota_bytes = uint64_t(double(host_left) * t.weight / weights) / 4096 * 4096;
    if (!t.nvme_quota_bytes) t.nvme_quota_bytes = uint64_t(double(nvme_left) * t.weight / weights);
    t.nvme_quota_bytes = t.nvme_quota_bytes / seg * seg;
  }
  STRATA_RETURN_IF_ERROR(c.Validate().WithContext(name));
  return c;
}

}  // namespace

std::string_view SwaPolicyName(wire::SwaPolicyWire p) {
  switch (p) {
    case wire::SwaPolicyWire::kFull:
      return "full";
    case wire::SwaPolicyWire::kCheckpoint:
      return "checkpoint";
    case wire::SwaPolicyWire::kRecompute:
      return "recompute";
  }
  return "?";
}

StoreConfig ServerConfig::TenantStore(const TenantConfig& t) const {
  StoreConfig s = store;
  s.host.capacity_bytes = t.host_quota_bytes;
  // The tenant's arena is its quota, so the core's per-namespace limit is not needed: a tenant
  // over its share evicts its own blocks because it has no others.
  s.host.namespace_quota_bytes = 0;
  if (!store.nvme.data_dir.empty()) {
    s.nvme.data_dir = data_dir + "/tenants/" + t.name;
    s.nvme.capacity_bytes = t.nvme_quota_bytes;
  }
  return s;
}

Status ServerConfig::Validate() const {
  if (socket_path.empty()) return Status::InvalidArgument("socket must not be empty");
  if (socket_path.size() >= 108)
    return Status::InvalidArgument("socket path '" + socket_path +
                                   "' is longer than a Unix socket address allows (107)");
  if (data_dir.empty()) return Status::InvalidArgument("data_dir must not be empty");
  if (io_threads > 1024) return Status::InvalidArgument("io_threads must be at most 1024");
  if (io_spin_us > 100000)
    return Status::InvalidArgument("io_spin_us must be at most 100000 (0.1 s)");
  if (blocking_threads == 0 || blocking_threads > 256)
    return Status::InvalidArgument("blocking_threads must be in 1..256");
  if (!cluster.seeds.empty()) {
    if (cluster.deadline_ms == 0 || cluster.connect_timeout_ms == 0)
      return Status::InvalidArgument("cluster.deadline_ms and connect_timeout_ms must be > 0");
    if (cluster.io_threads < 1 || cluster.io_threads > cachestore::cluster::kMaxIoThreads)
      return Status::InvalidArgument(
          fmt::format("cluster.io_threads must be in 1..{}", cachestore::cluster::kMaxIoThreads));
    if (cluster.spin_us > 100000)
      return Status::InvalidArgument("cluster.spin_us must be at most 100000 (0.1 s)");
    STRATA_RETURN_IF_ERROR(cluster.share.Validate());
  }
  std::set<std::string> names;
  for (const TenantConfig& t : tenants) {
    const std::string where = "tenant '" + t.name + "'";
    if (t.name.empty() || t.name.size() > 64 ||
        !std::all_of(t.name.begin(), t.name.end(),
                     [](char ch) {
                       return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' ||
                              ch == '-' || ch == '.';
                     }) ||
        t.name == "." || t.name == "..")
      return Status::InvalidArgument(where + ".name must be 1..64 of [A-Za-z0-9_.-]");
    if (!names.insert(t.name).second)
      return Status::InvalidArgument(where + " is configured twice");
    if (t.secret.size() > wire::kMaxNameLen)
      return Status::InvalidArgument(where + ".secret is longer than 255 bytes");
    if (t.key_secret.empty())
      return Status::InvalidArgument(where + ".key_secret must not be empty");
    if (t.host_quota_bytes < (1u << 20))
      return Status::InvalidArgument(where + ".host_quota (or its share of host.capacity) is " +
                                     std::to_string(t.host_quota_bytes) + " bytes, below 1 MiB");
    if (!store.nvme.data_dir.empty() && t.nvme_quota_bytes / store.nvme.segment_bytes < 2)
      return Status::InvalidArgument(where +
                                     ".nvme_quota (or its share of nvme.capacity) holds "
                                     "fewer than 2 segments");
    if (!cluster.seeds.empty() &&
        (t.cluster_prefix.empty() || t.cluster_prefix.find_first_of(":{}") != std::string::npos))
      return Status::InvalidArgument(where +
                                     ".cluster_prefix must be non-empty, without ':', "
                                     "'{' or '}'");
    STRATA_RETURN_IF_ERROR(TenantStore(t).Validate().WithContext(where));
  }
  return Status::Ok();
}

Result<ServerConfig> ParseServerConfig(std::string_view json_text, const std::string& name) {
  try {
    return ParseUnchecked(json_text, name);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(name + ": " + e.what());
  }
}

Result<ServerConfig> LoadServerConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read server config " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseServerConfig(ss.str(), path);
}

std::string DescribeServerConfig(const ServerConfig& c) {
  std::string out = fmt::format(
      "socket {} (mode {:04o}), data_dir {}, io_threads {}, io_spin_us {}, blocking_threads {}, "
      "metrics_port {}, default_lease_ms {}, hello_timeout_ms {}, max_leases_per_connection {}; "
      "store template: {}",
      c.socket_path, c.socket_mode, c.data_dir, c.io_threads, c.io_spin_us, c.blocking_threads,
      c.metrics_port, c.default_lease_ms, c.hello_timeout_ms, c.max_leases_per_connection,
      tools::DescribeStoreConfig(c.store));
  for (const TenantConfig& t : c.tenants) {
    std::string auth;
    if (!t.secret.empty()) auth += "secret";
    if (!t.uids.empty())
      auth += fmt::format("{}uids [{}]", auth.empty() ? "" : " + ", fmt::join(t.uids, ","));
    if (!t.gids.empty())
      auth += fmt::format("{}gids [{}]", auth.empty() ? "" : " + ", fmt::join(t.gids, ","));
    if (auth.empty()) auth = "any local peer";
    out += fmt::format(
        "\n  tenant {}: auth {}, host {} bytes, nvme {} bytes, swa_policy {}, weight {}", t.name,
        auth, t.host_quota_bytes, c.store.nvme.data_dir.empty() ? 0 : t.nvme_quota_bytes,
        SwaPolicyName(t.swa_policy), t.weight);
    if (t.client_writes == TenantConfig::ClientWrites::kStaging)
      out += fmt::format(", writes staged ({} bytes per connection; arena sealed read-only)",
                         t.staging_bytes);
    else if (t.verify_host_copies)
      out += ", writes in place (host copies verified)";
    else
      out += ", writes in place, host copies NOT verified (trusted clients)";
    if (!c.cluster.seeds.empty())
      out += fmt::format(", cluster prefix {} user {}", t.cluster_prefix,
                         t.cluster_user.empty() ? "(none)" : t.cluster_user);
  }
  if (!c.cluster.seeds.empty())
    out += fmt::format(
        "\n  cluster tier: seeds [{}], deadline {} ms, connect timeout {} ms, {} I/O thread(s), "
        "spin {} us, share: compressed at use {}, checkpoints {}, full swa {}",
        fmt::join(c.cluster.seeds, ","), c.cluster.deadline_ms, c.cluster.connect_timeout_ms,
        c.cluster.io_threads, c.cluster.spin_us, c.cluster.share.min_uses,
        c.cluster.share.checkpoints, c.cluster.share.full_swa);
  return out;
}

}  // namespace strata::server
