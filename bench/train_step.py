"""Benchmarks the training steps at the sizes of the long runs: samples/s and peak memory.

Cases (each in its own process; TwoFramePWC, Adam, dflow_tf.training's distributed step):
  * supervised: the robust full-resolution loss in float32 at batch 4 (the fine-tuning step as
    every stage ran before bfloat16) and PWC-Net's multi-scale loss (gin/pretrain/rendered.gin)
    in float32 and bfloat16, with and without XLA, 256x384;
  * census: the teacher step (census + forward-backward occlusion, bidirectional), 256x384 batch 4;
  * distillation: the student step (two online teachers on 256x384, student on 192x320 patches with
    the crop and superpixel noise), batch 4;
  * render: the RenderedMotion pipeline alone (examples/s, 2 threads, skimage photos and patterns),
    and the supervised bfloat16 step fed by it through tf.data (the loop as training runs it:
    rendering overlaps the step).
In-memory random batches for the step cases (the cost does not depend on the values). Median of
--repeats steps after 2 warm-ups. A case that fails (e.g. XLA without a bfloat16 kernel) is listed
with its error.

  python bench/train_step.py [--repeats 5] [--quick]
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SIZE = (256, 384)
CASES = [
    {"task": "supervised_robust", "batch": 4, "precision": "float32", "xla": False},
    {"task": "supervised_multiscale", "batch": 8, "precision": "float32", "xla": False},
    {"task": "supervised_multiscale", "batch": 8, "precision": "float32", "xla": True},
    {"task": "supervised_multiscale", "batch": 8, "precision": "bfloat16", "xla": False},
    {"task": "supervised_multiscale", "batch": 8, "precision": "bfloat16", "xla": True},
    {"task": "census", "batch": 4, "precision": "float32", "xla": False},
    {"task": "census", "batch": 4, "precision": "bfloat16", "xla": False},
    {"task": "distillation", "batch": 4, "precision": "float32", "xla": False},
    {"task": "distillation", "batch": 4, "precision": "bfloat16", "xla": False},
    {"task": "render", "batch": 8, "precision": "-", "xla": False},
    {"task": "render+supervised_multiscale", "batch": 8, "precision": "bfloat16", "xla": False},
]


def _task(name, frames):
    import tensorflow as tf

    from dflow_tf.distillation.task import DistillationTask
    from dflow_tf.distillation.teachers import TeacherEnsemble
    from dflow_tf.distillation.transforms import StudentTransforms
    from dflow_tf.models import TwoFramePWC
    from dflow_tf.training.supervised import SupervisedTask
    from dflow_tf.training.unsupervised import UnsupervisedTask
    if name.startswith("supervised"):
        return SupervisedTask(name.split("_", 1)[1])
    if name == "census":
        return UnsupervisedTask("census", occlusion=True)
    teachers = TeacherEnsemble(checkpoints=["random-a", "random-b"])
    for _ in range(2):
        teacher = TwoFramePWC()
        teacher(tf.constant(frames[:1]))
        teacher.trainable = False
        teachers.models.append(teacher)
    return DistillationTask(teachers=teachers, transforms=StudentTransforms(crop_size=(192, 320)))


def run_case(case, repeats):
    import keras
    import numpy as np
    import tensorflow as tf
    from _util import median_time, rss_mib

    from dflow_tf.models import TwoFramePWC
    from dflow_tf.training.optimizer import make_optimizer
    from dflow_tf.training.trainer import _make_train_step

    (h, w), b = SIZE, case["batch"]
    if case["task"] == "render":
        from dflow_tf.data.rendered_motion import RenderedMotion
        iterator = iter(RenderedMotion(frame_size=SIZE).make_dataset("train", batch_size=b, seed=0))
        batch_s = median_time(lambda: next(iterator), repeats)
        return {**case, "step_s": batch_s, "peak_mib": rss_mib()[1]}
    if case["precision"] == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    rng = np.random.default_rng(0)
    batch = {"frames": rng.uniform(size=(b, 2, h, w, 3)).astype(np.float32),
             "flow": rng.normal(0, 5, size=(b, h, w, 2)).astype(np.float32),
             "valid": np.ones((b, h, w, 1), np.float32)}
    task_name = case["task"].split("+")[-1]
    task = _task(task_name, batch["frames"])
    model = TwoFramePWC()
    model(tf.constant(batch["frames"][:1]))
    step = tf.Variable(0, dtype=tf.int64)
    optimizer = make_optimizer(step=step, mixed_precision=case["precision"] == "bfloat16" and "bfloat16")
    optimizer.build(model.trainable_variables)
    if case["task"].startswith("render+"):
        from dflow_tf.data.rendered_motion import RenderedMotion
        iterator = iter(RenderedMotion(frame_size=SIZE).make_dataset("train", batch_size=b, seed=0))
    else:
        iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    train_step = _make_train_step(tf.distribute.get_strategy(), model, optimizer, task, step, case["xla"],
                                  case["precision"])
    try:
        seconds = median_time(lambda: float(train_step(iterator)[0]), repeats)
    except Exception as error:  # noqa: BLE001  (reported in the table)
        return {**case, "error": str(error).strip().splitlines()[0][:80]}
    return {**case, "step_s": seconds, "peak_mib": rss_mib()[1]}


def main():
    from _util import backend_label, print_table, run_cases
    start = time.time()
    quick = [c for c in CASES if c["task"] in ("supervised_robust", "supervised_multiscale") and not c["xla"]]
    ran = run_cases(__doc__, __file__, run_case, CASES, quick_cases=quick)
    if ran is None:
        return
    results, repeats = ran
    rows = []
    baseline = next((r["batch"] / r["step_s"] for r in results if r["task"] == "supervised_robust"
                     and "step_s" in r), None)
    for r in results:
        if "error" in r:
            rows.append([r["task"], r["batch"], r["precision"], "yes" if r["xla"] else "no", "-", "-", "-",
                         "-", r["error"]])
            continue
        rate = r["batch"] / r["step_s"]
        relative = f"{rate / baseline:.2f}x" if baseline and r["task"] != "render" else ""
        rows.append([r["task"], r["batch"], r["precision"], "yes" if r["xla"] else "no",
                     f"{r['step_s'] * 1e3:.0f}", f"{rate:.2f}", relative, f"{r['peak_mib']:.0f}", ""])
    print(f"training steps at {SIZE[0]}x{SIZE[1]}; median of {repeats}; backend {backend_label()}; "
          f"CPU threads {os.cpu_count()}; {time.time() - start:.0f} s in all. render: ms per batch of "
          "rendered samples and examples/s.")
    print_table(["step", "batch", "precision", "XLA", "ms", "samples/s", "vs supervised_robust float32",
                 "peak RSS MiB", "error"], rows)


if __name__ == "__main__":
    main()
