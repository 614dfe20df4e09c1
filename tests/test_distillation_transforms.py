"""Student transformations (docs/method.md §3.2-§3.6) against numpy / scipy / skimage references."""
import gin
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf
from skimage.segmentation import slic

from dflow_tf import ops
from dflow_tf.distillation import transforms
from dflow_tf.distillation.transforms import (
    StudentTransforms,
    affine_transform,
    appearance,
    crop_window,
    noised_correspondences,
    random_affine,
    sample_affine,
    superpixel_noise,
)

SEED = tf.constant([3, 7], tf.int32)


def smooth_frames(shape, seed=0, sigma=3.0):
    """Random smooth images in [0, 1], shape [..., H, W, C]."""
    noise = np.random.default_rng(seed).random(shape)
    smooth = scipy.ndimage.gaussian_filter(noise, [0] * (len(shape) - 3) + [sigma, sigma, 0])
    low, high = smooth.min(), smooth.max()
    return ((smooth - low) / (high - low)).astype(np.float32)


def coordinate_frames(batch, num, height, width):
    """frames[b, n, y, x] = (y / H, x / W, (n + 1) / (N + 1)): every pixel names its position."""
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    frame = np.stack([ys / height, xs / width, np.zeros_like(xs, float)], axis=-1)
    frames = np.tile(frame[None, None], [batch, num, 1, 1, 1])
    frames[..., 2] = ((np.arange(num) + 1) / (num + 1))[None, :, None, None]
    return frames.astype(np.float32)


# ------------------------------------------------------------------------------ (a) crop

def test_crop_keeps_values_and_window_consistency():
    batch, num, height, width, size = 4, 3, 20, 30, (8, 12)
    frames = coordinate_frames(batch, num, height, width)
    rng = np.random.default_rng(1)
    maps = {"flow": rng.normal(size=(batch, height, width, 2)).astype(np.float32),
            "mask": (rng.random((batch, height, width, 1)) > 0.5).astype(np.float32)}
    out_frames, out_maps = crop_window(frames, maps, size, SEED)
    assert out_frames.shape == (batch, num, 8, 12, 3)
    offsets = set()
    for b in range(batch):
        oy = int(round(float(out_frames[b, 0, 0, 0, 0]) * height))
        ox = int(round(float(out_frames[b, 0, 0, 0, 1]) * width))
        offsets.add((oy, ox))
        window = np.s_[oy:oy + size[0], ox:ox + size[1]]
        np.testing.assert_array_equal(out_frames[b], frames[b][:, oy:oy + size[0], ox:ox + size[1]])
        for key in maps:
            np.testing.assert_array_equal(out_maps[key][b], maps[key][b][window])
    assert len(offsets) > 1  # offsets are drawn per element
    again, _ = crop_window(frames, maps, size, SEED)
    np.testing.assert_array_equal(again, out_frames)
    with pytest.raises(ValueError, match="crop size"):
        crop_window(frames, maps, (21, 12), SEED)


# -------------------------------------------------------------------- (b) superpixel noise

def test_superpixel_noise_replaces_whole_chosen_superpixels():
    frames = smooth_frames((2, 3, 48, 64, 3))
    noised, mask = superpixel_noise(frames, 2, SEED)
    noised, mask = noised.numpy(), mask.numpy()[..., 0]
    np.testing.assert_array_equal(noised[:, :2], frames[:, :2])  # other frames untouched
    for b in range(2):
        changed = np.any(noised[b, 2] != frames[b, 2], axis=-1)
        np.testing.assert_array_equal(changed, mask[b] > 0)
        labels = slic(frames[b, 2], n_segments=200, compactness=10.0, start_label=0, channel_axis=-1)
        fractions = np.array([mask[b][labels == k].mean() for k in np.unique(labels)])
        assert np.all((fractions == 0) | (fractions == 1))  # whole superpixels only
        assert 8 <= int((fractions == 1).sum()) <= 15
        assert noised[b, 2].min() >= 0.0 and noised[b, 2].max() <= 1.0
    again, again_mask = superpixel_noise(frames, 2, SEED)
    np.testing.assert_array_equal(again, noised)
    np.testing.assert_array_equal(again_mask[..., 0], mask)
    _, other_mask = superpixel_noise(frames, 2, tf.constant([4, 7]))
    assert not np.array_equal(other_mask[..., 0], mask)


def test_superpixel_noise_in_tf_function_matches_eager():
    frames = smooth_frames((2, 2, 32, 40, 3))
    @tf.function(input_signature=[tf.TensorSpec([None, 2, 32, 40, 3]), tf.TensorSpec([2], tf.int32)])
    def noise(f, s):
        return superpixel_noise(f, 1, s, num_segments=50)
    graph_frames, graph_mask = noise(frames, SEED)
    eager_frames, eager_mask = superpixel_noise(frames, 1, SEED, num_segments=50)
    assert graph_mask.shape == (2, 32, 40, 1)
    np.testing.assert_array_equal(graph_frames, eager_frames)
    np.testing.assert_array_equal(graph_mask, eager_mask)


