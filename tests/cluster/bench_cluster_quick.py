#!/usr/bin/python3
"""`strata bench cluster --quick` (ctest BenchClusterQuick): every JSON line parses and the
expected figures are there, each with both sides measured. Skips (77) without redis-server.

usage: bench_cluster_quick.py STRATA_BINARY SCRATCH_DIR
"""
import json
import os
import shutil
import signal
import subprocess
import sys

EXPECTED = [f"cluster.{op}.{fam}" for fam in ("csa", "csa_index", "hca", "checkpoint")
            for op in ("put", "get")] + ["cluster.restore.vs_cold", "cluster.restore.vs_nvme"]


def main() -> int:
    strata, scratch = sys.argv[1], sys.argv[2]
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"skipped: {tool} not found")
            return 77
    os.makedirs(scratch, exist_ok=True)
    # Its own process group: the bench, redis-benchmark and the cluster's nodes go together.
    p = subprocess.Popen([strata, "bench", "cluster", "--quick", "--dir", scratch],
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=280)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if p.returncode == 77:
        return 77
    if p.returncode != 0:
        print(f"strata bench cluster --quick exited {p.returncode}:\n{out}")
        return 1
    figures = {}
    for line in out.splitlines():
        j = json.loads(line)  # every stdout line is one JSON object
        figures[j["figure"]] = j
    missing = [f for f in EXPECTED if f not in figures]
    if missing:
        print(f"missing figures: {missing}\n{out}")
        return 1
    for name in EXPECTED:
        j = figures[name]
        if not (j["value"] > 0 and j["baseline_value"] > 0 and j["rounds"] >= 1):
            print(f"{name}: a side was not measured: {j}")
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
