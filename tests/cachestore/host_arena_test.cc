#include "cachestore/host/host_arena.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "cachestore/host/arena_copy.h"

namespace strata::cachestore {
namespace {

TEST(HostArenaTest, SizeClassesArePageAlignedAndBoundWaste) {
  uint64_t prev = 0;
  for (uint64_t s = 1; s < (64ull << 20); s = s * 9 / 8 + 1) {
    const uint64_t c = HostArena::SizeClass(s);
    EXPECT_GE(c, s);
    EXPECT_EQ(c % 4096, 0u);
    if (s > 32768) {
      EXPECT_LE(double(c), double(s) * 1.125 + 1) << s;
    }
    EXPECT_GE(c, prev);
    prev = c;
  }
  EXPECT_EQ(HostArena::SizeClass(4096), 4096u);
  EXPECT_EQ(HostArena::SizeClass(4097), 8192u);
}

TEST(HostArenaTest, AllocatesUntilFullThenFreesAndCoalesces) {
  auto a = HostArena::Create(1 << 20);
  ASSERT_TRUE(a.ok());
  std::vector<Extent> got;
  while (auto e = (*a)->Allocate(4096)) got.push_back(*e);
  EXPECT_EQ(got.size(), 256u);
  EXPECT_EQ((*a)->used(), 1u << 20);
  EXPECT_FALSE((*a)->Allocate(1).has_value());
  // Free every other page: lots of free space, but no two adjacent pages.
  for (size_t i = 0; i < got.size(); i += 2) (*a)->Free(got[i]);
  EXPECT_FALSE((*a)->Allocate(8192).has_value());
  for (size_t i = 1; i < got.size(); i += 2) (*a)->Free(got[i]);
  EXPECT_EQ((*a)->used(), 0u);
  EXPECT_EQ((*a)->largest_free(), 1u << 20);  // fully coalesced
  EXPECT_TRUE((*a)->Allocate(1 << 20).has_value());
}

TEST(HostArenaTest, RandomAllocFreeKeepsExtentsDisjoint) {
  auto a = HostArena::Create(16 << 20);
  ASSERT_TRUE(a.ok());
  std::mt19937 rng(3);
  std::vector<Extent> live;
  for (int i = 0; i < 5000; ++i) {
    if (!live.empty() && (rng() % 3 == 0)) {
      size_t k = rng() % live.size();
      (*a)->Free(live[k]);
      live.erase(live.begin() + long(k));
    } else if (auto e = (*a)->Allocate(1 + rng() % (300 << 10))) {
      for (const Extent& o : live)
        ASSERT_TRUE(e->offset + e->size <= o.offset || o.offset + o.size <= e->offset);
      ASSERT_LE(e->offset + e->size, (*a)->capacity());
      live.push_back(*e);
    }
  }
  uint64_t used = 0;
  for (const Extent& e : live) used += e.size;
  EXPECT_EQ(used, (*a)->used());
}

TEST(HostArenaTest, MemfdIsSharedWithAnotherMapping) {
  auto a = HostArena::Create(1 << 20);
  ASSERT_TRUE(a.ok());
  auto e = (*a)->Allocate(100);
  std::memcpy((*a)->base() + e->offset, "strata", 6);
  void* other = mmap(nullptr, 1 << 20, PROT_READ, MAP_SHARED, (*a)->fd(), 0);
  ASSERT_NE(other, MAP_FAILED);
  EXPECT_EQ(std::memcmp(static_cast<char*>(other) + e->offset, "strata", 6), 0);
  munmap(other, 1 << 20);
}

// A sealed arena: whoever holds its descriptor maps it read-only and sees the owner's writes, but
// can neither map it writable (also not through a fresh open of /proc/self/fd), write() it, nor
// resize it or remove the seal.
TEST(HostArenaTest, SealedArenaMapsOnlyReadOnly) {
  auto a = HostArena::Create(1 << 20, /*prefault=*/false, /*seal=*/true);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE((*a)->sealed());
  auto e = (*a)->Allocate(100);
  std::memcpy((*a)->base() + e->offset, "strata", 6);  // the owner's mapping stays writable
  const int fd = (*a)->fd();
  errno = 0;
  EXPECT_EQ(mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  const int reopened = open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDWR);
  ASSERT_GE(reopened, 0);
  EXPECT_EQ(mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, reopened, 0), MAP_FAILED);
  EXPECT_EQ(pwrite(reopened, "x", 1, off_t(e->offset)), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(ftruncate(reopened, 2 << 20), 0);
  EXPECT_NE(fcntl(reopened, F_ADD_SEALS, 0), 0);  // F_SEAL_SEAL: the seals are final
  close(reopened);
  void* ro = mmap(nullptr, 1 << 20, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(ro, MAP_FAILED);
  EXPECT_EQ(std::memcmp(static_cast<char*>(ro) + e->offset, "strata", 6), 0);
  EXPECT_NE(mprotect(ro, 1 << 20, PROT_READ | PROT_WRITE), 0);  // nor made writable later
  munmap(ro, 1 << 20);
  (*a)->base()[e->offset] = std::byte{'S'};
  EXPECT_EQ(char((*a)->base()[e->offset]), 'S');
}

// ArenaCopy is memcpy: every size around the streaming threshold and the 64-byte lines, at every
// alignment of source and destination, copies exactly the bytes asked for and not one more.
TEST(ArenaCopyTest, CopiesExactlyTheBytesAtAnySizeAndAlignment) {
  std::mt19937_64 rng(42);
  const size_t sizes[] = {0,     1,     63,    64,     65,     4095,           65535,
                          65536, 65537, 65599, 130560, 130561, (1u << 20) + 13};
  const size_t max = (1u << 20) + 13 + 256;
  std::vector<unsigned char> src(max), dst(max);
  for (auto& b : src) b = static_cast<unsigned char>(rng());
  for (size_t n : sizes) {
    for (size_t src_off : {0, 1, 17, 64}) {
      for (size_t dst_off : {0, 3, 32, 63, 64}) {
        std::fill(dst.begin(), dst.end(), 0xA5);
        ArenaCopy(dst.data() + dst_off, src.data() + src_off, n);
        ASSERT_EQ(std::memcmp(dst.data() + dst_off, src.data() + src_off, n), 0)
            << n << " bytes, source +" << src_off << ", destination +" << dst_off;
        for (size_t i = 0; i < dst_off; ++i) ASSERT_EQ(dst[i], 0xA5) << "before, " << n;
        for (size_t i = dst_off + n; i < max; ++i) ASSERT_EQ(dst[i], 0xA5) << "after, " << n;
      }
    }
  }
}

}  // namespace
}  // namespace strata::cachestore
