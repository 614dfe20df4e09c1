"""Real-pair table of docs/results/real_footage.md: trained models next to zero flow, Farneback and
DIS, all scored by the same code (dflow_tf.evaluation.pair_groups) on every flow pair of a folder
in the `--pairs` layout, mean EPE over the pairs of each group (and over their occluded pixels).

    python docs/experiments/real_pairs_table.py ../shared/flowdata runs/real_footage/synthetic/teacher/census \
        runs/real_footage/footage/student --json runs/real_footage/real_pairs.json
    python docs/experiments/real_pairs_table.py ../shared/flowdata pretrained:pwc_rendered --step 1000 \
        --jsonl docs/results/pretrained_real_pairs.jsonl

Farneback and DIS (MEDIUM preset): dflow_tf.models.classical_flow, on grey frames.
"""
import argparse
import json
import os

import numpy as np

from dflow_tf.checkpoints import load_model
from dflow_tf.evaluation.pair_groups import evaluate_pair_groups, evaluate_predictor_on_groups
from dflow_tf.models.classical_flow import classical_flow

COLUMNS = (("epe_all/per_image_mean", "all"), ("epe_occ/per_image_mean", "occ"))


def farneback(frames):
    return classical_flow("farneback", frames[-2], frames[-1])


def dis_medium(frames):
    return classical_flow("dis_medium", frames[-2], frames[-1])


def zero(frames):
    return np.zeros(frames.shape[1:3] + (2,), np.float32)


def markdown(results):
    """{label: {group: metrics}} -> a markdown table, one row per label."""
    groups = sorted({g for r in results.values() for g in r})
    columns = [(g, k, name) for g in groups for k, name in COLUMNS
               if any(k in r.get(g, {}) for r in results.values())]
    lines = ["| model | " + " | ".join(f"{g} {name}" for g, _, name in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for label, r in results.items():
        cells = [f"{r[g][k]:.2f}" if g in r and k in r[g] else "-" for g, k, _ in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    counts = ", ".join(f"{g} {next(r[g]['num_images'] for r in results.values() if g in r)}" for g in groups)
    return "\n".join(lines) + f"\n\nEPE in px, mean over the pairs of each group (pairs: {counts})."


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", help="root of pair folders grouped by the first folder level")
    parser.add_argument("checkpoints", nargs="*", help="stage folders or checkpoints of trained models")
    parser.add_argument("--json", help="also write the metrics here")
    parser.add_argument("--jsonl", help="also append one line per model and group here: {step, model, group, "
                        "epe, epe_occ} (docs/experiments/pretrained_curve.py draws them)")
    parser.add_argument("--step", type=int, help="the training step of the checkpoints, for --jsonl")
    args = parser.parse_args()
    baselines = (("zero flow", zero), ("Farneback (OpenCV)", farneback), ("DIS medium (OpenCV)", dis_medium))
    results = {name: evaluate_predictor_on_groups(fn, 2, args.pairs) for name, fn in baselines}
    for checkpoint in args.checkpoints:
        model, _ = load_model(checkpoint)
        results[os.path.relpath(checkpoint)] = evaluate_pair_groups(model, args.pairs)
    print(markdown(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            for label, groups in results.items():
                for group, metrics in groups.items():
                    f.write(json.dumps({"step": None if label in dict(baselines) else args.step, "model": label,
                                        "group": group, "epe": metrics["epe_all/per_image_mean"],
                                        "epe_occ": metrics.get("epe_occ/per_image_mean")}) + "\n")


if __name__ == "__main__":
    main()
