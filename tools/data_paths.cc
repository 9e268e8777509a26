#include "tools/data_paths.h"

#include <filesystem>
#include <system_error>

namespace strata::tools {

namespace fs = std::filesystem;

std::vector<std::string> DataDirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back((exe.parent_path().parent_path() / "share" / "strata").string());
#ifdef STRATA_INSTALL_DATADIR
  dirs.push_back(STRATA_INSTALL_DATADIR);
#endif
  dirs.push_back(".");
  return dirs;
}

std::string DataPath(const std::string& relative) {
  for (const std::string& dir : DataDirs()) {
    std::error_code ec;
    const fs::path p = fs::path(dir) / relative;
    if (fs::exists(p, ec)) return dir == "." ? relative : p.lexically_normal().string();
  }
  return relative;
}

}  // namespace strata::tools
