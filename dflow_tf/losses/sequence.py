"""Losses over a sequence of flow estimates (the RAFT family's iterations): the per-flow losses
of this package applied to every iteration, weighted by decay^(T-1-k) (RAFT's sequence loss,
SMURF's unsupervised sequence loss; Teed and Deng 2020 eq. 7, Stone et al. 2021 §3.4).

The weights are not normalised: the final iteration weighs 1 (so decay 0 is the final-flow loss)
and T iterations at decay 0.8 weigh (1 - 0.8^T) / 0.2 in all (4.66 for T = 12), as in both
references.
"""
import tensorflow as tf

#: RAFT's and SMURF's decay (gamma).
SEQUENCE_DECAY = 0.8


def sequence_weights(num_iterations, decay):
    """The weight of each iteration k = 0 .. T-1: decay^(T-1-k) (Python floats).

    decay 0 or None gives the final iteration alone: [0, ..., 0, 1].
    """
    num_iterations = int(num_iterations)
    if num_iterations < 1:
        raise ValueError(f"a flow sequence needs at least 1 iteration, got {num_iterations}")
    if not decay:
        return [0.0] * (num_iterations - 1) + [1.0]
    if decay < 0:
        raise ValueError(f"the sequence decay must be >= 0, got {decay}")
    return [float(decay) ** (num_iterations - 1 - k) for k in range(num_iterations)]


def sequence_loss(loss_fn, sequences, decay=SEQUENCE_DECAY):
    """sum over k of decay^(T-1-k) * loss_fn(*[s[:, k] for s in sequences]), and what loss_fn
    returned for the final iteration.

    Iterations of weight 0 are not evaluated.

    Args:
      loss_fn: per-flow loss, called with one [B, ...] slice of each sequence; returns a float
        scalar, or a tuple whose first item is that scalar (the rest, e.g. a task's logged
        scalars, comes back for the final iteration).
      sequences: list of float [B, T, ...] tensors with the same T (e.g. a model's
        "flow_iterations" [B, T, H, W, 2], forward and backward).
      decay: gamma; 0 or None = the final iteration only.

    Returns:
      (float32 scalar, loss_fn's return value for the final iteration k = T-1).
    """
    lengths = {int(s.shape[1]) for s in sequences}
    if len(lengths) != 1:
        raise ValueError(f"the sequences differ in length: {[tuple(s.shape) for s in sequences]}")
    weights = sequence_weights(lengths.pop(), decay)
    total, final = tf.constant(0.0, tf.float32), None
    for k, weight in enumerate(weights):
        if weight:
            final = loss_fn(*[s[:, k] for s in sequences])
            total += weight * tf.cast(final[0] if isinstance(final, tuple) else final, tf.float32)
    return total, final
