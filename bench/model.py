"""Benchmarks the flow networks: parameters, FLOPs, latency, peak RSS, training step time.

    python bench/model.py            # full run (about 15 minutes on 2 shared cores)
    python bench/model.py --quick    # small sizes

Every configuration runs in its own subprocess, so "peak RSS" is per configuration
(resource.getrusage ru_maxrss of that process: TensorFlow + model + the run, XLA compiler
included). FLOPs are counted analytically from the conv layer shapes (2 * MACs of every conv at
its output resolution; cost volume, warping, resizing and activations are not counted; a
training step counts 3x the forward convs). Latency is the median of `--repeats` (>= 5) timed
runs after the first call (tracing / XLA compilation, reported separately) and one warm-up run.

The conv2d ceiling is the GFLOP/s of a 3x3 convolution [1,112,256,128] x [3,3,128,128] (the
shape of the level-2 estimator's second conv at 448x1024) in a tf.function without XLA. It is
measured on its own first, and inside every worker right after each timed run (best of 3);
"% ceil" is the median over runs of (model conv GFLOP/s) / (the ceiling measured right after
that run), which cancels much of the noise from other jobs sharing the CPU. XLA rows are
compared with the same non-XLA ceiling.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CEILING_SHAPE = ((1, 112, 256, 128), (3, 3, 128, 128))


# --------------------------------------------------------------------------------- helpers
def conv_flops(model, height, width, batch, directions):
    """Analytic FLOPs (2 * MACs) of all convs for one pass at run size height x width.

    `directions` is how many flows the decoder computes per sample (1: two-frame forward call,
    2: two-frame bidirectional or three-frame call).
    """
    def conv_macs(conv, h, w):
        kh, kw, cin, cout = conv.kernel.shape
        return h * w * kh * kw * cin * cout

    macs = 0
    convs = model.feature_pyramid.convs
    for i, conv in enumerate(convs):
        level = i // 2 + 1
        macs += model.num_frames * conv_macs(conv, height >> level, width >> level)
    for level, estimator in zip(model.levels, model.estimators):
        macs += directions * sum(conv_macs(c, height >> level, width >> level) for c in estimator.convs)
    macs += directions * sum(conv_macs(c, height >> 2, width >> 2) for c in model.context_network.convs)
    return 2.0 * macs * batch


def _timed(fn):
    import tensorflow as tf
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), fn())
    return time.perf_counter() - start


def ceiling_fn():
    """(tf.function running the ceiling conv, its FLOPs)."""
    import tensorflow as tf
    x_shape, k_shape = CEILING_SHAPE
    x = tf.random.normal(x_shape)
    k = tf.random.normal(k_shape) * 0.05
    flops = 2.0 * x_shape[0] * x_shape[1] * x_shape[2] * k_shape[0] * k_shape[1] * k_shape[2] * k_shape[3]
    return tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME")), flops


def interleaved(step, repeats, ceiling_runs=3):
    """Times `step` `repeats` times after one warm-up, each run followed by the best of
    `ceiling_runs` runs of the ceiling conv. Returns (median step s, median ceiling GFLOP/s,
    step times, ceiling GFLOP/s per run)."""
    import numpy as np
    conv, flops = ceiling_fn()
    _timed(step)
    _timed(conv)
    steps, ceilings = [], []
    for _ in range(repeats):
        steps.append(_timed(step))
        ceilings.append(flops / min(_timed(conv) for _ in range(ceiling_runs)) / 1e9)
    return float(np.median(steps)), float(np.median(ceilings)), steps, ceilings


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(model_name):
    from dflow_tf.models import ThreeFramePWC, TwoFramePWC
    return {"two_frame": TwoFramePWC, "three_frame": ThreeFramePWC}[model_name]()


# --------------------------------------------------------------------------------- workers
def worker(case, repeats):
    import tensorflow as tf
    if case["kind"] == "ceiling":
        conv, flops = ceiling_fn()
        _timed(conv)
        times = sorted(_timed(conv) for _ in range(3 * repeats))
        return {"gflops": flops / times[len(times) // 2] / 1e9}

    from dflow_tf.inference import padded_size, predict_tensor
    model = build(case["model"])
    height, width = case["size"]
    batch = case["batch"]
    run_h, run_w = padded_size(height, width, model.size_multiple)
    frames = tf.random.uniform([batch, model.num_frames, height, width, 3])

    if case["kind"] == "forward":
        fn = tf.function(lambda f: predict_tensor(model, f), jit_compile=case["xla"])
        directions = model.num_frames - 1  # three-frame computes forward and backward
        step = lambda: fn(frames)  # noqa: E731
    else:
        variables = model.trainable_variables

        def train_step(f):
            with tf.GradientTape() as tape:
                flows = model.bidirectional(f)
                loss = (tf.reduce_mean(tf.abs(flows["forward"]["flow"]))
                        + tf.reduce_mean(tf.abs(flows["backward"]["flow"])))
            return loss, tape.gradient(loss, variables)

        fn = tf.function(train_step, jit_compile=case["xla"])
        directions = 2
        step = lambda: fn(frames)  # noqa: E731
    first = _timed(step)  # traces / compiles
    seconds, ceiling, steps, ceilings = interleaved(step, repeats)
    flops = conv_flops(model, run_h, run_w, batch, directions)
    if case["kind"] == "train":
        flops *= 3.0  # forward + input gradients + weight gradients
    # Fraction of the ceiling per run (each run against the ceiling measured right after it).
    fractions = sorted(flops / t / 1e9 / c for t, c in zip(steps, ceilings))
    return {"params": model.count_params(), "gflop": flops / 1e9, "seconds": seconds,
            "first_call_s": first, "ceiling": ceiling, "run_size": [run_h, run_w],
            "gflops": flops / seconds / 1e9, "fraction": fractions[len(fractions) // 2]}


# --------------------------------------------------------------------------------- driver
def run_case(case, repeats):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(case), "--repeats", str(repeats)]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"worker {case} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def cases(quick):
    if quick:
        fwd_sizes, train = [(192, 448), (150, 300)], [((128, 320), 1), ((128, 256), 2)]
    else:
        fwd_sizes, train = [(448, 1024), (375, 1242)], [((320, 896), 1), ((256, 640), 4)]
    out = []
    for model in ("two_frame", "three_frame"):
        for size in fwd_sizes:
            for xla in (False, True):
                out.append({"kind": "forward", "model": model, "size": size, "batch": 1, "xla": xla})
        for size, batch in train:
            for xla in (False, True):
                out.append({"kind": "train", "model": model, "size": size, "batch": batch, "xla": xla})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per config (>= 5, default 5)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = max(5, args.repeats or 5)
    if args.worker:
        result = worker(json.loads(args.worker), repeats)
        result["peak_rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return

    load = os.getloadavg()[0]
    ceiling = run_case({"kind": "ceiling"}, repeats)
    print(f"conv2d ceiling {CEILING_SHAPE[0]}x{CEILING_SHAPE[1]}: {ceiling['gflops']:.1f} GFLOP/s "
          f"(tf.function, no XLA; median of {3 * repeats}); load average at start {load:.1f} "
          f"on {os.cpu_count()} CPUs")
    print("FLOPs: analytic conv FLOPs (2*MACs) at the run size; train = 3x forward convs. "
          "'ceiling' = median of the ceiling re-measured after each timed run in the same "
          "process; '% ceil' = median over runs of model GFLOP/s / that ceiling.")
    print("Forward = predict_tensor (resize to a multiple of 64 when needed + network + resize "
          "back); three-frame forward computes both directions. Train = bidirectional forward + "
          "gradients of a dummy loss (no optimizer update).\n")
    header = (f"| {'model':<11} | {'params':>9} | {'pass':<7} | {'input (run size)':<22} | {'B':>1} | "
              f"{'XLA':<3} | {'GFLOP':>6} | {'median s':>8} | {'1st call s':>10} | {'GFLOP/s':>7} | "
              f"{'ceiling':>7} | {'% ceil':>6} | {'peak RSS MiB':>12} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for case in cases(args.quick):
        r = run_case(case, repeats)
        h, w = case["size"]
        size = f"{h}x{w}" + (f" ({r['run_size'][0]}x{r['run_size'][1]})" if r["run_size"] != [h, w] else "")
        print(f"| {case['model']:<11} | {r['params']:>9,} | {case['kind']:<7} | {size:<22} | "
              f"{case['batch']:>1} | {'yes' if case['xla'] else 'no':<3} | {r['gflop']:>6.1f} | "
              f"{r['seconds']:>8.3f} | {r['first_call_s']:>10.1f} | {r['gflops']:>7.1f} | "
              f"{r['ceiling']:>7.1f} | {100 * r['fraction']:>5.1f}% | "
              f"{r['peak_rss_mib']:>12.0f} |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f} (other jobs share the CPU: expect noise)")


if __name__ == "__main__":
    main()
