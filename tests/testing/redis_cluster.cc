#include "tests/testing/redis_cluster.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace strata::testing {

namespace {

using Clock = std::chrono::steady_clock;
using cachestore::cluster::RedisReply;

std::string FindOnPath(const std::string& name) {
  const char* path = getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  for (std::string d; std::getline(ss, d, ':');) {
    const std::string f = (d.empty() ? "." : d) + "/" + name;
    if (::access(f.c_str(), X_OK) == 0) return f;
  }
  return "";
}

// A port whose bind succeeds now, for it and for its cluster bus port. Below the ephemeral
// range (32768+ on Linux) so outgoing connections do not take them meanwhile.
bool Bindable(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as redis-server binds
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

uint16_t PickPort(const std::vector<uint16_t>& taken) {
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  std::uniform_int_distribution<int> dist(20000, 22700);  // bus ports 30000..32700
  for (;;) {
    const auto p = static_cast<uint16_t>(dist(rng));
    if (std::find(taken.begin(), taken.end(), p) != taken.end()) continue;
    if (Bindable(p) && Bindable(static_cast<uint16_t>(p + 10000))) return p;
  }
}

// Forks `argv` into a process group of its own, stdin from /dev/null, stdout and stderr into
// `log`, and no other descriptor of ours.
pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) {
    if (pid > 0) setpgid(pid, pid);  // as the child does: whichever runs first
    return pid;
  }
  setpgid(0, 0);
  // Also gone when the test process dies without running destructors (a ctest timeout's
  // SIGKILL): the kernel kills the child with its parent. Its parent is the forking thread, so
  // the fixture must live on one thread (as it does: the test's).
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  const int in = ::open("/dev/null", O_RDONLY);
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in >= 0) dup2(in, 0);
  if (out >= 0) {
    dup2(out, 1);
    dup2(out, 2);
  }
  for (int fd = 3; fd < 1024; ++fd) ::close(fd);
  execv(argv[0], argv.data());
  _exit(127);
}

