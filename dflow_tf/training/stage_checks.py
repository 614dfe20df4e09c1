"""The inputs of an experiment's stages, checked before any stage trains.

    check_stages(["photometric", "census"], "runs/teacher")   # under the parsed gin config

A stage rejects some inputs only when it starts: a crop its model cannot take at its first
training step, an unknown dataset name when it opens its data, a missing `eval_pairs` folder
after its last step. `check_stages` checks them for every stage still to run (no done.json yet),
without reading data or building a model graph, and names the gin binding as written
("teacher_a/train_stage.crop_size" where a scope binds it, else "train_stage.crop_size"), its
value and what is allowed. The command line (dflow_tf.train) runs it before run_experiment.
"""
import copy
import inspect
import os
import random

import gin

from dflow_tf.console import InputError, check_crop_size
from dflow_tf.data.pipeline import get_builder, is_saved_dataset
from dflow_tf.io.stereo_folders import SKIMAGE_MOTORCYCLE
from dflow_tf.training.trainer import finished_stage, train_stage


def check_stages(stages, output_dir):
    """Checks the `train_stage` inputs of every stage of `stages` (gin scope names) still to run
    under `output_dir` (None: every stage): `crop_size` against the size multiple of the stage's
    model, `dataset` (a name) among the known datasets, `eval_pairs` an existing folder.

    Raises:
      InputError (a ValueError) or FileNotFoundError naming the binding and its value.
    """
    for stage in stages:
        if output_dir and finished_stage(os.path.join(output_dir, stage)) is not None:
            continue  # skipped by the run too
        with gin.config_scope(stage):
            bindings = gin.get_bindings("train_stage", resolve_references=False)
            value = {name: _resolved(bindings, name) for name in ("crop_size", "dataset", "data_dir", "eval_pairs")}
            model_fn = bindings.get("model_fn")
            multiple = None
            if value["crop_size"] is not None and model_fn is not None:
                multiple = _size_multiple(copy.deepcopy(model_fn))
        if multiple is not None:
            check_crop_size(value["crop_size"], multiple, _binding(stage, "crop_size"))
        dataset = value["dataset"]
        if isinstance(dataset, str) and not is_saved_dataset(dataset):
            try:
                get_builder(dataset, data_dir=value["data_dir"], prepare=False)
            except InputError as error:
                raise InputError(f"{_binding(stage, 'dataset')}={dataset!r}: {error}") from None
        pairs = value["eval_pairs"]
        if isinstance(pairs, str) and pairs != SKIMAGE_MOTORCYCLE and not os.path.isdir(pairs):
            raise FileNotFoundError(f"{_binding(stage, 'eval_pairs')}={pairs!r} is not a folder "
                                    "(docs/evaluation.md gives the layout)")


def _resolved(bindings, name):
    """train_stage's parameter `name` in the active scope: its binding with macros resolved (a
    reference to another configurable, e.g. @FootageSource(), stays unevaluated: the stage
    builds it), else its default."""
    if name not in bindings:
        return inspect.signature(train_stage).parameters[name].default
    value = bindings[name]
    if isinstance(value, gin.config.ConfigurableReference) and not repr(value).startswith("%"):
        return value
    return copy.deepcopy(value)  # resolves %MACROS, also inside tuples


def _size_multiple(model_fn):
    """The size multiple of the model `model_fn` makes (1 if it has none). The model is only
    constructed (no variables, no graph), under a name of its own so that the stage's model keeps
    the name and variable paths it would have had; Python's random state is left as it was."""
    state = random.getstate()
    try:
        try:
            model = model_fn(name="size_check")
        except TypeError:  # a model function without a `name` argument
            model = model_fn()
    finally:
        random.setstate(state)
    return getattr(model, "size_multiple", 1)


def _binding(stage, parameter):
    """The binding of train_stage's `parameter` that applies in `stage`, as written: the most
    specific scope binding it ("teacher_a/train_stage.crop_size"), else "train_stage.<parameter>"."""
    parts = stage.split("/")
    for i in range(len(parts), 0, -1):
        selector = "/".join([*parts[:i], "train_stage"])
        if parameter in gin.get_bindings(selector, resolve_references=False, inherit_scopes=False):
            return f"{selector}.{parameter}"
    return f"train_stage.{parameter}"
