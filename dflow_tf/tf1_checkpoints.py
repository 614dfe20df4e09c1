"""The released DDFlow / SelFlow TensorFlow 1 checkpoints: their variable names on the Keras flow
models, and the import (the library of `python -m dflow_tf.import_tf1`; docs/models.md).

The TF1 names

    feature_extractor/conv{l}_{1,2}/{weights,biases}
    estimator_level_{6..2}/conv{1..6}/{weights,biases}
    context_network/dilated_conv{1..7}/{weights,biases}

map onto TwoFramePWC (ddflow) or ThreeFramePWC (selflow; the names of dflow_tf.models.registry)
kernels (both HWIO) and biases. Every checkpoint variable must map and every model variable must
be filled, with equal shapes; otherwise CheckpointMismatchError names the offending variables.
The TF1 global step (`Variable`) is the only variable ignored. dflow_tf.checkpoints.save_imported
writes the imported model so that dflow_tf.checkpoints.load_model reads it back.
"""
import numpy as np
import tensorflow as tf

from dflow_tf.models.registry import TF1_NAMES, get_model

IGNORED = frozenset({"Variable"})  # TF1 global step


class CheckpointMismatchError(ValueError):
    """The TF1 checkpoint does not match the model (names / shapes listed in the message)."""


def tf1_variable_map(model):
    """{TF1 variable name: Keras variable} for every weight of `model`.

    The Keras sublayers carry the TF1 scope names (feature_extractor, estimator_level_{l},
    context_network) and the convs the TF1 layer names, so the map is read off the structure.
    """
    mapping = {}
    blocks = [model.feature_pyramid, *model.estimators, model.context_network]
    for block in blocks:
        for conv in block.convs:
            for suffix, variable in (("weights", conv.kernel), ("biases", conv.bias)):
                name = f"{block.name}/{conv.name}/{suffix}"
                if name in mapping:
                    raise RuntimeError(f"duplicate TF1 name {name}")
                mapping[name] = variable
    if len(mapping) != len(model.weights):
        raise RuntimeError(f"{len(model.weights)} model weights but {len(mapping)} mapped")
    return mapping


def read_tf1_checkpoint(path):
    """{name: numpy array} of a TF1 checkpoint prefix, without the ignored variables."""
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"{path}.index: no TF1 checkpoint here (give the prefix, e.g. "
                                f"models/KITTI/census_occlusion for census_occlusion.index)")
    reader = tf.train.load_checkpoint(path)
    names = sorted(reader.get_variable_to_shape_map())
    return {name: reader.get_tensor(name) for name in names if name not in IGNORED}


def assign_tf1_weights(model, weights):
    """Assigns {TF1 name: array} to `model`; raises CheckpointMismatchError naming every mismatch."""
    mapping = tf1_variable_map(model)
    unmapped = sorted(set(weights) - set(mapping))
    missing = sorted(set(mapping) - set(weights))
    mismatched = [f"{name}: checkpoint {tuple(weights[name].shape)} vs model {tuple(mapping[name].shape)}"
                  for name in sorted(set(weights) & set(mapping))
                  if tuple(weights[name].shape) != tuple(mapping[name].shape)]
    problems = []
    if unmapped:
        problems.append("checkpoint variables with no model counterpart: " + ", ".join(unmapped))
    if missing:
        problems.append("model variables missing from the checkpoint: " + ", ".join(missing))
    if mismatched:
        problems.append("shape mismatches: " + "; ".join(mismatched))
    if problems:
        raise CheckpointMismatchError(f"{type(model).__name__} does not match the checkpoint:\n  "
                                      + "\n  ".join(problems))
    for name, variable in mapping.items():
        variable.assign(np.asarray(weights[name], dtype=variable.dtype))
    return model


def import_checkpoint(path, arch, normalize_input=False):
    """Builds the `arch` model ("ddflow" or "selflow", with the TF1 defaults) and loads the TF1
    checkpoint at prefix `path` into it."""
    if arch not in TF1_NAMES:
        raise ValueError(f"unknown TF1 architecture {arch!r}; expected one of {sorted(TF1_NAMES)}")
    return assign_tf1_weights(get_model(arch, normalize_input=normalize_input), read_tf1_checkpoint(path))
