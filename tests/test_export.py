"""dflow_tf.export: SavedModel (loaded in a fresh process), TFLite, ONNX, TF-TRT message, CLI.

One small random TwoFramePWC (6 levels, so inputs are resized to multiples of 64; search range 1
to keep the converted graphs small) is written as a checkpoint once per module, and every format
is exported from it once (module-scoped fixtures). The reference is the Keras model called
directly on frames scaled and resized in numpy, its flow resized back in numpy
(`numpy_reference.serving_reference_flow`), not dflow_tf's inference code. Tests needing
tf2onnx / onnxruntime / ai-edge-litert skip without them.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf.checkpoints import save_imported
from dflow_tf.export import cli
from dflow_tf.export.serving import serving_function
from dflow_tf.export.tftrt import tensorrt_unavailable_reason
from dflow_tf.models import ThreeFramePWC, TwoFramePWC
from dflow_tf.models.stereo import StereoFromFlow
from numpy_reference import serving_reference_flow, smooth_shifted_frames
from tflite_runner import run_tflite

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = {"search_range": 1}
SIZES = ((64, 64), (70, 100))  # a multiple of 64 and a size that is resized inside the model
TFLITE_SIZE = (70, 100)


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)


def _epe(a, b):
    return float(np.mean(np.linalg.norm(a - b, axis=-1)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model, checkpoint dir in the import tool's layout: ckpt.* + model.json)."""
    keras.utils.set_random_seed(7)
    model = TwoFramePWC(**CONFIG)
    directory = tmp_path_factory.mktemp("checkpoint")
    save_imported(model, "ddflow", str(directory))
    return model, str(directory)


@pytest.fixture(scope="module")
def frames():
    """{(H, W): [frame1, frame2]} uint8 [2, H, W, 3]: a smooth pattern and a shifted copy."""
    return smooth_shifted_frames(SIZES)


@pytest.fixture(scope="module")
def reference(trained, frames):
    model, _ = trained
    return {size: serving_reference_flow(model, pair) for size, pair in frames.items()}


def _export(tmp_path_factory, checkpoint, fmt, name, *extra):
    out = str(tmp_path_factory.mktemp(fmt) / name)
    status = cli.main(["--checkpoint", checkpoint, "--format", fmt, "--out", out, *extra])
    assert status == 0
    return out


# ------------------------------------------------------------------------------- SavedModel
@pytest.fixture(scope="module")
def saved_model(trained, tmp_path_factory):
    return _export(tmp_path_factory, trained[1], "saved_model", "1")  # arch from model.json


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    saved_model, inputs, outputs = sys.argv[1:4]
    serve = tf.saved_model.load(saved_model).signatures["serving_default"]
    data = dict(np.load(inputs))
    flows = {}
    for key in sorted({k.rsplit("_", 1)[0] for k in data}):
        flows[key] = serve(frame1=tf.constant(data[key + "_1"]),
                           frame2=tf.constant(data[key + "_2"]))["flow"].numpy()
    np.savez(outputs, **flows)
    x = data[key + "_1"]
    bad = {
        "rank": dict(frame1=x[0], frame2=x[0]),
        "sizes": dict(frame1=x, frame2=x[:, :-1]),
        "channels": dict(frame1=x[..., :2], frame2=x[..., :2]),
        "dtype": dict(frame1=tf.constant(x, tf.float32) / 255, frame2=tf.constant(x, tf.float32) / 255),
    }
    errors = {}
    for name, kwargs in bad.items():
        try:
            serve(**{k: tf.constant(v) for k, v in kwargs.items()})
            errors[name] = None
        except Exception as e:  # noqa: BLE001
            errors[name] = f"{type(e).__name__}: {e}"
    errors["imports_dflow_tf"] = any(m.startswith("dflow_tf") for m in sys.modules)
    print(json.dumps(errors))
