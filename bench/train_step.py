"""Benchmarks one teacher training step: census loss with occlusion masks, two-frame model,
bidirectional, Adam, as dflow_tf.training runs it.

Prints, per configuration (320x896 batch 1 and 256x640 batch 4, with and without XLA): the
backend that ran (oneDNN AVX-512 / AVX2, Eigen; run with TF_ENABLE_ONEDNN_OPTS=0 and =1 to compare),
the median step time of >= 5 steps after warm-up, peak RSS of the process, and the step's speed
as a fraction of the machine's conv ceiling (the best of oneDNN off and on, bench/_util), counting
a step as three forward passes of FLOPs (forward + backward ~ 3x forward). Each configuration runs
in its own process.

  python bench/train_step.py [--repeats 5] [--quick]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CASES = [{"height": h, "width": w, "batch": b, "xla": xla}
         for (h, w, b) in [(320, 896, 1), (256, 640, 4)] for xla in (False, True)]


def run_case(case, repeats):
    import keras
    import numpy as np
    import tensorflow as tf
    from _util import backend_label, median_time, rss_mib

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

    convs = [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, keras.layers.Conv2D)]
    for layer in convs:
        hook(layer)
    model.bidirectional(tf.constant(frames))
    forward_flops = sum(2 * np.prod(layer.kernel.shape) * pixels.get(id(layer), 0) for layer in convs)
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
            "backend": backend_label()}


def main():
    from _util import describe_ceilings, machine_ceilings, print_table, run_cases
    ran = run_cases(__doc__, __file__, run_case, CASES, quick_cases=CASES[2:3])
    if ran is None:
        return
    results, repeats = ran
    ceilings = machine_ceilings()
    best = max(ceilings.values())
    rows = []
    for r in results:
        achieved = r["step_gflops"] / r["step_s"]
        rows.append([r["backend"], f"{r['height']}x{r['width']}", r["batch"], "yes" if r["xla"] else "no",
                     f"{r['step_s'] * 1e3:.0f}", f"{r['step_gflops']:.0f}", f"{achieved:.1f}",
                     f"{100 * achieved / best:.0f}%", f"{r['peak_mib']:.0f}"])
    print(f"teacher step (census + occlusion, bidirectional two-frame, Adam); median of {repeats} "
          f"steps; CPU threads: {os.cpu_count()}; {describe_ceilings(ceilings)}")
    print_table(["backend", "input", "batch", "XLA", "step ms", "GFLOP/step (3x fwd)", "GFLOP/s",
                 "of best ceiling", "peak RSS MiB"], rows)


if __name__ == "__main__":
    main()
