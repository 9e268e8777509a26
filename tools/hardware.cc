#include "tools/hardware.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace strata::tools {
namespace {

using nlohmann::json;

// {"value": number, "source": "non-empty"} at j[field].
Result<double> Sourced(const json& j, const std::string& field, const std::string& where,
                       bool positive = true) {
  if (!j.contains(field)) return Status::InvalidArgument(where + ": missing '" + field + "'");
  const json& f = j[field];
  const std::string at = where + "." + field;
  if (!f.is_object() || !f.contains("value") || !f["value"].is_number())
    return Status::InvalidArgument(at + ": expected {\"value\": number, \"source\": \"...\"}");
  if (!f.contains("source") || !f["source"].is_string() || f["source"].get<std::string>().empty())
    return Status::InvalidArgument(at +
                                   ": every value needs a non-empty \"source\" (where no "
                                   "public source gives it, say so)");
  const double v = f["value"].get<double>();
  if (v < 0 || (positive && v == 0))
    return Status::InvalidArgument(at + ": must be " + (positive ? "positive" : "non-negative"));
  return v;
}

}  // namespace

Result<ModelCost> Hardware::For(const std::string& model) const {
  auto it = models.find(model);
  if (it != models.end()) return it->second;
  std::string have;
  for (const auto& [k, v] : models) have += (have.empty() ? "" : ", ") + k;
  return Status::NotFound("hardware '" + name + "' has no costs for model '" + model +
                          "' (it has: " + have + "); add them under \"models\"");
}

Result<Hardware> ParseHardware(const std::string& text, const std::string& name) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(name + ": not JSON: " + e.what());
  }
  if (!j.is_object()) return Status::InvalidArgument(name + ": not a JSON object");
  Hardware h;
  h.name = j.value("name", name);
  STRATA_ASSIGN_OR_RETURN(const double gpus, Sourced(j, "gpus", name));
  h.gpus = int(gpus);
  if (double(h.gpus) != gpus) return Status::InvalidArgument(name + ".gpus: an integer");
  STRATA_ASSIGN_OR_RETURN(h.hbm_bytes_per_gpu, Sourced(j, "hbm_bytes_per_gpu", name));
  STRATA_ASSIGN_OR_RETURN(h.hbm_bytes_per_s, Sourced(j, "hbm_bytes_per_s", name));
  STRATA_ASSIGN_OR_RETURN(h.hbm_reserve_fraction, Sourced(j, "hbm_reserve_fraction", name, false));
  if (h.hbm_reserve_fraction >= 1)
    return Status::InvalidArgument(name + ".hbm_reserve_fraction: below 1");
  STRATA_ASSIGN_OR_RETURN(h.dram_bytes, Sourced(j, "dram_bytes", name));
  STRATA_ASSIGN_OR_RETURN(h.dram_bytes_per_s, Sourced(j, "dram_bytes_per_s", name));
  STRATA_ASSIGN_OR_RETURN(h.pcie_bytes_per_s, Sourced(j, "pcie_bytes_per_s", name));
  STRATA_ASSIGN_OR_RETURN(h.nvme_bytes, Sourced(j, "nvme_bytes", name));
  STRATA_ASSIGN_OR_RETURN(h.nvme_read_bytes_per_s, Sourced(j, "nvme_read_bytes_per_s", name));
  STRATA_ASSIGN_OR_RETURN(h.nvme_write_bytes_per_s, Sourced(j, "nvme_write_bytes_per_s", name));
  STRATA_ASSIGN_OR_RETURN(h.nvme_latency_s, Sourced(j, "nvme_latency_s", name, false));
  // The cluster tier's network: optional (files written before it existed stay valid), but all
  // three values or none, each with its source like every other value.
  const char* kCluster[] = {"cluster_read_bytes_per_s", "cluster_write_bytes_per_s",
                            "cluster_latency_s"};
  int cluster_fields = 0;
  for (const char* f : kCluster) cluster_fields += j.contains(f) ? 1 : 0;
  if (cluster_fields != 0 && cluster_fields != 3)
    return Status::InvalidArgument(name +
                                   ": give all of cluster_read_bytes_per_s, "
                                   "cluster_write_bytes_per_s and cluster_latency_s, or none");
  if (cluster_fields == 3) {
    STRATA_ASSIGN_OR_RETURN(h.cluster_read_bytes_per_s,
                            Sourced(j, "cluster_read_bytes_per_s", name));
    STRATA_ASSIGN_OR_RETURN(h.cluster_write_bytes_per_s,
                            Sourced(j, "cluster_write_bytes_per_s", name));
    STRATA_ASSIGN_OR_RETURN(h.cluster_latency_s, Sourced(j, "cluster_latency_s", name, false));
  }
  if (!j.contains("models") || !j["models"].is_object() || j["models"].empty())
    return Status::InvalidArgument(name + ": needs a \"models\" object (costs per model)");
  for (const auto& [model, m] : j["models"].items()) {
    const std::string where = name + ".models." + model;
    if (!m.is_object()) return Status::InvalidArgument(where + ": not an object");
    ModelCost c;
    STRATA_ASSIGN_OR_RETURN(c.prefill_tokens_per_s_per_gpu,
                            Sourced(m, "prefill_tokens_per_s_per_gpu", where));
    STRATA_ASSIGN_OR_RETURN(c.weight_bytes, Sourced(m, "weight_bytes", where));
    h.models[model] = c;
  }
  return h;
}

Result<Hardware> LoadHardware(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open hardware file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseHardware(ss.str(), path);
}

}  // namespace strata::tools
