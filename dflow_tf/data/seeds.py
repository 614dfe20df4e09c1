"""Stateless random seeds: one seed split into independent ones (augmentation, student transforms)."""
import tensorflow as tf


def split_seed(seed, num):
    """int64 [num, 2]: `num` independent stateless seeds derived from `seed` (int [2]); index it,
    tf.unstack it into `num` seeds of [2], or map it over a batch (one seed per element)."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num)
