"""Flow models for inference: rebuilt from a checkpoint and the description stored next to it.

    model, description = load_model("runs/teacher/census")            # a training stage
    model, _ = load_model("runs/selflow_kitti")                       # a dflow_tf.import_tf1 folder
    model, _ = load_model("path/ckpt-800", arch="three_frame", model_params={"normalize_input": True})
    model, _ = load_model("zero")                                     # the zero-flow baseline

The architecture (class and options such as `normalize_input`) is found in this order:

  1. `arch` / `model_params` given by the caller (command lines: `--arch`, `--model_param`);
     `arch` replaces the stored class, `model_params` override single options;
  2. `model.json` (written by `dflow_tf.import_tf1`) in the checkpoint folder or up to three
     folders above it;
  3. `config.gin` (written by `dflow_tf.train`: `<output_dir>/config.gin` at the start,
     `<output_dir>/<stage>/config.gin` at the end of a stage) in the same folders: the stage's
     `train_stage.model_fn` and the model bindings, evaluated in the stage's gin scope (the
     stage is the folder holding `checkpoints/` or `done.json`).

Weights: the newest checkpoint of a stage folder, a `checkpoints/` folder, a checkpoint prefix
(`.../ckpt-800`), or the `ckpt` of an import folder.
"""
import ast
import json
import os
import re

import numpy as np
import tensorflow as tf

from dflow_tf.inference import predict_tensor
from dflow_tf.models import ThreeFramePWC, TwoFramePWC

ARCHS = {"two_frame": TwoFramePWC, "three_frame": ThreeFramePWC}
ZERO = "zero"
MODEL_JSON = "model.json"  # dflow_tf.import_tf1.CONFIG_NAME
IMPORTED_PREFIX = "ckpt"   # dflow_tf.import_tf1.CHECKPOINT_NAME
CONFIG_GIN = "config.gin"
_SEARCH_LEVELS = 4  # the checkpoint's folder and three above


class ZeroFlowModel:
    """A 'model' that predicts zero flow: the baseline whose EPE is the mean ground-truth speed."""

    num_frames = 2
    size_multiple = 1

    def __call__(self, frames):
        shape = tf.shape(frames)
        return {"flow": tf.zeros(tf.stack([shape[0], shape[2], shape[3], 2]), tf.float32)}


def parse_model_params(items):
    """["key=value", ...] -> {key: python literal (strings may be unquoted)}."""
    params = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"model parameter {item!r} is not of the form name=value")
        try:
            params[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            params[key.strip()] = value.strip()
    return params


def _search_dirs(checkpoint):
    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint) or "."
    folder = os.path.abspath(folder)
    dirs = [folder]
    for _ in range(_SEARCH_LEVELS - 1):
        parent = os.path.dirname(dirs[-1])
        if parent == dirs[-1]:
            break
        dirs.append(parent)
    return dirs


def _stage_name(config_dir, checkpoint):
    """The gin scope of the stage a checkpoint belongs to, seen from the folder of a config.gin."""
    if os.path.isdir(os.path.join(config_dir, "checkpoints")) or os.path.exists(os.path.join(config_dir, "done.json")):
        return os.path.basename(config_dir)
    rel = os.path.relpath(os.path.abspath(checkpoint), config_dir)
    return rel.split(os.sep)[0] if rel != "." else None


def _spec_from_gin(path, stage):
    """(class, options) of `train_stage.model_fn` in the gin file `path`, in scope `stage`.

    Replaces this process's gin configuration (command-line use) and clears it afterwards.
    """
    import gin

    from dflow_tf.train import _register_configurables
    from dflow_tf.training import trainer  # noqa: F401  (registers train_stage)
    _register_configurables()
    gin.clear_config()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            gin.parse_config(text, skip_unknown=True)
        except ValueError:  # e.g. a reference to a configurable this process does not know
            gin.clear_config()
            try:
                gin.parse_config(_model_statements(text), skip_unknown=True)
            except ValueError:
                return None
        reference, scope = None, None
        keys = ([(f"{stage}/train_stage.model_fn", stage)] if stage else []) + [("train_stage.model_fn", stage)]
        for key, key_scope in keys:
            try:
                reference = gin.query_parameter(key)
                scope = key_scope
                break
            except ValueError:
                continue
        if reference is None or not hasattr(reference, "scoped_configurable_fn"):
            return None
        try:
            with gin.config_scope(scope):
                model = reference.scoped_configurable_fn()
        except ValueError:  # a folder name that is not a valid gin scope
            model = reference.scoped_configurable_fn()
        return type(model), _options(model)
    finally:
        gin.clear_config()


_MODEL_KEY = re.compile(r"^(?:[\w./]*/)?(?:train_stage\.model_fn|TwoFramePWC\.\w+|ThreeFramePWC\.\w+|[A-Za-z_]\w*)\s*=")


def _model_statements(text):
    """The statements of a gin file that can describe the model: model_fn, model options, macros.
    A statement starts at a line without indentation and runs to the next one."""
    statements, current = [], []
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith((")", "]", "}")):
            statements.append(current)
            current = []
        current.append(line)
    statements.append(current)
    return "\n".join("\n".join(s) for s in statements if s and _MODEL_KEY.match(s[0]))


