// A real Redis Cluster for tests: N masters with R replicas each, as `redis-server` child
// processes on 127.0.0.1, joined with `redis-cli --cluster create`.
//
// Each node gets a config file and a log in the cluster's temp directory (the children's
// stdout and stderr go there, never to the test's), runs in a process group of its own, and is
// stopped by the destructor (SIGTERM, SIGKILL after 2 s), also when a test fails; a test process
// killed outright takes its nodes with it (PR_SET_PDEATHSIG). Ports are
// picked at random among free ones below the ephemeral range, with their cluster bus port
// (port + 10000) free too, so parallel test processes and repeated runs do not collide; a node
// that still loses the race to its port is started again on another.
// Thread safety: none; one test thread drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "cachestore/cluster/redis_cluster.h"
#include "strata/status.h"
#include "tests/testing/temp_dir.h"

namespace strata::testing {

struct RedisClusterSpec {
  int masters = 3;
  int replicas = 0;                       // per master
  std::string maxmemory;                  // e.g. "64mb" (with allkeys-lru); empty: no limit
  std::vector<std::string> extra_config;  // lines appended to every node's config
};

class RedisClusterProcess {
 public:
  using Reply = cachestore::cluster::RedisReply;

  // Empty when redis-server and redis-cli can be run; else why not (tests GTEST_SKIP with it).
  static std::string Missing();

  explicit RedisClusterProcess(RedisClusterSpec spec = {});
  ~RedisClusterProcess();
  RedisClusterProcess(const RedisClusterProcess&) = delete;
  RedisClusterProcess& operator=(const RedisClusterProcess&) = delete;

  // Starts the nodes, creates the cluster and waits until every node reports cluster_state:ok
  // with all 16384 slots served and every replica's link to its master is up.
  Status Start(std::chrono::milliseconds timeout = std::chrono::seconds(60));

  size_t size() const { return nodes_.size(); }
  uint16_t port(size_t i) const { return nodes_[i].port; }
  std::string endpoint(size_t i) const { return "127.0.0.1:" + std::to_string(port(i)); }
  std::vector<cachestore::cluster::RedisEndpoint> Seeds() const;
  bool alive(size_t i) const { return nodes_[i].pid > 0; }

  // Asked of the node (ROLE); false for a dead or paused one.
  bool IsMaster(size_t i);
  std::vector<size_t> Masters();
  // The node serving `slot` as master, from CLUSTER SLOTS on a live node; -1 if none.
  int MasterOfSlot(uint16_t slot);
  std::string NodeId(size_t i);  // CLUSTER MYID

  void Kill(size_t i);    // SIGKILL, and reaped
  void Pause(size_t i);   // SIGSTOP
  void Resume(size_t i);  // SIGCONT

  // Waits until the slots `dead_master` served have a live master and every live node reports
  // cluster_state:ok.
  Status WaitForFailover(size_t dead_master,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until every replica of master i has acknowledged all of its writes (the offsets in
  // INFO replication agree). WAIT would not do from here: it counts acknowledgements of the
  // writes of its own connection, and each Command opens a new one.
  Status WaitReplicated(size_t i, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits until every live node reports cluster_state:ok with all slots served.
  Status WaitHealthy(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Runs one command on node i over a blocking connection of its own (hiredis's client, not
  // the adapter under test), as the default user.
  Result<Reply> Command(size_t i, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // The same on every live node; the first failure (or error reply) is returned.
  Status CommandOnAll(const std::vector<std::string>& args);

  const std::string& dir() const { return dir_.path(); }
  std::string Log(size_t i) const;

 private:
  struct Node {
    uint16_t port = 0;
    pid_t pid = -1;
    std::string dir;
  };
  Status StartNode(size_t i);
  Status WaitAll(std::chrono::steady_clock::time_point deadline, const std::string& what,
                 bool (RedisClusterProcess::*ready)(size_t));
  bool NodeHealthy(size_t i);
  void StopAll();

  RedisClusterSpec spec_;
  TempDir dir_;
  std::vector<Node> nodes_;
};

}  // namespace strata::testing
