"""Benchmark submissions: KITTI 2012 / 2015 flow PNGs and Sintel .flo trees (the library of
`python -m dflow_tf.submission`, docs/evaluation.md).

write_submission runs a predictor over the test split of the benchmark's builder (kitti_flow/2015,
kitti_flow/2012, sintel/clean + sintel/final) and writes the official layout:

  * KITTI 2015: <out>/flow/XXXXXX_10.png (16-bit KITTI PNG, every pixel valid) and
    <out>/kitti2015_flow.zip holding the folder `flow/` at its root (the upload page asks for
    "the 'flow' directory in its root folder").
  * KITTI 2012: the same folder, and <out>/kitti2012_flow.zip holding the PNGs at its root (as
    public submission scripts zip them; check the upload page's current instructions).
  * Sintel: <out>/clean/<scene>/frame_XXXX.flo and <out>/final/<scene>/frame_XXXX.flo, the flow
    frame XXXX -> XXXX + 1 of every test pair (frames 1 .. n-1 of each scene). This is the input
    of Sintel's own `bundler` tool (MPI-Sintel-complete/bundler/<platform>/), which must still be
    run to make the file the server accepts; see its README.

Three-frame models need the frame before each pair: it is read from the manual directory when it
is there (KITTI: XXXXXX_09.png of the multi-view extension, unpacked as docs/datasets.md says;
Sintel: frame XXXX - 1 of the scene); otherwise (a scene's first frame, no multi-view archive)
the first-frame fallback of dflow_tf.data.frame_windows applies and is counted.
"""
import os
import zipfile

import numpy as np

from dflow_tf import io as flow_io
from dflow_tf.console import CountProgress
from dflow_tf.data.frame_windows import pair_window

BENCHMARKS = {
    "kitti2015": {"sources": {"flow": "kitti_flow/2015"}, "camera": "kitti2015/testing/image_2"},
    "kitti2012": {"sources": {"flow": "kitti_flow/2012"}, "camera": "kitti2012/testing/colored_0"},
    "sintel": {"sources": {"clean": "sintel/clean", "final": "sintel/final"}},
}
SINTEL_ROOT = "MPI-Sintel-complete/test"


def kitti_flow_path(out_dir, example_id):
    """<out>/flow/<id>.png for a KITTI test id such as '000000_10'."""
    return os.path.join(out_dir, "flow", f"{example_id}.png")


def sintel_flow_path(out_dir, pass_name, example_id):
    """<out>/<pass>/<scene>/frame_XXXX.flo for a Sintel id such as 'market_1/frame_0007'."""
    scene, frame = example_id.split("/")
    return os.path.join(out_dir, pass_name, scene, f"{frame}.flo")


def write_kitti_flow_file(out_dir, example_id, flow):
    """Writes one KITTI submission PNG (all pixels valid); returns its path."""
    path = kitti_flow_path(out_dir, example_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    flow_io.write_kitti_flow(path, flow)
    return path


def write_sintel_flow_file(out_dir, pass_name, example_id, flow):
    """Writes one Sintel submission .flo; returns its path."""
    path = sintel_flow_path(out_dir, pass_name, example_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    flow_io.write_flo(path, flow)
    return path


def zip_kitti(out_dir, year):
    """Zips <out>/flow/*.png as <out>/kitti<year>_flow.zip (2015: inside `flow/`; 2012: at the root)."""
    folder = os.path.join(out_dir, "flow")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    if not names:
        raise FileNotFoundError(f"no flow PNGs in {folder}")
    path = os.path.join(out_dir, f"kitti{year}_flow.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(os.path.join(folder, name), f"flow/{name}" if int(year) == 2015 else name)
    return path


def previous_frame_path(benchmark, manual_dir, source, example_id):
    """The file of the frame before a test pair in the manual directory, or None."""
    if benchmark.startswith("kitti"):
        seq = example_id.split("_")[0]
        path = os.path.join(manual_dir, BENCHMARKS[benchmark]["camera"], f"{seq}_09.png")
    else:
        scene, frame = example_id.split("/")
        number = int(frame.split("_")[1])
        path = os.path.join(manual_dir, SINTEL_ROOT, source.split("/")[1], scene, f"frame_{number - 1:04d}.png")
    return path if os.path.isfile(path) else None


def test_pairs(source, data_dir=None, manual_dir=None):
    """(builder, generator of (id, uint8 frames [2, H, W, 3])) of the test split of `source`."""
    from dflow_tf.data.pipeline import get_builder, make_dataset
    builder = get_builder(source, data_dir=data_dir, manual_dir=manual_dir)
    ds = make_dataset(builder, "test", batch_size=1, num_frames=2, augmentation=None, shuffle=False,
                      repeat=False, drop_remainder=False, prepare=False)

    def generate():
        for batch in ds:
            frames = np.round(batch["frames"][0].numpy() * 255.0).astype(np.uint8)
            yield batch["id"][0].numpy().decode(), frames

    return builder, generate()


def write_submission(predict, model_frames, benchmark, out_dir, data_dir=None, manual_dir=None,
                     make_zip=True, progress=True):
    """Runs `predict` (dflow_tf.inference.make_predictor) over the benchmark's test split(s) and
    writes the layout of the module docstring. Returns {"files": n, "fallback": n, "zip": path}."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {sorted(BENCHMARKS)}")
    written, fallback = 0, 0
    for folder, source in BENCHMARKS[benchmark]["sources"].items():
        builder, pairs = test_pairs(source, data_dir, manual_dir)
        manual = manual_dir or os.path.join(builder.data_dir_root, "downloads", "manual")
        bar = CountProgress(f"submission {source}", builder.info.splits["test"].num_examples,
                            quiet=not progress)
        for example_id, frames in pairs:
            frames = list(frames)
            if model_frames == 3:
                previous = previous_frame_path(benchmark, manual, source, example_id)
                if previous is None:
                    fallback += 1  # pair_window repeats the pair's first frame
                else:
                    frames.insert(0, flow_io.read_image(previous))
            flow = predict(np.stack(pair_window(frames, model_frames)))
            if benchmark == "sintel":
                write_sintel_flow_file(out_dir, folder, example_id, flow)
            else:
                write_kitti_flow_file(out_dir, example_id, flow)
            written += 1
            bar.update()
        bar.close()
    archive = zip_kitti(out_dir, benchmark[-4:]) if make_zip and benchmark != "sintel" else None
    return {"files": written, "fallback": fallback, "zip": archive}
