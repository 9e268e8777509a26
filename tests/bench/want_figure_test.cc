// --only PREFIX of the daemon and cluster benches: which figures and groups run.
#include <gtest/gtest.h>

#include "bench/store_bench.h"

namespace strata::bench {
namespace {

TEST(WantFigureTest, PrefixesRunFiguresAndGroupsButNotSiblings) {
  EXPECT_TRUE(WantFigure("", "cluster.put.csa"));
  EXPECT_TRUE(WantFigure("cluster", "cluster.put.csa"));
  EXPECT_TRUE(WantFigure("cluster.put", "cluster.put.csa_index"));
  EXPECT_TRUE(WantFigure("cluster.put.csa", "cluster.put.csa"));
  // A group runs for a figure inside it.
  EXPECT_TRUE(WantFigure("cluster.restore.vs_cold", "cluster.restore"));
  EXPECT_TRUE(WantFigure("server.get.csa.trusted", "server.get.csa"));
  // A sibling that only shares letters does not.
  EXPECT_FALSE(WantFigure("cluster.put.csa_index", "cluster.put.csa"));
  EXPECT_FALSE(WantFigure("cluster.put.hca", "cluster.put.csa"));
  EXPECT_FALSE(WantFigure("cluster.get", "cluster.put.csa"));
}

}  // namespace
}  // namespace strata::bench
