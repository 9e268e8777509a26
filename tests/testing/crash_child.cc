// Child process of the crash-recovery test: puts objects and flushes in a loop until killed.
// After each Flush it appends the highest acknowledged object number to `<dir>/acked` and
// fsyncs it, so the parent knows what must survive. After `count` objects it waits to be killed.
//   crash_child <data_dir> <device> <start> <count> <nvme_capacity_bytes>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "strata/store.h"
#include "tests/testing/store_objects.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: crash_child DATA_DIR DEVICE START COUNT NVME_CAPACITY_BYTES\n");
    return 2;
  }
  const std::string dir = argv[1];
  strata::StoreConfig c = strata::testing::CrashStoreConfig(dir, std::atoi(argv[2]));
  c.nvme.capacity_bytes = std::strtoull(argv[5], nullptr, 10);  // sized by the parent
  auto store = strata::OpenStore(c);
  if (!store.ok()) {
    std::fprintf(stderr, "crash_child: %s\n", store.status().ToString().c_str());
    return 1;
  }
  const int acked = open((dir + "/acked").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const uint64_t start = std::strtoull(argv[3], nullptr, 10);
  const uint64_t end = start + std::strtoull(argv[4], nullptr, 10);
  for (uint64_t i = start; i < end; ++i) {
    auto bytes = strata::testing::ObjectBytes(i);
    if (!(*store)->Put(strata::testing::ObjectKeyOf(i), 7, bytes).ok()) return 1;
    if (i % 4 == 3) {
      if (!(*store)->Flush().ok()) return 1;
      const std::string line = std::to_string(i) + "\n";
      if (write(acked, line.data(), line.size()) != ssize_t(line.size())) return 1;
      fsync(acked);
    }
  }
  for (;;) pause();
}
