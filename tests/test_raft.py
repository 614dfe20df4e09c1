"""RAFT and RAFT-small (dflow_tf.models.raft): parameter counts against the reference's layer
definitions, the correlation, lookup, sampling and convex upsampling against numpy loops (and
their gradients against finite differences), and the output contract through predict, evaluation,
stereo, the serving signature, the trainer's build_model, the registry and model.json."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from dflow_tf import checkpoints, ops
from dflow_tf.evaluation import evaluate_model
from dflow_tf.export.serving import serving_function
from dflow_tf.inference import predict_flow, predict_tensor
from dflow_tf.metrics import FlowMetrics
from dflow_tf.models import RAFT, RAFTSmall, get_architecture, get_model
from dflow_tf.models.raft_correlation import all_pairs_correlation, correlation_pyramid, lookup_correlation
from dflow_tf.models.raft_upsampling import convex_upsample
from dflow_tf.models.stereo import StereoFromFlow
from dflow_tf.training.trainer import build_model

# Run again by CI with oneDNN off and with its AVX2 kernels (pytest.ini).
pytestmark = pytest.mark.backend

RNG = np.random.default_rng(0)
SIZE = (64, 64)


def _frames(batch=2, height=SIZE[0], width=SIZE[1], seed=0):
    """Smooth random frames float32 [B, 2, H, W, 3] in [0, 1], the second a shifted copy of the first."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(size=(batch, height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    big = tf.image.resize(coarse, (height + 16, width + 16)).numpy()
    return tf.constant(np.stack([big[:, 8:height + 8, 8:width + 8], big[:, 6:height + 6, 9:width + 9]], axis=1))


@pytest.fixture(scope="module")
def small():
    keras.utils.set_random_seed(3)
    return RAFTSmall(iterations=2)


@pytest.fixture(scope="module")
def raft():
    keras.utils.set_random_seed(4)
    return RAFT(iterations=2)


