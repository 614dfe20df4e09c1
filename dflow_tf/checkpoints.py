"""Checkpoints and model descriptions: save, find, restore and load flow models.

    save_model_description(model, stage_dir)          # <stage_dir>/model.json
    save_imported(model, "selflow", "runs/selflow_kitti", source=tf1_prefix)  # an import folder
    model, description = load_model("runs/teacher/census")         # a training stage
    model, _ = load_model("runs/selflow_kitti")                    # a dflow_tf.import_tf1 folder
    model, _ = load_model("path/ckpt-800", arch="three_frame", model_params={"normalize_input": True})
    model, _ = load_model("zero")                                  # the zero-flow baseline
    model, _ = load_model("classical:dis_medium")                  # OpenCV's DIS (a teacher too)
    model, _ = load_model("pretrained:pwc_rendered")               # a model shipped in the package

A **model description** is `model.json`, {"class": class name, "config": constructor options,
...}, written by every training stage (into the stage folder) and by save_imported (next
to its `ckpt`). The architecture of a checkpoint is, in this order:

  1. `arch` / `model_params` given by the caller (command lines: `--arch`, `--model_param`);
     `arch` (a name of dflow_tf.models.registry) replaces the stored class, `model_params`
     override single options;
  2. the `model.json` in the checkpoint's folder or up to three folders above it.

**Weights**: the newest checkpoint of a stage folder, a `checkpoints/` folder, a checkpoint
prefix (`.../ckpt-800`) or the `ckpt` of an import folder. A checkpoint whose index or data file
is truncated or corrupt raises CorruptCheckpointError naming the file; `resume_checkpoint` (a
killed stage starting again) skips such checkpoints for the newest readable one and says so.
"""
import ast
import glob
import json
import os

import tensorflow as tf

from dflow_tf import pretrained
from dflow_tf.models.classical_flow import ClassicalFlowModel, is_classical
from dflow_tf.models.registry import architecture_names, get_architecture
from dflow_tf.models.zero_flow import ZeroFlowModel

MODEL_FILE = "model.json"
#: Prefix of the checkpoint of an import folder, written by save_imported (DIR/ckpt.index, DIR/ckpt.data-*).
IMPORTED_PREFIX = "ckpt"
#: The `--checkpoint` value of the zero-flow baseline.
ZERO = "zero"
_SEARCH_LEVELS = 4  # the checkpoint's folder and three above
_NOT_OPTIONS = ("name", "trainable", "dtype")  # get_config keys that are not constructor options


class CorruptCheckpointError(ValueError):
    """A checkpoint file cannot be read (truncated or corrupt); the message names the file."""


# ------------------------------------------------------------------------- model descriptions

def model_description(model, **extra):
    """The content of model.json: {"class": the model's class name, "config": its constructor
    config, **extra}."""
    return {"class": type(model).__name__, "config": model.get_config(), **extra}


