// The strata CLI's subcommands (strata_main.cc parses argv and calls these). Each returns the
// process exit code and prints its own errors.
#pragma once

#include <string>
#include <vector>

namespace strata::tools {

int CmdLayout(std::vector<std::string> args);
int CmdDemo(std::vector<std::string> args);
int CmdFsck(std::vector<std::string> args);
int CmdStats(std::vector<std::string> args);
int CmdBenchStore(std::vector<std::string> args);
int CmdBenchCrashChild(std::vector<std::string> args);

}  // namespace strata::tools