""")


@pytest.fixture(scope="module")
def fresh_process_run(saved_model, frames, tmp_path_factory):
    """Runs the SavedModel in a new Python process (no dflow_tf import): (flows, errors)."""
    work = tmp_path_factory.mktemp("fresh")
    inputs = {f"{h}x{w}_{i + 1}": frame for (h, w), pair in frames.items() for i, frame in enumerate(pair)}
    np.savez(work / "inputs.npz", **inputs)
    (work / "run.py").write_text(FRESH_PROCESS)
    proc = subprocess.run([sys.executable, str(work / "run.py"), saved_model, str(work / "inputs.npz"),
                           str(work / "outputs.npz")], capture_output=True, text=True, cwd=str(work),
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    flows = dict(np.load(work / "outputs.npz"))
    return flows, json.loads(proc.stdout.strip().splitlines()[-1])


def test_saved_model_matches_keras_in_fresh_process(fresh_process_run, reference):
    flows, errors = fresh_process_run
    assert not errors["imports_dflow_tf"]
    for (h, w), expected in reference.items():
        got = flows[f"{h}x{w}"]
        assert got.shape == (2, h, w, 2) and got.dtype == np.float32
        assert np.abs(expected).max() > 1e-2  # a non-trivial flow
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_saved_model_rejects_bad_input_with_clear_messages(fresh_process_run):
    _, errors = fresh_process_run
    assert "frame1 must be a batch of RGB images [B, H, W, 3] (rank 4)" in errors["rank"]
    assert "all frames must have the same shape [B, H, W, 3]" in errors["sizes"]
    assert "frame1 must have 3 (RGB) channels" in errors["channels"]
    # The signature itself rejects a float tensor and says what it expected.
    assert errors["dtype"] is not None and "uint8" in errors["dtype"] and "float" in errors["dtype"]


def test_saved_model_cli_shows_signature(saved_model):
    command = ["saved_model_cli"] if shutil.which("saved_model_cli") else \
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    proc = subprocess.run(command + ["show", "--dir", saved_model, "--tag_set", "serve",
                                     "--signature_def", "serving_default"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    for expected in ("inputs['frame1']", "inputs['frame2']", "DT_UINT8", "outputs['flow']",
                     "DT_FLOAT", "(-1, -1, -1, 2)", "tensorflow/serving/predict"):
        assert expected in text, text
    assert "frame3" not in text


def test_saved_model_metadata(saved_model):
    with open(os.path.join(saved_model, "assets.extra", "dflow_tf.json")) as f:
        meta = json.load(f)
    assert meta["class"] == "TwoFramePWC" and meta["config"]["search_range"] == 1
    assert "model.json" in meta["source"]  # the architecture came from the checkpoint's folder
    assert meta["inputs"] == ["frame1", "frame2"]


def test_three_frame_serving_function_matches_the_reference():
    keras.utils.set_random_seed(3)
    model = ThreeFramePWC(num_levels=3, search_range=1)
    rng = np.random.default_rng(1)
    triple = [rng.integers(0, 256, (1, 20, 27, 3), dtype=np.uint8) for _ in range(3)]
    serve = serving_function(model)
    assert [s.name for s in serve.input_signature] == ["frame1", "frame2", "frame3"]
    got = serve(*[tf.constant(f) for f in triple])["flow"].numpy()
    expected = serving_reference_flow(model, triple)  # 20x27 runs at 24x32
    assert got.shape == (1, 20, 27, 2) and np.abs(expected).max() > 1e-3  # a random model: small flows
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------- TFLite
@pytest.fixture(scope="module")
def tflite_files(trained, tmp_path_factory):
    pytest.importorskip("ai_edge_litert")
    h, w = TFLITE_SIZE
    return {precision: _export(tmp_path_factory, trained[1], "tflite", f"flow_{precision}.tflite",
                               "--height", str(h), "--width", str(w), "--precision", precision)
            for precision in ("fp32", "fp16", "int8")}


@pytest.mark.export
def test_tflite_fp32_matches_keras(tflite_files, frames, reference):
    flow = run_tflite(tflite_files["fp32"], frames[TFLITE_SIZE])
    assert flow.shape == (1, *TFLITE_SIZE, 2)
    np.testing.assert_allclose(flow, reference[TFLITE_SIZE][:1], rtol=0, atol=1e-3)


@pytest.mark.export
def test_tflite_fp16_and_int8_are_close_and_smaller(tflite_files, frames):
    pair = frames[TFLITE_SIZE]
    fp32 = run_tflite(tflite_files["fp32"], pair)
    sizes = {p: os.path.getsize(f) for p, f in tflite_files.items()}
    assert sizes["fp16"] < 0.55 * sizes["fp32"] and sizes["int8"] < 0.3 * sizes["fp32"], sizes
    assert _epe(run_tflite(tflite_files["fp16"], pair), fp32) < 0.01
    # dynamic-range int8: a random network's flow (~1 px) must survive to a fraction of a pixel
    scale = float(np.mean(np.linalg.norm(fp32, axis=-1)))
    assert _epe(run_tflite(tflite_files["int8"], pair), fp32) < 0.25 * scale


# ------------------------------------------------------------------------------- ONNX
@pytest.fixture(scope="module")
def onnx_session(trained, tmp_path_factory):
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    path = _export(tmp_path_factory, trained[1], "onnx", "flow.onnx")
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


@pytest.mark.export
def test_onnx_dynamic_shapes_match_keras(onnx_session, frames, reference):
    inputs = onnx_session.get_inputs()
    assert [i.name for i in inputs] == ["frame1", "frame2"]
    assert inputs[0].type == "tensor(uint8)" and inputs[0].shape == ["batch", "height", "width", 3]
    for size, pair in frames.items():
        (flow,) = onnx_session.run(["flow"], {"frame1": pair[0], "frame2": pair[1]})
        assert flow.shape == (2, *size, 2)
        np.testing.assert_allclose(flow, reference[size], rtol=0, atol=1e-4)


# ------------------------------------------------------------------------------- stereo
@pytest.fixture(scope="module")
def stereo_reference(reference):
    """The disparity of the flow model's Keras prediction: -u of frame1 (left) -> frame2 (right)."""
    return {size: -flow[..., :1] for size, flow in reference.items()}


