"""Shared helpers for the bench/ scripts: timing, peak memory in a subprocess, table printing."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

#: The ceiling convolution: 3x3, 128 -> 128 channels at the level-2 estimator's per-image shape for
#: a 448x1024 input, batch 2 (oneDNN below AVX-512 runs a batch of one through a slow GEMM path;
#: from two on every backend runs its fastest kernel).
CEILING_SHAPE = ((2, 112, 256, 128), (3, 3, 128, 128))


def backend_label():
    """The convolution backend of this process: "GPU", "oneDNN AVX-512", "oneDNN AVX2" (oneDNN
    below AVX-512) or "Eigen" (TensorFlow's own CPU kernels, oneDNN off)."""
    import tensorflow as tf

    from dflow_tf.ops import conv
    if tf.config.list_logical_devices("GPU"):
        return "GPU"
    if not conv.cpu_has_native_dilated_gradient("float32"):
        return "Eigen"
    return "oneDNN AVX2" if conv.onednn_below_avx512() else "oneDNN AVX-512"


def ceiling_conv():
    """(tf.function running the CEILING_SHAPE convolution, plain tf.nn.conv2d; its FLOPs)."""
    import tensorflow as tf
    x_shape, k_shape = CEILING_SHAPE
    x = tf.random.normal(x_shape)
    k = tf.random.normal(k_shape) * 0.05
    flops = 2.0 * x_shape[0] * x_shape[1] * x_shape[2] * k_shape[0] * k_shape[1] * k_shape[2] * k_shape[3]
    return tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME")), flops


def conv_ceiling(repeats=10):
    """GFLOP/s of the ceiling convolution in this process (median of `repeats`)."""
    conv, flops = ceiling_conv()
    return flops / median_time(lambda: conv().numpy(), repeats) / 1e9


def machine_ceilings(repeats=10):
    """{backend label: conv_ceiling} with oneDNN off and on (one child process each, the rest of
    the environment as it is): the best of them is the machine's conv ceiling."""
    script = os.path.abspath(__file__)
    ceilings = {}
    for onednn in ("0", "1"):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS=onednn,
                   PYTHONPATH=os.path.dirname(os.path.dirname(script)))
        out = subprocess.run([sys.executable, script, "--ceiling", str(repeats)], capture_output=True,
                             text=True, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"ceiling (TF_ENABLE_ONEDNN_OPTS={onednn}) failed:\n{out.stderr[-3000:]}")
        label, gflops = json.loads(out.stdout.strip().splitlines()[-1])
        ceilings[label] = gflops
    return ceilings


def describe_ceilings(ceilings):
    """One line: each backend's ceiling and the best."""
    best = max(ceilings, key=ceilings.get)
    listed = ", ".join(f"{label} {value:.0f}" for label, value in ceilings.items())
    return (f"conv ceiling {CEILING_SHAPE[0]}x{CEILING_SHAPE[1]}, GFLOP/s: {listed}; best: {best} "
            f"{ceilings[best]:.0f}")


def median_time(fn, repeats, warmup=2):
    """Median wall time in seconds of `fn()` over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rss_mib():
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def run_isolated(script, case, extra_args=()):
    """Runs `python script [extra_args] --case JSON` in a fresh process (so peak RSS is per case).

    Returns the JSON object the case printed on its last line of stdout.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, script, *extra_args, "--case", json.dumps(case)]
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"bench case {case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_table(headers, rows):
    """Prints a plain-text table with right-aligned columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def run_cases(doc, script, run_case, cases, repeats=5, quick_cases=None, case_sets=None):
    """The command line shared by the case-based benches: --repeats N, --quick, --NAME for each
    entry of `case_sets` ({name: cases}), and the hidden --case JSON with which each case runs in
    its own process (run_isolated).

    In a --case child: runs `run_case(case, repeats)`, prints its JSON and returns None. Otherwise
    runs every case (or `quick_cases` with --quick, or case_sets[NAME] with --NAME) isolated and
    returns (results, repeats).
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=repeats)
    if quick_cases is not None:
        parser.add_argument("--quick", action="store_true", help="only: " + ", ".join(map(json.dumps, quick_cases)))
    for name, chosen in (case_sets or {}).items():
        parser.add_argument(f"--{name}", action="store_true", help="only: " + ", ".join(map(json.dumps, chosen)))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case), args.repeats)))
        return None
    if getattr(args, "quick", False):
        cases = quick_cases
    for name, chosen in (case_sets or {}).items():
        if getattr(args, name):
            cases = chosen
    results = []
    for case in cases:
        results.append(run_isolated(script, case, ["--repeats", str(args.repeats)]))
        print("done:", case, file=sys.stderr, flush=True)
    return results, args.repeats


if __name__ == "__main__" and sys.argv[1:2] == ["--ceiling"]:
    print(json.dumps([backend_label(), conv_ceiling(int(sys.argv[2]))]))
