"""Plots validation curves (eval_curve.jsonl of training stages) as EPE against step.

    python docs/experiments/plot_curves.py OUT.png STAGE_DIR [STAGE_DIR ...] [--baseline EVAL.json]

Consecutive stages are drawn on one step axis (a stage's steps continue the previous stage's);
--baseline draws the all-pixel and occluded EPE of an evaluate JSON (e.g. a teacher) as lines.
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
    """Writes the plot to `out`; baselines: (label, metrics dict) pairs (e.g. the teachers), whose
    EPE all / occ are drawn as horizontal lines in the colour of the same metric's curve."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {key: f"C{n}" for n, (key, _) in enumerate(KEYS)}
    offset = 0
    for stage_dir in stage_dirs:
        points = read_curve(stage_dir)
        name = os.path.basename(os.path.normpath(stage_dir))
        for key, label in KEYS:
            ax.plot([offset + p["step"] for p in points], [p[key] for p in points], marker="o", markersize=3,
                    color=colours[key], label=f"{name}: {label}")
        offset += max(p["step"] for p in points)
        ax.axvline(offset, color="lightgrey", linewidth=0.8)
    for (label, metrics), dashes in zip(baselines, [(4, 2), (1, 1.5), (6, 2, 1, 2), (2, 4)] * 4):
        for key, metric in KEYS[::2]:  # all and occ: noc lies just below all
            if metrics.get(key) == metrics.get(key) and key in metrics:  # present and not NaN
                ax.axhline(metrics[key], color=colours[key], linewidth=1, dashes=dashes,
                           label=f"{label}: {metric} {metrics[key]:.3f}")
    ax.set_xlabel("training step")
    ax.set_ylabel("EPE (px), pixel-pooled")
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.15))
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