// SIGTERM to the group; SIGKILL when it has not exited within `grace`. Reaps the leader.
void StopGroup(pid_t pid, std::chrono::milliseconds grace) {
  ::kill(-pid, SIGCONT);  // a stopped process would not act on SIGTERM
  ::kill(-pid, SIGTERM);
  const auto deadline = Clock::now() + grace;
  int st = 0;
  while (waitpid(pid, &st, WNOHANG) != pid) {
    if (Clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(-pid, SIGKILL);  // anything left in its group
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

bool Contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

}  // namespace

std::string RedisClusterProcess::Missing() {
  for (const char* bin : {"redis-server", "redis-cli"})
    if (FindOnPath(bin).empty())
      return std::string(bin) +
             " not found on PATH (Debian: apt-get install redis-server redis-tools)";
  return "";
}

RedisClusterProcess::RedisClusterProcess(RedisClusterSpec spec) : spec_(std::move(spec)) {
  nodes_.resize(static_cast<size_t>(spec_.masters * (1 + spec_.replicas)));
  for (size_t i = 0; i < nodes_.size(); ++i) nodes_[i].dir = dir_.Sub("n" + std::to_string(i));
}

RedisClusterProcess::~RedisClusterProcess() { StopAll(); }

void RedisClusterProcess::StopAll() {
  // SIGTERM to all first, so the nodes stop in parallel; then reap each (SIGKILL at 2 s).
  for (Node& n : nodes_)
    if (n.pid > 0) {
      ::kill(-n.pid, SIGCONT);
      ::kill(-n.pid, SIGTERM);
    }
  for (Node& n : nodes_)
    if (n.pid > 0) {
      StopGroup(n.pid, std::chrono::seconds(2));
      n.pid = -1;
    }
}

std::string RedisClusterProcess::Log(size_t i) const { return ReadFile(nodes_[i].dir + "/log"); }

Status RedisClusterProcess::StartNode(size_t i) {
  Node& n = nodes_[i];
  std::vector<uint16_t> taken;
  for (const Node& o : nodes_) taken.push_back(o.port);
  std::filesystem::create_directories(n.dir);
  const std::string server = FindOnPath("redis-server");
  for (int attempt = 0; attempt < 8; ++attempt) {
    n.port = PickPort(taken);
    std::ofstream conf(n.dir + "/redis.conf", std::ios::trunc);
    conf << "port " << n.port << "\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\n"
         << "dir " << n.dir << "\nlogfile \"\"\n"
         << "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 1000\n"
         << "appendonly no\nsave \"\"\n"
         // Replicas sync at once (the default waits 5 s for more replicas to share a transfer).
         << "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n";
    if (!spec_.maxmemory.empty())
      conf << "maxmemory " << spec_.maxmemory << "\nmaxmemory-policy allkeys-lru\n";
    for (const std::string& line : spec_.extra_config) conf << line << "\n";
    conf.close();
    n.pid = Spawn({server, n.dir + "/redis.conf"}, n.dir + "/log");
    if (n.pid < 0) return Status::IoError(std::string("fork: ") + std::strerror(errno));
    // Up when it answers PING; a node that lost its port to another process exits: try again.
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
      int st = 0;
      if (waitpid(n.pid, &st, WNOHANG) == n.pid) {
        n.pid = -1;
        break;
      }
      auto r = Command(i, {"PING"}, std::chrono::milliseconds(200));
      if (r.ok() && r->str == "PONG") return Status::Ok();
      if (Clock::now() > deadline) {
        StopGroup(n.pid, std::chrono::milliseconds(200));
        n.pid = -1;
        return Status::Internal("redis-server did not answer PING: " + Log(i));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!Contains(Log(i), "Address already in use"))
      return Status::Internal("redis-server exited at start: " + Log(i));
  }
  return Status::Internal("redis-server: no free port after 8 attempts");
}

Status RedisClusterProcess::Start(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (std::string why = Missing(); !why.empty()) return Status::NotSupported(why);
  for (size_t i = 0; i < nodes_.size(); ++i) STRATA_RETURN_IF_ERROR(StartNode(i));
  std::vector<std::string> create = {FindOnPath("redis-cli"), "--cluster", "create"};
  for (size_t i = 0; i < nodes_.size(); ++i) create.push_back(endpoint(i));
  create.insert(create.end(),
                {"--cluster-replicas", std::to_string(spec_.replicas), "--cluster-yes"});
  const std::string log = dir_.Sub("create.log");
  const pid_t pid = Spawn(create, log);
  if (pid < 0) return Status::IoError(std::string("fork: ") + std::strerror(errno));
  int st = 0;
  while (waitpid(pid, &st, WNOHANG) != pid) {
    if (Clock::now() > deadline) {
      StopGroup(pid, std::chrono::milliseconds(0));
      return Status::Internal("redis-cli --cluster create timed out: " + ReadFile(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return Status::Internal("redis-cli --cluster create failed: " + ReadFile(log));
  STRATA_RETURN_IF_ERROR(WaitAll(deadline, "cluster_state:ok", &RedisClusterProcess::NodeHealthy));
  return Status::Ok();
}

bool RedisClusterProcess::NodeHealthy(size_t i) {
  auto info = Command(i, {"CLUSTER", "INFO"}, std::chrono::milliseconds(500));
  if (!info.ok() || !Contains(info->str, "cluster_state:ok") ||
      !Contains(info->str, "cluster_slots_ok:16384"))
    return false;
  // Every node knows every other (a node that has not heard of a replica yet would not fail
  // over to it), and a replica's copy is live.
  size_t alive_nodes = 0;
  for (const Node& n : nodes_) alive_nodes += n.pid > 0 ? 1 : 0;
  auto nodes = Command(i, {"CLUSTER", "NODES"}, std::chrono::milliseconds(500));
  if (!nodes.ok()) return false;
  size_t known = 0;
  std::stringstream ss(nodes->str);
  for (std::string line; std::getline(ss, line);)
    if (!line.empty() && !Contains(line, "fail")) ++known;
  if (known < alive_nodes) return false;
  auto role = Command(i, {"ROLE"}, std::chrono::milliseconds(500));
  if (!role.ok() || role->elements.empty()) return false;
  if (role->elements[0].str == "slave") {
    auto repl = Command(i, {"INFO", "replication"}, std::chrono::milliseconds(500));
    if (!repl.ok() || !Contains(repl->str, "master_link_status:up")) return false;
  }
  return true;
}

Status RedisClusterProcess::WaitAll(Clock::time_point deadline, const std::string& what,
                                    bool (RedisClusterProcess::*ready)(size_t)) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!alive(i)) continue;
    while (!(this->*ready)(i)) {
      if (Clock::now() > deadline)
        return Status::Internal("node " + endpoint(i) + " not " + what + " in time: " + Log(i));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return Status::Ok();
}

Status RedisClusterProcess::WaitHealthy(std::chrono::milliseconds timeout) {
  return WaitAll(Clock::now() + timeout, "cluster_state:ok", &RedisClusterProcess::NodeHealthy);
}

std::vector<cachestore::cluster::RedisEndpoint> RedisClusterProcess::Seeds() const {
  std::vector<cachestore::cluster::RedisEndpoint> out;
  for (const Node& n : nodes_) out.push_back({"127.0.0.1", n.port});
  return out;
}

bool RedisClusterProcess::IsMaster(size_t i) {
  if (!alive(i)) return false;
  auto role = Command(i, {"ROLE"}, std::chrono::milliseconds(500));
  return role.ok() && !role->elements.empty() && role->elements[0].str == "master";
}

std::vector<size_t> RedisClusterProcess::Masters() {
  std::vector<size_t> out;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (IsMaster(i)) out.push_back(i);
  return out;
}

int RedisClusterProcess::MasterOfSlot(uint16_t slot) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!alive(i)) continue;
    auto slots = Command(i, {"CLUSTER", "SLOTS"}, std::chrono::milliseconds(500));
    if (!slots.ok() || slots->type != Reply::Type::kArray) continue;
    for (const Reply& range : slots->elements) {
      if (range.elements.size() < 3 || slot < range.elements[0].integer ||
          slot > range.elements[1].integer)
        continue;
      const int64_t port = range.elements[2].elements[1].integer;
      for (size_t j = 0; j < nodes_.size(); ++j)
        if (nodes_[j].port == port) return static_cast<int>(j);
    }
    return -1;
  }
  return -1;
}

std::string RedisClusterProcess::NodeId(size_t i) {
  auto r = Command(i, {"CLUSTER", "MYID"});
  return r.ok() ? r->str : "";
}

void RedisClusterProcess::Kill(size_t i) {
  if (nodes_[i].pid <= 0) return;
  ::kill(-nodes_[i].pid, SIGKILL);
  int st = 0;
  waitpid(nodes_[i].pid, &st, 0);
  nodes_[i].pid = -1;
}

void RedisClusterProcess::Pause(size_t i) {
  if (nodes_[i].pid > 0) ::kill(nodes_[i].pid, SIGSTOP);
}

void RedisClusterProcess::Resume(size_t i) {
  if (nodes_[i].pid > 0) ::kill(nodes_[i].pid, SIGCONT);
}

Status RedisClusterProcess::WaitForFailover(size_t dead_master, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const uint16_t dead_port = nodes_[dead_master].port;
  for (;;) {
    bool moved = false;
    for (size_t i = 0; i < nodes_.size() && !moved; ++i) {
      if (!alive(i)) continue;
      auto slots = Command(i, {"CLUSTER", "SLOTS"}, std::chrono::milliseconds(500));
      if (!slots.ok() || slots->type != Reply::Type::kArray) continue;
      moved = true;
      for (const Reply& range : slots->elements)
        if (range.elements.size() >= 3 && range.elements[2].elements[1].integer == dead_port)
          moved = false;
      break;
    }
    if (moved) {
      bool healthy = true;
      for (size_t i = 0; i < nodes_.size() && healthy; ++i) {
        if (!alive(i)) continue;
        auto info = Command(i, {"CLUSTER", "INFO"}, std::chrono::milliseconds(500));
        healthy = info.ok() && Contains(info->str, "cluster_state:ok");
      }
      if (healthy) return Status::Ok();
    }
    if (Clock::now() > deadline)
      return Status::Internal("no failover of " + endpoint(dead_master) + " in time");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status RedisClusterProcess::WaitReplicated(size_t i, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto info = Command(i, {"INFO", "replication"}, std::chrono::milliseconds(500));
    if (info.ok()) {
      // "master_repl_offset:N" and one "slaveK:ip=...,port=...,state=online,offset=M,lag=0"
      // line per replica.
      long long master_offset = -1;
      bool all = true, any = false;
      std::stringstream ss(info->str);
      for (std::string line; std::getline(ss, line);) {
        if (line.rfind("master_repl_offset:", 0) == 0)
          master_offset = std::atoll(line.c_str() + std::strlen("master_repl_offset:"));
      }
      std::stringstream ss2(info->str);
      for (std::string line; std::getline(ss2, line);) {
        const size_t at = line.find(",offset=");
        if (line.rfind("slave", 0) != 0 || at == std::string::npos) continue;
        any = true;
        all = all && std::atoll(line.c_str() + at + std::strlen(",offset=")) >= master_offset;
      }
      if (master_offset >= 0 && any && all) return Status::Ok();
    }
    if (Clock::now() > deadline)
      return Status::Internal(endpoint(i) + ": replicas did not catch up: " +
                              (info.ok() ? info->str : info.status().ToString()));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<RedisClusterProcess::Reply> RedisClusterProcess::Command(
    size_t i, const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port(i), tv);
  if (c == nullptr) return Status::IoError("hiredis: out of memory");
  if (c->err) {
    Status s = Status::IoError(endpoint(i) + ": " + c->errstr);
    redisFree(c);
    return s;
  }
  redisSetTimeout(c, tv);
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
  if (r == nullptr) {
    Status s = Status::IoError(endpoint(i) + ": " + c->errstr);
    redisFree(c);
    return s;
  }
  Reply out = Convert(r);
  freeReplyObject(r);
  redisFree(c);
  return out;
}

Status RedisClusterProcess::CommandOnAll(const std::vector<std::string>& args) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!alive(i)) continue;
    auto r = Command(i, args);
    if (!r.ok()) return r.status();
    if (r->type == Reply::Type::kError)
      return Status::Internal(endpoint(i) + " answered " + r->str);
  }
  return Status::Ok();
}

}  // namespace strata::testing
