#!/usr/bin/python3
"""Plots of a `strata compare` run: reads DIR/compare.jsonl (written by `strata compare --plot
DIR`) and writes, per model, into DIR:

  <model>-capacity.png   token hit rate and saved prefill vs total cache capacity, one line per
                         SWA policy, with the trace's unlimited-cache hit ceiling drawn
  <model>-bytes.png      bytes written per prompt token vs saved prefill, one point per policy
                         (checkpoint intervals among them) and capacity
  <model>-ttft.png       TTFT p50 / p90 / p99 per policy at the largest capacity, with no cache
                         as the reference
  <model>-nodes.png      (a sweep over --nodes / --cluster) saved prefill and hit rate vs the
                         number of nodes, one line per assignment with and without the shared
                         cluster tier

The first three use the single-node results without a cluster tier; the last all of them.

Exit status 3: matplotlib is missing (the CLI turns that into a clear error).
"""
import collections
import json
import os
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
except ImportError:
    sys.stderr.write("plot_compare.py: matplotlib is not installed for this python3\n")
    sys.exit(3)


def capacity(r):
    return r["dram_bytes"] + r["nvme_bytes"] + r["hbm_bytes"]


def label_bytes(b):
    if b >= 1 << 40:
        return "%gTiB" % (b / float(1 << 40))
    return "%gGiB" % (b / float(1 << 30))


def nodes_of(r):
    return r.get("nodes", 1)


def cluster_of(r):
    return r.get("cluster_bytes", 0)


def share_of(r):
    """The share policy of a run with a cluster tier: (min uses, full SWA shared)."""
    if not cluster_of(r):
        return None
    s = r.get("cluster_share", {})
    return (s.get("min_uses", 2), s.get("full_swa", False))


