"""The student's input transformations (docs/method.md §3.2-§3.6), on batches of windows.

Tensors: frames float32 [B, N, H, W, 3] in [0, 1] (a window of N frames; the distilled pair is
frames[:, a] -> frames[:, a + 1]); flows float32 [B, H, W, 2] in pixels (u = x, v = y) on the
pixels of their source frame; masks float32 [B, H, W, 1] (teacher occlusion O_t: 1 = the teacher
is not confident). Every transform is deterministic given a stateless seed (int32/int64 [2]),
draws its parameters per batch element, and runs inside a tf.function (the superpixel noise uses
`tf.numpy_function`, so not under XLA; see `superpixels`).

(a) `crop_window`: the teacher sees the large crop, the student a random patch of it. A crop does
    not move pixels relative to each other, so flow values are kept; a correspondence that leaves
    the patch becomes a *hallucinated occlusion*: the student's own forward-backward check marks
    out-of-frame targets as occluded, while the teacher, having seen the large crop, stays
    confident there, so exactly these pixels enter the distillation mask clip(O_s - O_t, 0, 1).
(b) `superpixel_noise` / `noised_correspondences` (module `superpixels`).
(c) `random_affine`: one affine map A(x) = M (x - c) + c + t per window (c the image centre):
    zoom >= 1 (zooms in), small rotation, translation as a fraction of the size, flips (part of
    M). Frames are sampled backwards (output pixel q reads the input at A^-1(q)); a flow between
    two frames of the window becomes new_w(q) = M w(A^-1(q)) (point p = A^-1(q) moves to
    p + w(p), whose image is A(p + w(p)) = q + M w(p)). `inside` marks q with A^-1(q) in the
    source image; outside it the frames are black, flows are zero and the teacher must be treated
    as not confident (O_t := 1), which `StudentTransforms.apply` does.
(d) `appearance`: colour jitter (`dflow_tf.data.augment.photometric_jitter`, one draw per window),
    Gaussian blur and Gaussian noise; no flow or mask changes.

`StudentTransforms.apply` chains them in the order (c) geometric on the large crop, (a) crop,
(b) superpixel noise on the student's target frame a + 1, (d) appearance: the geometric transform
needs the large crop's margin to fill the patch, the noise must cover whole superpixels of the
student's own view, and appearance changes come last so they also cover the noised pixels.
"""
import dataclasses
import math

import gin
import tensorflow as tf

from dflow_tf import ops
from dflow_tf.data import schema
from dflow_tf.data.augment import Photometric, photometric_jitter
from dflow_tf.data.seeds import split_seed
from dflow_tf.distillation.superpixels import (
    NUM_NOISED,
    SLIC_COMPACTNESS,
    SLIC_SEGMENTS,
    noised_correspondences,
    superpixel_noise,
)
from dflow_tf.ops._checks import check_channels, check_rank

__all__ = ["StudentTransforms", "affine_transform", "appearance", "crop_window", "gaussian_blur",
           "noised_correspondences", "random_affine", "sample_affine", "superpixel_noise"]

#: Defaults of the geometric (c) and appearance (d) transforms, docs/method.md §3.5-§3.6
#: ([unverified] magnitudes, this implementation's choice).
ZOOM = (1.0, 1.4)
MAX_ROTATION = 0.01  # radians
MAX_TRANSLATION = 0.03  # fraction of the size
NOISE_STD = (0.0, 0.04)
BLUR_SIGMA = (0.0, 1.0)
#: The teacher targets that `StudentTransforms.apply` transforms as flows and as masks.
_TARGET_FLOWS = (schema.TEACHER_FLOW_FW, schema.TEACHER_FLOW_BW)
_TARGET_OCCLUSIONS = (schema.TEACHER_OCCLUSION_FW, schema.TEACHER_OCCLUSION_BW)


def _check_frames(frames):
    frames = tf.convert_to_tensor(frames, tf.float32)
    check_rank("frames", frames, 5)
    check_channels("frames", frames, 3)
    return frames


def _check_maps(name, maps, frames, channels=None):
    """float32 copies of the [B, H, W, C] tensors of dict `maps` (None = {}), checked against frames."""
    out = {}
    for key, value in (maps or {}).items():
        value = tf.convert_to_tensor(value, tf.float32)
        check_rank(f"{name}[{key!r}]", value, 4)
        if channels is not None:
            check_channels(f"{name}[{key!r}]", value, channels)
        for axis, frame_axis in ((0, 0), (1, 2), (2, 3)):
            if value.shape[axis] is not None and frames.shape[frame_axis] is not None \
                    and value.shape[axis] != frames.shape[frame_axis]:
                raise ValueError(f"`{name}[{key!r}]` must match `frames` in batch and spatial size, "
                                 f"got shapes {value.shape} and {frames.shape}")
        out[key] = value
    return out


