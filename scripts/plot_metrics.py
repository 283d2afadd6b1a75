#!/usr/bin/env python3
"""Plot the metrics of one or several ponder runs.

Usage: scripts/plot_metrics.py RUN_DIR [RUN_DIR ...] [-o curves.png]

Reads RUN_DIR/metrics.jsonl of each run and draws, against the optimizer step, the training loss,
the held-out loss and exact-match accuracy (when the runs evaluated them) and the throughput, one
line per run, into one PNG."""
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("-o", "--output", default="curves.png", help="PNG to write")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_metrics: matplotlib is not installed (apt-get install python3-matplotlib)")

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
