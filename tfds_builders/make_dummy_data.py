"""Writes every builder's `dummy_data/` in the real on-disk layouts, with tiny made-up frames.

    python -m tfds_builders.make_dummy_data [--root tfds_builders]

Deterministic (fixed seeds): rerunning rewrites identical files. Frames are smooth colour
patterns translated by a known motion, so the ground truth written beside them is the true flow.
The same writers make larger fake KITTI data for bench/pipeline.py (`write_kitti`).

Layouts and counts (the builder tests' SPLITS depend on them):
  kitti_flow/dummy_data/kitti2015: training 000000 (14x24) and 000001 (16x28), testing 000000
      (12x22); kitti2012: training 000000 (14x24), testing 000000 (12x22). Every sequence has
      frames 00-20 of both cameras; training sequences have flow_occ / flow_noc for frame 10.
  sintel/dummy_data/MPI-Sintel-complete: training scenes alley_9 (6 frames) and cave_9 (5), test
      scene market_9 (5); both passes; 16x24.
  flying_chairs/dummy_data: 5 pairs (24x32), FlyingChairs_train_val.txt = 1 2 1 1 2.
  kitti_stereo/dummy_data: the kitti_flow layout and sizes, the right camera seeing the left
      one's pattern at disparity STEREO_DISPARITY; training sequences have disp_occ / disp_noc
      (2012) or disp_occ_0 / disp_noc_0 (2015) for frame 10.
  synthetic_flow/dummy_data, synthetic_stereo/dummy_data: only a README (nothing is downloaded).
"""
import argparse
import pathlib

import numpy as np

from dflow_tf import io as flow_io
from dflow_tf.io.flow_files import write_kitti_disparity

KITTI_YEARS = {
    2015: {"folder": "kitti2015", "cameras": ("image_2", "image_3"),
           "training": {"000000": (14, 24), "000001": (16, 28)}, "testing": {"000000": (12, 22)}},
    2012: {"folder": "kitti2012", "cameras": ("colored_0", "colored_1"),
           "training": {"000000": (14, 24)}, "testing": {"000000": (12, 22)}},
}
MOTION = (1.0, 0.5)  # (u, v) pixels per frame of every dummy sequence
STEREO_DISPARITY = 2.5  # px, every dummy stereo pair (the left pixel x is the right one's x - d)
KITTI_DISPARITY_FOLDERS = {2012: ("disp_occ", "disp_noc"), 2015: ("disp_occ_0", "disp_noc_0")}


class Pattern:
    """A smooth random colour pattern that can be rendered translated by (t * u, t * v)."""

    def __init__(self, rng):
        self.freq = rng.uniform(0.05, 0.15, (3, 2))
        self.phase = rng.uniform(0, 2 * np.pi, 3)

    def frame(self, height, width, t, motion=MOTION):
        """uint8 [H, W, 3]: frame t, i.e. the pattern moved by t * motion."""
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        xs, ys = xs - t * motion[0], ys - t * motion[1]
        channels = [0.5 + 0.4 * np.sin(fx * xs + fy * ys + p)
                    for (fx, fy), p in zip(self.freq, self.phase)]
        return np.round(np.stack(channels, -1) * 255).astype(np.uint8)


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def _constant_flow(height, width, motion=MOTION):
    return np.broadcast_to(np.asarray(motion, np.float32), (height, width, 2)).copy()


