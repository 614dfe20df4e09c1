"""Benchmarks the flow networks: parameters, FLOPs, latency, peak RSS, training step time.

    python bench/model.py               # full run (about 15 minutes on 2 cores)
    python bench/model.py --quick       # small sizes
    python bench/model.py --components  # where a 448x1024 forward pass spends its time
    python bench/model.py --raft        # RAFT and RAFT-small rows, and their correlation memory
    python bench/model.py --raft_correlation  # RAFT-small forward, all-pairs vs on-demand correlation

Run it with TF_ENABLE_ONEDNN_OPTS=0 and =1 to compare the backends (the "backend" column says
which one ran; ONEDNN_MAX_CPU_ISA=AVX2 makes an AVX-512 machine run oneDNN's AVX2 kernels).

Every configuration runs in its own subprocess, so "peak RSS" is per configuration
(resource.getrusage ru_maxrss of that process: TensorFlow + model + the run, XLA compiler
included). FLOPs are counted analytically from the conv layer shapes (2 * MACs of every conv at
its output resolution; cost volume, warping, resizing and activations are not counted; a
training step counts 3x the forward convs). Latency is the median of `--repeats` (>= 5) timed
runs after the first call (tracing / XLA compilation, reported separately) and one warm-up run.

The conv ceiling is the GFLOP/s of a 3x3 convolution [2,112,256,128] x [3,3,128,128] (the
level-2 estimator's second conv at 448x1024, batch 2 so that every backend runs its fastest
kernel) in a tf.function without XLA (bench/_util.CEILING_SHAPE). It is measured first with
oneDNN off and on, in child processes: "% best" is the model's GFLOP/s over the best of the two
(the machine's ceiling). Inside every worker it is also re-measured right after each timed run
(best of 3, the worker's own backend): "% own" is the median over runs of (model conv GFLOP/s) /
(that ceiling), which cancels much of the noise from other jobs sharing the CPU.

RAFT rows (`--raft`, or `--model raft|raft_small`): the default 12 update iterations, forward at
448x1024 and 384x1280 (batch 1), a training step at 256x384 (batch 1: the bidirectional forward
and the gradients of a dummy loss on every iteration's flow, as the sequence losses use them), no
XLA. Their FLOPs are counted by `raft_flops` (convolutions and the correlation's matrix product
from the traced graph, the upsampling analytically; train = 3x forward). After the table the
all-pairs correlation volume's memory is printed, computed (`correlation_bytes`): (H/8 * W/8)^2
float32 values per pair for level 0 plus the pooled levels (H_l = ceil(H_{l-1} / 2)), for one
direction (the `bidirectional` call holds two).

RAFT correlation rows (`--raft_correlation`): RAFT-small forward passes (`predict_tensor`, batch 1,
12 iterations, no XLA) with `correlation="all_pairs"` and `"on_demand"` at 448x1024, 736x1280 and
1088x1920: the first call, then `--repeats` timed runs (default 3, no warm-up run, no ceiling),
and the worker's peak RSS. An all-pairs row is skipped when its computed pyramid
(`correlation_bytes`) plus 1.5 GiB exceeds `--rss_limit_gib` (default 8), and a worker whose RSS
(polled every 0.2 s) passes that limit is killed and reported as such.
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import backend_label, ceiling_conv, describe_ceilings, machine_ceilings  # noqa: E402


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


def raft_flops(model, height, width, batch, bidirectional):
    """Analytic FLOPs (2 * MACs) of one RAFT / RAFT-small pass at run size height x width.

    Traces the forward pass (`model` or `model.bidirectional`, every iteration unrolled) without
    running it, and sums over its ops: every Conv2D (encoders, update block, mask head) 2 * output
    size * kh * kw * C_in, every (Batch)MatMul (the all-pairs correlation, 2 * N^2 * C per pair, N =
    H/8 * W/8) 2 * output size * the contracted size. Added per iteration: the on-demand lookup's
    dot products (levels * (2r+2)^2 cells * 2 C per 1/8-resolution pixel; `lookup_on_demand`) and
    the x8 upsampling (RAFT's convex combination 9 neighbours * 2 channels * 2, RAFT-small's bilinear
    resize 4 * 2 * 2 per output pixel). Pooling, sampling, the GRU's gates and activations are not
    counted.
    """
    import tensorflow as tf
    call = model.bidirectional if bidirectional else model
    graph = tf.function(call).get_concrete_function(tf.TensorSpec([batch, 2, height, width, 3])).graph
    flops = 0.0
    for op in graph.get_operations():
        if op.type == "Conv2D":
            kh, kw, cin, _ = op.inputs[1].shape.as_list()
            flops += 2.0 * op.outputs[0].shape.num_elements() * kh * kw * cin
        elif op.type in ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
            a = op.inputs[0].shape.as_list()
            contracted = a[-2] if op.get_attr("adj_x" if "Batch" in op.type else "transpose_a") else a[-1]
            flops += 2.0 * op.outputs[0].shape.num_elements() * contracted
    pairs = batch * (2 if bidirectional else 1)
    cells = (height // 8) * (width // 8)
    per_iteration = height * width * (36 if type(model).__name__ == "RAFT" else 16)
    if model.correlation == "on_demand":
        from dflow_tf.models.raft_correlation import CORRELATION_LEVELS
        per_iteration += CORRELATION_LEVELS * (2 * model.radius + 2) ** 2 * 2 * model.feature_dim * cells
    return flops + pairs * model.iterations * per_iteration


def _timed(fn):
    import tensorflow as tf
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), fn())
    return time.perf_counter() - start


def interleaved(step, repeats, ceiling_runs=3):
    """Times `step` `repeats` times after one warm-up, each run followed by the best of
    `ceiling_runs` runs of the ceiling conv. Returns (median step s, median ceiling GFLOP/s,
    step times, ceiling GFLOP/s per run)."""
    import numpy as np
    conv, flops = ceiling_conv()
    _timed(step)
    _timed(conv)
    steps, ceilings = [], []
    for _ in range(repeats):
        steps.append(_timed(step))
        ceilings.append(flops / min(_timed(conv) for _ in range(ceiling_runs)) / 1e9)
    return float(np.median(steps)), float(np.median(ceilings)), steps, ceilings


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


PWC_MODELS = ("two_frame", "three_frame")
RAFT_MODELS = ("raft", "raft_small")
#: Correlation memory is printed at these input sizes (and the 2 GiB thresholds below).
CORRELATION_SIZES = ((448, 1024), (1088, 1920))
CORRELATION_LIMIT = 2 * 1024 ** 3


#: `--raft_correlation` input sizes.
RAFT_CORRELATION_SIZES = ((448, 1024), (736, 1280), (1088, 1920))


def build(model_name, **params):
    from dflow_tf.models.registry import get_model
    return get_model(model_name, **params)  # defaults: PWC 6 levels, RAFT 12 iterations


def correlation_bytes(height, width, batch=1, levels=4, stride=8):
    """Bytes of RAFT's all-pairs correlation pyramid (float32) for `batch` pairs of input size
    height x width, run at the next multiples of `stride`: level 0 is (h * w)^2 values with
    h, w = H / 8, W / 8; level l pools the frame-2 axes, ceil(h_{l-1} / 2) x ceil(w_{l-1} / 2)
    (dflow_tf.models.raft_correlation.correlation_pyramid). Returns (level 0, all levels)."""
    h, w = -(-height // stride), -(-width // stride)
    pixels = h * w
    sizes = []
    for _ in range(levels):
        sizes.append(pixels * h * w * 4 * batch)
        h, w = -(-h // 2), -(-w // 2)
    return sizes[0], sum(sizes)


def correlation_threshold(aspect_w, aspect_h, limit=CORRELATION_LIMIT, stride=8):
    """The smallest input (H, W), H a multiple of 8 and W = H * aspect_w / aspect_h rounded up to a
    multiple of 8, whose correlation pyramid (batch 1, all levels) exceeds `limit` bytes."""
    height = stride
    while True:
        width = -(-height * aspect_w // (aspect_h * stride)) * stride
        if correlation_bytes(height, width)[1] > limit:
            return height, width
        height += stride


def print_correlation_memory():
    gib = 1024.0 ** 3
    print("\nRAFT all-pairs correlation volume, float32, batch 1 (times B for a batch of B), one "
          "direction (computed: (H/8 * W/8)^2 * 4 bytes for level 0, plus the 3 pooled levels):")
    print(f"| {'input':<10} | {'1/8 grid':<9} | {'level 0 GiB':>11} | {'4 levels GiB':>12} |")
    print(f"|{'-' * 12}|{'-' * 11}|{'-' * 13}|{'-' * 14}|")
    for h, w in CORRELATION_SIZES:
        level0, total = correlation_bytes(h, w)
        grid = f"{-(-h // 8)}x{-(-w // 8)}"
        print(f"| {f'{h}x{w}':<10} | {grid:<9} | {level0 / gib:>11.3f} | {total / gib:>12.3f} |")
    thresholds = ["{}:{} from {}x{}".format(aw, ah, *correlation_threshold(aw, ah))
                  for aw, ah in ((16, 9), (4, 3), (33, 10))]
    print(f"Above {CORRELATION_LIMIT / gib:.0f} GiB (4 levels, batch 1): " + "; ".join(thresholds))


# --------------------------------------------------------------------------------- workers
def components(model, height, width, repeats):
    """Seconds per component of one two-frame forward pass at height x width, batch 1: each
    component timed alone (tf.function, median) on inputs of the shapes it sees in the pass."""
    import numpy as np
    import tensorflow as tf

    from dflow_tf import ops as flow_ops

    def median(fn, *args):
        fn = tf.function(fn)
        _timed(lambda: fn(*args))
        return float(np.median([_timed(lambda: fn(*args)) for _ in range(repeats)]))

    images = tf.random.uniform([model.num_frames, height, width, 3])
    features = model.feature_pyramid(images)
    split = {"feature pyramid": median(model.feature_pyramid, images), "cost volume": 0.0,
             "warp": 0.0, "estimators": 0.0, "upsampling": 0.0}
    for level, estimator in zip(model.levels, model.estimators):
        reference = features[level - 1][:1]
        flow = tf.random.normal(reference.shape[:-1] + [2])
        split["cost volume"] += median(
            lambda a, b: flow_ops.cost_volume(a, b, model.search_range), reference, reference)
        if level != model.levels[0]:  # the coarsest level warps nothing
            split["warp"] += median(lambda a, b: flow_ops.backward_warp(a, b)[0], reference, flow)
            coarse = tf.random.normal([1, reference.shape[1] // 2, reference.shape[2] // 2, 2])
            size = tuple(reference.shape[1:3])
            split["upsampling"] += median(lambda f, size=size: flow_ops.resize_flow(f, size), coarse)
        inputs = tf.random.normal(reference.shape[:-1] + [model.estimator_input_channels(level)])
        split["estimators"] += median(estimator, inputs)
    context_in = tf.random.normal([1, height // 4, width // 4, model.context_input_channels()])
    split["context network"] = median(model.context_network, context_in)
    level2 = tf.random.normal([1, height // 4, width // 4, 2])
    split["upsampling"] += median(lambda f: flow_ops.resize_flow(f, (height, width)), level2)
    frames = tf.random.uniform([1, model.num_frames, height, width, 3])
    split["whole forward pass"] = median(model, frames)
    return split


def worker(case, repeats):
    import tensorflow as tf
    if case["kind"] == "components":
        return {"split": components(build(case["model"]), *case["size"], repeats),
                "backend": backend_label()}

    from dflow_tf.inference import padded_size, predict_tensor
    if case["kind"] == "correlation":
        import numpy as np
        model = build(case["model"], correlation=case["correlation"])
        frames = tf.random.uniform([1, 2, *case["size"], 3])
        fn = tf.function(lambda f: predict_tensor(model, f))
        first = _timed(lambda: fn(frames))
        steps = [_timed(lambda: fn(frames)) for _ in range(repeats)]
        return {"first_call_s": first, "steps": steps, "seconds": float(np.median(steps)),
                "backend": backend_label()}
    model = build(case["model"])
    raft = case["model"] in RAFT_MODELS
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
                key = "flow_iterations" if raft else "flow"  # RAFT: every iteration's flow
                loss = (tf.reduce_mean(tf.abs(flows["forward"][key]))
                        + tf.reduce_mean(tf.abs(flows["backward"][key])))
            return loss, tape.gradient(loss, variables)

        fn = tf.function(train_step, jit_compile=case["xla"])
        directions = 2
        step = lambda: fn(frames)  # noqa: E731
    first = _timed(step)  # traces / compiles
    seconds, ceiling, steps, ceilings = interleaved(step, repeats)
    if raft:
        flops = raft_flops(model, run_h, run_w, batch, bidirectional=case["kind"] == "train")
    else:
        flops = conv_flops(model, run_h, run_w, batch, directions)
    if case["kind"] == "train":
        flops *= 3.0  # forward + input gradients + weight gradients
    # Fraction of the ceiling per run (each run against the ceiling measured right after it).
    fractions = sorted(flops / t / 1e9 / c for t, c in zip(steps, ceilings))
    result = {"params": model.count_params(), "gflop": flops / 1e9, "seconds": seconds,
              "first_call_s": first, "ceiling": ceiling, "run_size": [run_h, run_w],
              "gflops": flops / seconds / 1e9, "fraction": fractions[len(fractions) // 2],
              "backend": backend_label()}
    if raft:
        result.update(iterations=model.iterations, steps=steps)
    return result


# --------------------------------------------------------------------------------- driver
def _rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_case(case, repeats, rss_limit=None):
    """Runs `case` in a worker process; with `rss_limit` (bytes) the worker is killed when its RSS
    passes it (returns {"killed_at_rss_mib": ...})."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(case), "--repeats", str(repeats)]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          cwd=REPO) as proc:
        if rss_limit:
            while proc.poll() is None:
                rss = _rss_bytes(proc.pid)
                if rss > rss_limit:
                    proc.kill()
                    proc.communicate()
                    return {"killed_at_rss_mib": rss / 2 ** 20}
                time.sleep(0.2)
        stdout, stderr = proc.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"worker {case} failed:\n{stderr[-3000:]}")
    return json.loads(lines[-1])


