"""Benchmarks the deployment exports: file size, latency and agreement with the Keras model.

    python bench/export.py                       # 448x1024, random TwoFramePWC, all formats
    python bench/export.py --checkpoint runs/ddflow_kitti --height 375 --width 1242 --repeats 10

Exports one model (random weights with a fixed seed, or --checkpoint) with dflow_tf.export to a
temporary directory: SavedModel (dynamic size), TFLite float32 / float16 / dynamic-range int8
(fixed at the bench size) and ONNX (dynamic size). Each runtime then runs in its own process
(bench/_util.run_isolated) on the same uint8 frame pair, batch 1: the Keras model (the same graph
in a tf.function: uint8 -> [0, 1], resize to a multiple of 64, network, flow resized back),
the SavedModel's serving_default, the TFLite files in ai-edge-litert's Interpreter (all CPU
threads, XNNPACK as it applies by default) and ONNX Runtime (CPUExecutionProvider). Latency is
the median of --repeats (>= 5) runs after 2 warm-up runs. "max |d|" and "EPE" compare each flow
with the Keras model's (px); "peak MiB" is the peak RSS of the runtime's process.
"""
import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _util import median_time, print_table, rss_mib, run_isolated  # noqa: E402

FRAMES_FILE = "frames.npz"


# --------------------------------------------------------------------------------- worker
def _runner(case, workdir, frames):
    """A zero-argument function running the case's runtime on `frames` -> flow (numpy)."""
    kind, path = case["kind"], case.get("path")
    if kind == "keras":
        import tensorflow as tf

        from dflow_tf.checkpoints import load_model
        from dflow_tf.export import flow_from_frames
        model, _ = load_model(os.path.join(workdir, "checkpoint"))
        fn = tf.function(lambda a, b: flow_from_frames(model, [a, b], check=False))
        inputs = [tf.constant(f) for f in frames]
        return lambda: fn(*inputs).numpy()
    if kind == "saved_model":
        import tensorflow as tf
        serve = tf.saved_model.load(path).signatures["serving_default"]
        inputs = {"frame1": tf.constant(frames[0]), "frame2": tf.constant(frames[1])}
        return lambda: serve(**inputs)["flow"].numpy()
    if kind == "tflite":
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path=path, num_threads=os.cpu_count()).get_signature_runner()
        return lambda: runner(frame1=frames[0], frame2=frames[1])["flow"]
    if kind == "onnx":
        import onnxruntime as ort
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda: session.run(["flow"], {"frame1": frames[0], "frame2": frames[1]})[0]
    raise ValueError(f"unknown case {case}")


def worker(case, workdir, repeats):
    import numpy as np
    data = np.load(os.path.join(workdir, FRAMES_FILE))
    frames = [data["frame1"], data["frame2"]]
    start = time.perf_counter()
    run = _runner(case, workdir, frames)
    flow = run()
    first = time.perf_counter() - start
    seconds = median_time(run, repeats)
    np.save(os.path.join(workdir, f"flow_{case['name']}.npy"), flow)
    return {"seconds": seconds, "first_s": first, "peak_mib": rss_mib()[1]}