# -------------------------------------------------------------------------------- (a) crop

def crop_window(frames, maps, size, seed):
    """The same random (h, w) crop of every frame of a window and of every map; offsets per element.

    Flow values are kept (a crop does not change displacements), so a flow whose target leaves the
    crop points outside the student's image: a hallucinated occlusion for the student (its
    forward-backward check marks out-of-frame targets), while the teacher stays confident.

    Args:
      frames: float32 [B, N, H, W, 3].
      maps: dict of float [B, H, W, C] tensors (flows, masks), cropped alike; None = {}.
      size: (h, w) Python ints, h <= H, w <= W.
      seed: int32/int64 [2]; offset_y ~ uniform{0..H-h}, offset_x ~ uniform{0..W-w} per element.

    Returns:
      frames [B, N, h, w, 3], dict of maps [B, h, w, C].
    """
    frames = _check_frames(frames)
    maps = _check_maps("maps", maps, frames)
    height, width = int(size[0]), int(size[1])
    static_h, static_w = frames.shape[2], frames.shape[3]
    if (static_h is not None and height > static_h) or (static_w is not None and width > static_w):
        raise ValueError(f"crop size {(height, width)} exceeds the frames' size, `frames` shape {frames.shape}")
    shape = tf.shape(frames)
    seed_y, seed_x = tf.unstack(split_seed(seed, 2))
    offset_y = tf.random.stateless_uniform([shape[0]], seed_y, 0, shape[2] - height + 1, dtype=tf.int32)
    offset_x = tf.random.stateless_uniform([shape[0]], seed_x, 0, shape[3] - width + 1, dtype=tf.int32)
    rows = offset_y[:, tf.newaxis] + tf.range(height)[tf.newaxis]
    cols = offset_x[:, tf.newaxis] + tf.range(width)[tf.newaxis]

    def crop(t):
        axis = t.shape.rank - 3
        out = tf.gather(tf.gather(t, rows, axis=axis, batch_dims=1), cols, axis=axis + 1, batch_dims=1)
        return tf.ensure_shape(out, t.shape[:axis].concatenate([height, width, t.shape[-1]]))
    return crop(frames), {key: crop(value) for key, value in maps.items()}


# -------------------------------------------------------------------------- (c) geometric

def sample_affine(seed, batch_size, size, zoom=ZOOM, max_rotation=MAX_ROTATION, max_translation=MAX_TRANSLATION,
                  flip_horizontal=True, flip_vertical=False):
    """Draws per-element affine maps A(x) = M (x - c) + c + t for `affine_transform`.

    M = zoom * R(rotation) * F with zoom ~ U(zoom), rotation ~ U(-max_rotation, max_rotation)
    (radians), F = diag(+-1, +-1) with each enabled flip taken with probability 1/2;
    t = (tx * W, ty * H) with tx, ty ~ U(-max_translation, max_translation).

    Args:
      seed: int32/int64 [2].
      batch_size: int or int32 scalar tensor B.
      size: (H, W) of the images (ints or a tensor), for the translation in pixels.

    Returns:
      matrix float32 [B, 2, 2] (acting on (x, y) column vectors), translation float32 [B, 2] (x, y).
    """
    seeds = tf.unstack(split_seed(seed, 6))
    uniform = lambda s, lo, hi: tf.random.stateless_uniform([batch_size], s, lo, hi)  # noqa: E731
    scale = uniform(seeds[0], float(zoom[0]), float(zoom[1]))
    angle = uniform(seeds[1], -float(max_rotation), float(max_rotation))

    def flip(s, enabled):
        if not enabled:
            return tf.ones([batch_size])
        return tf.where(uniform(s, 0.0, 1.0) < 0.5, -1.0, 1.0)
    flip_x, flip_y = flip(seeds[2], flip_horizontal), flip(seeds[3], flip_vertical)
    cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
    matrix = tf.reshape(tf.stack([cos * flip_x, -sin * flip_y, sin * flip_x, cos * flip_y], axis=-1), [-1, 2, 2])
    size = tf.cast(tf.convert_to_tensor(size), tf.float32)
    translation = tf.stack([uniform(seeds[4], -float(max_translation), float(max_translation)) * size[1],
                            uniform(seeds[5], -float(max_translation), float(max_translation)) * size[0]], axis=-1)
    return matrix, translation


