#!/usr/bin/python3
"""`strata bench server --quick` (ctest BenchServerQuick): every JSON line parses, the expected
figures are there with both sides measured, and the GET and RESERVE/COMMIT lines carry their
per-batch split for both sides.

usage: bench_server_quick.py STRATA_BINARY SCRATCH_DIR
"""
import json
import os
import signal
import subprocess
import sys

FAMILIES = ("csa", "csa_index", "hca", "swa", "checkpoint")
SPLIT_FIELDS = {
    "get": ("get_us", "copy_us", "release_us"),
    "reserve_commit": ("reserve_us", "write_us", "commit_us"),
}
EXPECTED = [f"server.{verb}.{fam}{side}" for verb in SPLIT_FIELDS for fam in FAMILIES
            for side in ("", ".in_place", ".trusted")] + [
    "server.lookup64.p50", "server.lookup64.p99", "server.release.p50", "server.release.p99"
] + [f"server.clients.{n}" for n in (1, 2, 4, 8)]


def main() -> int:
    strata, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    # Its own process group: nothing it starts outlives the test.
    p = subprocess.Popen([strata, "bench", "server", "--quick", "--dir", scratch],
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=170)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if p.returncode != 0:
        print(f"strata bench server --quick exited {p.returncode}:\n{out}")
        return 1
    figures = {}
    for line in out.splitlines():
        j = json.loads(line)  # every stdout line is one JSON object
        figures[j["figure"]] = j
    missing = [f for f in EXPECTED + ["server.setup"] if f not in figures]
    if missing:
        print(f"missing figures: {missing}\n{out}")
        return 1
    for name in EXPECTED:
        j = figures[name]
        if not (j["value"] > 0 and j["baseline_value"] > 0 and j["rounds"] >= 1):
            print(f"{name}: a side was not measured: {j}")
            return 1
    for verb, fields in SPLIT_FIELDS.items():
        for fam in FAMILIES:
            j = figures[f"server.{verb}.{fam}"]
            sides = j.get("split", {})
            if len(sides) != 2:
                print(f"server.{verb}.{fam}: no split for both sides: {j}")
                return 1
            for side, split in sides.items():
                if sorted(split) != sorted(fields) or split[fields[1]] <= 0:
                    print(f"server.{verb}.{fam}: the {side} split is wrong: {split}")
                    return 1
    print(f"{len(figures)} figures ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
