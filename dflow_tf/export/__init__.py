"""Deployment exports of the flow models: SavedModel (TF Serving), TFLite, ONNX, TF-TRT.

    python -m dflow_tf.export --checkpoint PATH --format saved_model|tflite|onnx|tftrt --out PATH
        [--arch two_frame|three_frame] [--model_param NAME=VALUE] [--height H --width W]
        [--precision fp32|fp16|int8]

(also the console script `dflow-export`; the model is loaded by `dflow_tf.checkpoints`). Every
format has the same contract: uint8 RGB frames frame1, frame2 (three-frame models: frame1,
frame2, frame3 = previous, centre, next) of shape [B, H, W, 3] in, flow float32 [B, H, W, 2] in
pixels of the input resolution out (frame1 -> frame2, three-frame: centre -> next); the resize
to a multiple of 64 and back happens inside the model.
See docs/deployment.md. Attributes load lazily (`import dflow_tf.export` alone does not import
TensorFlow); tf2onnx / onnx are imported only by the ONNX export (`pip install 'dflow_tf[export]'`).
"""
_EXPORTS = {
    "ExportError": "errors",
    "serving_function": "serving",
    "flow_from_frames": "serving",
    "export_saved_model": "saved_model",
    "convert_tflite": "tflite",
    "export_tflite": "tflite",
    "export_onnx": "onnx",
    "check_tensorrt": "tftrt",
    "export_tftrt": "tftrt",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f"dflow_tf.export.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'dflow_tf.export' has no attribute {name!r}")
