"""Command line of dflow_tf.export (`python -m dflow_tf.export`, console script `dflow-export`).

    python -m dflow_tf.export --checkpoint runs/teacher/census --format saved_model --out models/dflow/1
    python -m dflow_tf.export --checkpoint runs/ddflow_kitti --format tflite --height 384 --width 1280 \
        --precision fp16 --out flow_fp16.tflite
    python -m dflow_tf.export --checkpoint runs/ddflow_kitti --format onnx --out flow.onnx
    python -m dflow_tf.export --checkpoint runs/ddflow_kitti --format tftrt --precision fp16 --out trt/1
    python -m dflow_tf.export --checkpoint runs/teacher/census --stereo --format onnx --out stereo.onnx

With --stereo the flow model is exported as a stereo model (dflow_tf.models.stereo.StereoFromFlow):
inputs left, right (rectified, uint8 [B, H, W, 3]), output disparity float32 [B, H, W, 1] = -u of
the left -> right flow; no new weights.

The model comes from dflow_tf.checkpoints (--arch / --model_param as in the other command lines).
Exit status 0 on success, 1 when the export is impossible as asked (the message says why: e.g. an
unreadable checkpoint or an unwritable --out), 2 for bad arguments.
"""
import argparse
import sys

from dflow_tf.native_logs import add_verbose_argument, hide_native_logs

FORMATS = {  # format: (precisions, fixed input size required)
    "saved_model": (("fp32",), False),
    "tflite": (("fp32", "fp16", "int8"), True),
    "onnx": (("fp32",), False),
    "tftrt": (("fp32", "fp16"), False),
}
PRECISION_HINTS = {
    "saved_model": "serve float32; for float16 use --format tftrt --precision fp16 or the ONNX / "
                   "trtexec --fp16 route",
    "onnx": "export float32 and let TensorRT pick float16 (trtexec --fp16)",
    "tftrt": "int8 needs calibration data; use the ONNX route with TensorRT's own calibration",
}


def build_parser():
    from dflow_tf.console import add_model_arguments
    parser = argparse.ArgumentParser(
        prog="python -m dflow_tf.export",
        description="Exports a flow model checkpoint for deployment. Every format takes uint8 "
                    "frames [B, H, W, 3] (frame1, frame2[, frame3]) and returns the flow "
                    "float32 [B, H, W, 2] in input pixels; with --stereo it takes left, right and "
                    "returns the disparity [B, H, W, 1] (docs/deployment.md).")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS))
    parser.add_argument("--out", required=True,
                        help="output: a directory (saved_model, tftrt; for TF Serving "
                             "MODEL_BASE_PATH/<version>) or a file (.tflite, .onnx)")
    parser.add_argument("--height", type=int, default=None,
                        help="fixed input height (required for tflite; optional elsewhere)")
    parser.add_argument("--width", type=int, default=None, help="fixed input width")
    parser.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32",
                        help="tflite: fp32, fp16 (float16 weights), int8 (dynamic range); "
                             "tftrt: fp32, fp16; others: fp32")
    parser.add_argument("--stereo", action="store_true",
                        help="export a stereo model: inputs left, right (rectified), output disparity "
                             "[B, H, W, 1] = -u of the left -> right flow")
    add_model_arguments(parser)
    add_verbose_argument(parser)
    return parser


def _check_arguments(parser, args):
    precisions, fixed = FORMATS[args.format]
    if args.precision not in precisions:
        hint = PRECISION_HINTS.get(args.format, "")
        parser.error(f"--format {args.format} supports --precision {', '.join(precisions)}, not "
                     f"{args.precision}" + (f" ({hint})" if hint else ""))
    if (args.height is None) != (args.width is None):
        parser.error("give both --height and --width, or neither")
    if args.height is not None and (args.height < 1 or args.width < 1):
        parser.error(f"--height and --width must be positive, got {args.height}x{args.width}")
    if fixed and args.height is None:
        parser.error(f"--format {args.format} has a fixed input size: give --height and --width "
                     f"(the size of the frames the app will feed)")


def export(args):
    """Runs the export described by parsed `args`; returns the output path."""
    import keras

    from dflow_tf.console import check_output_path, load_model_from_args
    from dflow_tf.export.errors import ExportError

    if args.format == "tftrt":  # fail before loading anything when TF-TRT cannot run here
        from dflow_tf.export.tftrt import check_tensorrt
        check_tensorrt()
    try:
        check_output_path(args.out, folder=args.format in ("saved_model", "tftrt"))
        model, description = load_model_from_args(args)
    except (OSError, ValueError) as error:
        raise ExportError(str(error)) from None
    if not isinstance(model, keras.Model):
        raise ExportError(f"{description} has nothing to export")
    print(f"model: {description}", flush=True)
    metadata = {"class": type(model).__name__, "config": model.get_config(),
                "source": description, "precision": args.precision}
    if args.stereo:
        from dflow_tf.models.stereo import StereoFromFlow
        model = StereoFromFlow(model)
        metadata["stereo"] = "inputs left, right (rectified); output disparity = -u of the left -> right flow"
    size = {"height": args.height, "width": args.width}
    if args.format == "saved_model":
        from dflow_tf.export.saved_model import export_saved_model
        return export_saved_model(model, args.out, metadata=metadata, **size)
    if args.format == "tflite":
        from dflow_tf.export.tflite import export_tflite
        return export_tflite(model, args.out, precision=args.precision, **size)
    if args.format == "onnx":
        from dflow_tf.export.onnx import export_onnx
        return export_onnx(model, args.out, metadata=metadata, **size)
    from dflow_tf.export.tftrt import export_tftrt
    return export_tftrt(model, args.out, precision=args.precision, metadata=metadata, **size)


def main(argv=None):
    """Parses `argv` (default sys.argv[1:]), exports; returns the exit status."""
    hide_native_logs(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    from dflow_tf.export.errors import ExportError
    try:
        out = export(args)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.format} ({args.precision}) to {out}")
    return 0


def run():
    """Console-script entry point (`dflow-export`)."""
    sys.exit(main())