# --------------------------------------------------------------------------------- driver
def make_frames(height, width, seed=0):
    """A smooth random uint8 image pair [1, H, W, 3], the second shifted by (3, -2) px."""
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (1, height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    big = np.clip(tf.image.resize(base, (height + 8, width + 8), method="bicubic").numpy(), 0, 255)
    big = big.astype(np.uint8)
    return big[:, 4:height + 4, 4:width + 4], big[:, 6:height + 6, 1:width + 1]


def export_all(model, workdir, height, width, formats):
    """Exports `formats`; returns [(case dict, export seconds)]."""
    from dflow_tf.export import export_onnx, export_saved_model, export_tflite
    cases = []
    for fmt in formats:
        precisions = ("fp32", "fp16", "int8") if fmt == "tflite" else ("fp32",)
        for precision in precisions:
            name = fmt if fmt != "tflite" else f"tflite_{precision}"
            path = os.path.join(workdir, name + {"saved_model": "", "tflite": ".tflite", "onnx": ".onnx"}[fmt])
            start = time.perf_counter()
            if fmt == "saved_model":
                export_saved_model(model, path)
            elif fmt == "tflite":
                export_tflite(model, path, height, width, precision)
            else:
                export_onnx(model, path)
            seconds = time.perf_counter() - start
            print(f"exported {name} in {seconds:.0f} s", flush=True)
            cases.append(({"kind": fmt, "name": name, "path": path, "precision": precision}, seconds))
    return cases


def size_mib(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20
    return os.path.getsize(path) / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=448)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per runtime (>= 5)")
    parser.add_argument("--checkpoint", default=None, help="export this checkpoint (default: random weights)")
    parser.add_argument("--arch", default=None, choices=["two_frame", "three_frame"])
    parser.add_argument("--formats", default="saved_model,tflite,onnx",
                        help="comma-separated subset of saved_model,tflite,onnx")
    parser.add_argument("--workdir", default=None, help="keep the exported files here (default: temporary)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = max(5, args.repeats)
    if args.case:
        print(json.dumps(worker(json.loads(args.case), args.workdir, repeats)))
        return

    import keras
    import numpy as np

    from dflow_tf.checkpoints import load_model, save_imported
    from dflow_tf.models import ThreeFramePWC, TwoFramePWC

    workdir = args.workdir or tempfile.mkdtemp(prefix="bench_export_")
    os.makedirs(workdir, exist_ok=True)
    if args.checkpoint:
        model, source = load_model(args.checkpoint, args.arch)
    else:
        keras.utils.set_random_seed(0)
        model = (ThreeFramePWC if args.arch == "three_frame" else TwoFramePWC)()
        source = "random weights (seed 0)"
    if model.num_frames != 2:
        raise SystemExit("bench/export.py feeds frame pairs: use a two-frame model")
    save_imported(model, "ddflow", os.path.join(workdir, "checkpoint"), source=source)
    frame1, frame2 = make_frames(args.height, args.width)
    np.savez(os.path.join(workdir, FRAMES_FILE), frame1=frame1, frame2=frame2)

    load = os.getloadavg()[0]
    cases = [({"kind": "keras", "name": "keras", "precision": "fp32"}, None)]
    cases += export_all(model, workdir, args.height, args.width, args.formats.split(","))
    rows, reference = [], None
    for case, export_s in cases:
        result = run_isolated(os.path.abspath(__file__), case, ["--workdir", workdir, "--repeats", str(repeats)])
        flow = np.load(os.path.join(workdir, f"flow_{case['name']}.npy"))
        if reference is None:
            reference = flow
        diff = flow - reference
        label = {"keras": "Keras model (tf.function)", "saved_model": "SavedModel (TF)",
                 "tflite": "TFLite (ai-edge-litert)", "onnx": "ONNX Runtime (CPU)"}[case["kind"]]
        rows.append([label, case["precision"], f"{size_mib(case['path']):.1f}" if "path" in case else "-",
                     f"{export_s:.0f}" if export_s is not None else "-",
                     f"{1000 * result['seconds']:.0f}", f"{result['first_s']:.1f}",
                     f"{np.abs(diff).max():.2g}", f"{np.mean(np.linalg.norm(diff, axis=-1)):.2g}",
                     f"{result['peak_mib']:.0f}"])
        print(f"ran {case['name']}", flush=True)
    print(f"\n{type(model).__name__} ({model.count_params():,} parameters, {source}), frames "
          f"{args.height}x{args.width} uint8, batch 1; median of {repeats} runs; {os.cpu_count()} CPUs, "
          f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end; mean |flow| "
          f"{np.mean(np.linalg.norm(reference, axis=-1)):.2f} px\n")
    print_table(["runtime", "precision", "file MiB", "export s", "median ms", "load+1st s",
                 "max |d| px", "EPE px", "peak MiB"], rows)
    if not args.workdir:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
