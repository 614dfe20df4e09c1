"""Prints a markdown table of the eval_*.json files of an experiment folder and plots the
student's validation curve (eval_curve.jsonl) next to the teachers' final values.

    python docs/experiments/summarize.py runs/experiments/distill_synthetic
"""
import glob
import json
import os
import sys

KEYS = [("epe_all/pixel_pooled", "EPE all"), ("epe_noc/pixel_pooled", "EPE noc"),
        ("epe_occ/pixel_pooled", "EPE occ"), ("fl_all/pixel_pooled", "Fl all %")]


def main(out):
    rows = {}
    for path in sorted(glob.glob(os.path.join(out, "eval_*.json"))):
        name, subset = os.path.basename(path)[len("eval_"):-len(".json")].rsplit("_", 1)
        with open(path) as f:
            metrics = json.load(f)["metrics"]
        rows.setdefault(subset, []).append((name, metrics))
    for subset, entries in rows.items():
        print(f"\n{subset} (pixel-pooled)\n")
        print("| model | " + " | ".join(label for _, label in KEYS) + " |")
        print("|---" * (len(KEYS) + 1) + "|")
        for name, metrics in entries:
            cells = [f"{metrics[k]:.3f}" if metrics.get(k) == metrics.get(k) and k in metrics else "-"
                     for k, _ in KEYS]
            print(f"| {name} | " + " | ".join(cells) + " |")
    curve = os.path.join(out, "distill", "student", "eval_curve.jsonl")
    if os.path.exists(curve):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        with open(curve) as f:
            points = [json.loads(line) for line in f]
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label in KEYS[:3]:
            ax.plot([p["step"] for p in points], [p[key] for p in points], marker="o", label=f"student {label}")
        for name, metrics in rows.get("synthetic", []):
            if "student" not in name:
                for key, label in KEYS[:3]:
                    ax.axhline(metrics[key], linestyle="--", linewidth=0.8, color="grey")
        ax.set_xlabel("student step")
        ax.set_ylabel("EPE (px), synthetic validation")
        ax.legend()
        ax.set_title("student during distillation (dashed: teacher, final)")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "student_curve.png"), dpi=100)
        print(f"\nplot: {os.path.join(out, 'student_curve.png')}")


if __name__ == "__main__":
    main(sys.argv[1])