def _apply_matrix(matrix, vectors):
    """matrix [B, 2, 2] applied to the (u, v) vectors [B, H, W, 2]."""
    return tf.einsum("bij,bhwj->bhwi", matrix, vectors)


def affine_transform(frames, flows, masks, matrix, translation):
    """Applies A(x) = M (x - c) + c + t (c = ((W-1)/2, (H-1)/2)) to a window and its maps.

    Output pixel q samples the input at A^-1(q) = M^-1 (q - c - t) + c, bilinearly
    (`ops.backward_warp`, zero outside). Flows (each between two frames of the window, so both
    ends move by the same A) become M w(A^-1 q), set to zero where `inside` is 0. Masks are
    sampled bilinearly and thresholded at 0.5 (0 outside: callers must overwrite outside pixels,
    e.g. teacher occlusion := 1). A flip x -> W-1-x is M = diag(-1, 1), which negates u.

    Args:
      frames: float32 [B, N, H, W, 3].
      flows: dict of float [B, H, W, 2] (None = {}).
      masks: dict of float [B, H, W, C] in {0, 1} (None = {}).
      matrix: float [B, 2, 2] invertible; translation: float [B, 2] in pixels (x, y).

    Returns:
      frames [B, N, H, W, 3], dict of flows, dict of masks, inside float32 [B, H, W, 1]
      (1 where A^-1(q) lies in [0, W-1] x [0, H-1]).
    """
    frames = _check_frames(frames)
    flows = _check_maps("flows", flows, frames, channels=2)
    masks = _check_maps("masks", masks, frames)
    matrix = tf.convert_to_tensor(matrix, tf.float32)
    translation = tf.convert_to_tensor(translation, tf.float32)
    shape = tf.shape(frames)
    batch, num, height, width = shape[0], shape[1], shape[2], shape[3]
    a, b, c, d = matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 1, 0], matrix[:, 1, 1]
    det = a * d - b * c
    inverse = tf.reshape(tf.stack([d, -b, -c, a], axis=-1) / det[:, tf.newaxis], [-1, 2, 2])
    centre = tf.stack([tf.cast(width - 1, tf.float32), tf.cast(height - 1, tf.float32)]) / 2.0
    xs, ys = tf.meshgrid(tf.range(width, dtype=tf.float32), tf.range(height, dtype=tf.float32))
    grid = tf.stack([xs, ys], axis=-1)[tf.newaxis]  # [1, H, W, 2]
    relative = grid - centre - translation[:, tf.newaxis, tf.newaxis, :]
    source = _apply_matrix(inverse, relative) + centre  # A^-1(q), [B, H, W, 2]
    sampling = source - grid

    stacked = tf.reshape(tf.transpose(frames, [0, 2, 3, 1, 4]), [batch, height, width, num * 3])
    warped, inside = ops.backward_warp(stacked, sampling)
    out_frames = tf.transpose(tf.reshape(warped, [batch, height, width, num, 3]), [0, 3, 1, 2, 4])
    out_frames = tf.ensure_shape(out_frames, frames.shape)
    out_flows = {}
    for key, flow in flows.items():
        sampled, _ = ops.backward_warp(flow, sampling)
        out_flows[key] = tf.ensure_shape(_apply_matrix(matrix, sampled) * inside, flow.shape)
    out_masks = {}
    for key, mask in masks.items():
        sampled, _ = ops.backward_warp(mask, sampling)
        out_masks[key] = tf.ensure_shape(tf.cast(sampled > 0.5, tf.float32), mask.shape)
    inside = tf.ensure_shape(inside, frames.shape[:1].concatenate(frames.shape[2:4]).concatenate([1]))
    return out_frames, out_flows, out_masks, inside


def random_affine(frames, flows, masks, seed, zoom=ZOOM, max_rotation=MAX_ROTATION, max_translation=MAX_TRANSLATION,
                  flip_horizontal=True, flip_vertical=False):
    """(c): `affine_transform` with per-element parameters from `sample_affine` (same seed, same map).

    Returns (frames, flows, masks, inside) as `affine_transform`. Callers should treat pixels with
    inside == 0 as unknown: teacher occlusion O_t := 1 (not confident), flows there are zero.
    """
    frames = _check_frames(frames)
    shape = tf.shape(frames)
    matrix, translation = sample_affine(seed, shape[0], shape[2:4], zoom, max_rotation, max_translation,
                                        flip_horizontal, flip_vertical)
    return affine_transform(frames, flows, masks, matrix, translation)