def _trainable(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


# ------------------------------------------------------------------ parameter counts (reference)
def conv(kh, kw, c_in, c_out):
    """A reference nn.Conv2d(c_in, c_out, (kh, kw)): weights and bias."""
    return kh * kw * c_in * c_out + c_out


def residual_block(c_in, c, stride, norm):
    """extractor.py ResidualBlock: conv1 3x3, conv2 3x3, norm1, norm2; with stride 2 the
    downsample 1x1 conv and norm3. `norm`: parameters per normalised channel (BatchNorm2d: weight
    and bias = 2; InstanceNorm2d (affine=False) and "none": 0)."""
    shortcut = conv(1, 1, c_in, c) + norm * c if stride == 2 else 0
    return conv(3, 3, c_in, c) + conv(3, 3, c, c) + 2 * norm * c + shortcut


def bottleneck_block(c_in, c, stride, norm):
    """extractor.py BottleneckBlock: 1x1 to c/4, 3x3 c/4, 1x1 to c, norm1..norm3; with stride 2 the
    downsample 1x1 conv and norm4."""
    q = c // 4
    shortcut = conv(1, 1, c_in, c) + norm * c if stride == 2 else 0
    return conv(1, 1, c_in, q) + conv(3, 3, q, q) + conv(1, 1, q, c) + norm * (q + q + c) + shortcut


def encoder(block, widths, output_dim, norm):
    """BasicEncoder / SmallEncoder: conv1 7x7 stride 2 + norm1, layer1..3 (two blocks each, the
    first of layer2 and layer3 with stride 2), conv2 1x1."""
    stem, c1, c2, c3 = widths
    return (conv(7, 7, 3, stem) + norm * stem
            + block(stem, c1, 1, norm) + block(c1, c1, 1, norm)
            + block(c1, c2, 2, norm) + block(c2, c2, 1, norm)
            + block(c2, c3, 2, norm) + block(c3, c3, 1, norm)
            + conv(1, 1, c3, output_dim))


# RAFT (raft.py: fnet BasicEncoder(256, instance), cnet BasicEncoder(128 + 128, batch);
# update.py BasicUpdateBlock with corr_levels 4, radius 4: cor_planes = 4 * 9^2 = 324).
RAFT_FNET = encoder(residual_block, (64, 64, 96, 128), 256, norm=0)
RAFT_CNET = encoder(residual_block, (64, 64, 96, 128), 256, norm=2)
RAFT_MOTION = (conv(1, 1, 324, 256) + conv(3, 3, 256, 192)        # convc1, convc2
               + conv(7, 7, 2, 128) + conv(3, 3, 128, 64)          # convf1, convf2
               + conv(3, 3, 64 + 192, 128 - 2))                    # conv
RAFT_GRU = 3 * conv(1, 5, 128 + 256, 128) + 3 * conv(5, 1, 128 + 256, 128)  # SepConvGRU(128, 128 + 128)
RAFT_FLOW_HEAD = conv(3, 3, 128, 256) + conv(3, 3, 256, 2)        # FlowHead(128, 256)
RAFT_MASK = conv(3, 3, 128, 256) + conv(1, 1, 256, 8 ** 2 * 9)    # mask: 3x3 -> ReLU -> 1x1
RAFT_UPDATE = RAFT_MOTION + RAFT_GRU + RAFT_FLOW_HEAD + RAFT_MASK

# RAFT-small (fnet SmallEncoder(128, instance), cnet SmallEncoder(96 + 64, none); SmallUpdateBlock
# with radius 3: cor_planes = 4 * 7^2 = 196).
SMALL_FNET = encoder(bottleneck_block, (32, 32, 64, 96), 128, norm=0)
SMALL_CNET = encoder(bottleneck_block, (32, 32, 64, 96), 96 + 64, norm=0)
SMALL_MOTION = (conv(1, 1, 196, 96)                                # convc1
                + conv(7, 7, 2, 64) + conv(3, 3, 64, 32)           # convf1, convf2
                + conv(3, 3, 128, 80))                             # conv (96 + 32 -> 80)
SMALL_GRU = 3 * conv(3, 3, 96 + 82 + 64, 96)                       # ConvGRU(96, 82 + 64)
SMALL_FLOW_HEAD = conv(3, 3, 96, 128) + conv(3, 3, 128, 2)         # FlowHead(96, 128)
SMALL_UPDATE = SMALL_MOTION + SMALL_GRU + SMALL_FLOW_HEAD


def test_reference_arithmetic_gives_the_published_sizes():
    # Layer by layer: RAFT 1,066,848 + 1,069,728 + (902,654 + 1,475,328 + 299,778 + 443,200);
    # RAFT-small 55,264 + 58,368 + (135,952 + 627,552 + 113,026). README / paper: 5.3M and 1.0M.
    assert (RAFT_FNET, RAFT_CNET) == (1_066_848, 1_069_728)
    assert (RAFT_MOTION, RAFT_GRU, RAFT_FLOW_HEAD, RAFT_MASK) == (902_654, 1_475_328, 299_778, 443_200)
    assert RAFT_FNET + RAFT_CNET + RAFT_UPDATE == 5_257_536
    assert (SMALL_FNET, SMALL_CNET) == (55_264, 58_368)
    assert (SMALL_MOTION, SMALL_GRU, SMALL_FLOW_HEAD) == (135_952, 627_552, 113_026)
    assert SMALL_FNET + SMALL_CNET + SMALL_UPDATE == 990_162


def test_parameter_counts_equal_the_reference(raft, small):
    assert (_trainable(raft.fnet), _trainable(raft.cnet), _trainable(raft.update_block)) == (
        RAFT_FNET, RAFT_CNET, RAFT_UPDATE)
    assert (_trainable(raft.update_block.encoder), _trainable(raft.update_block.gru),
            _trainable(raft.update_block.flow_head), _trainable(raft.update_block.mask)) == (
        RAFT_MOTION, RAFT_GRU, RAFT_FLOW_HEAD, RAFT_MASK)
    assert _trainable(raft) == 5_257_536
    # the batch norms' moving statistics (not parameters in PyTorch): mean and variance per channel
    bn_channels = 64 + 2 * 64 * 2 + (2 + 1) * 96 + 2 * 96 + (2 + 1) * 128 + 2 * 128
    assert raft.count_params() - _trainable(raft) == 2 * bn_channels == 2_880
    assert (_trainable(small.fnet), _trainable(small.cnet), _trainable(small.update_block)) == (
        SMALL_FNET, SMALL_CNET, SMALL_UPDATE)
    assert small.count_params() == _trainable(small) == 990_162


def test_layer_shapes_follow_the_reference(raft, small):
    update = raft.update_block
    assert update.encoder.convc1.kernel.shape == (1, 1, 324, 256)
    assert update.gru.convz1.kernel.shape == (1, 5, 384, 128)
    assert update.gru.convq2.kernel.shape == (5, 1, 384, 128)
    assert update.mask.conv2.kernel.shape == (1, 1, 256, 576)
    assert small.update_block.encoder.convc1.kernel.shape == (1, 1, 196, 96)
    assert small.update_block.gru.convz.kernel.shape == (3, 3, 242, 96)
    assert small.update_block.mask is None
    assert raft.cnet.layer2_0.norm3.moving_variance.shape == (96,)  # BatchNorm on the shortcut
    names = [w.path for w in raft.weights]
    assert len(set(names)) == len(names)
    images = tf.zeros([1, 40, 24, 3])
    assert raft.fnet(images).shape == (1, 5, 3, 256) and small.cnet(images).shape == (1, 5, 3, 160)


# ------------------------------------------------------------------ ops against numpy loops
def test_bilinear_sample_matches_loops_and_backward_warp():
    image = RNG.uniform(size=(2, 5, 7, 3)).astype(np.float32)
    positions = RNG.uniform(-2, 8, size=(2, 4, 3, 2)).astype(np.float32)  # some outside
    positions[0, 0, 0] = (6.0, 4.0)  # the last pixel exactly
    got = ops.bilinear_sample(image, positions).numpy()
    assert got.shape == (2, 4, 3, 3)
    for n in range(2):
        for i in range(4):
            for j in range(3):
                np.testing.assert_allclose(got[n, i, j], ref.bilinear_sample(image[n], *positions[n, i, j]), atol=1e-6)
    flow = RNG.normal(scale=2.0, size=(2, 5, 7, 2)).astype(np.float32)
    grid = np.stack(np.meshgrid(np.arange(7), np.arange(5)), axis=-1).astype(np.float32)
    np.testing.assert_allclose(ops.bilinear_sample(image, grid + flow), ops.backward_warp(image, flow)[0], atol=1e-6)


def test_all_pairs_correlation_matches_loops():
    f1 = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    f2 = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    got = all_pairs_correlation(f1, f2).numpy()
    assert got.shape == (2, 3, 4, 3, 4)
    np.testing.assert_allclose(got, ref.all_pairs_correlation(f1, f2), atol=1e-5)


def test_correlation_pyramid_pools_odd_sizes_into_partial_cells():
    volume = RNG.normal(size=(1, 2, 3, 5, 7)).astype(np.float32)
    pyramid = correlation_pyramid(volume, num_levels=4)
    assert [tuple(level.shape) for level in pyramid] == [(6, 5, 7, 1), (6, 3, 4, 1), (6, 2, 2, 1), (6, 1, 1, 1)]
    want = volume[0, 1, 2]  # frame-1 pixel (1, 2) is row 1 * 3 + 2
    for level in pyramid:
        np.testing.assert_allclose(level[5, ..., 0], want, atol=1e-6)
        want = ref.average_pool_2x2(want)


@pytest.mark.parametrize("radius, levels", [(1, 3), (3, 4)])
def test_lookup_matches_loops(radius, levels):
    b, h, w = 2, 5, 6
    volume = RNG.normal(size=(b, h, w, h, w)).astype(np.float32)
    targets = RNG.uniform(-3, 8, size=(b, h, w, 2)).astype(np.float32)
    got = lookup_correlation(correlation_pyramid(volume, levels), targets, radius).numpy()
    assert got.shape == (b, h, w, levels * (2 * radius + 1) ** 2)
    np.testing.assert_allclose(got, ref.correlation_lookup(volume, targets, radius, levels), atol=1e-5)


def test_lookup_at_integer_targets_reads_the_volume_x_major():
    volume = RNG.normal(size=(1, 4, 4, 4, 4)).astype(np.float32)
    grid = np.stack(np.meshgrid(np.arange(4), np.arange(4)), axis=-1)[None].astype(np.float32)
    window = lookup_correlation(correlation_pyramid(volume, 1), grid, radius=1).numpy()
    # pixel (y, x) = (1, 2): channel (dx + 1) * 3 + (dy + 1) holds volume[.., 1 + dy, 2 + dx]
    assert window[0, 1, 2, 0 * 3 + 1] == volume[0, 1, 2, 1, 1]  # dx = -1, dy = 0
    assert window[0, 1, 2, 1 * 3 + 2] == volume[0, 1, 2, 2, 2]  # dx = 0, dy = +1


@pytest.mark.parametrize("factor", [2, 8])
def test_convex_upsample_matches_loops(factor):
    flow = RNG.normal(size=(2, 3, 4, 2)).astype(np.float32)
    mask = RNG.normal(scale=2.0, size=(2, 3, 4, 9 * factor ** 2)).astype(np.float32)
    got = convex_upsample(flow, mask, factor).numpy()
    assert got.shape == (2, 3 * factor, 4 * factor, 2)
    np.testing.assert_allclose(got, ref.convex_upsample(flow, mask, factor), atol=1e-5)


def test_convex_upsample_of_constant_flow_inside_is_the_scaled_flow():
    flow = np.ones((1, 4, 5, 2), np.float32) * [1.5, -2.0]
    mask = RNG.normal(size=(1, 4, 5, 9 * 64)).astype(np.float32)
    inside = convex_upsample(flow, mask).numpy()[0, 8:-8, 8:-8]  # fine pixels whose 9 neighbours exist
    np.testing.assert_allclose(inside, np.broadcast_to(8 * flow[0, 0, 0], inside.shape), rtol=1e-5)


def test_gradients_match_finite_differences():
    def check(fn, *args):
        theoretical, numerical = tf.test.compute_gradient(tf.function(fn), [tf.constant(a, tf.float64) for a in args],
                                                          delta=1e-5)
        for t, n in zip(theoretical, numerical):
            np.testing.assert_allclose(t, n, atol=1e-6)

    image = RNG.normal(size=(2, 3, 4, 2))
    positions = np.floor(RNG.uniform(-1, 4, size=(2, 5, 2))) + RNG.uniform(0.1, 0.9, size=(2, 5, 2))
    check(ops.bilinear_sample, image, positions)
    check(all_pairs_correlation, RNG.normal(size=(1, 2, 3, 4)), RNG.normal(size=(1, 2, 3, 4)))
    targets = np.floor(RNG.uniform(-1, 3, size=(1, 2, 3, 2))) + RNG.uniform(0.1, 0.9, size=(1, 2, 3, 2))
    check(lambda v: lookup_correlation(correlation_pyramid(v, 2), targets, 1), RNG.normal(size=(1, 2, 3, 2, 3)))
    check(lambda f, m: convex_upsample(f, m, 2), RNG.normal(size=(1, 2, 3, 2)), RNG.normal(size=(1, 2, 3, 36)))


# ------------------------------------------------------------------ the output contract
def test_outputs_are_the_flow_and_every_iteration(small):
    out = small(_frames())
    assert sorted(out) == ["flow", "flow_iterations"]
    assert out["flow"].shape == (2, 64, 64, 2) and out["flow"].dtype == tf.float32
    assert out["flow_iterations"].shape == (2, 2, 64, 64, 2)
    np.testing.assert_array_equal(out["flow_iterations"][:, -1], out["flow"])
    assert RAFTSmall(iterations=3)(_frames(batch=1))["flow_iterations"].shape == (1, 3, 64, 64, 2)


@pytest.mark.parametrize("model_name", ["small", "raft"])
def test_bidirectional_is_both_calls_in_one_batch(model_name, request):
    model = request.getfixturevalue(model_name)
    frames = _frames()
    both = model.bidirectional(frames)
    assert sorted(both) == ["backward", "forward"]
    for direction, pair in (("forward", frames), ("backward", frames[:, ::-1])):
        single = model(pair)
        for key in ("flow", "flow_iterations"):
            np.testing.assert_allclose(both[direction][key], single[key], atol=1e-4)


def test_frames_are_checked(small):
    with pytest.raises(ValueError, match="multiple of 8"):
        small(tf.zeros([1, 2, 60, 64, 3]))
    with pytest.raises(ValueError, match=r"\[B, 2, H, W, 3\]"):
        small(tf.zeros([1, 3, 64, 64, 3]))
    with pytest.raises(ValueError, match="iterations"):
        RAFTSmall(iterations=0)


def test_gradient_reaches_every_weight_and_batch_norm_stays_frozen(raft):
    frames = _frames(batch=1)
    statistics = [w.numpy() for w in raft.non_trainable_weights]
    with tf.GradientTape() as tape:
        out = raft.bidirectional(frames)
        loss = tf.reduce_mean(tf.abs(out["forward"]["flow_iterations"])) + tf.reduce_mean(out["backward"]["flow"])
    grads = tape.gradient(loss, raft.trainable_weights)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
    np.testing.assert_array_equal(raft(frames, training=True)["flow"], raft(frames)["flow"])
    for before, after in zip(statistics, raft.non_trainable_weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_predict_flow_and_predict_tensor_take_raft(small):
    frames = (_frames(batch=1, height=64, width=80).numpy()[0] * 255).astype(np.uint8)  # [2, H, W, 3]
    direct = small(tf.constant(frames[None] / 255.0, tf.float32))["flow"].numpy()[0]
    np.testing.assert_allclose(predict_tensor(small, frames[None]).numpy()[0], direct, atol=1e-5)
    # any size: resized up to multiples of 8 (60x70 -> 64x72) and the flow resized back, in numpy
    crop = frames[:, :60, :70]
    resized = np.stack([ref.resize_bilinear(f / 255.0, (64, 72)) for f in crop])
    flow = small(tf.constant(resized[None], tf.float32))["flow"].numpy()[0]
    want = ref.resize_bilinear(flow, (60, 70)) * [70 / 72, 60 / 64]
    np.testing.assert_allclose(predict_flow(small, list(crop)), want, atol=1e-4)


def test_evaluation_scores_raft_like_predict_flow(small):
    frames = (_frames(batch=2).numpy() * 255).astype(np.uint8)
    truth = RNG.normal(scale=2.0, size=(2, 64, 64, 2)).astype(np.float32)
    valid = RNG.uniform(size=(2, 64, 64, 1)) < 0.8
    batch = {"frames": frames, "flow": truth, "valid": valid, "occlusion": np.zeros_like(valid),
             "has_flow": np.ones(2, bool), "has_occlusion": np.ones(2, bool)}
    result = evaluate_model(small, [batch])
    expected = FlowMetrics()
    for n in range(2):
        expected.update(predict_flow(small, list(frames[n])), truth[n], valid=valid[n],
                        occluded=np.zeros_like(valid[n]))
    assert result["num_images"] == 2
    assert result["epe_all/pixel_pooled"] == pytest.approx(expected.result()["epe_all/pixel_pooled"], rel=1e-5)


def test_stereo_and_serving_take_raft(small):
    frames = (_frames(batch=1).numpy() * 255).astype(np.uint8)
    left, right = frames[:, 0], frames[:, 1]
    flow = small(tf.constant(frames / 255.0, tf.float32))["flow"].numpy()
    disparity = StereoFromFlow(small).disparity(left, right).numpy()
    np.testing.assert_allclose(disparity[..., 0], -flow[..., 0], atol=1e-5)
    served = serving_function(small)(tf.constant(left), tf.constant(right))["flow"].numpy()
    np.testing.assert_allclose(served, flow, atol=1e-5)


def test_trainer_builds_raft_on_its_smallest_input(small):
    build_model(small)  # [1, 2, 8, 8, 3]: a 1x1 correlation volume at 1/8 resolution
    assert small(tf.zeros([1, 2, 8, 16, 3]))["flow"].shape == (1, 8, 16, 2)


def test_registry_config_and_model_json_round_trip(small, tmp_path):
    assert get_architecture("raft") is RAFT and get_architecture("RAFTSmall") is RAFTSmall
    assert isinstance(get_model("raft_small", iterations=1), RAFTSmall)
    assert small.get_config() == {"name": small.name, "trainable": True, "iterations": 2, "correlation": "all_pairs"}
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(small))
    assert isinstance(clone, RAFTSmall) and clone.iterations == 2
    tf.train.Checkpoint(model=small).write(str(tmp_path / "ckpt"))
    checkpoints.save_model_description(small, str(tmp_path))
    assert json.loads((tmp_path / "model.json").read_text())["class"] == "RAFTSmall"
    loaded, _ = checkpoints.load_model(str(tmp_path))
    assert isinstance(loaded, RAFTSmall) and loaded.iterations == 2
    frames = _frames(batch=1)
    np.testing.assert_array_equal(loaded(frames)["flow"], small(frames)["flow"])
    more, _ = checkpoints.load_model(str(tmp_path), model_params={"iterations": 4})
    assert more(frames)["flow_iterations"].shape[1] == 4


def test_mixed_precision_keeps_the_flow_in_float32():
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = RAFTSmall(iterations=1)
        out = model(_frames(batch=1))
    finally:
        keras.mixed_precision.set_global_policy(policy)
    assert model.fnet.conv1.compute_dtype == "bfloat16"
    assert out["flow"].dtype == tf.float32 and np.isfinite(out["flow"].numpy()).all()
