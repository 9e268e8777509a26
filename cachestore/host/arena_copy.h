// Copies into the host arena. An object put into the host tier is read again seconds later or
// never (a later request's hit, a demotion's O_DIRECT write), not by the core that copied it, and
// the arena is GiBs: caching the destination only evicts what the core is working on and costs
// a read of every destination line before it is overwritten. ArenaCopy writes large copies with
// streaming (non-temporal) stores instead. glibc's memcpy does so itself only above about three
// quarters of the last-level cache per thread (tens of MB on a server, never here: this VM
// reports 480 MiB), far above the objects the arena holds (36 KB to 10 MB).
//
// Measured on the 2-core development VM (4.2 MB batches of 130 KB objects into a 2 GiB arena,
// the producer writing each batch first): memcpy 6.4-6.9 GB/s, streaming stores 8.7-9.5.
//
// Hand-written: no Debian package offers a non-temporal copy; SSE2 is part of x86-64, so this
// needs no run-time dispatch and no -march flag. Elsewhere it is memcpy.
#pragma once

#include <cstddef>

namespace strata::cachestore {

// Copies below this go through memcpy (the destination's lines are few; a small object's
// bookkeeping around it touches them anyway).
inline constexpr size_t kStreamCopyMinBytes = 64 * 1024;

// memcpy(dst, src, n), with streaming stores for n >= kStreamCopyMinBytes where the CPU has
// them; the stores are fenced before it returns (another thread may read dst after a release).
void ArenaCopy(void* dst, const void* src, size_t n);

}  // namespace strata::cachestore
