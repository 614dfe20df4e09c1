"""Augmentations and the tf.data pipeline, checked against numpy / scipy references."""
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

import tfds_builders
from dflow_tf.data import augment as aug, pipeline, render, schema
from dflow_tf.data.seeds import split_int_seed

SEED = tf.constant([3, 11], tf.int64)


def _warp(image, flow):
    """Independent bilinear backward warp (scipy), edge-clamped."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = [ys + flow[..., 1], xs + flow[..., 0]]
    return np.stack([ndimage.map_coordinates(image[..., c], coords, order=1, mode="nearest")
                     for c in range(image.shape[-1])], -1)


@pytest.fixture(scope="module")
def synthetic_sample():
    """A decoded-style sample (all keys) of a rendered 48x64 five-frame scene."""
    spec = render.SceneSpec(height=48, width=64, max_translation=2.0, min_layers=1, max_layers=2)
    s = render.render_sample(spec, np.random.default_rng(5))
    return {
        schema.FRAMES: tf.constant(s["frames"] / 255.0, tf.float32),
        schema.FLOW: tf.constant(s["flow_fw"][2]),
        schema.VALID: tf.ones([48, 64, 1]),
        schema.OCCLUSION: tf.constant(s["occlusion_fw"][2], tf.float32),
        schema.FLOW_FW: tf.constant(s["flow_fw"]),
        schema.FLOW_BW: tf.constant(s["flow_bw"]),
        schema.OCCLUSION_FW: tf.constant(s["occlusion_fw"], tf.float32),
        schema.OCCLUSION_BW: tf.constant(s["occlusion_bw"], tf.float32),
    }


def _coordinate_sample(h=10, w=14, n=3):
    """Frames and flow that encode their own coordinates (to locate crops and flips)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.stack([np.stack([xs / w, ys / h, np.full_like(xs, t / n)], -1) for t in range(n)])
    flow = np.stack([xs, ys + 100.0], -1)
    return {schema.FRAMES: tf.constant(frames), schema.FLOW: tf.constant(flow),
            schema.VALID: tf.constant((xs % 2 == 0)[..., None].astype(np.float32)),
            schema.OCCLUSION: tf.zeros([h, w, 1])}


def _photometric_error(sample, pair=2):
    frames = sample[schema.FRAMES].numpy().astype(np.float64)
    keep = sample[schema.OCCLUSION_FW].numpy()[pair, ..., 0] == 0
    warped = _warp(frames[pair + 1], sample[schema.FLOW_FW].numpy()[pair])
    return np.abs(warped - frames[pair]).mean(-1)[keep].mean()


# ----------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("flip", [aug.flip_left_right, aug.flip_up_down,
                                  lambda s: aug.flip_up_down(aug.flip_left_right(s))])
def test_flipped_sample_still_warps(synthetic_sample, flip):
    base_error = _photometric_error(synthetic_sample)
    flipped = flip(synthetic_sample)
    for pair in range(4):
        assert _photometric_error(flipped, pair) < max(0.012, 1.5 * base_error)
    # The warp of flipped frame 2 by the flipped flow is the flipped warp of frame 2.
    assert _photometric_error(flipped) == pytest.approx(base_error, rel=0.05, abs=1e-3)


def test_flips_mirror_and_negate():
    sample = _coordinate_sample()
    flow = sample[schema.FLOW].numpy()
    lr = aug.flip_left_right(sample)[schema.FLOW].numpy()
    np.testing.assert_array_equal(lr, flow[:, ::-1] * [-1, 1])
    ud = aug.flip_up_down(sample)
    np.testing.assert_array_equal(ud[schema.FLOW].numpy(), flow[::-1] * [1, -1])
    np.testing.assert_array_equal(ud[schema.FRAMES].numpy(), sample[schema.FRAMES].numpy()[:, ::-1])
    np.testing.assert_array_equal(ud[schema.VALID].numpy(), sample[schema.VALID].numpy()[::-1])


def test_random_crop_keeps_flow_values_and_aligns_all_keys():
    sample = _coordinate_sample()
    offsets = set()
    for i in range(6):
        out = aug.pad_or_crop(sample, (4, 5), seed=tf.constant([i, 1], tf.int64))
        flow = out[schema.FLOW].numpy()
        ox, oy = int(flow[0, 0, 0]), int(flow[0, 0, 1] - 100)
        offsets.add((oy, ox))
        ref = sample[schema.FLOW].numpy()[oy:oy + 4, ox:ox + 5]
        np.testing.assert_array_equal(flow, ref)  # values unchanged, not shifted
        np.testing.assert_array_equal(out[schema.FRAMES].numpy(),
                                      sample[schema.FRAMES].numpy()[:, oy:oy + 4, ox:ox + 5])
        np.testing.assert_array_equal(out[schema.VALID].numpy(),
                                      sample[schema.VALID].numpy()[oy:oy + 4, ox:ox + 5])
    assert len(offsets) > 1


