"""Core ops against plain-loop numpy references, gradient checks, graph/XLA parity, errors."""
import cv2
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from dflow_tf import ops

RNG = np.random.default_rng(0)
B, H, W = 3, 7, 13


def _modes(fn):
    """The same function eagerly, under tf.function and under XLA."""
    return {"eager": fn, "graph": tf.function(fn), "xla": tf.function(fn, jit_compile=True)}


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("d", [1, 4])
def test_cost_volume_matches_loops(normalize, d):
    f1 = RNG.normal(size=(B, H, W, 5)).astype(np.float32)
    f2 = RNG.normal(size=(B, H, W, 5)).astype(np.float32)
    want = ref.cost_volume(f1, f2, d, normalize)
    got = ops.cost_volume(f1, f2, max_displacement=d, normalize=normalize).numpy()
    assert got.shape == (B, H, W, (2 * d + 1) ** 2)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_cost_volume_of_identical_normalised_features_peaks_at_zero_displacement():
    f = RNG.normal(size=(1, 9, 9, 8)).astype(np.float32)
    cv = ops.cost_volume(f, f, max_displacement=2).numpy()
    np.testing.assert_allclose(cv[..., 12], 1.0, atol=1e-5)  # centre channel = (2*5+2)
    assert np.all(cv <= 1.0 + 1e-5)


@pytest.mark.parametrize("flow_scale", [0.7, 3.0])
def test_backward_warp_matches_loops(flow_scale):
    image = RNG.uniform(size=(B, H, W, 4)).astype(np.float32)
    flow = (RNG.normal(size=(B, H, W, 2)) * flow_scale).astype(np.float32)
    want, want_inside = ref.backward_warp(image, flow)
    got, inside = ops.backward_warp(image, flow)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    np.testing.assert_array_equal(inside.numpy(), want_inside)


def test_backward_warp_integer_shift_is_exact_and_marks_outside():
    image = RNG.uniform(size=(1, H, W, 3)).astype(np.float32)
    flow = np.zeros((1, H, W, 2), np.float32)
    flow[..., 0] = 2.0  # sample two pixels to the right
    warped, inside = ops.backward_warp(image, flow)
    np.testing.assert_allclose(warped.numpy()[0, :, :-2], image[0, :, 2:], atol=1e-6)
    assert np.all(inside.numpy()[0, :, -2:] == 0) and np.all(inside.numpy()[0, :, :-2] == 1)


def test_gradients_of_cost_volume_and_warp():
    f1 = tf.constant(RNG.normal(size=(2, 4, 5, 3)), tf.float64)
    f2 = tf.constant(RNG.normal(size=(2, 4, 5, 3)), tf.float64)
    theoretical, numerical = tf.test.compute_gradient(
        lambda a, b: ops.cost_volume(a, b, max_displacement=1), [f1, f2], delta=1e-4)
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, atol=1e-6)

    image = tf.constant(RNG.uniform(size=(2, 4, 5, 2)), tf.float64)
    # Keep sampling positions away from integer coordinates, where bilinear weights have kinks.
    flow = tf.constant(np.floor(RNG.normal(size=(2, 4, 5, 2)) * 2) + RNG.uniform(0.2, 0.8, (2, 4, 5, 2)), tf.float64)
    theoretical, numerical = tf.test.compute_gradient(lambda i, f: ops.backward_warp(i, f)[0], [image, flow])
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, atol=1e-6)


