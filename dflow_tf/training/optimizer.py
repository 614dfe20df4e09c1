"""The optimiser of docs/method.md §2.6: Adam with a learning rate halved every N updates."""
import gin
import keras


@gin.configurable
def make_optimizer(learning_rate=1e-4, halve_every=80_000, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                   mixed_precision=False):
    """Adam with lr(t) = learning_rate * 0.5 ** floor(t / halve_every), t = applied updates.

    DDFlow's release halves every 80k steps (the papers say 50k [unverified]); both are a binding.
    With `mixed_precision` the optimiser is wrapped in a dynamic LossScaleOptimizer.
    """
    schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=halve_every, decay_rate=0.5, staircase=True)
    optimizer = keras.optimizers.Adam(schedule, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    if mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def current_learning_rate(optimizer):
    """The learning rate the next update will use (works through a LossScaleOptimizer)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return float(inner.learning_rate)