def test_pad_or_crop_variable_sizes():
    sample = _coordinate_sample(h=6, w=20)
    out = aug.pad_or_crop(sample, (8, 10))  # taller: pad rows; wider: centred crop
    assert out[schema.FRAMES].shape == (3, 8, 10, 3)
    np.testing.assert_array_equal(out[schema.FLOW].numpy()[:6], sample[schema.FLOW].numpy()[:, 5:15])
    assert not out[schema.VALID].numpy()[6:].any() and not out[schema.FRAMES].numpy()[:, 6:].any()


def test_sparse_resize_never_spreads_invalid():
    rng = np.random.default_rng(0)
    h, w = 20, 30
    valid = rng.random((h, w)) < 0.3
    flow = np.where(valid[..., None], rng.uniform(-5, 5, (h, w, 2)), 1e4).astype(np.float32)
    occluded = valid & (rng.random((h, w)) < 0.3)
    sample = {schema.FRAMES: tf.zeros([2, h, w, 3]), schema.FLOW: tf.constant(flow),
              schema.VALID: tf.constant(valid[..., None], tf.float32),
              schema.OCCLUSION: tf.constant(occluded[..., None], tf.float32)}
    for size in [(10, 12), (37, 41)]:
        out = aug.resize(sample, size, sparse=True)
        new_valid = out[schema.VALID].numpy()[..., 0] > 0
        new_flow = out[schema.FLOW].numpy()
        scale = np.array([size[1] / w, size[0] / h])
        assert np.all(np.abs(new_flow[new_valid]) <= 5 * scale.max() + 1e-4)
        # A target pixel is valid iff a valid source centre falls in it (numpy reference).
        ty = np.minimum(((np.arange(h) + 0.5) * size[0] / h).astype(int), size[0] - 1)
        tx = np.minimum(((np.arange(w) + 0.5) * size[1] / w).astype(int), size[1] - 1)
        expected = np.zeros(size, bool)
        ys, xs = np.nonzero(valid)
        expected[ty[ys], tx[xs]] = True
        np.testing.assert_array_equal(new_valid, expected)
        occ = out[schema.OCCLUSION].numpy()[..., 0] > 0
        assert not (occ & ~new_valid).any()


def test_dense_resize_scales_vectors(synthetic_sample):
    out = aug.resize(synthetic_sample, (24, 96), sparse=False)
    assert out[schema.FRAMES].shape == (5, 24, 96, 3) and out[schema.FLOW_FW].shape == (4, 24, 96, 2)
    mean_in = synthetic_sample[schema.FLOW].numpy().mean((0, 1))
    mean_out = out[schema.FLOW].numpy().mean((0, 1))
    np.testing.assert_allclose(mean_out, mean_in * [1.5, 0.5], rtol=0.05, atol=0.02)


# --------------------------------------------------------------------------- appearance

def test_channel_permutation_is_shared_by_all_frames():
    frames = np.broadcast_to(np.array([0.1, 0.5, 0.9], np.float32), (3, 4, 5, 3)).copy()
    frames += np.arange(3, dtype=np.float32)[:, None, None, None] * 0.02  # frames differ
    sample = {schema.FRAMES: tf.constant(frames)}
    orders = set()
    for i in range(12):
        out = aug.random_channel_permutation(sample, tf.constant([i, 0], tf.int64))[schema.FRAMES].numpy()
        # Output channel k is input channel order[k], read off frame 0.
        order = [int(np.argmin(np.abs(frames[0, 0, 0] - value))) for value in out[0, 0, 0]]
        assert sorted(order) == [0, 1, 2]
        np.testing.assert_array_equal(out, frames[..., order])  # the same for every frame
        orders.add(tuple(order))
    assert len(orders) >= 3


def test_photometric_jitter_is_identical_for_all_frames():
    frame = np.random.default_rng(0).uniform(0, 1, (6, 7, 3)).astype(np.float32)
    sample = {schema.FRAMES: tf.constant(np.stack([frame, frame, frame])),
              schema.FLOW: tf.ones([6, 7, 2])}
    out = aug.photometric_jitter(sample, SEED, aug.Photometric())
    jittered = out[schema.FRAMES].numpy()
    np.testing.assert_allclose(jittered[0], jittered[1], atol=1e-6)
    np.testing.assert_allclose(jittered[0], jittered[2], atol=1e-6)
    assert jittered.min() >= 0 and jittered.max() <= 1
    assert np.abs(jittered[0] - frame).mean() > 1e-3
    np.testing.assert_array_equal(out[schema.FLOW].numpy(), 1.0)