def test_resize_flow_matches_cv2_bilinear_and_scales_vectors():
    flow = RNG.normal(size=(2, H, W, 2)).astype(np.float32)
    for size in [(14, 26), (5, 9), (7, 13)]:
        got = ops.resize_flow(flow, size).numpy()
        for n in range(2):
            want = cv2.resize(flow[n], (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
            want = want * np.array([size[1] / W, size[0] / H], np.float32)
            np.testing.assert_allclose(got[n], want, atol=1e-5)


def _sparse_reference(flow, valid, size):
    b, h, w, _ = flow.shape
    nh, nw = size
    sums = np.zeros((b, nh, nw, 2))
    counts = np.zeros((b, nh, nw))
    for n in range(b):
        for i in range(h):
            for j in range(w):
                if valid[n, i, j, 0]:
                    ti = min(int(np.floor((i + 0.5) * nh / h)), nh - 1)
                    tj = min(int(np.floor((j + 0.5) * nw / w)), nw - 1)
                    sums[n, ti, tj] += flow[n, i, j] * [nw / w, nh / h]
                    counts[n, ti, tj] += 1
    mean = np.where(counts[..., None] > 0, sums / np.maximum(counts[..., None], 1), 0)
    return mean, (counts > 0)[..., None].astype(np.float64)


@pytest.mark.parametrize("size", [(3, 5), (7, 13), (15, 30)])
def test_resize_sparse_flow_never_uses_invalid_pixels(size):
    flow = RNG.normal(size=(2, H, W, 2)).astype(np.float32)
    valid = RNG.uniform(size=(2, H, W, 1)) < 0.3
    poisoned = np.where(valid, flow, 1e6).astype(np.float32)  # invalid pixels carry garbage
    got_flow, got_valid = ops.resize_sparse_flow(poisoned, valid, size)
    want_flow, want_valid = _sparse_reference(flow, valid, size)
    np.testing.assert_array_equal(got_valid.numpy(), want_valid)
    np.testing.assert_allclose(got_flow.numpy(), want_flow, atol=1e-4)
    assert np.abs(got_flow.numpy()).max() < 1e3


def test_census_and_soft_hamming_match_loops():
    a = RNG.uniform(size=(2, 9, 11, 3)).astype(np.float32)
    b = RNG.uniform(size=(2, 9, 11, 3)).astype(np.float32)
    ca, cb = ref.census(a, 7), ref.census(b, 7)
    np.testing.assert_allclose(ops.census_transform(a).numpy(), ca, atol=2e-3)
    sq = (ca - cb) ** 2
    want = np.sum(sq / (0.1 + sq), axis=-1, keepdims=True)
    got = ops.soft_hamming_distance(ops.census_transform(a), ops.census_transform(b)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(ops.soft_hamming_distance(ca, ca).numpy(), 0.0)


def test_forward_backward_occlusion_matches_loops_and_known_cases():
    flow_fw = (RNG.normal(size=(2, H, W, 2)) * 2).astype(np.float32)
    flow_bw = (RNG.normal(size=(2, H, W, 2)) * 2).astype(np.float32)
    got = ops.forward_backward_occlusion(flow_fw, flow_bw, 0.01, 0.5).numpy()
    np.testing.assert_array_equal(got, ref.fb_occlusion(flow_fw, flow_bw, 0.01, 0.5))
    # A constant translation undone by its inverse is consistent wherever its target is in frame;
    # the last two columns and rows move out of frame 2 and have no correspondence.
    fw = np.full((1, H, W, 2), 1.5, np.float32)
    occ = ops.forward_backward_occlusion(fw, -fw).numpy()[0, ..., 0]
    assert occ[:-2, :-2].sum() == 0 and occ[-1].min() == 1 and occ[:, -1].min() == 1
    assert ops.forward_backward_occlusion(fw, fw).numpy().min() == 1


def test_reject_implausible_occlusion_clears_only_images_over_the_bound():
    occ = np.zeros((3, 4, 5, 1), np.float32)
    occ[0, :1] = 1.0   # 5 / 20 = 0.25 occluded: kept
    occ[1, :2] = 1.0   # 10 / 20 = 0.5: exactly at the bound, kept
    occ[2, :3] = 1.0   # 15 / 20 = 0.75: rejected
    got, rejected = ops.reject_implausible_occlusion(occ, 0.5)
    np.testing.assert_array_equal(rejected.numpy(), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(got.numpy()[:2], occ[:2])
    assert got.numpy()[2].max() == 0.0
    _, all_kept = ops.reject_implausible_occlusion(np.ones((2, 3, 3, 1), np.float32), 1.0)
    np.testing.assert_array_equal(all_kept.numpy(), [0.0, 0.0])
    with pytest.raises(ValueError, match="max_fraction"):
        ops.reject_implausible_occlusion(occ, 0.0)
    with pytest.raises(ValueError, match="occlusion"):
        ops.reject_implausible_occlusion(occ[..., 0], 0.5)


OP_CASES = {
    "cost_volume": (lambda a, b: ops.cost_volume(a, b, 2), [(B, H, W, 4), (B, H, W, 4)]),
    "backward_warp": (lambda a, f: ops.backward_warp(a, f * 3.0), [(B, H, W, 3), (B, H, W, 2)]),
    "resize_flow": (lambda f: ops.resize_flow(f, (11, 5)), [(B, H, W, 2)]),
    "resize_sparse_flow": (lambda f, v: ops.resize_sparse_flow(f, tf.cast(v > 0.5, tf.float32), (4, 20)),
                           [(B, H, W, 2), (B, H, W, 1)]),
    "census": (lambda a, b: ops.soft_hamming_distance(ops.census_transform(a), ops.census_transform(b)),
               [(B, H, W, 3), (B, H, W, 3)]),
    "occlusion": (lambda f, g: ops.forward_backward_occlusion(f * 3.0, g * 3.0), [(B, H, W, 2), (B, H, W, 2)]),
}


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_eager_graph_and_xla_agree(name):
    fn, shapes = OP_CASES[name]
    args = [tf.constant(RNG.uniform(size=s).astype(np.float32)) for s in shapes]
    results = {mode: tf.nest.map_structure(lambda t: t.numpy(), f(*args)) for mode, f in _modes(fn).items()}
    for mode in ("graph", "xla"):
        tf.nest.map_structure(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), results["eager"], results[mode])


@pytest.mark.parametrize("call, message", [
    (lambda: ops.cost_volume(np.zeros((2, 4, 4, 3)), np.zeros((2, 4, 5, 3))), "features1"),
    (lambda: ops.cost_volume(np.zeros((4, 4, 3)), np.zeros((4, 4, 3))), "features1"),
    (lambda: ops.backward_warp(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 3))), "flow"),
    (lambda: ops.backward_warp(np.zeros((1, 4, 4, 3)), np.zeros((1, 5, 4, 2))), "image"),
    (lambda: ops.resize_flow(np.zeros((4, 4, 2)), (2, 2)), "flow"),
    (lambda: ops.resize_sparse_flow(np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 3, 1)), (2, 2)), "valid"),
    (lambda: ops.census_transform(np.zeros((1, 4, 4, 2))), "image"),
    (lambda: ops.forward_backward_occlusion(np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 5, 2))), "flow_bw"),
])
def test_bad_shapes_raise_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


