// `strata replay`: a request trace through the real store (host DRAM arena + NVMe tier on real
// files: real bytes of the layout's sizes, checksums, reclaim), without the engine. The request
// loop is `strata compare`'s (tools/compare.h, Replay): the same Lookup, restore planning, Gets
// and Puts, with the store's placement clock set to trace time, so the real store and the
// simulator make the same placement decisions. The replay then runs the simulator on the same
// trace and configuration and reports both: decision logs compared entry by entry, and device
// bytes, hit rates, restore time and TTFT with their error against the simulator's estimate.
//
// Measured on the real store:
//   - device read/write bytes over wall time (sampled), and per trace hour -> drive writes/day;
//   - per-I/O latency of device reads on the restore path (each read from its submission to its
//     completion, through a timing wrapper around the device), Get and Put call latency;
//   - write amplification: bytes the device wrote / payload bytes placement sent to NVMe
//     (demotions, thinned checkpoints, Flush write-backs); reclaim's relocations are the excess;
//   - hit rates from what Get actually served (a plan whose objects fail to read falls back).
// Demotion is synchronous: the Put that needs DRAM space writes the evicted objects to NVMe, so
// there is no demotion backlog; its cost is in the Put latency reported here.
// Thread safety: one replay at a time per data directory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cachestore/nvme/device.h"
#include "tools/compare.h"

namespace strata::tools {

struct StoreReplayOptions {
  // The NVMe tier's directory (created; must not hold a store: the replay starts empty). Empty:
  // a host-only store (config.nvme_bytes must then be 0).
  std::string data_dir;
  // More drives (NvmeTierConfig::drives): one directory each, empty or new, like data_dir.
  std::vector<std::string> drives;
  // 0: as fast as the store goes; X > 0: requests issued at the trace's pace, X times faster.
  // The placement clock is trace time either way.
  double speed = 0;
  DeviceKind device = DeviceKind::kAuto;
  uint32_t queue_depth = 32;
  // Wall-clock seconds between samples of the time series.
  double sample_every_s = 1.0;
  // Drive size for drive writes per day (0: the NVMe tier's capacity).
  uint64_t drive_bytes = 0;
  // The NVMe tier's codec for every family (kNone: raw, as the simulator assumes; with a codec
  // the records shrink, so placement and the simulator's decisions part ways by design).
  CodecKind codec = CodecKind::kNone;
  // Also run the simulator on the same trace and configuration and compare.
  bool compare_with_simulator = true;
  // Tests: wraps the opened device (to inject read faults); null: none.
  std::function<std::unique_ptr<cachestore::Device>(std::unique_ptr<cachestore::Device>)>
      wrap_device;
};

// Latency percentiles in microseconds.
struct LatencyUs {
  uint64_t count = 0;
  double p50 = 0, p99 = 0, p999 = 0, max = 0;
};

// One point of the time series.
struct ReplaySample {
  double wall_s = 0, trace_s = 0;
  uint64_t requests = 0;
  uint64_t device_read_bytes = 0, device_write_bytes = 0;  // cumulative
  uint64_t host_bytes = 0, nvme_bytes = 0;  // used: host arena bytes, live NVMe segment bytes
  uint64_t input_tokens = 0, hit_tokens = 0, restored_tokens = 0;  // cumulative
};

struct StoreReplayResult {
  CompareResult store;  // the replay's figures from the real store
  CompareResult sim;    // the simulator's on the same trace (when compared)
  bool compared = false;
  // Decision logs: entries each, and the first index where they differ (-1: identical).
  uint64_t store_decisions = 0, sim_decisions = 0;
  int64_t first_divergence = -1;
  std::string divergence;  // the two entries at first_divergence
  // Device I/O (the NVMe tier's files).
  uint64_t device_read_bytes = 0, device_write_bytes = 0, device_reads = 0, device_writes = 0;
  uint64_t placed_nvme_bytes = 0;  // payload bytes placement sent to NVMe
  uint64_t relocated_bytes = 0;    // payload bytes reclaim moved within NVMe
  uint64_t segments_reclaimed = 0;
  uint64_t sim_nvme_bytes_written = 0, sim_nvme_bytes_read = 0;  // its record counters
  // The simulator's estimate of the device's bytes: its record bytes plus the records its
  // reclaim relocated within NVMe (each read once and written once).
  uint64_t sim_device_write_bytes = 0, sim_device_read_bytes = 0;
  uint64_t store_nvme_bytes_written = 0, store_nvme_bytes_read = 0;  // the store's record bytes
  LatencyUs restore_read_us;        // device reads on the restore path
  LatencyUs get_us, put_us;         // store calls
  uint64_t payload_mismatches = 0;  // objects Get served whose bytes were not the ones put
  uint64_t corrupt_misses = 0;
  double trace_s = 0, wall_s = 0;
  std::string ran_on;  // what the NVMe tier's files are on (device, file system), per drive
  size_t drives = 0, distinct_devices = 0;  // directories given; distinct devices under them
  std::vector<ReplaySample> samples;
  // At the end: prompt tokens whose compressed state the NVMe tier holds (blocks with a
  // csa object, or hca where the layout has no csa, x block size) per TB of its capacity
  // (scaled up by CompareSetup::scale_down: the figure of the unscaled objects), and
  // the raw payload bytes it holds against the segment bytes their records take.
  double nvme_tokens_per_tb = 0;
  uint64_t nvme_raw_bytes = 0, nvme_stored_bytes = 0;
  // Restore-path throughput: bytes Get served from NVMe over the time of the Gets that read it.
  double nvme_restore_bytes_per_s = 0;

  double write_amplification() const {
    return placed_nvme_bytes ? double(device_write_bytes) / double(placed_nvme_bytes) : 0;
  }
  double device_write_bytes_per_hour() const {
    return trace_s > 0 ? double(device_write_bytes) / (trace_s / 3600.0) : 0;
  }
};

Result<StoreReplayResult> ReplayThroughStore(const Trace& trace, const TraceSummary& summary,
                                             const CompareSetup& setup, const CompareConfig& config,
                                             const StoreReplayOptions& options,
                                             const ReplayProgress& progress = {});

// Drive writes per day of a drive of `drive_bytes` at `bytes_per_hour`.
inline double DriveWritesPerDay(double bytes_per_hour, uint64_t drive_bytes) {
  return drive_bytes ? bytes_per_hour * 24.0 / double(drive_bytes) : 0;
}

// Where `dir` lives: "<source device> (<fs type>)" from /proc/self/mountinfo, or "unknown".
std::string DescribeStorage(const std::string& dir);

}  // namespace strata::tools
