// The strata CLI's subcommands (strata_main.cc parses argv and calls these). Each returns the
// process exit code and prints its own errors.
#pragma once

#include <cstdint>
#include <cxxopts.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strata/client.h"
#include "strata/status.h"
#include "tools/data_paths.h"

namespace strata::tools {

// Parses `args` (args[0] is the command's name) after adding -h/--help; prints help and
// errors. nullopt: the command should exit with *rc.
std::optional<cxxopts::ParseResult> Parse(cxxopts::Options& opts, std::vector<std::string>& args,
                                          int* rc);
// Prints "cmd: error" to stderr; returns 1.
int Fail(const std::string& cmd, const Status& s);

int CmdRun(std::vector<std::string> args);
int CmdGenSessions(std::vector<std::string> args);
int CmdConform(std::vector<std::string> args);
int CmdGenerate(std::vector<std::string> args);
int CmdBenchEngine(std::vector<std::string> args);
int CmdBenchRehydrate(std::vector<std::string> args);
int CmdLayout(std::vector<std::string> args);
int CmdDemo(std::vector<std::string> args);
int CmdFsck(std::vector<std::string> args);
int CmdStats(std::vector<std::string> args);
int CmdBenchStore(std::vector<std::string> args);
int CmdCompare(std::vector<std::string> args);
int CmdBenchCompare(std::vector<std::string> args);
int CmdReplay(std::vector<std::string> args);  // tools/replay_cmd.cc
// Runs tools/<name> (a plot script found like the configs) on `dir` with Debian's python3.
Status RunPlotScript(const std::string& name, const std::string& dir);
int CmdBenchCrashChild(std::vector<std::string> args);

// strata-server (tools/server_commands.cc): --server, --tenant, --secret, --deadline-ms, and the
// client they describe for a layout.
void AddServerOptions(cxxopts::Options& opts);
Result<std::unique_ptr<Client>> ConnectServer(const cxxopts::ParseResult& r, uint64_t fingerprint,
                                              uint32_t block_size, bool read_only = false);
int CmdServerStats(std::vector<std::string> args);  // strata stats --server
int CmdTop(std::vector<std::string> args);
int CmdBenchServer(std::vector<std::string> args);
// strata bench cluster (tools/cluster_commands.cc).
int CmdBenchCluster(std::vector<std::string> args);

}  // namespace strata::tools
