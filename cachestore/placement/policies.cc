// Policy factories.
#include <string>

#include "cachestore/placement/cost_policy.h"
#include "cachestore/placement/eviction_policy.h"
#include "cachestore/placement/s3fifo_policy.h"

namespace strata::cachestore {
namespace {

class AdmitAll final : public AdmissionPolicy {
 public:
  std::string_view name() const override { return "all"; }
  bool Admit(const ObjectFacts&) override { return true; }
};

class AdmitSecondUse final : public AdmissionPolicy {
 public:
  std::string_view name() const override { return "second-use"; }
  bool Admit(const ObjectFacts& f) override { return f.hits >= 1; }
};

}  // namespace

Result<std::unique_ptr<EvictionPolicy>> MakeEvictionPolicy(std::string_view name) {
  if (name == "lru") return std::unique_ptr<EvictionPolicy>(std::make_unique<LruPolicy>());
  if (name == "s3fifo") return std::unique_ptr<EvictionPolicy>(std::make_unique<S3FifoPolicy>());
  if (name == "cost") return std::unique_ptr<EvictionPolicy>(std::make_unique<CostPolicy>());
  return Status::InvalidArgument("unknown eviction policy '" + std::string(name) +
                                 "' (choices: lru, s3fifo, cost)");
}

Result<std::unique_ptr<AdmissionPolicy>> MakeAdmissionPolicy(std::string_view name) {
  if (name == "all") return std::unique_ptr<AdmissionPolicy>(std::make_unique<AdmitAll>());
  if (name == "second-use")
    return std::unique_ptr<AdmissionPolicy>(std::make_unique<AdmitSecondUse>());
  return Status::InvalidArgument("unknown admission policy '" + std::string(name) +
                                 "' (choices: all, second-use)");
}

}  // namespace strata::cachestore
