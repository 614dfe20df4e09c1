"""Curves of docs/results/real_footage.md from the stages' TensorBoard logs: the training loss of
every stage against its step, and the validation EPE (synthetic_flow/large_motion) of the
teacher's two phases and of the supervised run, with zero flow's EPE as a line.

    python docs/experiments/real_footage_curves.py runs/real_footage docs/results/real_footage_curves.png
"""
import argparse
import os

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

#: (stage folder, its loss tag, label); consecutive teacher phases continue one step axis.
STAGES = (("synthetic/teacher/photometric", "loss/photometric", "teacher: photometric"),
          ("synthetic/teacher/census", "loss/census", "teacher: census"),
          ("synthetic/supervised", "train_epe", "supervised (exact ground truth)"),
          ("footage_teacher", "loss/census", "teacher on the clips: census"),
          ("student", "loss/distillation", "student: distillation"))
VALIDATION = "validation/epe_all/pixel_pooled"


def read(stage_dir, tag):
    """(steps, values) of a scalar written by dflow_tf.training.progress (as tensors)."""
    events = EventAccumulator(os.path.join(stage_dir, "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    if tag not in events.Tags()["tensors"]:
        return np.array([]), np.array([])
    points = events.Tensors(tag)
    import tensorflow as tf
    return (np.array([p.step for p in points]),
            np.array([float(tf.make_ndarray(p.tensor_proto)) for p in points]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the experiment folder (docs/experiments/real_footage.sh)")
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--zero_flow_epe", type=float, default=14.578,
                        help="zero flow's EPE on the validation split (python -m dflow_tf.evaluate --checkpoint zero)")
    args = parser.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (loss_ax, epe_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    offset = 0
    for n, (stage, tag, label) in enumerate(STAGES):
        stage_dir = os.path.join(args.run, stage)
        if not os.path.isdir(stage_dir):
            continue
        steps, loss = read(stage_dir, tag)
        start = offset if stage.startswith("synthetic/teacher") else 0
        if len(steps):
            loss_ax.plot(start + steps, loss / loss[0], color=f"C{n}", label=f"{label} ({tag}, / first value)")
        steps, epe = read(stage_dir, VALIDATION)
        if len(steps) and stage.startswith("synthetic/"):
            epe_ax.plot(start + steps, epe, marker="o", color=f"C{n}", label=label)
        if stage == "synthetic/teacher/photometric" and len(steps):
            offset = int(steps.max())
    epe_ax.axhline(args.zero_flow_epe, color="grey", dashes=(4, 2), label=f"zero flow {args.zero_flow_epe:.2f}")
    loss_ax.set_xlabel("training step (the teacher's census phase continues its photometric steps)")
    loss_ax.set_ylabel("training loss / its first logged value")
    epe_ax.set_xlabel("training step")
    epe_ax.set_ylabel("validation EPE all (px), large_motion")
    for ax in (loss_ax, epe_ax):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
