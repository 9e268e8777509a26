// StoreConfig from JSON (configs/store/*.json) and byte sizes like "64MiB". JSON is parsed
// here, in tools/, never inside components.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "strata/status.h"
#include "strata/store.h"

namespace strata::tools {

// "1073741824", "64MiB", "4GiB", "512K", "10GB" (powers of 1024 for K/M/G/T with or without
// "i"/"B").
Result<uint64_t> ParseBytes(std::string_view text);
// A codec by its name (CodecKindName): none, lz4, lz4+shuffle2, lz4+shuffle4, zstd.
Result<CodecKind> ParseCodec(const std::string& name);

// Reads a store config file; fields absent from it keep their defaults.
Result<StoreConfig> LoadStoreConfig(const std::string& path);
Result<StoreConfig> ParseStoreConfig(std::string_view json_text, const std::string& name);

// One line describing the effective config, for the log.
std::string DescribeStoreConfig(const StoreConfig& c);

}  // namespace strata::tools
