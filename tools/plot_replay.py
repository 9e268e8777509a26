#!/usr/bin/python3
"""Plots of a `strata replay` run: reads DIR/replay.jsonl (written by `strata replay --plot DIR`)
and writes into DIR:

  replay-throughput.png  device read and write throughput (MB/s) over wall time
  replay-resident.png    host arena and NVMe bytes in use over wall time
  replay-hits.png        cumulative lookup hit rate and restored share of prompt tokens over the
                         trace's time
  replay-latency.png     restore-path device read, Get and Put latency percentiles
                         (p50 / p99 / p99.9)

Exit status 3: matplotlib is missing (the CLI turns that into a clear error).
"""
import json
import os
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.stderr.write("plot_replay.py: matplotlib is not installed for this python3\n")
    sys.exit(3)


def main(directory):
    summary, samples = None, []
    with open(os.path.join(directory, "replay.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("kind") == "replay":
                summary = rec
            elif rec.get("kind") == "sample":
                samples.append(rec)
    if summary is None or not samples:
        sys.stderr.write("plot_replay.py: no replay in %s/replay.jsonl\n" % directory)
        return 1
    title = "%s, %s\n%s" % (summary["model"], summary["config"], summary["slice"])
    if summary.get("scale_down", 1) > 1:
        title += ", sizes / %d" % summary["scale_down"]

    # Throughput between consecutive samples.
    t, rd, wr = [], [], []
    for a, b in zip(samples, samples[1:]):
        dt = b["wall_s"] - a["wall_s"]
        if dt <= 0:
            continue
        t.append(b["wall_s"])
        rd.append((b["device_read_bytes"] - a["device_read_bytes"]) / dt / 1e6)
        wr.append((b["device_write_bytes"] - a["device_write_bytes"]) / dt / 1e6)
    def lines(name, xlabel, ylabel, series, ylim=None):
        fig, ax = plt.subplots(figsize=(8, 4))
        for xs, ys, label in series:
            ax.plot(xs, ys, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_title(title, fontsize=9)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(directory, name), dpi=110)
        plt.close(fig)

    lines("replay-throughput.png", "wall time (s)", "MB/s",
          [(t, rd, "device read"), (t, wr, "device write")])
    ws = [s["wall_s"] for s in samples]
    lines("replay-resident.png", "wall time (s)", "GB",
          [(ws, [s["host_bytes"] / 1e9 for s in samples], "host arena in use"),
           (ws, [s["nvme_bytes"] / 1e9 for s in samples], "NVMe segments in use")])
    ts = [s["trace_s"] for s in samples]
    lines("replay-hits.png", "trace time (s)", "share of prompt tokens",
          [(ts, [s["hit_tokens"] / max(1, s["input_tokens"]) for s in samples],
            "lookup hit rate (cumulative)"),
           (ts, [s["restored_tokens"] / max(1, s["input_tokens"]) for s in samples],
            "restored share (cumulative, from Get)")], ylim=(0, 1))

    fig, ax = plt.subplots(figsize=(8, 4))
    names = [("restore_read", "restore-path device read"), ("get", "Get call"), ("put", "Put call")]
    width = 0.25
    for k, (q, label) in enumerate([("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")]):
        xs = [i + (k - 1) * width for i in range(len(names))]
        ax.bar(xs, [max(summary[n][q], 1e-3) for n, _ in names], width, label=label)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(["%s\n(%d)" % (label, summary[n]["count"]) for n, label in names])
    ax.set_yscale("log")
    ax.set_ylabel("microseconds")
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "replay-latency.png"), dpi=110)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: plot_replay.py DIR\n")
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
