"""Prints a markdown table of the eval_*.json files of an experiment folder and plots the
student's validation curve (eval_curve.jsonl) with the teachers' final all-pixel EPE as lines.

    python docs/experiments/summarize.py runs/experiments/distill_synthetic
"""
import glob
import json
import os
import sys

from plot_curves import plot_curves

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
    student = os.path.join(out, "distill", "student")
    if os.path.exists(os.path.join(student, "eval_curve.jsonl")):
        prefix = os.path.normpath(out).replace("/", "_") + "_"  # eval file names carry the model path
        teachers = [(name[len(prefix):] if name.startswith(prefix) else name, metrics)
                    for name, metrics in rows.get("synthetic", []) if "student" not in name]
        plot_curves(os.path.join(out, "student_curve.png"), [student], teachers)
        print(f"\nplot: {os.path.join(out, 'student_curve.png')}")

if __name__ == "__main__":
    main(sys.argv[1])
