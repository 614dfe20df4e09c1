"""Pretrained models that ship inside the package, by name.

    model = dflow_tf.load_pretrained("pwc_rendered")           # in Python, one call
    python -m dflow_tf.predict --checkpoint pretrained:pwc_rendered ...   # every command line
    train_stage.init_from = "pretrained:pwc_rendered"                     # a stage's start

Each model is a folder here in the format of a stage's portable state
(`dflow_tf.training.portable_state`: float16 weights.npz, state.json with the model description
and the step, curve.csv), so a long training run writes its model straight into the package
(`train_stage.state_dir = "dflow_tf/pretrained/<name>"`). docs/pretrained.md is the model card:
data, phases, steps, wall time, the real-pair table and the licences.
"""
import os

#: The `--checkpoint` / `init_from` prefix that names a shipped model.
PREFIX = "pretrained:"
PRETRAINED_DIR = os.path.dirname(os.path.abspath(__file__))


def names():
    """The names of the shipped models, sorted."""
    from dflow_tf.training.portable_state import has_state  # pylint: disable=import-outside-toplevel
    return sorted(n for n in os.listdir(PRETRAINED_DIR) if has_state(os.path.join(PRETRAINED_DIR, n)))


def is_pretrained(checkpoint):
    """True if `checkpoint` is a "pretrained:NAME" reference."""
    return isinstance(checkpoint, str) and checkpoint.startswith(PREFIX)


def model_folder(name):
    """The folder of the shipped model `name` ("NAME" or "pretrained:NAME").

    Raises:
      ValueError: unknown name; the message lists the known ones.
    """
    name = name[len(PREFIX):] if is_pretrained(name) else name
    known = names()
    if name not in known:
        raise ValueError(f"unknown pretrained model {name!r}; known: {', '.join(known) or 'none'}")
    return os.path.join(PRETRAINED_DIR, name)


def restore_pretrained(model, name):
    """Assigns the weights of the shipped model `name` to `model`; returns the folder read."""
    from dflow_tf.training.portable_state import restore_state  # pylint: disable=import-outside-toplevel
    folder = model_folder(name)
    restore_state(folder, model)
    return folder


def load_pretrained(name):
    """A new model with the shipped weights of `name` ("NAME" or "pretrained:NAME"), in float32."""
    from dflow_tf.models.registry import get_architecture  # pylint: disable=import-outside-toplevel
    from dflow_tf.training.portable_state import read_state  # pylint: disable=import-outside-toplevel
    description = read_state(model_folder(name))["model"]
    options = {k: v for k, v in description["config"].items() if k not in ("name", "trainable", "dtype")}
    model = get_architecture(description["class"])(**options)
    restore_pretrained(model, name)
    return model


def describe(name):
    """One line: the model, its step and whether its training has ended."""
    from dflow_tf.training.portable_state import read_state  # pylint: disable=import-outside-toplevel
    state = read_state(model_folder(name))
    progress = "trained" if state["step"] >= state["num_steps"] else f"in training: step {state['step']} of " \
                                                                      f"{state['num_steps']}"
    return f"{state['model']['class']} pretrained:{name.removeprefix(PREFIX)} ({progress}, float16 weights)"