def _options(model):
    config = dict(model.get_config())
    for key in ("name", "trainable", "dtype"):
        config.pop(key, None)
    return config


def find_model_spec(checkpoint):
    """(class, options, where) described next to `checkpoint` (see the module docstring), or None."""
    for folder in _search_dirs(checkpoint):
        meta_path = os.path.join(folder, MODEL_JSON)
        if os.path.isfile(meta_path):
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
            classes = {cls.__name__: cls for cls in ARCHS.values()}
            if meta.get("class") not in classes:
                raise ValueError(f"{meta_path}: unknown model class {meta.get('class')!r}")
            config = {k: v for k, v in meta.get("config", {}).items() if k not in ("name", "trainable", "dtype")}
            return classes[meta["class"]], config, meta_path
        gin_path = os.path.join(folder, CONFIG_GIN)
        if os.path.isfile(gin_path):
            spec = _spec_from_gin(gin_path, _stage_name(folder, checkpoint))
            if spec is not None:
                return spec[0], spec[1], gin_path
    return None


def checkpoint_prefix(path):
    """The checkpoint prefix to read for `path` (stage dir, checkpoints dir, prefix, import dir)."""
    from dflow_tf.training.trainer import latest_checkpoint
    prefix = latest_checkpoint(path)
    if prefix is None and os.path.isdir(path) and os.path.exists(os.path.join(path, IMPORTED_PREFIX + ".index")):
        prefix = os.path.join(path, IMPORTED_PREFIX)
    if prefix is None:
        raise FileNotFoundError(f"no checkpoint found at {path!r} (give a training stage folder, its "
                                f"checkpoints/ folder, a prefix such as .../ckpt-800, or an import_tf1 folder)")
    return prefix


def load_model(checkpoint, arch=None, model_params=None):
    """Returns (model with restored weights, one-line description); see the module docstring.

    Raises:
      FileNotFoundError: no checkpoint at `checkpoint`.
      ValueError: unknown `arch`, or no architecture known (neither `arch` nor a stored description).
    """
    if checkpoint == ZERO:
        return ZeroFlowModel(), "zero-flow baseline"
    if arch is not None and arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(ARCHS)}")
    prefix = checkpoint_prefix(checkpoint)
    spec = find_model_spec(checkpoint)
    if spec is None and arch is None:
        raise ValueError(f"cannot tell the architecture of {checkpoint!r}: no {MODEL_JSON} or {CONFIG_GIN} "
                         f"next to it; pass --arch ({'|'.join(ARCHS)}) and any --model_param")
    cls, options, where = spec if spec is not None else (ARCHS[arch], {}, "--arch")
    if arch is not None and ARCHS[arch] is not cls:
        cls, options, where = ARCHS[arch], {}, "--arch"
    options = {**options, **(model_params or {})}
    model = cls(**options)
    try:
        tf.train.Checkpoint(model=model).read(prefix).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as error:
        raise ValueError(f"the checkpoint {prefix} does not fit {cls.__name__}({options}) (architecture from "
                         f"{where}); pass --arch / --model_param to describe it: {error}") from None
    described = ", ".join(f"{k}={v}" for k, v in sorted((model_params or {}).items()))
    return model, f"{cls.__name__} from {prefix} (architecture: {where}{'; ' + described if described else ''})"


def add_model_arguments(parser):
    """Adds --checkpoint, --arch and --model_param, the model options shared by the command lines."""
    parser.add_argument("--checkpoint", required=True,
                        help="training stage folder, checkpoint prefix, import_tf1 folder, or 'zero' (zero-flow baseline)")
    parser.add_argument("--arch", choices=sorted(ARCHS),
                        help="model class when no model.json / config.gin is found next to the checkpoint")
    parser.add_argument("--model_param", action="append", default=[], metavar="NAME=VALUE",
                        help="model option, e.g. normalize_input=True (repeatable)")


def load_model_from_args(args):
    """load_model(args.checkpoint, args.arch, args.model_param) for the command lines."""
    return load_model(args.checkpoint, args.arch, parse_model_params(args.model_param))


def make_predictor(model):
    """fn(frames) -> flow: frames [F, H, W, 3] (F = model.num_frames, any H, W; uint8 0..255 or
    float 0..1) -> numpy float32 [H, W, 2], the flow of the model's pair (as
    dflow_tf.inference.predict_flow). One graph per frame size (no shape relaxation: the resize
    to a multiple of 64 needs static sizes)."""
    run = tf.function(lambda frames: predict_tensor(model, frames))

    def predict(frames):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[0] != model.num_frames or frames.shape[-1] != 3:
            raise ValueError(f"expected {model.num_frames} frames [F, H, W, 3], got shape {frames.shape}")
        if frames.dtype == np.uint8:
            frames = frames.astype(np.float32) / 255.0
        return run(tf.convert_to_tensor(frames[None], tf.float32))[0].numpy()

    return predict
