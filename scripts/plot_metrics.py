#!/usr/bin/env python3
"""Plot the metrics of ponder runs, or the test-time compute curves of ponder eval.

Usage: scripts/plot_metrics.py RUN_DIR [RUN_DIR ...] [-o curves.png]
       scripts/plot_metrics.py EVAL.json [EVAL.json ...] [-o compute.png]

Reads RUN_DIR/metrics.jsonl of each run and draws, against the optimizer step, the training loss,
the held-out loss and exact-match accuracy (when the runs evaluated them) and the throughput, one
line per run, into one PNG. Given the JSON files of `ponder eval --depths --json EVAL.json`, draws
exact-match accuracy and loss against the forward compute relative to the trained depth instead,
one line per file, each point labelled with its depth."""
import argparse
import json
import os
import sys


def read_metrics(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        sys.exit(f"plot_metrics: {path} does not exist")
    train, evals = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot_metrics: {path}:{number}: not JSON ({e.msg})")
            (evals if any(k.startswith("eval.") for k in record) else train).append(record)
    return train, evals


def read_eval(path):
    try:
        with open(path) as f:
            record = json.load(f)
    except OSError as e:
        sys.exit(f"plot_metrics: {path}: {e.strerror}")
    except json.JSONDecodeError as e:
        sys.exit(f"plot_metrics: {path}: not JSON ({e.msg})")
    depths = record.get("depths") if isinstance(record, dict) else None
    if not isinstance(depths, list) or not depths or not all(
            isinstance(d, dict) and {"depth", "compute", "loss"} <= d.keys() for d in depths):
        sys.exit(f"plot_metrics: {path}: not the output of ponder eval --json (no depths with depth, compute, loss)")
    return sorted(depths, key=lambda d: d["compute"])


def plot_compute(plt, paths, output):
    curves = {path: read_eval(path) for path in paths}
    panels = [("exact_match", "exact match"), ("loss", "response loss")]
    shown = [p for p in panels if any(d.get(p[0]) is not None for depths in curves.values() for d in depths)]
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 3 * len(shown)), squeeze=False)
    for ax, (key, title) in zip(axes[:, 0], shown):
        for path, depths in curves.items():
            points = [d for d in depths if d.get(key) is not None]
            xs, ys = [d["compute"] for d in points], [d[key] for d in points]
            ax.plot(xs, ys, marker="o", label=os.path.basename(path))
            for d, x, y in zip(points, xs, ys):
                ax.annotate(d["depth"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_title(f"{title} against test-time compute")
        ax.set_xlabel("forward compute relative to the trained depth")
        ax.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories, or JSON files of ponder eval --json")
    parser.add_argument("-o", "--output", default="curves.png", help="PNG to write")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_metrics: matplotlib is not installed (apt-get install python3-matplotlib)")

    evals = [path for path in args.runs if os.path.isfile(path)]
    if evals:
        if len(evals) != len(args.runs):
            sys.exit("plot_metrics: give either run directories or ponder eval JSON files, not both")
        plot_compute(plt, evals, args.output)
        print(f"wrote {args.output}")
        return

    panels = [("loss", "training loss", False), ("eval.loss", "held-out loss", True),
              ("eval.exact_match", "held-out exact match", True), ("tokens_per_s", "tokens/s", False)]
    data = {run: read_metrics(run) for run in args.runs}
    shown = [p for p in panels if any(any(p[0] in r for r in (e if p[2] else t)) for t, e in data.values())]
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 3 * len(shown)), squeeze=False)
    for ax, (key, title, is_eval) in zip(axes[:, 0], shown):
        for run, (train, evals) in data.items():
            records = [r for r in (evals if is_eval else train) if key in r]
            ax.plot([r["step"] for r in records], [r[key] for r in records], label=os.path.basename(os.path.normpath(run)))
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
