// The drives of an NVMe tier (NvmeTierConfig::drives): which directories hold its segments and
// whether each is there. Every drive's directory (data_dir for drive 0) holds an identity file,
// `strata-drive`, one line:
//
//   strata-drive v1 store=<16 hex digits> drive=<d> drives=<D>
//
// written when the store is created (the store id is random) and checked at every open: a
// directory whose file is missing or names another store or place is not this store's drive.
// Records carry no drive number: segment i is on drive i mod D, so a record's device offset says
// its drive, and the record format is unchanged by striping. A store's drive count is fixed at
// creation (its segments' placement depends on it).
// Thread safety: call at open, before the device is opened.
#pragma once

#include <string>
#include <vector>

#include "strata/status.h"
#include "strata/store.h"

namespace strata::cachestore {

inline constexpr const char* kDriveIdentityFile = "strata-drive";

struct DriveSet {
  // Per drive: the directory of its segment files (drive 0: data_dir/segments) and whether it
  // is there. One entry: a single-drive store (no identity files are needed or written).
  std::vector<std::string> segment_dirs;
  std::vector<bool> alive;
  std::vector<std::string> missing;  // why each missing drive is missing (for the log)
};

// Checks the identity of every drive of `nvme` (data_dir first), writing identities for a new
// store. A missing or foreign drive is FailedPrecondition naming it, or with missing_drive
// "degrade" a drive marked not alive. A data_dir created with another number of drives, or a
// one-drive store given more drives, is FailedPrecondition.
Result<DriveSet> OpenDrives(const NvmeTierConfig& nvme);

// The mount that holds `dir` (from /proc/self/mountinfo; the longest mount point above it):
// its source device, file system type and mount point; empty fields when unknown.
struct Mount {
  std::string source, fstype, point;
};
Mount MountOf(const std::string& dir);
// "<source>" of MountOf(dir) ("unknown" when unknown): directories with the same source are on
// the same device, so not separate drives.
std::string MountSourceOf(const std::string& dir);

// The segments on drive `d` of `drives` among `segment_count` (d, d + D, ...).
std::vector<uint32_t> SegmentsOfDrive(size_t d, size_t drives, uint32_t segment_count);

}  // namespace strata::cachestore
