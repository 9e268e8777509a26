#!/usr/bin/python3
"""`strata bench cluster --quick` (ctest BenchClusterQuick): every JSON line parses and the
expected figures are there, each with both sides measured. Skips (77) without redis-server.

usage: bench_cluster_quick.py STRATA_BINARY SCRATCH_DIR
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import quick_bench  # noqa: E402

EXPECTED = [f"cluster.{op}.{fam}" for fam in ("csa", "csa_index", "hca", "checkpoint")
            for op in ("put", "get")] + ["cluster.restore.vs_cold", "cluster.restore.vs_nvme"]


def main() -> int:
    strata, scratch = sys.argv[1], sys.argv[2]
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"skipped: {tool} not found")
            return 77
    rc, out, figures = quick_bench.run(strata, "cluster", scratch, timeout=280)
    if rc == 77:
        return 77
    if rc != 0:
        print(f"strata bench cluster --quick exited {rc}:\n{out}")
        return 1
    problem = quick_bench.missing_or_unmeasured(figures, EXPECTED)
    if problem:
        print(f"{problem}\n{out}")
        return 1
    for name in EXPECTED[:8]:
        j = figures[name]
        if "redis-benchmark --cluster" not in j["redis_benchmark"] or j["value_bytes"] != \
                j["payload_bytes"] + 128:
            print(f"{name}: redis-benchmark's settings or the value size are wrong: {j}")
            return 1
    if not figures["cluster.restore.vs_cold"]["checks_ok"]:
        print("the cross-node restore did not restore from the cluster bit-exactly")
        return 1
    print(f"{len(figures)} figures ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
