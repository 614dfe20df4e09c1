"""Flow networks (dflow_tf.models) and predict_flow (dflow_tf.inference)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf import predict_flow
from dflow_tf.models import ContextNetwork, Conv, FeaturePyramid, FlowEstimator, ThreeFramePWC, TwoFramePWC

# Run again by CI with oneDNN off and with its AVX2 kernels (pytest.ini).
pytestmark = pytest.mark.backend

LEVEL_KEYS = [f"flow_level{level}" for level in (6, 5, 4, 3, 2)]


def _frames(num_frames, height=64, width=128, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth random images (so that features and flows are not pure noise).
    coarse = rng.uniform(size=(batch, num_frames, height // 8, width // 8, 3)).astype(np.float32)
    images = tf.image.resize(tf.reshape(coarse, [-1, height // 8, width // 8, 3]), (height, width))
    return tf.reshape(images, [batch, num_frames, height, width, 3])


@pytest.fixture(scope="module")
def two_frame():
    keras.utils.set_random_seed(1)
    return TwoFramePWC()


@pytest.fixture(scope="module")
def three_frame():
    keras.utils.set_random_seed(2)
    return ThreeFramePWC()


def _max_diff(a, b):
    return max(tf.nest.flatten(tf.nest.map_structure(
        lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)))


# ------------------------------------------------------------------------------- structure
def test_parameter_counts(two_frame, three_frame):
    assert two_frame.count_params() == 4_273_628
    assert three_frame.count_params() == 4_790_876


def test_estimator_and_context_input_widths(two_frame, three_frame):
    # docs/method.md §1.5-§1.6: first-conv inputs per level 6..2 and context inputs.
    assert [e.conv1.kernel.shape[2] for e in two_frame.estimators] == [275, 211, 179, 147, 115]
    assert [e.conv1.kernel.shape[2] for e in three_frame.estimators] == [358, 294, 262, 230, 198]
    assert two_frame.context_network.dilated_conv1.kernel.shape[2] == 34
    assert three_frame.context_network.dilated_conv1.kernel.shape[2] == 68
    widths = [c.filters for c in two_frame.feature_pyramid.convs]
    assert widths == [16, 16, 32, 32, 64, 64, 96, 96, 128, 128, 192, 192]
    assert [c.strides for c in two_frame.feature_pyramid.convs[:2]] == [(2, 2), (1, 1)]
    assert [c.dilation_rate[0] for c in two_frame.context_network.convs] == [1, 2, 4, 8, 16, 1, 1]
    assert [c.filters for c in two_frame.estimators[0].convs] == [128, 128, 96, 64, 32, 2]


def test_three_frame_shares_estimators_between_directions(three_frame):
    assert len(three_frame.estimators) == 5  # one per level, not one per level and direction
    assert len(three_frame.trainable_weights) == 2 * (12 + 5 * 6 + 7)
    names = [w.path for w in three_frame.weights]
    assert len(set(names)) == len(names)


def test_output_dict_shapes(two_frame, three_frame):
    out = two_frame(_frames(2))
    assert sorted(out) == sorted(["flow", "flow_refined", *LEVEL_KEYS])
    assert out["flow"].shape == (2, 64, 128, 2)
    assert out["flow_refined"].shape == (2, 16, 32, 2)
    for level in (6, 5, 4, 3, 2):
        assert out[f"flow_level{level}"].shape == (2, 64 >> level, 128 >> level, 2)
    frames3 = _frames(3, 128, 64)
    out3 = three_frame.bidirectional(frames3)
    assert sorted(out3) == ["backward", "forward"]
    assert _max_diff(three_frame(frames3), out3["forward"]) == 0.0  # the call is the forward flow
    for direction in out3.values():
        assert direction["flow"].shape == (2, 128, 64, 2)
        assert direction["flow_level6"].shape == (2, 2, 1, 2)
    assert out["flow"].dtype == tf.float32


def test_batch_elements_are_independent(two_frame):
    frames = _frames(2)
    both = two_frame(frames)["flow"]
    single = two_frame(frames[1:])["flow"]
    np.testing.assert_allclose(both[1:], single, atol=1e-5)


def test_bidirectional_equals_two_calls(two_frame):
    frames = _frames(2)
    out = two_frame.bidirectional(frames)
    assert _max_diff(out["forward"], two_frame(frames)) < 1e-5
    assert _max_diff(out["backward"], two_frame(frames[:, ::-1])) < 1e-5


def test_three_frame_time_reversal_swaps_directions(three_frame):
    # Forward input [cv_fw, cv_bw, f_t, flow_fw, -flow_bw], backward the mirror image, with the
    # same weights: reversing (t-1, t, t+1) must exchange the two outputs exactly.
    frames = _frames(3, seed=3)
    out = three_frame.bidirectional(frames)
    rev = three_frame.bidirectional(frames[:, ::-1])
    assert _max_diff(out["forward"], rev["backward"]) < 1e-5
    assert _max_diff(out["backward"], rev["forward"]) < 1e-5
    assert _max_diff(three_frame(frames), out["forward"]) == 0.0


def test_full_resolution_flow_is_upsampled_refined_level_2(two_frame):
    out = two_frame(_frames(2))
    # Full-resolution flow = x4 bilinear (half-pixel) upsampling of the refined level-2 flow,
    # vectors scaled by 4 (independent reference: tf.image.resize, scale by hand).
    expected = tf.image.resize(out["flow_refined"], (64, 128), method="bilinear") * 4.0
    np.testing.assert_allclose(out["flow"], expected, atol=1e-5)


def test_zero_initialised_output_layers_predict_zero_flow():
    model = TwoFramePWC()
    for conv in [e.convs[-1] for e in model.estimators] + [model.context_network.convs[-1]]:
        conv.kernel.assign(tf.zeros_like(conv.kernel))
        conv.bias.assign(tf.zeros_like(conv.bias))
    out = model(_frames(2))
    for value in out.values():
        assert float(tf.reduce_max(tf.abs(value))) == 0.0


def test_context_residual_flag(two_frame):
    selflow_style = TwoFramePWC(context_residual=False)
    selflow_style.set_weights(two_frame.get_weights())
    frames = _frames(2)
    residual, plain = two_frame(frames), selflow_style(frames)
    np.testing.assert_allclose(residual["flow_level2"], plain["flow_level2"], atol=1e-6)
    context = residual["flow_refined"] - residual["flow_level2"]
    np.testing.assert_allclose(plain["flow_refined"], context, atol=1e-5)


def test_normalize_input_makes_the_model_invariant_to_gain_and_offset():
    model = TwoFramePWC(normalize_input=True)
    frames = _frames(2, batch=1)
    shifted = frames * 0.5 + 0.2  # per-image, per-channel affine change
    np.testing.assert_allclose(model(frames)["flow"], model(shifted)["flow"], atol=1e-4)
    plain = TwoFramePWC()
    plain.set_weights(model.get_weights())
    assert _max_diff(plain(frames)["flow"], model(frames)["flow"]) > 1e-4


def test_fewer_levels_and_other_search_range():
    model = TwoFramePWC(num_levels=4, search_range=2)
    assert model.levels == (4, 3, 2) and model.size_multiple == 16
    assert model.estimators[0].conv1.kernel.shape[2] == 25 + 96 + 2
    out = model(_frames(2, 32, 48))
    assert out["flow"].shape == (2, 32, 48, 2) and "flow_level5" not in out
    with pytest.raises(ValueError, match="channels"):
        TwoFramePWC(num_levels=3, channels=(16, 32))


def test_bad_inputs_raise(two_frame):
    with pytest.raises(ValueError, match="multiple of 64"):
        two_frame(tf.zeros([1, 2, 70, 128, 3]))
    with pytest.raises(ValueError, match=r"\[B, 2, H, W, 3\]"):
        two_frame(tf.zeros([1, 3, 64, 64, 3]))
    with pytest.raises(ValueError, match=r"\[B, 2, H, W, 3\]"):
        two_frame(tf.zeros([2, 64, 64, 3]))


# ------------------------------------------------------------------------------- serialisation
def test_get_config_round_trip():
    model = ThreeFramePWC(normalize_input=True, negative_slope=0.1, search_range=3)
    config = model.get_config()
    clone = ThreeFramePWC.from_config(config)
    assert clone.get_config() == config
    assert clone.normalize_input and clone.search_range == 3 and clone.negative_slope == 0.1
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(revived, ThreeFramePWC) and revived.get_config() == config
    clone.set_weights(model.get_weights())
    frames = _frames(3, batch=1)
    assert _max_diff(clone(frames), model(frames)) == 0.0
    for layer in (Conv(4, dilation_rate=2, negative_slope=None), FeaturePyramid(channels=(8, 16)),
                  FlowEstimator(filters=(8, 4)),
                  ContextNetwork(filters=(8, 4), dilations=(1, 2))):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_save_weights_and_checkpoint_round_trip(two_frame, tmp_path):
    frames = _frames(2, batch=1)
    expected = two_frame(frames)["flow"]

    path = str(tmp_path / "model.weights.h5")
    two_frame.save_weights(path)
    restored = TwoFramePWC()
    restored.load_weights(path)
    np.testing.assert_array_equal(restored(frames)["flow"], expected)

    prefix = tf.train.Checkpoint(model=two_frame).write(str(tmp_path / "ckpt"))
    names = [name for name, _ in tf.train.list_variables(prefix) if "VARIABLE_VALUE" in name]
    assert len(names) == len(two_frame.weights)  # every weight is tracked, none twice
    restored = TwoFramePWC()
    tf.train.Checkpoint(model=restored).read(prefix).assert_consumed()
    np.testing.assert_array_equal(restored(frames)["flow"], expected)


# ------------------------------------------------------------------------------- compilation
def test_tf_function_matches_eager(two_frame):
    frames = _frames(2)
    eager = two_frame(frames)
    assert _max_diff(tf.function(two_frame)(frames), eager) < 1e-4
    assert float(tf.reduce_max(tf.abs(eager["flow"]))) > 0.1  # a non-trivial flow


@pytest.mark.parametrize("model_class", [TwoFramePWC, ThreeFramePWC])
def test_xla_matches_eager_small_pyramid(model_class):
    # Same code path as the default models with 3 levels, to keep XLA compile time small.
    keras.utils.set_random_seed(4)
    model = model_class(num_levels=3)
    frames = _frames(model.num_frames, 32, 48)
    eager = model.bidirectional(frames)
    assert _max_diff(tf.function(model.bidirectional, jit_compile=True)(frames), eager) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["two_frame", "three_frame"])
def test_xla_matches_eager_default_models(name, request):
    model = request.getfixturevalue(name)
    frames = _frames(model.num_frames)
    eager = model.bidirectional(frames)
    assert _max_diff(tf.function(model.bidirectional, jit_compile=True)(frames), eager) < 1e-4


# ------------------------------------------------------------------------------- predict_flow
class _ConstantFlowModel:
    """Duck-typed model: records its input and returns a constant flow at the run size."""

    num_frames = 2
    size_multiple = 64

    def __init__(self, u, v):
        self.u, self.v, self.seen = u, v, None

    def __call__(self, frames):
        self.seen = frames
        shape = tf.shape(frames)
        ones = tf.ones(tf.stack([shape[0], shape[2], shape[3], 1]))
        return {"flow": tf.concat([ones * self.u, ones * self.v], axis=-1)}


def test_predict_flow_maps_back_to_input_resolution():
    model = _ConstantFlowModel(8.0, -4.0)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (70, 100, 3), dtype=np.uint8) for _ in range(2)]
    flow = predict_flow(model, frames)
    assert flow.shape == (70, 100, 2) and flow.dtype == np.float32
    assert tuple(model.seen.shape) == (1, 2, 128, 128, 3)  # resized up to multiples of 64
    assert 0.0 <= float(tf.reduce_min(model.seen)) and float(tf.reduce_max(model.seen)) <= 1.0
    # A constant displacement of 8 px at width 128 is 8 * 100 / 128 px at width 100.
    np.testing.assert_allclose(flow[..., 0], 8.0 * 100 / 128, rtol=1e-5)
    np.testing.assert_allclose(flow[..., 1], -4.0 * 70 / 128, rtol=1e-5)
    # Already a multiple of 64: no rescaling at all.
    same = predict_flow(model, [np.zeros((64, 128, 3), np.float32)] * 2)
    np.testing.assert_allclose(same[..., 0], 8.0)
    np.testing.assert_allclose(same[..., 1], -4.0)


def test_predict_flow_real_models_odd_sizes(two_frame, three_frame):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (70, 100, 3), dtype=np.uint8) for _ in range(3)]
    flow = predict_flow(two_frame, frames[:2])
    assert flow.shape == (70, 100, 2) and flow.dtype == np.float32
    batched = predict_flow(two_frame, [np.stack([f, f]) for f in frames[:2]])
    assert batched.shape == (2, 70, 100, 2)
    np.testing.assert_allclose(batched[0], flow, atol=1e-4)
    floats = predict_flow(two_frame, [f.astype(np.float32) / 255.0 for f in frames[:2]])
    np.testing.assert_allclose(floats, flow, atol=1e-4)
    # Three-frame: the forward flow centre -> next.
    flow3 = predict_flow(three_frame, frames)
    assert flow3.shape == (70, 100, 2)
    resized = tf.image.resize(np.stack(frames).astype(np.float32) / 255.0, (128, 128))
    expected = three_frame(resized[tf.newaxis])["flow"]
    expected = tf.image.resize(expected, (70, 100)) * [100 / 128, 70 / 128]
    np.testing.assert_allclose(flow3, expected[0], atol=1e-4)


def test_predict_flow_errors(two_frame, three_frame):
    a = np.zeros((70, 100, 3), np.uint8)
    with pytest.raises(ValueError, match="takes 2 frames, got 3"):
        predict_flow(two_frame, [a, a, a])
    with pytest.raises(ValueError, match="takes 3 frames, got 2"):
        predict_flow(three_frame, [a, a])
    with pytest.raises(ValueError, match="differ in shape"):
        predict_flow(two_frame, [a, np.zeros((70, 101, 3), np.uint8)])
    with pytest.raises(ValueError, match=r"\[H, W, 3\] or \[B, H, W, 3\]"):
        predict_flow(two_frame, [a[..., 0], a[..., 0]])
    with pytest.raises(ValueError, match=r"\[H, W, 3\] or \[B, H, W, 3\]"):
        predict_flow(two_frame, [a[None, None], a[None, None]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predict_flow(two_frame, [a.astype(np.float32) + 2.0] * 2)
    with pytest.raises(ValueError, match="uint8"):
        predict_flow(two_frame, [a.astype(np.int32)] * 2)
    with pytest.raises(ValueError, match="differ in dtype"):
        predict_flow(two_frame, [a, a.astype(np.float32)])