def test_augment_is_deterministic_for_a_seed(synthetic_sample):
    config = aug.Augmentation(photometric=aug.Photometric())
    a = aug.augment(synthetic_sample, SEED, config)
    b = aug.augment(synthetic_sample, SEED, config)
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


# ---------------------------------------------------------------------------- pipeline

@pytest.fixture(scope="module")
def synthetic_builder(tmp_path_factory):
    return pipeline.get_builder("synthetic_flow/tiny", data_dir=str(tmp_path_factory.mktemp("tfds")))


def _take(ds, n):
    return [{k: v.numpy() for k, v in batch.items()} for batch in ds.take(n)]


def _same(batches1, batches2):
    return all(np.array_equal(a[k], b[k]) for a, b in zip(batches1, batches2) for k in a)


def test_pipeline_shapes_and_reference_pair(synthetic_builder):
    ds = pipeline.make_dataset(synthetic_builder, "train", batch_size=2, crop_size=(24, 32),
                               num_frames=3, augmentation=None, shuffle=False, prepare=False)
    batch = next(iter(ds))
    assert batch[schema.FRAMES].shape == (2, 3, 24, 32, 3)
    assert batch[schema.FLOW_FW].shape == (2, 2, 24, 32, 2)
    # frames 1..3 of 5 kept: the reference pair 2->3 is now pair 1->2, still `flow`.
    np.testing.assert_array_equal(batch[schema.FLOW].numpy(), batch[schema.FLOW_FW].numpy()[:, 1])


def test_pipeline_is_deterministic_and_seed_dependent(synthetic_builder):
    make = lambda seed: pipeline.make_dataset(  # noqa: E731
        synthetic_builder, "train", batch_size=2, crop_size=(24, 40), seed=seed, prepare=False,
        augmentation=aug.Augmentation(photometric=aug.Photometric()))
    first, again, other = _take(make(1), 3), _take(make(1), 3), _take(make(2), 3)
    assert _same(first, again)
    assert not _same(first, other)


def test_pipeline_iterator_is_checkpointable(synthetic_builder, tmp_path):
    ds = pipeline.make_dataset(synthetic_builder, "train", batch_size=2, crop_size=(24, 40),
                               seed=4, prepare=False)
    iterator = iter(ds)
    next(iterator)
    checkpoint = tf.train.Checkpoint(iterator=iterator)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    expected = [{k: v.numpy() for k, v in next(iterator).items()} for _ in range(3)]
    checkpoint.restore(path)
    resumed = [{k: v.numpy() for k, v in next(iterator).items()} for _ in range(3)]
    assert _same(expected, resumed)


def test_kitti_pipeline_crops_sparse_ground_truth(tmp_path):
    manual = tfds_builders.KittiFlow.code_path.parent / "dummy_data"
    ds = pipeline.make_dataset("kitti_flow/2015", "train", batch_size=2, crop_size=(12, 20),
                               resize_to=(14, 26), data_dir=str(tmp_path), manual_dir=str(manual),
                               seed=0)
    batch = next(iter(ds))
    assert batch[schema.FRAMES].shape == (2, 2, 12, 20, 3)
    sizes = {b"000000_10": (14, 24), b"000001_10": (16, 28)}  # make_dummy_data.py
    for i, example_id in enumerate(batch[schema.ID].numpy()):
        valid = batch[schema.VALID].numpy()[i, ..., 0] > 0
        flow = batch[schema.FLOW].numpy()[i]
        h, w = sizes[example_id]
        # Ground truth (1, 0.5) px wherever valid; resized per axis, signs flipped by flips.
        assert 0.1 < valid.mean() < 0.9
        expected = np.broadcast_to([26 / w, 0.5 * 14 / h], flow[valid].shape)
        np.testing.assert_allclose(np.abs(flow[valid]), expected, rtol=1e-5)
        assert not flow[~valid].any()


def test_split_int_seed_gives_distinct_reproducible_int_seeds():
    """The int seeds of a MixedSource's sources: one per source, each its own, the same on every call."""
    seeds = split_int_seed(3, 4)
    assert seeds == split_int_seed(3, 4) and len(set(seeds)) == 4
    assert all(isinstance(s, int) and 0 <= s < 2 ** 31 for s in seeds)
    assert not set(split_int_seed(4, 4)) & set(seeds)