def test_noised_correspondences_on_translations():
    mask = np.zeros((1, 12, 16, 1), np.float32)
    mask[0, 4:8, 6:10] = 1.0
    flow = np.broadcast_to(np.array([3.0, 2.0], np.float32), (1, 12, 16, 2))
    expected = np.zeros_like(mask)
    expected[0, 2:6, 3:7] = 1.0  # p + (3, 2) in [6, 9] x [4, 7]
    np.testing.assert_array_equal(noised_correspondences(mask, flow), expected)
    half = np.broadcast_to(np.array([0.5, 0.0], np.float32), (1, 12, 16, 2))
    expected = np.zeros_like(mask)
    expected[0, 4:8, 5:10] = 1.0  # x + 0.5 touches a noised neighbour for x in [5, 9]
    np.testing.assert_array_equal(noised_correspondences(mask, half), expected)


# ----------------------------------------------------------------------- (c) geometric

def affine_parameters(scale, angle, flip_x, flip_y, translation):
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = scale * rotation @ np.diag([flip_x, flip_y])
    return matrix.astype(np.float32), np.asarray(translation, np.float32)


def forward_points(points, matrix, translation, height, width):
    """A(x) = M (x - c) + c + t for points [..., 2] (x, y), c the image centre."""
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    return (points - centre) @ matrix.T + centre + translation


def inverse_points(matrix, translation, height, width):
    """A^-1(q) for every output pixel q, [H, W, 2] (x, y), from A(x) = M (x - c) + c + t."""
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    q = np.stack([xs, ys], axis=-1).astype(np.float64)
    return (q - centre - translation) @ np.linalg.inv(matrix).T + centre


def test_affine_frames_and_flows_match_analytic_fields():
    height, width = 24, 32
    # Linear image encodings and a linear flow w(p) = B p + c: bilinear sampling is exact for both.
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    linear = np.stack([xs / width, ys / height, np.full_like(xs, 0.5, float)], axis=-1)
    frames = np.tile(linear[None, None], [2, 2, 1, 1, 1]).astype(np.float32)
    jacobian = np.array([[0.02, -0.01], [0.015, 0.03]])
    offset = np.array([1.5, -2.0])
    points = np.stack([xs, ys], axis=-1)
    flow = (points @ jacobian.T + offset).astype(np.float32)
    flows = {"fw": np.stack([flow, flow])}
    explicit = [affine_parameters(1.2, 0.01, -1, 1, (2.5, -1.5)),
                affine_parameters(1.05, -0.008, 1, -1, (0.0, 1.0))]
    explicit_map = (np.stack([m for m, _ in explicit]), np.stack([t for _, t in explicit]))
    drawn = sample_affine(SEED, 2, (height, width))
    for matrix, translation, via_seed in ((*explicit_map, False), (*[x.numpy() for x in drawn], True)):
        if via_seed:
            out_frames, out_flows, _, inside = random_affine(frames, flows, None, SEED)
        else:
            out_frames, out_flows, _, inside = affine_transform(frames, flows, None, matrix, translation)
        for b in range(2):
            source = inverse_points(matrix[b], translation[b], height, width)  # p = A^-1 q
            interior = inside[b, ..., 0].numpy() > 0
            expected_inside = ((source[..., 0] >= -1e-4) & (source[..., 0] <= width - 1 + 1e-4)
                               & (source[..., 1] >= -1e-4) & (source[..., 1] <= height - 1 + 1e-4))
            assert np.mean(interior == expected_inside) > 0.99
            # The frame at q shows the original content at p.
            np.testing.assert_allclose(out_frames[b, 1, ..., 0].numpy()[interior],
                                       source[..., 0][interior] / width, atol=1e-4)
            np.testing.assert_allclose(out_frames[b, 1, ..., 1].numpy()[interior],
                                       source[..., 1][interior] / height, atol=1e-4)
            # p moves to p + w(p), so q = A p moves to A(p + w(p)) = q + M w(p).
            target = source + source @ jacobian.T + offset
            expected_flow = (forward_points(target, matrix[b], translation[b], height, width)
                             - forward_points(source, matrix[b], translation[b], height, width))
            np.testing.assert_allclose(out_flows["fw"][b].numpy()[interior], expected_flow[interior], atol=1e-3)
            np.testing.assert_array_equal(out_flows["fw"][b].numpy()[~interior], 0.0)


