"""Benchmarks the input pipeline against the training step that consumes it.

    python bench/pipeline.py            # full run (a few minutes on 2 cores)
    python bench/pipeline.py --quick    # fewer batches / steps

Rows:
  * KITTI-style pipeline: 3-frame windows of `kitti_flow` multi-view (config built here from a
    fake KITTI 2015 sequence of 375x1242 frames, both cameras, written in the real layout into a
    temporary manual directory: 26 windows), random 320x896 crops, flips, channel permutation,
    batch 4.
  * synthetic_flow pipeline at its default size (192x256, 5 frames; a 40-example config with the
    default frame size and motion is rendered here), same augmentations, batch 4; and how fast
    synthetic_flow examples are rendered and written.
  * one training step of the two-frame model (`dflow_tf.models.TwoFramePWC`, batch 4, 320x896):
    bidirectional forward, photometric L1 on both warped frames, tape gradient, Adam.
The pipeline and the step are timed one after the other (not concurrently), each with the
whole CPU. "ratio" = KITTI pipeline samples/s / (batch * steps/s): how many times faster the
pipeline produces samples than the step consumes them (target >= 3).

Frames are smooth patterns plus noise (about 1 MB PNG per frame, like real KITTI frames) so that
PNG decoding costs what it costs on the real data.
"""
import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from _util import print_table  # noqa: E402

from dflow_tf import io as flow_io  # noqa: E402
from dflow_tf.data import pipeline, schema  # noqa: E402
from tfds_builders.kitti_flow import kitti_flow  # noqa: E402
from tfds_builders.make_dummy_data import KITTI_YEARS, Pattern, write_kitti  # noqa: E402
from tfds_builders.synthetic_flow import synthetic_flow  # noqa: E402

BATCH = 4
KITTI_SIZE = (375, 1242)
CROP = (320, 896)


def write_fake_kitti(manual_dir, seed=0):
    """One KITTI 2015 multi-view training sequence (frames 00-20, both cameras), 375x1242."""
    rng = np.random.default_rng(seed)
    h, w = KITTI_SIZE
    for camera in KITTI_YEARS[2015]["cameras"]:
        folder = pathlib.Path(manual_dir) / KITTI_YEARS[2015]["folder"] / "training" / camera
        folder.mkdir(parents=True, exist_ok=True)
        pattern = Pattern(rng)
        for i in range(21):
            frame = pattern.frame(h, w, i).astype(np.int16) + rng.integers(-6, 7, (h, w, 3))
            flow_io.write_image(folder / f"000000_{i:02d}.png", np.clip(frame, 0, 255).astype(np.uint8))
    # The multi-view config also reads testing/: a tiny sequence (not timed).
    write_kitti(manual_dir, 2015, {"testing": {"000000": (12, 22)}}, ground_truth=False)


def prepare(builder, manual_dir=None):
    start = time.perf_counter()
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=manual_dir, compute_stats=tfds.download.ComputeStatsMode.SKIP))
    return time.perf_counter() - start


def samples_per_second(ds, batches, warmup=3):
    iterator = iter(ds)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
    batch[schema.FRAMES].numpy()
    return batches * BATCH / (time.perf_counter() - start)


def train_step_rate(steps):
    """steps/s of a bidirectional photometric-L1 step of TwoFramePWC, or None if it is missing."""
    try:
        from dflow_tf.models import TwoFramePWC  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        print(f"skipping the training step: dflow_tf.models.TwoFramePWC is not available ({err})")
        return None
    from dflow_tf.ops import backward_warp  # pylint: disable=import-outside-toplevel

    model = TwoFramePWC()
    optimizer = tf.keras.optimizers.Adam(1e-4)
    frames = tf.random.stateless_uniform([BATCH, 2, *CROP, 3], [0, 1])

    @tf.function
    def step(frames):
        with tf.GradientTape() as tape:
            flows = model.bidirectional(frames)
            first, second = frames[:, 0], frames[:, 1]
            warped_2, _ = backward_warp(second, flows["forward"]["flow"])
            warped_1, _ = backward_warp(first, flows["backward"]["flow"])
            loss = tf.reduce_mean(tf.abs(first - warped_2)) + tf.reduce_mean(tf.abs(second - warped_1))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step(frames).numpy()  # trace + first step
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(frames)
    loss.numpy()
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches and steps")
    parser.add_argument("--no-model", action="store_true", help="skip the training step")
    args = parser.parse_args()
    batches = 8 if args.quick else 25
    steps = 1 if args.quick else 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        manual = pathlib.Path(tmp) / "manual"
        write_fake_kitti(manual)
        kitti = kitti_flow.KittiFlow(config=kitti_flow.multiview_config(2015, num_frames=3),
                                     data_dir=str(pathlib.Path(tmp) / "tfds"))
        prepare(kitti, str(manual))
        kitti_rate = samples_per_second(pipeline.make_dataset(
            kitti, "train", batch_size=BATCH, crop_size=CROP, seed=0, prepare=False), batches)
        rows.append(["kitti_flow/2015_multiview 3 frames, 375x1242 -> crop 320x896", "pipeline",
                     f"{kitti_rate:.1f} samples/s"])

        config = synthetic_flow.SyntheticFlowConfig(name="bench", train_size=40, validation_size=1)
        synthetic = synthetic_flow.SyntheticFlow(config=config, data_dir=str(pathlib.Path(tmp) / "tfds"))
        seconds = prepare(synthetic)
        rows.append(["synthetic_flow 5 frames, 192x256 (default size)", "render + write",
                     f"{41 / seconds:.1f} examples/s"])
        synthetic_rate = samples_per_second(pipeline.make_dataset(
            synthetic, "train", batch_size=BATCH, seed=0, prepare=False), batches)
        rows.append(["synthetic_flow 5 frames, 192x256 (default size)", "pipeline",
                     f"{synthetic_rate:.1f} samples/s"])

    step_rate = None if args.no_model else train_step_rate(steps)
    if step_rate is None:
        rows.append(["TwoFramePWC batch 4, 320x896", "train step", "skipped"])
    else:
        rows.append(["TwoFramePWC batch 4, 320x896, bidirectional L1 + Adam", "train step",
                     f"{step_rate:.3f} steps/s = {BATCH * step_rate:.2f} samples/s"])
        ratio = kitti_rate / (BATCH * step_rate)
        rows.append(["KITTI pipeline / step consumption", "ratio",
                     f"{ratio:.1f}x ({'ok' if ratio >= 3 else 'BELOW 3x'})"])
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, "
          f"GPU: {bool(tf.config.list_physical_devices('GPU'))}")
    print_table(["what", "stage", "rate"], rows)


if __name__ == "__main__":
    main()
