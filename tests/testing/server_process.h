// A real strata-server child process for tests: writes a config into a temp dir, starts the
// binary in a process group of its own, waits until its socket accepts connections, and kills
// the whole group (SIGTERM, then SIGKILL after a grace period) when destroyed. It can be stopped
// and started again on the same data directory (restart tests).
//
// Configs are JSON text in which "@DIR@" stands for the server's temp directory; the socket is
// put in a short directory of its own when the temp path is too long for a socket address.
// The binary comes from STRATA_SERVER_BIN (tests/CMakeLists.txt) or the environment variable of
// the same name.
// Thread safety: none; one test thread drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "strata/status.h"
#include "tests/testing/temp_dir.h"

namespace strata::testing {

class ServerProcess {
 public:
  // One tenant "default" that any local uid may use, a 64 MiB host tier and a posix NVMe tier of
  // 8 x 1 MiB segments, 4 io threads, no metrics port. @SOCKET@ and @DIR@ are filled in.
  static std::string DefaultConfig();

  explicit ServerProcess(std::string config_json = DefaultConfig());
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the server and waits until its socket accepts a connection (or it exits).
  Status Start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends `sig` to the server's group and waits for it to exit (SIGKILL after `grace`). Returns
  // its exit status as from waitpid (WIFEXITED, WEXITSTATUS), or -1 when it was not running.
  int Stop(int sig = 15 /* SIGTERM */, std::chrono::milliseconds grace = std::chrono::seconds(20));
  // SIGKILL, as a crash.
  int Kill() { return Stop(9, std::chrono::milliseconds(0)); }
  Status Restart() {
    Stop();
    return Start();
  }

  // Arguments added after `--config FILE --log-level debug` at the next Start (e.g. --log FILE).
  void set_extra_args(std::vector<std::string> args) { extra_args_ = std::move(args); }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_.path(); }
  const std::string& socket_path() const { return socket_path_; }
  const std::string& config_path() const { return config_path_; }
  // The server's stdout and stderr so far (its log), for failure messages.
  std::string Log() const;

 private:
  TempDir dir_;
  std::string socket_dir_;  // non-empty when the socket lives outside dir_ (long paths)
  std::string socket_path_;
  std::string config_path_;
  std::string log_path_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
};

}  // namespace strata::testing
