#include "tests/testing/temp_dir.h"

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

namespace strata::testing {

TempDir::TempDir() {
  // O_DIRECT needs a real filesystem: prefer the build tree's filesystem over a tmpfs /tmp.
  const char* base = getenv("STRATA_TEST_TMPDIR");
  std::string tmpl = std::string(base ? base : std::filesystem::temp_directory_path().c_str()) +
                     "/strata-test-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace strata::testing