class _OpsModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([1, 16, 24, 8], tf.float32),
                                  tf.TensorSpec([1, 16, 24, 8], tf.float32),
                                  tf.TensorSpec([1, 16, 24, 2], tf.float32)])
    def __call__(self, f1, f2, flow):
        warped, inside = ops.backward_warp(f2, flow)
        cv = ops.cost_volume(f1, warped, 4)
        up = ops.resize_flow(flow, (32, 48))
        return {"cost": cv * inside, "flow_up": up}


def test_ops_in_saved_model_convert_to_tflite_with_builtin_ops_only(tmp_path):
    module = _OpsModule()
    tf.saved_model.save(module, str(tmp_path / "sm"))
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex / select TF ops
    tflite_model = converter.convert()
    interpreter = tf.lite.Interpreter(model_content=tflite_model)
    runner = interpreter.get_signature_runner()
    f1 = RNG.normal(size=(1, 16, 24, 8)).astype(np.float32)
    f2 = RNG.normal(size=(1, 16, 24, 8)).astype(np.float32)
    flow = (RNG.normal(size=(1, 16, 24, 2)) * 2).astype(np.float32)
    got = runner(f1=f1, f2=f2, flow=flow)
    want = module(f1, f2, flow)
    for key in ("cost", "flow_up"):
        np.testing.assert_allclose(got[key], want[key].numpy(), atol=1e-4)


def test_ops_keep_float16_inputs_in_float16():
    # Mixed-precision models call the ops on float16 tensors.
    flow = tf.constant(RNG.normal(size=(1, H, W, 2)), tf.float16)
    features = tf.constant(RNG.normal(size=(1, H, W, 4)), tf.float16)
    assert ops.resize_flow(flow, (14, 26)).dtype == tf.float16
    assert ops.backward_warp(features, flow)[0].dtype == tf.float16
    assert ops.cost_volume(features, features, 2).dtype == tf.float16


def test_backward_warp_of_a_bfloat16_image_samples_at_float32_positions():
    # At x = 200 of a 256-wide image, bfloat16 positions are whole pixels (8 significant bits): a
    # shift of 0.3 px would be rounded away. The image is (x - 200) / 8, exact in bfloat16 near x = 200.
    xs = np.arange(256, dtype=np.float32)
    image = np.broadcast_to(((xs - 200.0) / 8.0)[None, None, :, None], (1, 2, 256, 1))
    flow = np.zeros((1, 2, 256, 2), np.float32)
    flow[..., 0] = 0.3
    warped, inside = ops.backward_warp(tf.constant(image, tf.bfloat16), tf.constant(flow))
    assert warped.dtype == tf.bfloat16 and inside.dtype == tf.bfloat16
    np.testing.assert_allclose(float(warped[0, 0, 200, 0]), 0.3 / 8.0, atol=5e-4)
    np.testing.assert_allclose(float(warped[0, 0, 100, 0]), (100.3 - 200.0) / 8.0, rtol=1e-2)