def test_affine_keeps_warping_consistency():
    height, width = 40, 48
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    flow = np.stack([1.5 + 2.0 * np.sin(ys / 9.0), -1.0 + 1.5 * np.cos(xs / 11.0)], axis=-1)
    frame2 = smooth_frames((height, width, 3), seed=4, sigma=4.0).astype(np.float64)
    # frame1(p) = frame2(p + w(p)): the pair is consistent under w by construction.
    coords = [ys + flow[..., 1], xs + flow[..., 0]]
    frame1 = np.stack([scipy.ndimage.map_coordinates(frame2[..., c], coords, order=3, mode="nearest")
                       for c in range(3)], axis=-1)
    frames = np.stack([frame1, frame2])[None].astype(np.float32)
    matrix, translation = affine_parameters(1.25, 0.01, -1, 1, (1.0, -0.5))
    out_frames, out_flows, _, inside = affine_transform(frames, {"fw": flow[None].astype(np.float32)}, None,
                                                        matrix[None], translation[None])
    warped, target_inside = ops.backward_warp(out_frames[:, 1], out_flows["fw"])
    valid = (inside * target_inside).numpy()[0, ..., 0] > 0
    # Stay a pixel away from the border, where frame1 itself was built from clamped samples.
    valid[:2], valid[-2:], valid[:, :2], valid[:, -2:] = False, False, False, False
    assert valid.mean() > 0.5
    error = np.abs(warped[0].numpy() - out_frames[0, 0].numpy())[valid]
    print(f"\nconsistency error max {error.max():.4f} mean {error.mean():.5f}")
    assert error.max() < 0.02 and error.mean() < 0.003


def test_flips_negate_the_mirrored_component():
    rng = np.random.default_rng(2)
    frames = rng.random((2, 2, 6, 8, 3)).astype(np.float32)
    flow = rng.normal(size=(2, 6, 8, 2)).astype(np.float32)
    mask = (rng.random((2, 6, 8, 1)) > 0.5).astype(np.float32)
    for flip_x, flip_y, axis, sign in ((-1, 1, 2, [-1, 1]), (1, -1, 1, [1, -1])):
        matrix, translation = affine_parameters(1.0, 0.0, flip_x, flip_y, (0.0, 0.0))
        out_frames, out_flows, out_masks, inside = affine_transform(
            frames, {"f": flow}, {"m": mask}, np.stack([matrix] * 2), np.stack([translation] * 2))
        np.testing.assert_allclose(out_frames, np.flip(frames, axis + 1), atol=1e-6)
        np.testing.assert_allclose(out_flows["f"], np.flip(flow, axis) * sign, atol=1e-6)
        np.testing.assert_array_equal(out_masks["m"], np.flip(mask, axis))
        np.testing.assert_array_equal(inside, 1.0)
    # random_affine without zoom, rotation or translation: each element is either kept or mirrored.
    batch = 8
    frames = rng.random((batch, 2, 6, 8, 3)).astype(np.float32)
    flow = rng.normal(size=(batch, 6, 8, 2)).astype(np.float32)
    out_frames, out_flows, _, _ = random_affine(frames, {"f": flow}, None, SEED, zoom=(1.0, 1.0),
                                                max_rotation=0.0, max_translation=0.0)
    flipped = 0
    for b in range(batch):
        if np.allclose(out_frames[b], frames[b], atol=1e-6):
            np.testing.assert_allclose(out_flows["f"][b], flow[b], atol=1e-6)
        else:
            flipped += 1
            np.testing.assert_allclose(out_frames[b], np.flip(frames[b], 2), atol=1e-6)
            np.testing.assert_allclose(out_flows["f"][b], np.flip(flow[b], 1) * [-1, 1], atol=1e-6)
    assert 0 < flipped < batch


def test_affine_masks_and_inside_under_translation():
    mask = np.zeros((1, 6, 10, 1), np.float32)
    mask[0, 2:4, 3:6] = 1.0
    frames = np.zeros((1, 1, 6, 10, 3), np.float32)
    _, _, out_masks, inside = affine_transform(frames, None, {"m": mask}, np.eye(2, dtype=np.float32)[None],
                                               np.array([[4.0, 0.0]], np.float32))
    expected = np.zeros_like(mask)
    expected[0, 2:4, 7:10] = 1.0  # output q reads input q - (4, 0)
    np.testing.assert_array_equal(out_masks["m"], expected)
    expected_inside = np.zeros_like(mask)
    expected_inside[0, :, 4:] = 1.0
    np.testing.assert_array_equal(inside, expected_inside)


# ----------------------------------------------------------------------- (d) appearance