def write_kitti(root, year, sequences, frames=range(21), ground_truth=True, seed=0):
    """Writes KITTI-layout sequences under `root`/<year folder>/.

    Args:
      root: the manual directory.
      year: 2012 or 2015 (folder and camera names).
      sequences: {"training" | "testing": {sequence id: (height, width)}}.
      frames: frame indices to write for both cameras (21 = the full multi-view range).
      ground_truth: write flow_occ / flow_noc for frame 10 of training sequences (sparse:
        about half the pixels valid, a block of them occluded).
    """
    layout = KITTI_YEARS[year]
    rng = np.random.default_rng(seed)
    base = pathlib.Path(root) / layout["folder"]
    for split, seqs in sequences.items():
        for seq, (h, w) in seqs.items():
            for camera in layout["cameras"]:
                folder = _mkdir(base / split / camera)
                pattern = Pattern(rng)
                for i in frames:
                    flow_io.write_image(folder / f"{seq}_{i:02d}.png", pattern.frame(h, w, i))
            if split == "training" and ground_truth:
                valid = rng.random((h, w)) < 0.5
                noc = valid.copy()
                noc[: h // 3, : w // 3] = False
                flow = _constant_flow(h, w)
                flow_io.write_kitti_flow(_mkdir(base / split / "flow_occ") / f"{seq}_10.png", flow, valid)
                flow_io.write_kitti_flow(_mkdir(base / split / "flow_noc") / f"{seq}_10.png", flow, noc)


def write_kitti_stereo(root, year, sequences, frames=range(21), seed=0):
    """Writes KITTI-layout stereo sequences under `root`/<year folder>/: both cameras, the right
    one seeing the left one's pattern shifted by STEREO_DISPARITY, and for training sequences
    the disparity of frame 10 (sparse: about half the pixels valid, a block of them occluded)."""
    layout = KITTI_YEARS[year]
    rng = np.random.default_rng(seed)
    base = pathlib.Path(root) / layout["folder"]
    left_camera, right_camera = layout["cameras"]
    for split, seqs in sequences.items():
        for seq, (h, w) in seqs.items():
            pattern = Pattern(rng)
            for i in frames:
                flow_io.write_image(_mkdir(base / split / left_camera) / f"{seq}_{i:02d}.png", pattern.frame(h, w, i))
                right = pattern.frame(h, w, 1, (i * MOTION[0] - STEREO_DISPARITY, i * MOTION[1]))
                flow_io.write_image(_mkdir(base / split / right_camera) / f"{seq}_{i:02d}.png", right)
            if split == "training":
                valid = rng.random((h, w)) < 0.5
                noc = valid.copy()
                noc[: h // 3, : w // 3] = False
                disparity = np.full((h, w), STEREO_DISPARITY, np.float32)
                for folder, mask in zip(KITTI_DISPARITY_FOLDERS[year], (valid, noc)):
                    write_kitti_disparity(_mkdir(base / split / folder) / f"{seq}_10.png", disparity, mask)


def write_sintel(root, seed=0):
    rng = np.random.default_rng(seed)
    base = pathlib.Path(root) / "MPI-Sintel-complete"
    h, w = 16, 24
    scenes = {"training": {"alley_9": 6, "cave_9": 5}, "test": {"market_9": 5}}
    for split, split_scenes in scenes.items():
        for scene, count in split_scenes.items():
            for pass_name in ("clean", "final"):
                pattern = Pattern(rng)
                folder = _mkdir(base / split / pass_name / scene)
                for i in range(1, count + 1):
                    flow_io.write_image(folder / f"frame_{i:04d}.png", pattern.frame(h, w, i))
            if split != "training":
                continue
            for i in range(1, count):
                stem = f"frame_{i:04d}"
                flow_io.write_flo(_mkdir(base / split / "flow" / scene) / f"{stem}.flo", _constant_flow(h, w))
                occluded = np.zeros((h, w), np.uint8)
                occluded[:, -2:] = 255  # the right border leaves the image
                invalid = np.where(rng.random((h, w)) < 0.05, 255, 0).astype(np.uint8)
                flow_io.write_image(_mkdir(base / split / "occlusions" / scene) / f"{stem}.png", occluded)
                flow_io.write_image(_mkdir(base / split / "invalid" / scene) / f"{stem}.png", invalid)


def write_flying_chairs(root, seed=0):
    rng = np.random.default_rng(seed)
    root = pathlib.Path(root)
    data = _mkdir(root / "FlyingChairs_release" / "data")
    codes = [1, 2, 1, 1, 2]
    h, w = 24, 32
    for index in range(1, len(codes) + 1):
        motion = tuple(rng.uniform(-2, 2, 2))
        pattern = Pattern(rng)
        for i in (1, 2):
            flow_io.write_image(data / f"{index:05d}_img{i}.ppm", pattern.frame(h, w, i - 1, motion))
        flow_io.write_flo(data / f"{index:05d}_flow.flo", _constant_flow(h, w, motion))
    (root / "FlyingChairs_train_val.txt").write_text("".join(f"{c}\n" for c in codes))


def write_synthetic_flow(root, name="synthetic_flow"):
    (_mkdir(pathlib.Path(root)) / "README.md").write_text(
        f"{name} renders its examples locally and reads nothing from here; the folder\n"
        "exists because tfds.testing.DatasetBuilderTestCase requires a dummy_data/ directory.\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parent),
                        help="the tfds_builders folder (default: the one of this file)")
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root)
    for year, layout in KITTI_YEARS.items():
        write_kitti(root / "kitti_flow" / "dummy_data", year,
                    {"training": layout["training"], "testing": layout["testing"]}, seed=year)
        write_kitti_stereo(root / "kitti_stereo" / "dummy_data", year,
                           {"training": layout["training"], "testing": layout["testing"]}, seed=year)
    write_sintel(root / "sintel" / "dummy_data")
    write_flying_chairs(root / "flying_chairs" / "dummy_data")
    write_synthetic_flow(root / "synthetic_flow" / "dummy_data")
    write_synthetic_flow(root / "synthetic_stereo" / "dummy_data", "synthetic_stereo")


if __name__ == "__main__":
    main()
