"""Stateless random seeds: one seed split into independent ones (augmentation, student transforms,
the sources of a MixedSource)."""
import tensorflow as tf


def split_seed(seed, num):
    """int64 [num, 2]: `num` independent stateless seeds derived from `seed` (int [2]); index it,
    tf.unstack it into `num` seeds of [2], or map it over a batch (one seed per element)."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num)


def split_int_seed(seed, num):
    """`num` independent Python ints in [0, 2^31) derived from the int `seed` by `split_seed`, for
    what takes an int seed (tf.data shuffling, tfds file order, `pipeline.make_dataset`). Eager only."""
    return [int(s) % 2 ** 31 for s in split_seed([seed, 0], num)[:, 0]]