def plot_nodes(out_dir, model, results, trace):
    """Saved prefill and hit rate vs node count, per (policy, tiers, assignment, cluster)."""
    ceiling = trace["ceiling_hit_rate"] if trace else results[0]["ceiling_hit_rate"]
    title = "%s on %s (%d requests)" % (
        model, os.path.basename(trace["trace"]) if trace else "trace", results[0]["requests"])

    def tiers(r):
        return (r["policy"], r["dram_bytes"], r["nvme_bytes"], r["hbm_bytes"], r["eviction"])

    assigns = []
    for r in results:
        if nodes_of(r) > 1 and r.get("assign") not in assigns:
            assigns.append(r.get("assign"))
    if not assigns:
        assigns = [results[0].get("assign", "round-robin")]
    groups = collections.OrderedDict()
    for r in results:
        # One node is replayed once (under the first assignment) and starts every assignment's line.
        for a in (assigns if nodes_of(r) == 1 else [r.get("assign")]):
            groups.setdefault((tiers(r), a, cluster_of(r), share_of(r)), []).append(r)
    many_tiers = len({k[0] for k in groups}) > 1
    many_shares = len({k[3] for k in groups if k[3]}) > 1
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, key, name in ((axes[0], "saved_rate", "prefill saved (net of recompute)"),
                          (axes[1], "hit_rate", "token hit rate")):
        shares = sorted({k[3] for k in groups if k[3]})
        styles = ["-", "-.", (0, (1, 1))]
        for (t, a, cluster, share), rs in groups.items():
            pts = sorted((nodes_of(r), r[key]) for r in rs)
            color = colors[(assigns.index(a) if a in assigns else 0) % len(colors)]
            lbl = "%s, %s" % (a, "shared tier %s" % label_bytes(cluster) if cluster else
                              "no shared tier")
            if share and many_shares:
                lbl += " (shared at use %d%s)" % (share[0], ", SWA too" if share[1] else "")
            style = styles[shares.index(share) % len(styles)] if share else "--"
            if many_tiers:
                lbl = "%s dram=%s nvme=%s: %s" % (t[0], label_bytes(t[1]), label_bytes(t[2]), lbl)
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", color=color,
                    linestyle=style, label=lbl)
        ax.axhline(100 * ceiling, color="black", linestyle=":", linewidth=1,
                   label="unlimited cache, one node (ceiling)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({nodes_of(r) for r in results}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("nodes (each with its own DRAM/NVMe)")
        ax.set_ylabel("% of prompt tokens")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    # Below both panels: the lines cross the whole range of either.
    handles, labels = axes[0].get_legend_handles_labels()
    rows = (len(labels) + 2) // 3
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle(title + "\nwhat a tier shared across nodes buys")
    fig.set_size_inches(12, 4.5 + 0.3 * rows)
    fig.tight_layout(rect=(0, 0.3 * rows / (4.5 + 0.3 * rows) + 0.02, 1, 1))
    fig.savefig(os.path.join(out_dir, "%s-nodes.png" % model), dpi=120)
    plt.close(fig)


def plot_model(out_dir, model, results, trace):
    evictions = sorted({r["eviction"] for r in results})
    policies = []
    for r in results:
        if r["policy"] not in policies:
            policies.append(r["policy"])
    ceiling = trace["ceiling_hit_rate"] if trace else results[0]["ceiling_hit_rate"]
    title = "%s on %s (%d requests)" % (
        model, os.path.basename(trace["trace"]) if trace else "trace", results[0]["requests"])

    # 1. Hit rate and saved prefill vs capacity.
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, key, name in ((axes[0], "hit_rate", "token hit rate"),
                          (axes[1], "saved_rate", "prefill saved (net of recompute)")):
        for pol in policies:
            for ev in evictions:
                pts = sorted((capacity(r), r[key]) for r in results
                             if r["policy"] == pol and r["eviction"] == ev)
                if not pts:
                    continue
                lbl = pol if len(evictions) == 1 else "%s (%s)" % (pol, ev)
                ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", label=lbl)
        ax.axhline(100 * ceiling, color="black", linestyle="--", linewidth=1,
                   label="unlimited cache (ceiling)")
        ax.set_xscale("log")
        ax.set_xlabel("cache capacity (DRAM + NVMe + HBM), bytes")
        ax.set_ylabel("% of prompt tokens")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "%s-capacity.png" % model), dpi=120)
    plt.close(fig)

    # 2. Bytes written per token vs saved prefill.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    caps = sorted({capacity(r) for r in results})
    for cap in caps:
        pts = sorted((r["written_bytes_per_token"], r["saved_rate"], r["policy"]) for r in results
                     if capacity(r) == cap and r["eviction"] == evictions[0])
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o",
                label="capacity %s" % label_bytes(cap))
        if cap == caps[-1]:
            for x, y, pol in pts:
                ax.annotate(pol, (x, 100 * y), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("bytes written into the store per prompt token")
    ax.set_ylabel("prefill saved, % of prompt tokens")
    ax.set_title(title + "\nwrite volume vs saved prefill per policy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "%s-bytes.png" % model), dpi=120)
    plt.close(fig)

    # 3. TTFT percentiles per policy at the largest capacity.
    top = [r for r in results if capacity(r) == caps[-1] and r["eviction"] == evictions[0]]
    names = ["no cache"] + [r["policy"] for r in top]
    rows = [top[0]["ttft_cold_s"]] + [r["ttft_s"] for r in top]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 4.5))
    width = 0.27
    for k, q in enumerate(("p50", "p90", "p99")):
        ax.bar([i + (k - 1) * width for i in range(len(names))], [row[q] for row in rows], width,
               label=q)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, fontsize=8)
    ax.set_ylabel("TTFT, seconds (model)")
    ax.set_title(title + "\nTTFT at capacity %s" % label_bytes(caps[-1]))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "%s-ttft.png" % model), dpi=120)
    plt.close(fig)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: plot_compare.py DIR (with DIR/compare.jsonl)\n")
        return 2
    out_dir = sys.argv[1]
    results = collections.defaultdict(list)
    traces = {}
    with open(os.path.join(out_dir, "compare.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("kind") == "result":
                results[rec["model"]].append(rec)
            elif rec.get("kind") == "trace":
                traces[rec["model"]] = rec
    if not results:
        sys.stderr.write("plot_compare.py: no results in %s/compare.jsonl\n" % out_dir)
        return 1
    for model, rs in results.items():
        single = [r for r in rs if nodes_of(r) == 1 and cluster_of(r) == 0]
        if single:
            plot_model(out_dir, model, single, traces.get(model))
        if any(nodes_of(r) > 1 or cluster_of(r) > 0 for r in rs):
            plot_nodes(out_dir, model, rs, traces.get(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
