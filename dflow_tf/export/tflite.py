"""TFLite (LiteRT) flat buffer of a fixed input size, TFLite builtin ops only (no Flex).

Signature `serving_default` with inputs frame1, frame2 (, frame3): uint8 [1, H, W, 3] and
output flow: float32 [1, H, W, 2], the same contract as the SavedModel at one size (the resize
to a multiple of 64 and back is inside the model); a stereo model (`--stereo`): inputs left,
right, output disparity float32 [1, H, W, 1]. Precisions:

  fp32  float32 weights and compute;
  fp16  float16 weights (half the file), dequantised to float32 at load: float32 compute on CPU,
        GPU delegates may run float16;
  int8  dynamic-range quantisation: int8 weights (a quarter of the file), float activations,
        convolutions run as hybrid int8 kernels on CPU.

Run it with `ai_edge_litert.interpreter.Interpreter(model_path=...).get_signature_runner()`.
"""
import os
import tempfile

import tensorflow as tf

from dflow_tf.export.errors import ExportError
from dflow_tf.export.saved_model import SIGNATURE_KEY, save_function
from dflow_tf.export.serving import serving_function

PRECISIONS = ("fp32", "fp16", "int8")


def convert_tflite(model, height, width, precision="fp32"):
    """The TFLite flat buffer (bytes) of `model` for uint8 frames [1, height, width, 3]."""
    if precision not in PRECISIONS:
        raise ExportError(f"TFLite precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not height or not width:
        raise ExportError("TFLite models have a fixed input size: give --height and --width "
                          "(the frame size the app will feed, any size; resizing to a multiple of "
                          "64 happens inside the model)")
    function = serving_function(model, height=int(height), width=int(width), batch=1, check=False)
    with tempfile.TemporaryDirectory() as tmp:
        # Through a SavedModel saved without the custom gradient: from_concrete_functions would
        # save one internally with it, which takes longer than the conversion.
        save_function(model, function, tmp)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SIGNATURE_KEY])
        return _convert(converter, precision)


def _convert(converter, precision):
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic range
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as e:  # the converter raises ConverterError with the op list
        raise ExportError(f"TFLite conversion ({precision}) failed: {e}") from e


def export_tflite(model, out_path, height, width, precision="fp32"):
    """Writes the .tflite file; returns out_path."""
    data = convert_tflite(model, height, width, precision)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "wb") as f:
        f.write(data)
    return out_path
