// Hardware and model cost parameters of a serving node for `strata compare`
// (configs/hardware/*.json). Every value sits in {"value": X, "source": "..."}: the loader
// rejects a value without a source, so an invented number cannot slip in unlabelled; values no
// public source gives say so in their source string and are parameters to replace by
// measurements.
// Thread safety: plain data.
#pragma once

#include <map>
#include <string>

#include "strata/status.h"

namespace strata::tools {

struct ModelCost {
  double prefill_tokens_per_s_per_gpu = 0;
  double weight_bytes = 0;
};

struct Hardware {
  std::string name;
  int gpus = 0;
  double hbm_bytes_per_gpu = 0, hbm_bytes_per_s = 0, hbm_reserve_fraction = 0;
  double dram_bytes = 0, dram_bytes_per_s = 0;
  double pcie_bytes_per_s = 0;  // per GPU, host -> device
  double nvme_bytes = 0, nvme_read_bytes_per_s = 0, nvme_write_bytes_per_s = 0, nvme_latency_s = 0;
  // The node's network to the cluster tier (Redis Cluster), for the whole node (its GPUs share
  // it). Optional in the file (all three or none); 0 when absent: no cluster tier can be modelled.
  double cluster_read_bytes_per_s = 0, cluster_write_bytes_per_s = 0, cluster_latency_s = 0;
  std::map<std::string, ModelCost> models;  // by model config file stem ("v4-pro")

  bool has_cluster() const { return cluster_read_bytes_per_s > 0; }

  // The model's costs; NotFound naming the models the file has.
  Result<ModelCost> For(const std::string& model) const;
  // HBM of the node left for cached state after `model`'s weights and the reserve.
  double HbmLeftBytes(const ModelCost& m) const {
    const double total = double(gpus) * hbm_bytes_per_gpu;
    return total * (1.0 - hbm_reserve_fraction) - m.weight_bytes;
  }
};

Result<Hardware> ParseHardware(const std::string& json_text, const std::string& name);
Result<Hardware> LoadHardware(const std::string& path);

}  // namespace strata::tools
