"""Precomputed teacher targets: the teacher ensemble annotates a dataset split once, and the
student's pipeline reads the result (DDFlow's release works this way; it is cheaper than running
the teachers inside every training step).

    python -m dflow_tf.distillation.precompute --teachers runs/distill/teacher_a/census \\
        runs/distill/teacher_b/census --dataset synthetic_flow --split train \\
        --out runs/distill/teacher_targets

The output is a tf.data saved dataset of decoded samples: the window's frames (uint8
[N, H, W, 3]), its id, and teacher_flow_fw / teacher_flow_bw [H, W, 2], teacher_occlusion_fw /
teacher_occlusion_bw [H, W, 1] of the reference pair. Train the student on it with
`train_stage.dataset = "<out>"` and `DistillationTask.teachers = None`; the pipeline crops and
flips the targets with the frames. Frame sizes must be multiples of the teachers' size multiple
(64), as the teachers run on whole stored frames.
"""
import argparse
import os
import sys
import time

from dflow_tf.native_logs import add_verbose_argument, hide_native_logs

if __name__ == "__main__":
    hide_native_logs()  # before TensorFlow loads: its native log lines off the console

import tensorflow as tf

from dflow_tf.console import add_data_arguments, check_output_path, format_duration
from dflow_tf.data import schema
from dflow_tf.data.pipeline import make_dataset
from dflow_tf.distillation.teachers import TeacherEnsemble
from dflow_tf.ops.occlusion import OCCLUSION_ALPHA1, OCCLUSION_ALPHA2


def annotated_examples(teachers, source, split, data_dir=None, manual_dir=None, batch_size=4):
    """Yields one dict per stored example: id, frames (uint8) and the teachers' targets."""
    ds = make_dataset(source, split, batch_size=batch_size, num_frames=teachers.num_frames, augmentation=None,
                      shuffle=False, repeat=False, drop_remainder=False, data_dir=data_dir, manual_dir=manual_dir)
    annotate = tf.function(teachers.annotate, reduce_retracing=True)
    for batch in ds:
        targets = annotate(batch[schema.FRAMES])
        frames = tf.image.convert_image_dtype(batch[schema.FRAMES], tf.uint8, saturate=True)
        for i in range(int(frames.shape[0])):
            yield {schema.ID: batch[schema.ID][i], schema.FRAMES: frames[i],
                   **{key: value[i] for key, value in targets.items()}}


def precompute_teacher_targets(teachers, source, split, out_dir, data_dir=None, manual_dir=None, batch_size=4,
                               progress=True):
    """Streams the annotated split into `out_dir` (tf.data.Dataset.save); returns the example count."""
    n = teachers.num_frames
    signature = {
        schema.ID: tf.TensorSpec([], tf.string),
        schema.FRAMES: tf.TensorSpec([n, None, None, 3], tf.uint8),
        schema.TEACHER_FLOW_FW: tf.TensorSpec([None, None, 2], tf.float32),
        schema.TEACHER_FLOW_BW: tf.TensorSpec([None, None, 2], tf.float32),
        schema.TEACHER_OCCLUSION_FW: tf.TensorSpec([None, None, 1], tf.float32),
        schema.TEACHER_OCCLUSION_BW: tf.TensorSpec([None, None, 1], tf.float32),
    }
    counted = [0]

    def generate():
        for example in _with_progress(annotated_examples(teachers, source, split, data_dir, manual_dir,
                                                         batch_size), progress):
            counted[0] += 1
            yield example

    tf.data.Dataset.from_generator(generate, output_signature=signature).save(out_dir)
    if not counted[0]:
        raise ValueError(f"{source} split {split!r} has no examples to annotate")
    return counted[0]


def _with_progress(items, enabled):
    start = time.perf_counter()
    for n, item in enumerate(items, 1):
        if enabled and n % 20 == 0:
            print(f"annotated {n} examples, {format_duration(time.perf_counter() - start)}", flush=True)
        yield item


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dflow_tf.distillation.precompute",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--teachers", nargs="+", required=True, help="teacher stage folders or checkpoints")
    parser.add_argument("--dataset", default="synthetic_flow", help="tfds_builders name[/config]")
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", required=True, help="output folder (must not exist)")
    add_data_arguments(parser)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--alpha1", type=float, default=OCCLUSION_ALPHA1)
    parser.add_argument("--alpha2", type=float, default=OCCLUSION_ALPHA2)
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if os.path.exists(args.out):
        sys.exit(f"error: --out {args.out} exists; choose a new folder")
    try:
        check_output_path(args.out, folder=False)
        teachers = TeacherEnsemble(args.teachers, args.alpha1, args.alpha2).load()
    except (OSError, ValueError) as error:
        sys.exit(f"error: {error}")
    count = precompute_teacher_targets(teachers, args.dataset, args.split, args.out, args.data_dir,
                                       args.manual_dir, args.batch_size)
    print(f"wrote teacher targets of {count} examples to {args.out}")


if __name__ == "__main__":
    main()
