"""TF-TRT: a SavedModel whose TensorRT-compatible subgraphs run as TensorRT engines (FP32 / FP16).

Needs a TensorFlow built with TensorRT, the TensorRT libraries and a GPU. TensorFlow 2.18 and
later ship without TensorRT (the pip wheels of 2.18+ have no TF-TRT), so on those this module
only explains the alternative: ONNX (`--format onnx`) and `trtexec`, see docs/deployment.md.
Where TF-TRT exists, the uint8 SavedModel of `dflow_tf.export.saved_model` (rank-4 inputs) is
converted with `TrtGraphConverterV2` (dynamic shapes); with --height/--width the engines are
also built for that size, otherwise they are built at the first call.
"""
import os
import tempfile

import tensorflow as tf

from dflow_tf.export.errors import ExportError

PRECISIONS = ("fp32", "fp16")

ONNX_ROUTE = (
    "Use the ONNX route instead:\n"
    "  python -m dflow_tf.export --checkpoint CKPT --format onnx --out flow.onnx\n"
    "  trtexec --onnx=flow.onnx --saveEngine=flow_fp16.plan --fp16 \\\n"
    "      --minShapes=frame1:1x64x64x3,frame2:1x64x64x3 \\\n"
    "      --optShapes=frame1:1x448x1024x3,frame2:1x448x1024x3 \\\n"
    "      --maxShapes=frame1:1x1088x2048x3,frame2:1x1088x2048x3\n"
    "(see docs/deployment.md).")


def tensorrt_unavailable_reason():
    """None when TF-TRT can run here, else why not (one sentence)."""
    try:
        from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils
    except ImportError:
        return f"this TensorFlow ({tf.__version__}) has no TF-TRT module"
    if not _pywrap_py_utils.is_tensorrt_enabled():
        return f"this TensorFlow ({tf.__version__}) was built without TensorRT"
    try:
        loaded = tuple(_pywrap_py_utils.get_loaded_tensorrt_version())
    except Exception:  # the library is missing or broken
        loaded = (0,)
    if not any(loaded):
        return "the TensorRT libraries (libnvinfer) cannot be loaded"
    if not tf.config.list_physical_devices("GPU"):
        return "TensorFlow sees no GPU"
    return None


def check_tensorrt():
    """Raises ExportError with the ONNX / trtexec alternative when TF-TRT cannot run here."""
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        raise ExportError(
            f"TF-TRT export is not possible: {reason}. TensorFlow 2.18 and later ship without "
            f"TensorRT (TF-TRT needs an older TensorFlow built with TensorRT, e.g. an NVIDIA "
            f"TensorFlow container). " + ONNX_ROUTE)


def export_tftrt(model, out_dir, precision="fp32", height=None, width=None, metadata=None):
    """Writes a TF-TRT SavedModel of `model` to `out_dir` (signature as the plain SavedModel)."""
    if precision not in PRECISIONS:
        raise ExportError(f"TF-TRT precision must be one of {', '.join(PRECISIONS)}, got "
                          f"{precision!r} (int8 needs calibration data; use TensorRT's own "
                          f"calibration through the ONNX route)")
    check_tensorrt()
    import numpy as np
    from tensorflow.python.compiler.tensorrt import trt_convert as trt

    from dflow_tf.export.saved_model import export_saved_model
    from dflow_tf.export.serving import input_names

    mode = {"fp32": trt.TrtPrecisionMode.FP32, "fp16": trt.TrtPrecisionMode.FP16}[precision]
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "saved_model")
        # Rank-4 inputs: TensorRT needs the rank; the uint8 in-graph checks stay in TensorFlow.
        export_saved_model(model, source, height=height, width=width, metadata=metadata,
                           rank_known=True)
        converter = trt.TrtGraphConverterV2(
            input_saved_model_dir=source, use_dynamic_shape=True,
            dynamic_shape_profile_strategy="Optimal",
            conversion_params=trt.TrtConversionParams(precision_mode=mode))
        try:
            converter.convert()
            if height and width:
                frames = [np.zeros([1, height, width, 3], np.uint8) for _ in input_names(model)]
                converter.build(input_fn=lambda: [tuple(frames)])
            converter.save(out_dir)
        except Exception as e:
            raise ExportError(f"TF-TRT conversion failed: {e}") from e
    return out_dir
