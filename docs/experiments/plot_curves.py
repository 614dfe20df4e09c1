"""Plots validation curves (eval_curve.jsonl of training stages) as EPE against step.

    python docs/experiments/plot_curves.py OUT.png STAGE_DIR [STAGE_DIR ...] [--baseline EVAL.json]

Consecutive stages are drawn on one step axis (a stage's steps continue the previous stage's);
--baseline draws the all-pixel EPE of an evaluate JSON (e.g. the zero-flow model) as a line.
"""
import argparse
import json
import os

KEYS = [("epe_all/pixel_pooled", "EPE all"), ("epe_noc/pixel_pooled", "EPE noc"),
        ("epe_occ/pixel_pooled", "EPE occ")]


def read_curve(stage_dir):
    with open(os.path.join(stage_dir, "eval_curve.jsonl")) as f:
        return [json.loads(line) for line in f]


def plot_curves(out, stage_dirs, baselines=()):
    """Writes the plot to `out`; baselines: (label, metrics dict) pairs drawn as dashed lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0
    for stage_dir in stage_dirs:
        points = read_curve(stage_dir)
        name = os.path.basename(os.path.normpath(stage_dir))
        for key, label in KEYS:
            ax.plot([offset + p["step"] for p in points], [p[key] for p in points], marker="o", markersize=3,
                    label=f"{name}: {label}")
        offset += max(p["step"] for p in points)
        ax.axvline(offset, color="lightgrey", linewidth=0.8)
    for label, metrics in baselines:
        ax.axhline(metrics["epe_all/pixel_pooled"], linestyle="--", color="grey", linewidth=1)
        ax.text(0.01, metrics["epe_all/pixel_pooled"], f" {label}: EPE all {metrics['epe_all/pixel_pooled']:.2f}",
                transform=ax.get_yaxis_transform(), va="bottom", fontsize=8, color="grey")
    ax.set_xlabel("training step")
    ax.set_ylabel("EPE (px), pixel-pooled")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("stage_dirs", nargs="+")
    parser.add_argument("--baseline", action="append", default=[], help="evaluate JSON (label: its model)")
    args = parser.parse_args()
    baselines = []
    for path in args.baseline:
        with open(path) as f:
            data = json.load(f)
        baselines.append((data.get("model", os.path.basename(path)), data["metrics"]))
    plot_curves(args.out, args.stage_dirs, baselines)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
