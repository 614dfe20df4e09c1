"""The flow architectures by name: one registry for the command lines, model.json and the TF1 importer.

    get_model("two_frame")                # TwoFramePWC() with its defaults
    get_model("raft_small", iterations=8) # the RAFT family: raft, raft_small
    get_model("selflow", num_levels=4)    # the TF1 release names: ddflow, selflow
    get_architecture("ThreeFramePWC")     # the class name, as model.json stores it

Every name resolves to one class; an unknown name raises ValueError listing the valid ones.
"""
from dflow_tf.models.pwc import ThreeFramePWC, TwoFramePWC
from dflow_tf.models.raft import RAFT, RAFTSmall

#: Architecture name -> model class (the command lines' --arch).
ARCHITECTURES = {"two_frame": TwoFramePWC, "three_frame": ThreeFramePWC, "raft": RAFT, "raft_small": RAFTSmall}
#: Names of the released TF1 models (DDFlow, SelFlow; dflow_tf.import_tf1) -> architecture name.
TF1_NAMES = {"ddflow": "two_frame", "selflow": "three_frame"}


def architecture_names():
    """Every name `get_architecture` accepts: architecture names, then TF1 names, then class names."""
    return [*ARCHITECTURES, *TF1_NAMES, *(cls.__name__ for cls in ARCHITECTURES.values())]


def get_architecture(name):
    """The model class called `name` (an architecture name, a TF1 name or a class name).

    Raises:
      ValueError: unknown name; the message lists the valid ones.
    """
    by_name = {**ARCHITECTURES, **{tf1: ARCHITECTURES[arch] for tf1, arch in TF1_NAMES.items()},
               **{cls.__name__: cls for cls in ARCHITECTURES.values()}}
    if name not in by_name:
        raise ValueError(f"unknown architecture {name!r}; valid names: {', '.join(architecture_names())}")
    return by_name[name]


def get_model(name, **options):
    """A new model of architecture `name` with constructor `options` (its variables exist)."""
    return get_architecture(name)(**options)
