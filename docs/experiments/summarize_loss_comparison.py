"""The table of docs/experiments/loss_comparison.sh: validation EPE on the rendered scenes per
loss and step.

    python docs/experiments/summarize_loss_comparison.py runs/loss_comparison
"""
import json
import os
import sys


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "runs/loss_comparison"
    curves = {}
    for loss in sorted(os.listdir(root)):
        path = os.path.join(root, loss, "rendered", "eval_curve.jsonl")
        if os.path.exists(path):
            with open(path) as f:
                curves[loss] = {row["step"]: row for row in map(json.loads, f) if row}
    steps = sorted({s for c in curves.values() for s in c})
    print("| loss | " + " | ".join(f"step {s}" for s in steps) + " |")
    print("|---" * (len(steps) + 1) + "|")
    for loss, curve in curves.items():
        cells = [f"{curve[s]['epe_all/pixel_pooled']:.2f}" if s in curve else "-" for s in steps]
        print(f"| {loss} | " + " | ".join(cells) + " |")
    print("\nValidation EPE (all pixels, px, pixel-pooled) on the 64 rendered validation scenes.")


if __name__ == "__main__":
    main()
