"""SavedModel for TF Serving: `serving_default` takes uint8 frames of any size, returns the flow.

Signature `serving_default` (method tensorflow/serving/predict):
  inputs  frame1, frame2 (three-frame models also frame3): uint8 RGB [B, H, W, 3], any B, H, W,
          all of the same shape (declared with unknown shape so that wrong ranks reach the
          in-graph checks and their messages);
  output  flow: float32 [B, H, W, 2] in pixels of the input resolution, frame1 -> frame2
          (three-frame: frame2 -> frame3, the centre -> next flow).
The same function is also the loaded object's `.serve(frame1, frame2[, frame3])`. A stereo
model (dflow_tf.models.stereo.StereoFromFlow): inputs left, right, output disparity float32
[B, H, W, 1] (-u of the left -> right flow).
`assets.extra/dflow_tf.json` records the model class, its options and the source checkpoint.
"""
import json
import os

import tensorflow as tf

from dflow_tf.export.serving import input_names, serving_function

SIGNATURE_KEY = "serving_default"
METADATA_FILE = os.path.join("assets.extra", "dflow_tf.json")


def _tf_variable(variable):
    """The tf.Variable behind a Keras 3 variable (`.value`), or `variable` itself."""
    value = getattr(variable, "value", None)
    return value if isinstance(value, tf.Variable) else variable


def export_module(model, function):
    """A tf.Module holding `function` and the model's variables as plain tf.Variables (tracking
    the Keras 3 wrappers instead leaves the TFLite converter without the weights)."""
    module = tf.Module()
    module.model_variables = [_tf_variable(v) for v in model.variables]
    module.serve = function
    return module


def save_function(model, function, out_dir):
    """Saves `function` (a serving_function) with the model's variables as the SavedModel's
    `serving_default` signature and `.serve`. The cost volume's custom gradient is left out:
    serving needs none, and tracing it takes longer than the rest of the export."""
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(export_module(model, function), out_dir,
                        signatures={SIGNATURE_KEY: function.get_concrete_function()}, options=options)
    return out_dir


def export_saved_model(model, out_dir, height=None, width=None, metadata=None, check=True,
                       rank_known=False):
    """Writes the TF Serving SavedModel of `model` to `out_dir`.

    Args:
      model: TwoFramePWC / ThreeFramePWC with its weights, or a StereoFromFlow.
      out_dir: output directory (TF Serving wants MODEL_BASE_PATH/<version>/, e.g. models/dflow/1).
      height, width: fix the input size (default: any size).
      metadata: dict stored in assets.extra/dflow_tf.json (architecture, checkpoint, ...).
      check: in-graph input checks (rank, channels, equal frame shapes) with readable messages.
      rank_known: declare the dynamic inputs as [None, None, None, 3] instead of unknown shape
        (for converters that need the rank, e.g. TF-TRT).

    Returns:
      out_dir.
    """
    function = serving_function(model, height=height, width=width, check=check,
                                rank_known=rank_known)
    save_function(model, function, out_dir)
    meta = dict(metadata or {})
    meta.update({"format": "saved_model", "signature": SIGNATURE_KEY, "inputs": list(input_names(model)),
                 "input_size": [height, width], "tensorflow": tf.__version__})
    os.makedirs(os.path.join(out_dir, "assets.extra"), exist_ok=True)
    with open(os.path.join(out_dir, METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, default=str)
    return out_dir
