#pragma once
// glibc malloc settings for strata's processes (`strata`, `strata-server`), set first in main().
//
// Why: objects of tens to hundreds of KB pass through the heap all day: a value the cluster tier
// received (one string per GET), a record being encoded. With glibc's defaults, freeing a batch
// of them leaves more than the 128 KiB trim threshold free at the top of a thread's heap, so
// free() hands the pages back (madvise, a TLB shootdown on every core) and the next batch faults
// them in again, zeroed by the kernel. Measured on the 2-core VM (`strata bench cluster`, GETs of
// 36 KB values through the cluster tier): 2.1-2.2 -> 2.4 GB/s, and the I/O thread's page faults
// gone from its profile. A fixed mmap threshold keeps glibc from moving it (and the trim
// threshold with it) as blocks of MBs come and go. The price: up to kTrimThreshold of freed
// memory per heap stays with the process, against arenas of GiB it maps anyway.

#include <malloc.h>

namespace strata::tools {

inline constexpr int kMallocTrimThreshold = 256 << 20;  // keep this much free before trimming
inline constexpr int kMallocMmapThreshold = 32 << 20;   // blocks from mmap only above this

inline void TuneMalloc() {
  mallopt(M_MMAP_THRESHOLD, kMallocMmapThreshold);
  mallopt(M_TRIM_THRESHOLD, kMallocTrimThreshold);
}

}  // namespace strata::tools