def cases(quick, models=PWC_MODELS, xla_options=(False, True)):
    if quick:
        fwd_sizes, train = [(192, 448), (150, 300)], [((128, 320), 1), ((128, 256), 2)]
        raft_fwd, raft_train = [(192, 448)], [((128, 192), 1)]
    else:
        fwd_sizes, train = [(448, 1024), (375, 1242)], [((320, 896), 1), ((256, 640), 4)]
        raft_fwd, raft_train = [(448, 1024), (384, 1280)], [((256, 384), 1)]
    out = []
    for model in models:
        if model in RAFT_MODELS:
            out += [{"kind": "forward", "model": model, "size": size, "batch": 1, "xla": False} for size in raft_fwd]
            out += [{"kind": "train", "model": model, "size": size, "batch": batch, "xla": False}
                    for size, batch in raft_train]
            continue
        for size in fwd_sizes:
            for xla in xla_options:
                out.append({"kind": "forward", "model": model, "size": size, "batch": 1, "xla": xla})
        for size, batch in train:
            for xla in xla_options:
                out.append({"kind": "train", "model": model, "size": size, "batch": batch, "xla": xla})
    return out


def print_components(repeats, size=(448, 1024)):
    r = run_case({"kind": "components", "model": "two_frame", "size": list(size)}, repeats)
    split = r["split"]
    total = split.pop("whole forward pass")
    print(f"two-frame forward pass {size[0]}x{size[1]}, batch 1, backend {r['backend']}: each "
          f"component timed alone (median of {repeats}), summed over the levels\n")
    print(f"| {'component':<27} | {'ms':>7} | {'share':>6} |")
    print(f"|{'-' * 29}|{'-' * 9}|{'-' * 8}|")
    for name, seconds in list(split.items()) + [("other (concat, resize, ...)", total - sum(split.values()))]:
        print(f"| {name:<27} | {1e3 * seconds:>7.1f} | {100 * seconds / total:>5.1f}% |")
    print(f"| {'whole pass':<27} | {1e3 * total:>7.1f} | 100.0% |")


