"""The curve of a long run from its portable state: training EPE and learning rate per step, the
validation EPE on the rendered scenes, and (optional) the real-pair EPE of the model at the end of
each segment next to Farneback and DIS.

    python docs/experiments/pretrained_curve.py dflow_tf/pretrained/pwc_rendered \
        --real_pairs docs/results/pretrained_real_pairs.jsonl --out docs/results/pretrained_curve.png

`--real_pairs`: JSON lines {"step": N, "model": "...", "group": "sintel", "epe": x}, as
docs/experiments/real_pairs_table.py --jsonl appends them; the rows whose model is not the run's
(zero flow, Farneback, DIS) are drawn as horizontal lines.
"""
import argparse
import csv
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _smooth(values, window=8):
    values = np.asarray(values, float)
    if len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(np.pad(values, (window - 1, 0), mode="edge"), kernel, mode="valid")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("state_dir")
    parser.add_argument("--real_pairs", help="JSON lines of real-pair EPEs")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(os.path.join(args.state_dir, "curve.csv")) as f:
        rows = list(csv.DictReader(f))
    steps = np.array([int(r["step"]) for r in rows])
    epe = np.array([float(r.get("train_epe", "nan")) for r in rows])
    rate = np.array([float(r["learning_rate"]) for r in rows])
    evaluations = []
    eval_path = os.path.join(args.state_dir, "eval_curve.jsonl")
    if os.path.exists(eval_path):
        with open(eval_path) as f:
            evaluations = [json.loads(line) for line in f if line.strip()]

    panels = 3 if args.real_pairs else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.8))
    ax = axes[0]
    ax.plot(steps, epe, color="0.8", lw=0.8, label="training EPE (per log step)")
    ax.plot(steps, _smooth(epe), color="C0", label="smoothed")
    ax.set_xlabel("step")
    ax.set_ylabel("training EPE (px)")
    twin = ax.twinx()
    twin.plot(steps, rate, color="C3", lw=0.8)
    twin.set_ylabel("learning rate", color="C3")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("training")

    ax = axes[1]
    if evaluations:
        ax.plot([e["step"] for e in evaluations], [e["epe_all/pixel_pooled"] for e in evaluations], "o-",
                label="all")
        ax.plot([e["step"] for e in evaluations], [e["epe_occ/pixel_pooled"] for e in evaluations], "s--",
                label="occluded")
        ax.legend(fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("EPE (px)")
    ax.set_title("validation: rendered scenes")

    if args.real_pairs:
        with open(args.real_pairs) as f:
            points = [json.loads(line) for line in f if line.strip()]
        ax = axes[2]
        for n, group in enumerate(sorted({p["group"] for p in points})):
            mine = sorted((p["step"], p["epe"]) for p in points if p["group"] == group and p.get("step") is not None)
            if mine:
                ax.plot(*zip(*mine), "o-", color=f"C{n}", label=f"{group}: model")
            for baseline, style in (("Farneback", ":"), ("DIS medium", "--")):
                values = [p["epe"] for p in points if p["group"] == group and p["model"].startswith(baseline)]
                if values:
                    ax.axhline(values[-1], color=f"C{n}", ls=style, lw=0.8,
                               label=f"{group}: {baseline}")
        ax.set_xlabel("step")
        ax.set_ylabel("mean EPE over the pairs (px)")
        ax.set_title("real pairs (dotted: Farneback, dashed: DIS)")
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
