"""Datasets: the canonical example schema, augmentations and tf.data input pipelines.

`schema` documents the keys every TFDS builder in `tfds_builders` stores; `augment` holds pure
TensorFlow transforms of one sample; `pipeline` turns a builder split into augmented batches.
"""
