"""ONNX (via tf2onnx) with dynamic batch, height and width; the route to TensorRT (trtexec).

Inputs frame1, frame2 (, frame3): uint8 [B, H, W, 3]; output flow: float32 [B, H, W, 2], as the
SavedModel (the resize to a multiple of 64 and back is in the graph: ONNX `Resize` with
half-pixel coordinates, computed sizes); a stereo model (`--stereo`): inputs left, right, output
disparity float32 [B, H, W, 1]. `--height/--width` fix H and W instead. No in-graph
checks: ONNX Runtime and TensorRT validate ranks and dtypes against the declared inputs.

tf2onnx writes TensorFlow's "SAME" convolutions with unknown input size as `auto_pad=SAME_UPPER`,
which ONNX Runtime rejects for dilated kernels (the context network). For stride 1 the padding
does not depend on the input size, so those convolutions get explicit `pads` instead
(`explicit_same_padding`); the stride-2 pyramid convolutions keep SAME_UPPER (no dilation).

tf2onnx 1.17's back-to-back optimizer merges two consecutive Reshape nodes into one that reads the
first one's input with the second one's target shape. That is wrong when the target shape holds
zeros, which in ONNX mean "copy this dimension of the input" (tf2onnx's reshape optimizer writes
them for dynamic dimensions): after the merge they refer to the dimensions of another tensor,
possibly of lower rank. RAFT's correlation pyramid is such a pair, [B, hw, hw] -> [B, h, w, h, w]
-> [B*h*w, h, w, 1] with dynamic h, w, and ONNX Runtime refused the merged node ("Invalid position
of 0"). The conversion therefore runs with that merge skipped for target shapes containing a zero
(`_keep_reshape_pairs_with_zeros`); every other merge is unchanged.
"""
import contextlib
import importlib
import json
import os

from dflow_tf.export.errors import ExportError
from dflow_tf.export.serving import serving_function

OPSET = 17
CATCH_ERRORS_ENV = "TF2ONNX_CATCH_ERRORS"


def _require(module):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ExportError(f"the ONNX export needs {module}: pip install 'dflow_tf[export]' "
                          f"(tf2onnx, onnx, onnxruntime)") from e


def explicit_same_padding(onnx_model):
    """Replaces auto_pad SAME_UPPER / SAME_LOWER by explicit pads on stride-1 Conv nodes.

    Returns the number of nodes changed (the model is edited in place).
    """
    from onnx import helper
    initializers = {i.name: i for i in onnx_model.graph.initializer}
    changed = 0
    for node in onnx_model.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        if auto_pad not in (b"SAME_UPPER", b"SAME_LOWER"):
            continue
        kernel = attrs.get("kernel_shape")
        if kernel is None:
            if node.input[1] not in initializers:
                continue
            kernel = list(initializers[node.input[1]].dims[2:])
        if any(s != 1 for s in attrs.get("strides", [1] * len(kernel))):
            continue
        dilations = attrs.get("dilations", [1] * len(kernel))
        total = [(k - 1) * d for k, d in zip(kernel, dilations)]
        begin = [t // 2 if auto_pad == b"SAME_UPPER" else t - t // 2 for t in total]
        end = [t - b for t, b in zip(total, begin)]
        kept = [a for a in node.attribute if a.name not in ("auto_pad", "pads")]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute("pads", begin + end)])
        changed += 1
    return changed


@contextlib.contextmanager
def _keep_reshape_pairs_with_zeros():
    """Within the block, tf2onnx's back-to-back optimizer leaves a Reshape -> Reshape pair alone
    when the second target shape is a constant containing 0 (see the module docstring); other
    pairs are merged as before. tf2onnx is restored on exit."""
    from tf2onnx.optimizer import back_to_back_optimizer

    table = back_to_back_optimizer._func_map
    key = ("Reshape",)
    merge = table.get(key)
    if merge is None:  # another tf2onnx version: nothing to guard
        yield
        return

    def guarded(graph, node, consumers):
        if len(consumers) == 1 and consumers[0].type == "Reshape":
            shape = consumers[0].inputs[1]
            if shape is not None and shape.is_const() and 0 in shape.get_tensor_value(as_list=True):
                return []
        return merge(graph, node, consumers)

    table[key] = guarded
    try:
        yield
    finally:
        table[key] = merge


def _convert(tf2onnx, function, opset):
    """tf2onnx.convert.from_function, first without tf2onnx's per-optimizer graph copies.

    By default tf2onnx deep-copies the whole graph (weights included) before each of its
    optimizer passes so that it can skip a failing pass; that is about half of the conversion
    time here. Without the copies a failing pass raises, and the conversion is redone the
    default way. A TF2ONNX_CATCH_ERRORS set by the user is respected.
    """
    def convert():
        model, _ = tf2onnx.convert.from_function(
            function, input_signature=function.input_signature, opset=opset)
        return model

    with _keep_reshape_pairs_with_zeros():
        if CATCH_ERRORS_ENV in os.environ:
            return convert()
        os.environ[CATCH_ERRORS_ENV] = "FALSE"
        try:
            return convert()
        except Exception:  # an optimizer pass failed: let tf2onnx skip it
            pass
        finally:
            del os.environ[CATCH_ERRORS_ENV]
        return convert()


def export_onnx(model, out_path, height=None, width=None, metadata=None, opset=OPSET):
    """Writes the ONNX model of `model` to `out_path`; returns out_path.

    Args:
      model: a flow model with its weights (TwoFramePWC, ThreeFramePWC, RAFT, RAFTSmall), or a
        StereoFromFlow.
      out_path: the .onnx file.
      height, width: fix the input size (default: dynamic batch, height and width).
      metadata: dict stored as the model's metadata_props (non-strings as JSON).
      opset: ONNX opset (17: read by ONNX Runtime and TensorRT 8.6+).
    """
    tf2onnx = _require("tf2onnx")
    onnx = _require("onnx")
    function = serving_function(model, height=height, width=width, check=False, rank_known=True)
    try:
        onnx_model = _convert(tf2onnx, function, opset)
    except Exception as e:
        raise ExportError(f"tf2onnx conversion failed: {e}") from e
    explicit_same_padding(onnx_model)
    for value in [*onnx_model.graph.input, *onnx_model.graph.output]:  # inputs and output share B, H, W
        for dim, label in zip(value.type.tensor_type.shape.dim, ("batch", "height", "width")):
            if not dim.HasField("dim_value"):
                dim.dim_param = label
    for key, value in (metadata or {}).items():
        entry = onnx_model.metadata_props.add()
        entry.key = str(key)
        entry.value = value if isinstance(value, str) else json.dumps(value, default=str)
    onnx.checker.check_model(onnx_model)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    onnx.save(onnx_model, out_path)
    return out_path
