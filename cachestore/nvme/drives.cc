#include "cachestore/nvme/drives.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "cachestore/nvme/rebuild.h"

namespace strata::cachestore {
namespace {

namespace fs = std::filesystem;

struct Identity {
  std::string store;
  size_t drive = 0, drives = 0;
};

std::string Text(const Identity& id) {
  return fmt::format("strata-drive v1 store={} drive={} drives={}\n", id.store, id.drive,
                     id.drives);
}

// nullopt-like: ok=false when the file is absent; Corruption when it is not an identity.
Result<Identity> Read(const fs::path& dir) {
  const fs::path p = dir / kDriveIdentityFile;
  std::ifstream in(p);
  if (!in) return Status::NotFound("no " + p.string());
  std::string magic, version, store, drive, drives;
  in >> magic >> version >> store >> drive >> drives;
  Identity id;
  auto field = [](const std::string& kv, const char* key) -> std::string {
    const std::string k = std::string(key) + "=";
    return kv.rfind(k, 0) == 0 ? kv.substr(k.size()) : std::string();
  };
  id.store = field(store, "store");
  const std::string d = field(drive, "drive"), n = field(drives, "drives");
  if (magic != "strata-drive" || version != "v1" || id.store.size() != 16 || d.empty() || n.empty())
    return Status::Corruption(p.string() + " is not a strata drive identity");
  id.drive = std::stoul(d);
  id.drives = std::stoul(n);
  return id;
}

Status Write(const fs::path& dir, const Identity& id) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("create " + dir.string() + ": " + ec.message());
  const fs::path p = dir / kDriveIdentityFile,
                 tmp = dir / (std::string(kDriveIdentityFile) + ".tmp");
  const std::string text = Text(id);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("create " + tmp.string());
  const bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) return Status::IoError("write " + tmp.string());
  fs::rename(tmp, p, ec);
  if (ec) return Status::IoError("rename " + tmp.string() + ": " + ec.message());
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

}  // namespace

Mount MountOf(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  while (!p.empty() && !fs::exists(p, ec) && p != p.parent_path()) p = p.parent_path();
  const std::string ps = fs::weakly_canonical(p, ec).string();
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  Mount best;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options [optional...] - fstype source options
    std::istringstream ls(line);
    std::string id, parent, dev, root, point, opts, tok;
    ls >> id >> parent >> dev >> root >> point >> opts;
    while (ls >> tok && tok != "-") {
    }
    std::string fstype, source;
    ls >> fstype >> source;
    const bool under = ps == point || point == "/" ||
                       (ps.size() > point.size() && ps.compare(0, point.size(), point) == 0 &&
                        ps[point.size()] == '/');
    if (under && point.size() >= best.point.size()) best = {source, fstype, point};
  }
  return best;
}

std::string MountSourceOf(const std::string& dir) {
  const Mount m = MountOf(dir);
  return m.source.empty() ? "unknown" : m.source;
}

std::vector<uint32_t> SegmentsOfDrive(size_t d, size_t drives, uint32_t segment_count) {
  std::vector<uint32_t> out;
  for (uint32_t s = uint32_t(d); s < segment_count; s += uint32_t(drives)) out.push_back(s);
  return out;
}

Result<DriveSet> OpenDrives(const NvmeTierConfig& nv) {
  const size_t D = 1 + nv.drives.size();
  std::vector<fs::path> dirs = {fs::path(nv.data_dir)};
  for (const std::string& d : nv.drives) dirs.push_back(fs::path(d));
  DriveSet set;
  set.segment_dirs.push_back((dirs[0] / "segments").string());
  for (size_t d = 1; d < D; ++d) set.segment_dirs.push_back((dirs[d] / "segments").string());
  set.alive.assign(D, true);

  auto primary = Read(dirs[0]);
  if (!primary.ok() && !primary.status().IsNotFound()) return primary.status();
  if (!primary.ok()) {
    if (SegmentsPresent(nv.data_dir)) {
      if (D == 1) return set;  // a one-drive store, as it always was
      return Status::FailedPrecondition(
          "data directory " + nv.data_dir +
          " holds a one-drive store; a store's drives are fixed when it is created (give a new "
          "data_dir for " +
          std::to_string(D) + " drives)");
    }
    if (D == 1) return set;  // a new one-drive store needs no identity
    // A new store: every drive must be free of another store's identity.
    Identity id;
    std::random_device rd;
    id.store = fmt::format("{:08x}{:08x}", rd(), rd());
    id.drives = D;
    for (size_t d = 1; d < D; ++d) {
      auto other = Read(dirs[d]);
      if (other.ok() || !other.status().IsNotFound())
        return Status::FailedPrecondition(
            "drive " + std::to_string(d) + " (" + dirs[d].string() +
            ") already belongs to a store; give an empty directory for a new store");
    }
    for (size_t d = D; d-- > 0;) {  // drive 0 last: its identity marks the store as created
      id.drive = d;
      STRATA_RETURN_IF_ERROR(Write(dirs[d], id));
    }
    return set;
  }
  if (primary->drive != 0 || primary->drives != D)
    return Status::FailedPrecondition(fmt::format(
        "data directory {} was created as drive {} of {}; the config gives {} drive(s) (data_dir "
        "and {} more in nvme.drives)",
        nv.data_dir, primary->drive, primary->drives, D, D - 1));
  for (size_t d = 1; d < D; ++d) {
    auto id = Read(dirs[d]);
    std::string why;
    if (!id.ok())
      why = id.status().message();
    else if (id->store != primary->store || id->drive != d || id->drives != D)
      why = fmt::format("{} names store {} drive {} of {}, not store {} drive {} of {}",
                        (dirs[d] / kDriveIdentityFile).string(), id->store, id->drive, id->drives,
                        primary->store, d, D);
    if (why.empty()) continue;
    if (nv.missing_drive != "degrade")
      return Status::FailedPrecondition(
          "drive " + std::to_string(d) + " (" + dirs[d].string() + ") is missing or not this " +
          "store's: " + why +
          ". Set nvme.missing_drive to \"degrade\" to open without it (its records are misses)");
    set.alive[d] = false;
    set.missing.push_back("drive " + std::to_string(d) + " (" + dirs[d].string() + "): " + why);
  }
  return set;
}

}  // namespace strata::cachestore
