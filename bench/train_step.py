"""Benchmarks one teacher training step: census loss with occlusion masks, two-frame model,
bidirectional, Adam, as dflow_tf.training runs it.

Prints, per configuration (320x896 batch 1 and 256x640 batch 4, with and without XLA): the median
step time of >= 5 steps after warm-up, peak RSS of the process, and the step's speed as a fraction
of the same run's conv2d ceiling, counting a step as three forward passes of FLOPs (forward +
backward ~ 3x forward). Each configuration runs in its own process.

  python bench/train_step.py [--repeats 5] [--quick]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CASES = [{"height": h, "width": w, "batch": b, "xla": xla}
         for (h, w, b) in [(320, 896, 1), (256, 640, 4)] for xla in (False, True)]


def conv_ceiling(repeats):
    """GFLOP/s of a large 3x3 convolution (the machine's practical ceiling for this model)."""
    import tensorflow as tf
    from _util import median_time
    x = tf.random.normal([1, 112, 256, 128])
    k = tf.random.normal([3, 3, 128, 128])
    conv = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
    seconds = median_time(lambda: conv().numpy(), repeats)
    return 2 * 112 * 256 * 128 * 128 * 9 / seconds / 1e9


def run_case(case, repeats):
    import numpy as np
    import tensorflow as tf
    import keras
    from _util import median_time, rss_mib
    from dflow_tf.models import TwoFramePWC
    from dflow_tf.training.trainer import _make_train_step
    from dflow_tf.training.unsupervised import UnsupervisedTask

    h, w, b = case["height"], case["width"], case["batch"]
    model = TwoFramePWC()
    frames = np.random.default_rng(0).uniform(size=(b, 2, h, w, 3)).astype(np.float32)
    model(tf.constant(frames[:1]))
    pixels = {}

    # Count conv MACs by recording each conv's output size during one bidirectional forward pass.
    def hook(layer):
        call = layer.call

        def counted(inputs, *args, **kwargs):
            out = call(inputs, *args, **kwargs)
            pixels[id(layer)] = pixels.get(id(layer), 0) + int(np.prod(out.shape[:3]))
            return out
        layer.call = counted

    convs = [l for l in model._flatten_layers(include_self=False) if isinstance(l, keras.layers.Conv2D)]
    for layer in convs:
        hook(layer)
    model.bidirectional(tf.constant(frames))
    forward_flops = sum(2 * np.prod(l.kernel.shape) * pixels.get(id(l), 0) for l in convs)
    for layer in convs:
        del layer.call  # restore the class method

    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64)
    dataset = tf.data.Dataset.from_tensors({"frames": frames}).repeat()
    iterator = iter(dataset)
    train_step = _make_train_step(tf.distribute.get_strategy(), model, optimizer,
                                  UnsupervisedTask("census", occlusion=True), step, case["xla"], False)
    seconds = median_time(lambda: float(train_step(iterator)[0]), repeats, warmup=2)
    _, peak = rss_mib()
    return {**case, "step_s": seconds, "peak_mib": peak, "step_gflops": 3 * forward_flops / 1e9,
            "ceiling": conv_ceiling(10)}


def main():
    from _util import print_table, run_cases
    ran = run_cases(__doc__, __file__, run_case, CASES, quick_cases=CASES[2:3])
    if ran is None:
        return
    results, repeats = ran
    rows = []
    for r in results:
        achieved = r["step_gflops"] / r["step_s"]
        rows.append([f"{r['height']}x{r['width']}", r["batch"], "yes" if r["xla"] else "no",
                     f"{r['step_s'] * 1e3:.0f}", f"{r['step_gflops']:.0f}", f"{achieved:.1f}",
                     f"{r['ceiling']:.1f}", f"{100 * achieved / r['ceiling']:.0f}%", f"{r['peak_mib']:.0f}"])
    print(f"teacher step (census + occlusion, bidirectional two-frame, Adam); median of {repeats} "
          f"steps; CPU threads: {os.cpu_count()}")
    print_table(["input", "batch", "XLA", "step ms", "GFLOP/step (3x fwd)", "GFLOP/s", "conv ceiling GFLOP/s",
                 "of ceiling", "peak RSS MiB"], rows)


if __name__ == "__main__":
    main()
