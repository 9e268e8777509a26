// Where the shipped data files (configs/models, configs/sessions, configs/store) are found, so
// the defaults of `strata` work from any directory. Searched in order:
//   1. <directory of the running binary>/../share/strata: an installed bin/strata
//      (cmake --install puts the configs in share/strata/configs); the build tree mirrors this
//      with share/strata/configs linking to the source tree's configs/.
//   2. The configured install data directory (CMAKE_INSTALL_FULL_DATADIR/strata), for a binary
//      copied out of its prefix.
//   3. The current directory (the repository root, the old behaviour).
// Only defaults go through here: a path the user gives is taken as given (relative to the
// current directory).
#pragma once

#include <string>
#include <vector>

namespace strata::tools {

std::vector<std::string> DataDirs();

// `relative` (e.g. "configs/models/v4-tiny.json") under the first data directory that has it;
// `relative` itself when none does, so the error names the expected path.
std::string DataPath(const std::string& relative);

}  // namespace strata::tools