def save_model_description(model, directory, **extra):
    """Writes directory/model.json (`model_description`; `extra`: e.g. arch and source of an
    imported model). Returns the file's path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, MODEL_FILE)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(model_description(model, **extra), f, indent=1)
    return path


def save_imported(model, arch, out_dir, source=""):
    """Writes an import folder: DIR/ckpt* (tf.train.Checkpoint(model=model)) and DIR/model.json
    (with the TF1 `arch` and the `source` checkpoint; dflow_tf.tf1_checkpoints). load_model(DIR)
    reads them back. Returns the checkpoint prefix."""
    os.makedirs(out_dir, exist_ok=True)
    prefix = tf.train.Checkpoint(model=model).write(os.path.join(out_dir, IMPORTED_PREFIX))
    save_model_description(model, out_dir, arch=arch, source=str(source))
    return prefix


def _search_dirs(checkpoint):
    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint) or "."
    dirs = [os.path.abspath(folder)]
    for _ in range(_SEARCH_LEVELS - 1):
        parent = os.path.dirname(dirs[-1])
        if parent == dirs[-1]:
            break
        dirs.append(parent)
    return dirs


def find_model_description(checkpoint):
    """(class, options, path of model.json) of the description next to `checkpoint`, or None."""
    for folder in _search_dirs(checkpoint):
        path = os.path.join(folder, MODEL_FILE)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    description = json.load(f)
                cls = get_architecture(description["class"])
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}: not a model description ({error})") from None
            options = {k: v for k, v in description.get("config", {}).items() if k not in _NOT_OPTIONS}
            return cls, options, path
    return None


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


# -------------------------------------------------------------------------------- checkpoints

def checkpoint_prefixes(path):
    """Checkpoint prefixes at `path`, newest first: a stage folder (its checkpoints/), a folder of
    checkpoints (with or without a `checkpoint` state file, e.g. an import folder) or a prefix."""
    for folder in (os.path.join(path, "checkpoints"), path):
        if not os.path.isdir(folder):
            continue
        state = tf.train.get_checkpoint_state(folder)
        listed = [p if os.path.isabs(p) else os.path.join(folder, p)
                  for p in (state.all_model_checkpoint_paths if state else [])]
        listed = [p for p in listed if os.path.exists(p + ".index")]
        unlisted = sorted((p[:-len(".index")] for p in glob.glob(os.path.join(glob.escape(folder), "*.index"))
                           if p[:-len(".index")] not in listed), key=lambda p: os.path.getmtime(p + ".index"))
        if listed or unlisted:
            return list(reversed(unlisted + listed))
    return [path] if os.path.exists(path + ".index") else []


def latest_checkpoint(path):
    """The newest checkpoint prefix at `path` (see checkpoint_prefixes), or None."""
    prefixes = checkpoint_prefixes(path)
    return prefixes[0] if prefixes else None


def find_checkpoint(path):
    """latest_checkpoint(path), or FileNotFoundError saying what `path` may be."""
    prefix = latest_checkpoint(path)
    if prefix is None:
        raise FileNotFoundError(f"no checkpoint found at {path!r} (give a training stage folder, its "
                                f"checkpoints/ folder, a prefix such as .../ckpt-800, or an import_tf1 folder)")
    return prefix


def check_readable(prefix):
    """Reads every tensor (but variants) of the checkpoint `prefix`; raises CorruptCheckpointError
    naming the index or data file that cannot be read (truncated, corrupt). Returns `prefix`."""
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        raise CorruptCheckpointError(f"{prefix}.index: cannot read this checkpoint index "
                                     f"({_first_line(error)})") from None
    try:
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype != tf.variant:  # e.g. a saved input iterator: not readable as an array
                reader.get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError) as error:
        files = sorted(glob.glob(glob.escape(prefix) + ".data-*")) or [prefix + ".data-*"]
        raise CorruptCheckpointError(f"{', '.join(files)}: checkpoint data truncated or corrupt "
                                     f"({_first_line(error)})") from None
    return prefix


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def resume_checkpoint(checkpoint_dir, log=print):
    """The newest readable checkpoint of a stage's checkpoints/ folder, or None. Unreadable newer
    ones are skipped, each with a message through `log`."""
    for prefix in checkpoint_prefixes(checkpoint_dir) if os.path.isdir(checkpoint_dir) else []:
        try:
            return check_readable(prefix)
        except CorruptCheckpointError as error:
            log(f"skipping an unreadable checkpoint: {error}; falling back to the previous one")
    return None


def _read_model_weights(model, prefix):
    # read, not restore: checkpoints written with Checkpoint.write (save_imported) have no
    # save_counter, which restore() would create and then report as unmatched.
    tf.train.Checkpoint(model=model).read(prefix).expect_partial().assert_existing_objects_matched()


def restore_weights(model, path):
    """Reads the model weights (no optimizer state) of the newest checkpoint at `path` (or of the
    shipped model "pretrained:NAME") into `model`; returns the prefix (folder) read. Raises
    FileNotFoundError (no checkpoint), CorruptCheckpointError (an unreadable file) or ValueError
    (weights that do not fit, an unknown pretrained name)."""
    if pretrained.is_pretrained(path):
        return pretrained.restore_pretrained(model, path)
    prefix = check_readable(find_checkpoint(path))
    try:
        _read_model_weights(model, prefix)
    except (AssertionError, ValueError) as error:
        raise ValueError(f"the checkpoint {prefix} does not fit {type(model).__name__}: {error}") from None
    return prefix


# --------------------------------------------------------------------------------------- load

def load_model(checkpoint, arch=None, model_params=None):
    """Returns (model with restored weights, one-line description); see the module docstring.

    Raises:
      FileNotFoundError: no checkpoint at `checkpoint`.
      CorruptCheckpointError: the checkpoint's index or data file cannot be read (named).
      ValueError: unknown `arch`, no architecture known (neither `arch` nor model.json), or
        weights that do not fit the architecture.
    """
    if checkpoint == ZERO:
        return ZeroFlowModel(), "zero-flow baseline"
    if is_classical(checkpoint):
        model = ClassicalFlowModel.from_name(checkpoint)
        return model, f"classical flow ({model.method}, OpenCV; no weights)"
    if pretrained.is_pretrained(checkpoint) and arch is None and not model_params:
        return pretrained.load_pretrained(checkpoint), pretrained.describe(checkpoint)
    if arch is not None:
        get_architecture(arch)  # unknown names fail before any file is read
    prefix = check_readable(find_checkpoint(checkpoint))
    description = find_model_description(checkpoint)
    if description is None and arch is None:
        raise ValueError(f"cannot tell the architecture of {checkpoint!r}: no {MODEL_FILE} next to it; "
                         f"pass --arch ({'|'.join(architecture_names())}) and any --model_param")
    cls, options, where = description if description is not None else (get_architecture(arch), {}, "--arch")
    if arch is not None and get_architecture(arch) is not cls:
        cls, options, where = get_architecture(arch), {}, "--arch"
    options = {**options, **(model_params or {})}
    model = cls(**options)
    try:
        _read_model_weights(model, prefix)
    except (AssertionError, ValueError) as error:
        raise ValueError(f"the checkpoint {prefix} does not fit {cls.__name__}({options}) (architecture from "
                         f"{where}); pass --arch / --model_param to describe it: {error}") from None
    described = ", ".join(f"{k}={v}" for k, v in sorted((model_params or {}).items()))
    return model, f"{cls.__name__} from {prefix} (architecture: {where}{'; ' + described if described else ''})"
