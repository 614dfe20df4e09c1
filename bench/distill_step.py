"""Benchmarks the student's distillation step and the share of it taken by the superpixel noise.

Per configuration (synthetic default: teachers on 192x256, student on 128x192 patches; KITTI
published: teachers on 320x896, student on 256x640; batch 4, two two-frame teachers online, as
gin/distill.gin and gin/kitti/distill.gin run them) and with superpixel noise on / off:
  * prepare ms: the step's target part (teacher annotation + student transforms), no gradient;
  * step ms: the whole training step (prepare + student forward/backward + Adam);
  * SLIC ms/image: skimage SLIC alone on the student's target frames (the numpy part);
  * peak RSS of the process.
With --raft, the synthetic configuration as gin/distill.gin and gin/raft/distill.gin run it
(128x128 patches, superpixel noise on) with the TwoFramePWC student and a RAFT-small one, by
update iterations and by sequence_decay (the objective on every iteration weighted 0.8^(T-1-k),
or 0 = the final flow only).
Median of --repeats runs after 2 warm-ups; each configuration runs in its own process. Teacher
weights are random (the cost does not depend on them).

  python bench/distill_step.py [--repeats 5] [--quick | --raft]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SIZES = {"synthetic": ((192, 256), (128, 192)), "kitti": ((320, 896), (256, 640))}
CASES = [{"config": name, "superpixel": on} for name in SIZES for on in (True, False)]
RAFT_CASES = [{"config": "synthetic", "crop": [128, 128], "superpixel": True, "student": "two_frame_pwc"}] + [
    {"config": "synthetic", "crop": [128, 128], "superpixel": True, "student": "raft_small", "iterations": iterations,
     "sequence_decay": decay} for iterations, decay in ((12, 0.8), (8, 0.8), (8, 0.0), (4, 0.8))]


def run_case(case, repeats):
    import keras
    import numpy as np
    import skimage.data
    import tensorflow as tf
    from _util import median_time, rss_mib
    from skimage.segmentation import slic
    from skimage.transform import resize

    from dflow_tf.distillation.task import DistillationTask
    from dflow_tf.distillation.teachers import TeacherEnsemble
    from dflow_tf.distillation.transforms import StudentTransforms
    from dflow_tf.models import RAFTSmall, TwoFramePWC
    from dflow_tf.training.trainer import _make_train_step

    (height, width), crop = SIZES[case["config"]]
    crop = tuple(case.get("crop", crop))
    batch = 4
    # Natural images (SLIC's cost depends on content): crops of a skimage photo, shifted per frame.
    photo = resize(skimage.data.astronaut(), (height + 8, width + 8 * batch),
                                     anti_aliasing=True).astype(np.float32)
    frames = np.stack([np.stack([photo[i:i + height, 8 * b + i:8 * b + i + width] for i in (0, 4)])
                       for b in range(batch)])
    teachers = TeacherEnsemble(checkpoints=["random-a", "random-b"])
    for _ in range(2):
        model = TwoFramePWC()
        model(tf.constant(frames[:1]))
        model.trainable = False
        teachers.models.append(model)
    raft = case.get("student") == "raft_small"
    task = DistillationTask(teachers=teachers,
                            transforms=StudentTransforms(crop_size=crop, superpixel=case["superpixel"]),
                            **({"sequence_decay": case["sequence_decay"], "pixels": "teacher_confident"}
                               if raft else {}))
    student = RAFTSmall(iterations=case["iterations"]) if raft else TwoFramePWC()
    student(tf.constant(frames[:1, :, :crop[0], :crop[1]]))
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(student.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64)
    iterator = iter(tf.data.Dataset.from_tensors({"frames": frames}).repeat())
    train_step = _make_train_step(tf.distribute.get_strategy(), student, optimizer, task, step, False, False)
    step_s = median_time(lambda: float(train_step(iterator)[0]), repeats)

    seeds = iter(range(10 ** 6))
    prepare = tf.function(lambda b: task.prepare(b))
    prepare_s = median_time(lambda: prepare({"frames": frames, "seed": tf.constant([next(seeds), 0], tf.int64)})
                            ["frames"].numpy(), repeats)
    targets = frames[:, 1, :crop[0], :crop[1]]
    slic_s = median_time(lambda: [slic(image, n_segments=200, compactness=10.0, start_label=0, channel_axis=-1)
                                  for image in targets], repeats) / batch
    _, peak = rss_mib()
    return {**case, "step_s": step_s, "prepare_s": prepare_s, "slic_s": slic_s, "peak_mib": peak}


def main():
    from _util import print_table, run_cases
    ran = run_cases(__doc__, __file__, run_case, CASES, quick_cases=[c for c in CASES if c["config"] == "synthetic"],
                    case_sets={"raft": RAFT_CASES})
    if ran is None:
        return
    results, repeats = ran
    if results and "student" in results[0]:
        print(f"student distillation step, batch 4, 2 online two-frame teachers (192x256), "
              f"128x128 patches, superpixel noise on; median of {repeats}; CPU threads: {os.cpu_count()}")
        print_table(["student", "iterations", "objective on", "prepare ms", "step ms", "peak RSS MiB"],
                    [[r["student"], r.get("iterations", ""),
                      "final flow" if not r.get("sequence_decay") else
                      f"every iteration, decay {r['sequence_decay']}", f"{r['prepare_s'] * 1e3:.0f}",
                      f"{r['step_s'] * 1e3:.0f}",
                      f"{r['peak_mib']:.0f}"] for r in results])
        return
    by_case = {(r["config"], r["superpixel"]): r for r in results}
    rows = []
    for (config, superpixel), r in by_case.items():
        (height, width), (crop_h, crop_w) = SIZES[config]
        without = by_case.get((config, False))
        extra = (f"{100 * (r['step_s'] - without['step_s']) / without['step_s']:+.0f}%"
                 if superpixel and without else "")
        rows.append([config, f"{height}x{width} -> {crop_h}x{crop_w}", "on" if superpixel else "off",
                     f"{r['prepare_s'] * 1e3:.0f}", f"{r['step_s'] * 1e3:.0f}", extra,
                     f"{r['slic_s'] * 1e3:.0f}" if superpixel else "", f"{r['peak_mib']:.0f}"])
    print(f"student distillation step, batch 4, 2 online two-frame teachers, crop on; median of {repeats}; "
          f"CPU threads: {os.cpu_count()}")
    print_table(["config", "teacher -> student", "superpixel", "prepare ms", "step ms", "superpixel cost",
                 "SLIC ms/image", "peak RSS MiB"], rows)


if __name__ == "__main__":
    main()
