"""dflow_tf.export of the RAFT family: SavedModel (loaded in a fresh process), TFLite fp32, ONNX.

For `raft` and `raft_small`, one random model with ITERATIONS update iterations is written as a
bare checkpoint (no model.json) once per module, and every format is exported from it by the
command line with `--arch NAME --model_param iterations=3`: the iteration count is a constructor
option, fixed in the exported graph (the update loop is unrolled). Exports are made on first use
and cached per module. The reference is the Keras model called directly in float32 on frames
scaled and resized in numpy, its flow resized back in numpy
(`numpy_reference.serving_reference_flow`), not dflow_tf's
inference code. RAFT runs at multiples of 8, so 64x96 runs as it is and 60x90 is resized to
64x96 inside the exported graph. Tests needing tf2onnx / onnxruntime / ai-edge-litert skip
without them.
"""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf.export import cli
from dflow_tf.models.registry import get_model
from numpy_reference import serving_reference_flow, smooth_shifted_frames
from tflite_runner import run_tflite

ARCHS = ("raft_small", "raft")
ITERATIONS = 3
SIZES = ((64, 96), (60, 90))  # a multiple of 8 and a size that is resized inside the model
TFLITE_SIZE = (60, 90)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{arch: (model with ITERATIONS iterations, bare checkpoint prefix)}."""
    out = {}
    for seed, arch in enumerate(ARCHS):
        keras.utils.set_random_seed(11 + seed)
        model = get_model(arch, iterations=ITERATIONS)
        directory = tmp_path_factory.mktemp(f"checkpoint_{arch}")
        prefix = tf.train.Checkpoint(model=model).write(str(directory / "ckpt"))
        out[arch] = (model, prefix)
    return out


@pytest.fixture(scope="module")
def frames():
    """{(H, W): [frame1, frame2]} uint8 [2, H, W, 3]: a smooth pattern and a shifted copy."""
    return smooth_shifted_frames(SIZES)


@pytest.fixture(scope="module")
def reference(trained, frames):
    """{arch: {(H, W): flow [2, H, W, 2]}}."""
    return {arch: {size: serving_reference_flow(model, pair) for size, pair in frames.items()}
            for arch, (model, _) in trained.items()}


@pytest.fixture(scope="module")
def export(trained, tmp_path_factory):
    """export(arch, fmt, *extra) -> path, through the command line; each export made once."""
    cache = {}

    def run(arch, fmt, *extra):
        key = (arch, fmt, extra)
        if key not in cache:
            name = {"saved_model": "1", "tflite": "flow.tflite", "onnx": "flow.onnx"}[fmt]
            out = str(tmp_path_factory.mktemp(f"{arch}_{fmt}") / name)
            status = cli.main(["--checkpoint", trained[arch][1], "--arch", arch, "--model_param",
                               f"iterations={ITERATIONS}", "--format", fmt, "--out", out, *extra])
            assert status == 0
            cache[key] = out
        return cache[key]

    return run


# ------------------------------------------------------------------------------- SavedModel
FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    models, inputs, outputs = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    data = dict(np.load(inputs))
    flows = {}
    for arch, path in models.items():
        serve = tf.saved_model.load(path).signatures["serving_default"]
        for key in sorted({k.rsplit("_", 1)[0] for k in data}):
            flows[f"{arch}/{key}"] = serve(frame1=tf.constant(data[key + "_1"]),
                                           frame2=tf.constant(data[key + "_2"]))["flow"].numpy()
    np.savez(outputs, **flows)
    print(json.dumps({"imports_dflow_tf": any(m.startswith("dflow_tf") for m in sys.modules)}))
""")


@pytest.fixture(scope="module")
def fresh_process_flows(export, frames, tmp_path_factory):
    """Both SavedModels run in one new Python process (no dflow_tf import): {"arch/HxW": flow}."""
    models = {arch: export(arch, "saved_model") for arch in ARCHS}
    work = tmp_path_factory.mktemp("fresh")
    inputs = {f"{h}x{w}_{i + 1}": frame for (h, w), pair in frames.items() for i, frame in enumerate(pair)}
    np.savez(work / "inputs.npz", **inputs)
    (work / "run.py").write_text(FRESH_PROCESS)
    proc = subprocess.run([sys.executable, str(work / "run.py"), json.dumps(models), str(work / "inputs.npz"),
                           str(work / "outputs.npz")], capture_output=True, text=True, cwd=str(work),
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not json.loads(proc.stdout.strip().splitlines()[-1])["imports_dflow_tf"]
    return dict(np.load(work / "outputs.npz"))


@pytest.mark.parametrize("arch", ARCHS)
def test_saved_model_matches_keras_in_fresh_process(arch, fresh_process_flows, reference):
    for (h, w), expected in reference[arch].items():
        got = fresh_process_flows[f"{arch}/{h}x{w}"]
        assert got.shape == (2, h, w, 2) and got.dtype == np.float32
        assert np.abs(expected).max() > 1e-1  # a non-trivial flow
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_saved_model_metadata_records_the_iterations(arch, export):
    with open(os.path.join(export(arch, "saved_model"), "assets.extra", "dflow_tf.json")) as f:
        meta = json.load(f)
    assert meta["class"] == {"raft": "RAFT", "raft_small": "RAFTSmall"}[arch]
    assert meta["config"]["iterations"] == ITERATIONS
    assert meta["inputs"] == ["frame1", "frame2"]


def test_exported_iteration_count_is_distinguishable(trained, frames, fresh_process_flows):
    """The parity tests can tell iteration counts apart: the same weights with one iteration fewer
    give a flow far outside their tolerance."""
    model, _ = trained["raft_small"]
    fewer = get_model("raft_small", iterations=ITERATIONS - 1)
    fewer.set_weights(model.get_weights())
    size = SIZES[0]
    other = serving_reference_flow(fewer, frames[size])
    assert np.abs(fresh_process_flows[f"raft_small/{size[0]}x{size[1]}"] - other).max() > 1e-2


# ------------------------------------------------------------------------------- TFLite
@pytest.mark.export
@pytest.mark.parametrize("arch", ARCHS)
def test_tflite_fp32_matches_keras(arch, export, frames, reference):
    pytest.importorskip("ai_edge_litert")
    h, w = TFLITE_SIZE
    path = export(arch, "tflite", "--height", str(h), "--width", str(w))
    flow = run_tflite(path, frames[TFLITE_SIZE])
    assert flow.shape == (1, h, w, 2)
    np.testing.assert_allclose(flow, reference[arch][TFLITE_SIZE][:1], rtol=0, atol=1e-3)


# ------------------------------------------------------------------------------- ONNX
@pytest.mark.export
@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_dynamic_shapes_match_keras(arch, export, frames, reference):
    """Batch, height and width dynamic; needs the Reshape guard of dflow_tf.export.onnx (the
    correlation pyramid's Reshape pair)."""
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(export(arch, "onnx"), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    assert [i.name for i in inputs] == ["frame1", "frame2"]
    assert inputs[0].type == "tensor(uint8)" and inputs[0].shape == ["batch", "height", "width", 3]
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["config"])["iterations"] == ITERATIONS
    for size, pair in frames.items():
        (flow,) = session.run(["flow"], {"frame1": pair[0], "frame2": pair[1]})
        assert flow.shape == (2, *size, 2)
        np.testing.assert_allclose(flow, reference[arch][size], rtol=0, atol=1e-4)
