"""Benchmarks the core ops: median time (forward, forward+backward) and peak memory.

Cost volume at the level-2 and level-3 feature shapes of a 448x1024 input at batch 4, ours against a
cost volume built on tf.image.extract_patches; backward_warp of a 448x1024x3 batch-4 image. Each case
runs in its own process; "peak MiB" is the process's peak RSS above its RSS once inputs exist.

  python bench/ops.py [--repeats 10]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CASES = [
    {"op": op, "impl": impl, "shape": shape, "xla": xla}
    for op, shape in [("cost_volume", [4, 112, 256, 32]), ("cost_volume", [4, 56, 128, 64]),
                      ("backward_warp", [4, 448, 1024, 3])]
    for impl in (["dflow_tf", "extract_patches"] if op == "cost_volume" else ["dflow_tf"])
    for xla in (False, True)
]


def extract_patches_cost_volume(f1, f2, d=4):
    """The common alternative: gather all (2d+1)^2 neighbours of every pixel, then dot products."""
    import tensorflow as tf
    f1 = tf.math.l2_normalize(f1, axis=-1)
    f2 = tf.math.l2_normalize(f2, axis=-1)
    shape = tf.shape(f1)
    k = 2 * d + 1
    padded = tf.pad(f2, [[0, 0], [d, d], [d, d], [0, 0]])
    patches = tf.image.extract_patches(padded, [1, k, k, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID")
    patches = tf.reshape(patches, [shape[0], shape[1], shape[2], k * k, shape[3]])
    return tf.reduce_sum(patches * f1[:, :, :, tf.newaxis, :], axis=-1)


def run_case(case, repeats):
    import numpy as np
    import tensorflow as tf
    from _util import median_time, rss_mib

    from dflow_tf import ops

    rng = np.random.default_rng(0)
    shape = case["shape"]
    if case["op"] == "cost_volume":
        a = tf.Variable(rng.normal(size=shape).astype(np.float32))
        b = tf.Variable(rng.normal(size=shape).astype(np.float32))
        fn = ops.cost_volume if case["impl"] == "dflow_tf" else extract_patches_cost_volume
        variables = [a, b]
        forward = lambda: fn(a, b)  # noqa: E731
    else:
        a = tf.Variable(rng.uniform(size=shape).astype(np.float32))
        b = tf.Variable((rng.normal(size=shape[:3] + [2]) * 5).astype(np.float32))
        variables = [a, b]
        forward = lambda: ops.backward_warp(a, b)[0]  # noqa: E731

    # Squared sums, so that the backward pass needs the forward result (XLA would drop it otherwise).
    @tf.function(jit_compile=case["xla"])
    def fwd():
        return tf.reduce_sum(tf.square(forward()))

    @tf.function(jit_compile=case["xla"])
    def fwd_bwd():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(forward()))
        return tape.gradient(loss, variables)

    base, _ = rss_mib()
    t_fwd = median_time(lambda: fwd().numpy(), repeats)
    t_bwd = median_time(lambda: [g.numpy() for g in fwd_bwd()], repeats)
    _, peak = rss_mib()
    return {**case, "fwd_ms": t_fwd * 1e3, "fwd_bwd_ms": t_bwd * 1e3, "peak_mib": peak - base}


def main():
    from _util import print_table, run_cases
    ran = run_cases(__doc__, __file__, run_case, CASES, repeats=10)
    if ran is None:
        return
    results, repeats = ran
    rows = [[r["op"], r["impl"], "x".join(map(str, r["shape"])), "yes" if r["xla"] else "no",
             f"{r['fwd_ms']:.1f}", f"{r['fwd_bwd_ms']:.1f}", f"{r['peak_mib']:.0f}"] for r in results]
    print(f"median of {repeats} runs after 2 warm-up runs, tf.function, CPU threads: {os.cpu_count()}")
    print_table(["op", "impl", "shape (BxHxWxC)", "XLA", "fwd ms", "fwd+bwd ms", "peak MiB"], rows)


if __name__ == "__main__":
    main()
