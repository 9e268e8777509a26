// Engine test fixtures: shipped tiny models with seeded random weights (built once per process)
// and seeded random prompts.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/model.h"
#include "engine/model_config.h"

namespace strata::testing {

// `config_name` from configs/models; without_mtp drops its MTP layer.
inline std::shared_ptr<const engine::Model> TinyModel(const std::string& config_name,
                                                      bool without_mtp = false) {
  static std::map<std::pair<std::string, bool>, std::shared_ptr<const engine::Model>> models;
  auto& m = models[{config_name, without_mtp}];
  if (!m) {
    auto config = engine::LoadModelConfig(STRATA_SOURCE_DIR "/configs/models/" + config_name);
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    if (without_mtp) {
      config->shape.compress_ratios.resize(size_t(config->shape.n_layers));
      config->shape.n_mtp_layers = 0;
    }
    auto model = engine::Model::Create(*config, engine::ModelWeights::Random(*config, 21));
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    m = std::shared_ptr<const engine::Model>(std::move(*model));
  }
  return m;
}

inline std::vector<int32_t> RandomTokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % 512);
  return t;
}

}  // namespace strata::testing
