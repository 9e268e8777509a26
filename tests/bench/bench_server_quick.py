#!/usr/bin/python3
"""`strata bench server --quick` (ctest BenchServerQuick): every JSON line parses, the expected
figures are there with both sides measured, and the GET and RESERVE/COMMIT lines carry their
per-batch split for both sides.

usage: bench_server_quick.py STRATA_BINARY SCRATCH_DIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quick_bench  # noqa: E402

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
    rc, out, figures = quick_bench.run(strata, "server", scratch, timeout=170)
    if rc != 0:
        print(f"strata bench server --quick exited {rc}:\n{out}")
        return 1
    problem = quick_bench.missing_or_unmeasured(figures, EXPECTED)
    if problem is None and "server.setup" not in figures:
        problem = "missing figures: ['server.setup']"
    if problem:
        print(f"{problem}\n{out}")
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
