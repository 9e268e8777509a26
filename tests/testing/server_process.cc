#include "tests/testing/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace strata::testing {

namespace {

std::string ServerBinary() {
  if (const char* env = getenv("STRATA_SERVER_BIN")) return env;
#ifdef STRATA_SERVER_BIN
  return STRATA_SERVER_BIN;
#else
  return "strata-server";
#endif
}

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

bool Connectable(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::string ServerProcess::DefaultConfig() {
  return R"({
  "socket": "@SOCKET@",
  "data_dir": "@DIR@/data",
  "io_threads": 4,
  "blocking_threads": 2,
  "metrics_port": 0,
  "host": { "capacity": "64MiB", "prefault": false },
  "nvme": { "capacity": "8MiB", "segment_size": "1MiB", "device": "posix" },
  "tenants": [ { "name": "default" } ]
})";
}

ServerProcess::ServerProcess(std::string config_json) {
  socket_path_ = dir_.path() + "/strata.sock";
  if (socket_path_.size() > 100) {
    std::string tmpl = "/tmp/strata-sock-XXXXXX";
    if (mkdtemp(tmpl.data())) {
      socket_dir_ = tmpl;
      socket_path_ = socket_dir_ + "/strata.sock";
    }
  }
  ReplaceAll(config_json, "@SOCKET@", socket_path_);
  ReplaceAll(config_json, "@DIR@", dir_.path());
  config_path_ = dir_.path() + "/server.json";
  log_path_ = dir_.path() + "/server.log";
  std::ofstream(config_path_) << config_json;
}

ServerProcess::~ServerProcess() {
  Stop(SIGTERM, std::chrono::seconds(10));
  if (!socket_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(socket_dir_, ec);
  }
}

Status ServerProcess::Start(std::chrono::milliseconds timeout) {
  if (pid_ > 0) return Status::FailedPrecondition("server already running");
  const std::string bin = ServerBinary();
  std::vector<std::string> args = {bin, "--config", config_path_, "--log-level", "debug"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return Status::IoError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  setpgid(pid, pid);  // as the child does: whichever runs first, the group exists
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Internal("strata-server exited during start (status " + std::to_string(st) +
                              "): " + Log());
    }
    if (Connectable(socket_path_)) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Stop(SIGKILL, std::chrono::milliseconds(0));
  return Status::Internal("strata-server did not listen within the timeout: " + Log());
}

int ServerProcess::Stop(int sig, std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  ::kill(-pid_, sig);
  int st = 0;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    if (waitpid(pid_, &st, WNOHANG) == pid_) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid_, SIGKILL);
      waitpid(pid_, &st, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(-pid_, SIGKILL);  // anything the server left in its group
  pid_ = -1;
  return st;
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace strata::testing