# ------------------------------------------------------------------------- (d) appearance

def gaussian_blur(frames, sigma, radius):
    """Separable Gaussian blur of every frame with a per-element sigma, mirror-padded borders.

    Taps exp(-k^2 / (2 sigma^2)) for k = -radius..radius, normalised (sigma = 0: identity); the
    batch is folded into the channels so one depthwise convolution per axis applies each element's
    kernel. Border: mirror without repeating the edge (numpy 'reflect', scipy 'mirror').

    Args:
      frames: float32 [B, N, H, W, C]; sigma: float32 [B] >= 0; radius: Python int < min(H, W).

    Returns:
      float32 [B, N, H, W, C].
    """
    frames = tf.convert_to_tensor(frames, tf.float32)
    shape = tf.shape(frames)
    batch, num, height, width, channels = shape[0], shape[1], shape[2], shape[3], shape[4]
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    sigma = tf.maximum(tf.convert_to_tensor(sigma, tf.float32), 1e-3)[:, tf.newaxis]
    taps = tf.exp(-tf.square(offsets)[tf.newaxis] / (2.0 * tf.square(sigma)))
    taps = taps / tf.reduce_sum(taps, axis=-1, keepdims=True)  # [B, K]
    taps = tf.reshape(tf.repeat(taps, channels, axis=0), [-1, 2 * radius + 1])  # [B*C, K], b-major
    taps = tf.transpose(taps)  # [K, B*C]
    folded = tf.reshape(tf.transpose(frames, [1, 2, 3, 0, 4]), [num, height, width, batch * channels])
    folded = tf.pad(folded, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    strides = [1, 1, 1, 1]
    folded = tf.nn.depthwise_conv2d(folded, taps[tf.newaxis, :, :, tf.newaxis], strides, "VALID")
    folded = tf.nn.depthwise_conv2d(folded, taps[:, tf.newaxis, :, tf.newaxis], strides, "VALID")
    out = tf.transpose(tf.reshape(folded, [num, height, width, batch, channels]), [3, 0, 1, 2, 4])
    return tf.ensure_shape(out, frames.shape)


def appearance(frames, seed, photometric=Photometric(), noise_std=NOISE_STD, blur_sigma=BLUR_SIGMA):
    """(d): colour jitter, blur and additive noise, parameters per element, alike for its frames.

    In this order: `photometric_jitter` (one draw per window, skipped when `photometric` is None);
    Gaussian blur with sigma ~ U(blur_sigma) (kernel radius ceil(3 * blur_sigma[1]); skipped when
    blur_sigma[1] == 0); additive Gaussian noise with std ~ U(noise_std), independent per pixel and
    frame (skipped when noise_std[1] == 0); then clipped to [0, 1]. Flows and masks are unchanged.

    Args:
      frames: float32 [B, N, H, W, 3] in [0, 1].
      seed: int32/int64 [2].

    Returns:
      float32 [B, N, H, W, 3] in [0, 1].
    """
    frames = _check_frames(frames)
    batch = tf.shape(frames)[0]
    seed_jitter, seed_sigma, seed_std, seed_noise = tf.unstack(split_seed(seed, 4))
    if photometric is not None:
        def jitter(args):
            return photometric_jitter({"frames": args[0]}, args[1], photometric)["frames"]
        frames = tf.map_fn(jitter, (frames, split_seed(seed_jitter, batch)),
                           fn_output_signature=tf.TensorSpec(frames.shape[1:], tf.float32))
    if blur_sigma[1] > 0:
        sigma = tf.random.stateless_uniform([batch], seed_sigma, float(blur_sigma[0]), float(blur_sigma[1]))
        frames = gaussian_blur(frames, sigma, int(math.ceil(3.0 * blur_sigma[1])))
    if noise_std[1] > 0:
        std = tf.random.stateless_uniform([batch], seed_std, float(noise_std[0]), float(noise_std[1]))
        frames = frames + tf.random.stateless_normal(tf.shape(frames), seed_noise) * std[:, None, None, None, None]
    return tf.clip_by_value(frames, 0.0, 1.0)


# ------------------------------------------------------------------------------ all of it

@gin.configurable
@dataclasses.dataclass
class StudentTransforms:
    """Switches and parameters of the student's transformations (docs/method.md §3.2-§3.6).

    Defaults: the crop is off until `crop_size` is bound (e.g. (256, 640) for a 320x896 large
    crop), superpixel noise on (the paper's transformation), geometric and appearance off (choices
    of this implementation). `photometric` is a Photometric, a dict of its fields (for gin) or None
    (no colour jitter inside `appearance`).
    """
    crop_size: tuple = None
    superpixel: bool = True
    superpixel_segments: int = SLIC_SEGMENTS
    superpixel_compactness: float = SLIC_COMPACTNESS
    superpixel_num_noised: tuple = NUM_NOISED
    geometric: bool = False
    zoom: tuple = ZOOM
    max_rotation: float = MAX_ROTATION
    max_translation: float = MAX_TRANSLATION
    flip_horizontal: bool = True
    flip_vertical: bool = False
    appearance: bool = False
    photometric: Photometric = Photometric()
    noise_std: tuple = NOISE_STD
    blur_sigma: tuple = BLUR_SIGMA

    def __post_init__(self):
        if isinstance(self.photometric, dict):
            self.photometric = Photometric(**self.photometric)

    @tf.autograph.experimental.do_not_convert  # static Python control flow only; saves ~10 s of tracing
    def apply(self, frames, targets, seed, pair_index):
        """Derives the student's input and aligns the teacher's targets with it.

        Order: geometric (on the large crop), crop, superpixel noise on frame pair_index + 1,
        appearance. Teacher occlusion is set to 1 (not confident) where the geometric transform
        had no source pixel (flows are zero there); the crop only cuts (no new unknown pixels).

        Args:
          frames: float32 [B, N, H, W, 3] in [0, 1], the large crop the teacher saw.
          targets: the teacher targets (schema.TEACHER_KEYS; other keys are ignored):
            teacher_flow_fw (frame a -> a+1) and teacher_flow_bw (frame a+1 -> a), float
            [B, H, W, 2]; teacher_occlusion_fw and teacher_occlusion_bw, float [B, H, W, 1],
            1 = teacher not confident.
          seed: int32/int64 [2].
          pair_index: a, the distilled pair frames[:, a] -> frames[:, a + 1] (Python int).

        Returns:
          dict at the student's size (h, w) = crop_size or (H, W):
            frames [B, N, h, w, 3]: the student's input;
            the targets (schema.TEACHER_KEYS), [B, h, w, 2] and [B, h, w, 1];
            noise_mask_fw [B, h, w, 1]: frame-a pixels whose teacher target lands in the noise;
            noise_mask_bw [B, h, w, 1]: the noised pixels of frame a+1 (zeros when off);
            inside [B, h, w, 1]: 1 where the student's pixel has source content (geometric).
        """
        frames = _check_frames(frames)
        flows = _check_maps("targets", {k: targets[k] for k in _TARGET_FLOWS}, frames, channels=2)
        occlusions = _check_maps("targets", {k: targets[k] for k in _TARGET_OCCLUSIONS}, frames, channels=1)
        seed_geometric, seed_crop, seed_noise, seed_appearance = tf.unstack(split_seed(seed, 4))
        inside = tf.ones_like(frames[:, 0, :, :, :1])
        if self.geometric:
            frames, flows, occlusions, inside = random_affine(
                frames, flows, occlusions, seed_geometric, self.zoom, self.max_rotation, self.max_translation,
                self.flip_horizontal, self.flip_vertical)
            occlusions = {key: tf.maximum(value, 1.0 - inside) for key, value in occlusions.items()}
        maps = {**flows, **occlusions, "inside": inside}
        if self.crop_size is not None:
            frames, maps = crop_window(frames, maps, self.crop_size, seed_crop)
        if self.superpixel:
            frames, noise_bw = superpixel_noise(frames, pair_index + 1, seed_noise, self.superpixel_segments,
                                                self.superpixel_compactness, self.superpixel_num_noised)
            noise_fw = noised_correspondences(noise_bw, maps[schema.TEACHER_FLOW_FW])
        else:
            noise_bw = noise_fw = tf.zeros_like(maps["inside"])
        if self.appearance:
            frames = appearance(frames, seed_appearance, self.photometric, self.noise_std, self.blur_sigma)
        return {"frames": frames, **maps, "noise_mask_fw": noise_fw, "noise_mask_bw": noise_bw}