def test_stereo_saved_model_signature_and_parity(trained, frames, stereo_reference, tmp_path_factory):
    out = _export(tmp_path_factory, trained[1], "saved_model", "1", "--stereo")
    with open(os.path.join(out, "assets.extra", "dflow_tf.json")) as f:
        meta = json.load(f)
    assert meta["inputs"] == ["left", "right"] and meta["class"] == "TwoFramePWC" and "stereo" in meta
    serve = tf.saved_model.load(out).signatures["serving_default"]
    assert sorted(serve.structured_outputs) == ["disparity"]
    for size, (left, right) in frames.items():
        disparity = serve(left=tf.constant(left), right=tf.constant(right))["disparity"].numpy()
        assert disparity.shape == (2, *size, 1) and disparity.dtype == np.float32
        assert np.abs(stereo_reference[size]).max() > 1e-2
        np.testing.assert_allclose(disparity, stereo_reference[size], rtol=0, atol=1e-4)
    with pytest.raises(Exception, match="left must have 3 \\(RGB\\) channels"):
        serve(left=tf.constant(left[..., :2]), right=tf.constant(right[..., :2]))


def test_three_frame_stereo_model_sees_left_left_right():
    keras.utils.set_random_seed(4)
    model = ThreeFramePWC(num_levels=3, search_range=1)
    rng = np.random.default_rng(2)
    left, right = (rng.integers(0, 256, (1, 20, 27, 3), dtype=np.uint8) for _ in range(2))
    serve = serving_function(StereoFromFlow(model))
    assert [s.name for s in serve.input_signature] == ["left", "right"]
    got = serve(tf.constant(left), tf.constant(right))["disparity"].numpy()
    expected = -serving_reference_flow(model, [left, left, right])[..., :1]
    assert got.shape == (1, 20, 27, 1) and np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.export
@pytest.mark.slow  # 15 s each: a second conversion; the flow path above runs by default
def test_stereo_tflite_matches_keras(trained, frames, stereo_reference, tmp_path_factory):
    pytest.importorskip("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter
    h, w = TFLITE_SIZE
    path = _export(tmp_path_factory, trained[1], "tflite", "stereo.tflite", "--stereo", "--height", str(h),
                   "--width", str(w))
    runner = Interpreter(model_path=path).get_signature_runner("serving_default")
    left, right = frames[TFLITE_SIZE]
    disparity = runner(left=left[:1], right=right[:1])["disparity"]
    assert disparity.shape == (1, h, w, 1)
    np.testing.assert_allclose(disparity, stereo_reference[TFLITE_SIZE][:1], rtol=0, atol=1e-3)


@pytest.mark.export
@pytest.mark.slow  # 15 s each: a second conversion; the flow path above runs by default
def test_stereo_onnx_dynamic_shapes_match_keras(trained, frames, stereo_reference, tmp_path_factory):
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    path = _export(tmp_path_factory, trained[1], "onnx", "stereo.onnx", "--stereo")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["left", "right"]
    assert session.get_inputs()[0].shape == ["batch", "height", "width", 3]
    assert session.get_outputs()[0].shape == ["batch", "height", "width", 1]
    for size, (left, right) in frames.items():
        (disparity,) = session.run(["disparity"], {"left": left, "right": right})
        np.testing.assert_allclose(disparity, stereo_reference[size], rtol=0, atol=1e-4)


# ------------------------------------------------------------------------------- TF-TRT, CLI
def test_tftrt_without_tensorrt_exits_with_the_onnx_route(trained, tmp_path):
    if tensorrt_unavailable_reason() is None:
        pytest.skip("this TensorFlow has TensorRT")
    proc = subprocess.run([sys.executable, "-m", "dflow_tf.export", "--checkpoint", trained[1],
                           "--format", "tftrt", "--out", str(tmp_path / "trt")],
                          capture_output=True, text=True, cwd=REPO, env=_env(), timeout=300)
    assert proc.returncode == 1
    for expected in ("TF-TRT export is not possible", "TensorFlow 2.18 and later ship without TensorRT",
                     "--format onnx", "trtexec --onnx=flow.onnx"):
        assert expected in proc.stderr, proc.stderr
    assert not (tmp_path / "trt").exists()


@pytest.mark.parametrize("fmt, out", [("saved_model", "/proc/nope"), ("onnx", "/proc/nope.onnx")])
def test_cli_unwritable_output_fails_with_one_message(trained, fmt, out, capsys):
    assert cli.main(["--checkpoint", trained[1], "--format", fmt, "--out", out]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --out {out}: cannot write in /proc"), err


def test_cli_wrong_arch_fails_with_a_message(trained, tmp_path, capsys):
    status = cli.main(["--checkpoint", trained[1], "--format", "saved_model", "--arch", "three_frame",
                       "--out", str(tmp_path / "out")])
    assert status == 1
    assert "does not fit ThreeFramePWC" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, expected", [
    (["--format", "tflite"], "--format tflite has a fixed input size: give --height and --width"),
    (["--format", "onnx", "--precision", "int8"], "--format onnx supports --precision fp32"),
    (["--format", "saved_model", "--height", "64"], "give both --height and --width"),
])
def test_cli_argument_errors(args, expected, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "out"), *args])
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err
