"""Runs `strata bench <what> --quick` for the quick-bench tests (BenchServerQuick,
BenchClusterQuick) and parses its JSON lines."""
import json
import os
import signal
import subprocess


def run(strata, what, scratch, timeout):
    """Returns (exit status, stdout, {figure: its JSON object}); the figures are None unless the
    bench exited 0. The bench runs in a process group of its own, killed whole on a timeout, so
    nothing it starts (a cluster, redis-benchmark) outlives the test."""
    os.makedirs(scratch, exist_ok=True)
    p = subprocess.Popen([strata, "bench", what, "--quick", "--dir", scratch],
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if p.returncode != 0:
        return p.returncode, out, None
    figures = {}
    for line in out.splitlines():
        j = json.loads(line)  # every stdout line is one JSON object
        figures[j["figure"]] = j
    return 0, out, figures


def missing_or_unmeasured(figures, expected):
    """A message naming the expected figures that are missing or lack a measured side, or None."""
    missing = [f for f in expected if f not in figures]
    if missing:
        return f"missing figures: {missing}"
    for name in expected:
        j = figures[name]
        if not (j["value"] > 0 and j["baseline_value"] > 0 and j["rounds"] >= 1):
            return f"{name}: a side was not measured: {j}"
    return None