def test_appearance_range_determinism_and_window_alike():
    frames = smooth_frames((3, 2, 16, 20, 3))
    out = appearance(frames, SEED)
    assert out.shape == frames.shape
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0
    assert np.abs(out.numpy() - frames).mean() > 1e-3
    np.testing.assert_array_equal(appearance(frames, SEED), out)
    assert not np.array_equal(appearance(frames, tf.constant([3, 8])), out)
    # Jitter and blur without noise are the same for identical frames of one window.
    same = np.repeat(frames[:, :1], 2, axis=1)
    jittered = appearance(same, SEED, noise_std=(0.0, 0.0)).numpy()
    np.testing.assert_allclose(jittered[:, 0], jittered[:, 1], atol=1e-6)
    assert np.abs(jittered - same).mean() > 1e-3


def test_appearance_blur_matches_scipy_and_noise_std():
    frames = np.random.default_rng(5).random((2, 2, 12, 14, 3)).astype(np.float32)
    blurred = appearance(frames, SEED, photometric=None, noise_std=(0.0, 0.0), blur_sigma=(1.0, 1.0))
    expected = scipy.ndimage.gaussian_filter(frames.astype(np.float64), (0, 0, 1.0, 1.0, 0), mode="mirror",
                                             truncate=3.0)
    np.testing.assert_allclose(blurred, expected, atol=1e-5)
    sharp = appearance(frames, SEED, photometric=None, noise_std=(0.0, 0.0), blur_sigma=(0.0, 0.0))
    np.testing.assert_allclose(sharp, frames, atol=1e-6)
    grey = np.full((2, 2, 32, 32, 3), 0.5, np.float32)
    noisy = appearance(grey, SEED, photometric=None, noise_std=(0.02, 0.02), blur_sigma=(0.0, 0.0))
    assert abs(float(np.std(noisy.numpy() - grey)) - 0.02) < 0.001


# ---------------------------------------------------------------------------- everything

def teacher_targets(batch, height, width, seed=6):
    """Random teacher targets under the schema.TEACHER_KEYS."""
    rng = np.random.default_rng(seed)
    flows = {f"teacher_flow_{k}": rng.normal(size=(batch, height, width, 2)).astype(np.float32) for k in ("fw", "bw")}
    occlusions = {f"teacher_occlusion_{k}": (rng.random((batch, height, width, 1)) > 0.8).astype(np.float32)
                  for k in ("fw", "bw")}
    return {**flows, **occlusions}


def test_student_transforms_off_is_identity():
    frames = smooth_frames((2, 3, 16, 20, 3))
    targets = teacher_targets(2, 16, 20)
    out = StudentTransforms(superpixel=False).apply(frames, targets, SEED, pair_index=1)
    np.testing.assert_array_equal(out["frames"], frames)
    for key, value in targets.items():
        np.testing.assert_array_equal(out[key], value)
    for key in ("noise_mask_fw", "noise_mask_bw"):
        np.testing.assert_array_equal(out[key], 0.0)
    np.testing.assert_array_equal(out["inside"], 1.0)


def test_student_transforms_end_to_end():
    batch, num, height, width, size = 2, 3, 40, 48, (32, 40)
    frames = smooth_frames((batch, num, height, width, 3))
    targets = teacher_targets(batch, height, width)
    config = StudentTransforms(crop_size=size, superpixel=True, superpixel_segments=60, geometric=True,
                               max_translation=0.2, appearance=True, photometric={"brightness": 0.2})

    @tf.function
    def step(f, s):
        return config.apply(f, targets, s, pair_index=1)
    out = step(frames, SEED)
    assert out["frames"].shape == (batch, num, *size, 3)
    for key in ("fw", "bw"):
        assert out[f"teacher_flow_{key}"].shape == (batch, *size, 2)
        occlusion = out[f"teacher_occlusion_{key}"].numpy()
        assert occlusion.shape == (batch, *size, 1)
        assert set(np.unique(occlusion)) <= {0.0, 1.0}
        outside = out["inside"].numpy() == 0
        np.testing.assert_array_equal(occlusion[outside], 1.0)  # no source pixel: not confident
    assert out["inside"].numpy().mean() < 1.0  # a 20 % translation leaves uncovered pixels
    noise_bw = out["noise_mask_bw"].numpy()
    assert 0.0 < noise_bw.mean() < 1.0
    np.testing.assert_array_equal(out["noise_mask_fw"], noised_correspondences(noise_bw, out["teacher_flow_fw"]))
    assert float(tf.reduce_min(out["frames"])) >= 0.0 and float(tf.reduce_max(out["frames"])) <= 1.0
    again = step(frames, SEED)
    np.testing.assert_array_equal(again["frames"], out["frames"])


def test_student_transforms_is_gin_configurable():
    try:
        gin.parse_config("StudentTransforms.crop_size = (8, 16)\nStudentTransforms.photometric = {'hue': 0.0}")
        config = StudentTransforms()
        assert config.crop_size == (8, 16)
        assert config.photometric == transforms.Photometric(hue=0.0)
    finally:
        gin.clear_config()