def print_raft_correlation(repeats, rss_limit_gib):
    """RAFT-small forward latency and peak RSS, all-pairs vs on-demand correlation."""
    limit = rss_limit_gib * 1024 ** 3
    print(f"RAFT-small forward (predict_tensor), batch 1, 12 iterations, no XLA; first call, then {repeats} "
          f"timed runs; peak RSS of the worker; limit {rss_limit_gib:g} GiB; load average at start "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| input | 1/8 grid | correlation | pyramid GiB (computed) | median s | runs s | 1st call s | "
          "peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for height, width in RAFT_CORRELATION_SIZES:
        grid = f"{-(-height // 8)}x{-(-width // 8)}"
        for correlation in ("all_pairs", "on_demand"):
            pyramid = correlation_bytes(height, width)[1] if correlation == "all_pairs" else 0
            row = f"| {height}x{width} | {grid} | {correlation} | {pyramid / 1024 ** 3:.3f} |"
            if pyramid + 1.5 * 1024 ** 3 > limit:
                print(f"{row} skipped: pyramid + 1.5 GiB > {rss_limit_gib:g} GiB | | | |", flush=True)
                continue
            case = {"kind": "correlation", "model": "raft_small", "size": [height, width], "correlation": correlation}
            r = run_case(case, repeats, rss_limit=limit)
            if "killed_at_rss_mib" in r:
                print(f"{row} killed at RSS {r['killed_at_rss_mib']:.0f} MiB | | | |", flush=True)
                continue
            runs = ", ".join(f"{t:.2f}" for t in r["steps"])
            print(f"{row} {r['seconds']:.2f} | {runs} | {r['first_call_s']:.1f} | {r['peak_rss_mib']:.0f} |",
                  flush=True)
    print(f"\nbackend {r.get('backend', '?')}; load average at end {os.getloadavg()[0]:.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--components", action="store_true",
                        help="only the per-component time split of a 448x1024 forward pass")
    parser.add_argument("--model", choices=[*PWC_MODELS, *RAFT_MODELS], help="only this model")
    parser.add_argument("--raft", action="store_true",
                        help="only the RAFT and RAFT-small rows and the correlation memory")
    parser.add_argument("--raft_correlation", action="store_true",
                        help="only RAFT-small forward latency and peak RSS, all-pairs vs on-demand correlation")
    parser.add_argument("--rss_limit_gib", type=float, default=8.0,
                        help="--raft_correlation: skip / kill a worker above this RSS")
    parser.add_argument("--correlation_memory", action="store_true",
                        help="only print RAFT's correlation memory (computed, nothing run)")
    parser.add_argument("--no_xla", action="store_true", help="only the runs without XLA")
    parser.add_argument("--headline", action="store_true",
                        help="only the forward pass at 448x1024 and the train step at 320x896, batch 1")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per config (>= 5, default 5)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = max(5, args.repeats or 5)
    if args.raft_correlation and not args.worker:
        print_raft_correlation(max(1, args.repeats or 3), args.rss_limit_gib)
        return
    if args.worker:
        if json.loads(args.worker)["kind"] == "correlation":
            repeats = max(1, args.repeats or 3)
        result = worker(json.loads(args.worker), repeats)
        result["peak_rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return
    if args.components:
        print_components(repeats)
        return
    if args.correlation_memory:
        print_correlation_memory()
        return

    load = os.getloadavg()[0]
    ceilings = machine_ceilings(3 * repeats)
    best = max(ceilings.values())
    print(f"{describe_ceilings(ceilings)} (tf.function, no XLA; median of {3 * repeats}); load "
          f"average at start {load:.1f} on {os.cpu_count()} CPUs")
    print("FLOPs: analytic conv FLOPs (2*MACs) at the run size; train = 3x forward convs. "
          "'% best' = model GFLOP/s / the best ceiling above; 'own ceil' = median of the ceiling "
          "re-measured after each timed run in the same process (its backend); '% own' = median "
          "over runs of model GFLOP/s / that ceiling.")
    print("Forward = predict_tensor (resize to a multiple of 64, RAFT 8, when needed + network + "
          "resize back); three-frame forward computes both directions. Train = bidirectional forward + "
          "gradients of a dummy loss (no optimizer update; RAFT: on every iteration's flow). RAFT: 12 "
          "iterations; FLOPs = convs + the correlation's matrix product + the x8 upsampling (raft_flops).\n")
    header = (f"| {'model':<11} | {'backend':<14} | {'params':>9} | {'pass':<7} | {'input (run size)':<22} | "
              f"{'B':>1} | {'XLA':<3} | {'GFLOP':>6} | {'median s':>8} | {'1st call s':>10} | "
              f"{'GFLOP/s':>7} | {'% best':>6} | {'own ceil':>8} | {'% own':>6} | {'peak RSS MiB':>12} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    models = (args.model,) if args.model else RAFT_MODELS if args.raft else PWC_MODELS
    selected = cases(args.quick, models, (False,) if args.no_xla else (False, True))
    if args.headline:
        selected = [c for c in selected if c["size"] in ((448, 1024), (320, 896))]
    for case in selected:
        r = run_case(case, repeats)
        h, w = case["size"]
        size = f"{h}x{w}" + (f" ({r['run_size'][0]}x{r['run_size'][1]})" if r["run_size"] != [h, w] else "")
        counted = r["gflop"] is not None
        gflop, gflops, pct_best, pct_own = (
            (f"{r['gflop']:>6.1f}", f"{r['gflops']:>7.1f}", f"{100 * r['gflops'] / best:>5.1f}%",
             f"{100 * r['fraction']:>5.1f}%") if counted else ("-", "-", "-", "-"))
        print(f"| {case['model']:<11} | {r['backend']:<14} | {r['params']:>9,} | {case['kind']:<7} | "
              f"{size:<22} | {case['batch']:>1} | {'yes' if case['xla'] else 'no':<3} | "
              f"{gflop:>6} | {r['seconds']:>8.3f} | {r['first_call_s']:>10.1f} | "
              f"{gflops:>7} | {pct_best:>6} | {r['ceiling']:>8.1f} | "
              f"{pct_own:>6} | {r['peak_rss_mib']:>12.0f} |", flush=True)
        if "steps" in r:
            print(f"    {case['model']}: {r['iterations']} iterations; runs s: "
                  + ", ".join(f"{t:.3f}" for t in r["steps"]), flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f} (other jobs share the CPU: expect noise)")
    if any(m in RAFT_MODELS for m in models):
        print_correlation_memory()


if __name__ == "__main__":
    main()
