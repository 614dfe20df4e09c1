"""Renders layered synthetic scenes with exact optical-flow and occlusion ground truth (numpy only).

A scene is a background layer plus K textured foreground layers in depth order. Layer l has a
texture, a shape (an analytic region of its local plane; the background covers everything) and
one affine map A_l(t) per frame, local plane -> image (3x3 homogeneous, float64). Frame t is
rendered by inverse mapping: at pixel p the visible layer is the top-most layer whose shape
contains A_l(t)^-1 p, and the colour is its texture sampled bilinearly there. Hence, exactly:

  * flow t -> s at p = A_l(s) A_l(t)^-1 p - p, l the layer visible at p in frame t;
  * p is occluded (t -> s) when p + flow leaves [0, W-1] x [0, H-1] or the layer visible at
    p + flow in frame s (evaluated analytically at that sub-pixel point) is not l.

Shapes have hard edges, so a frame pixel shows one layer only and the ground truth holds at every
pixel. Departures from brightness constancy: the uint8 quantisation of the frames and bilinear
resampling of the texture when a frame is warped (textures are smoothed slightly), and, where the
spec asks for them, illumination change (a per-layer, per-frame colour gain and offset) and motion
blur (the frame is the mean of renders over an exposure interval around its time; the ground truth
is the flow of the exposure centre).

Motion statistics: `translation_distribution="uniform"` draws each velocity component from
U(-max, max); "log_uniform" draws the speed log-uniformly in [min_translation, max_translation]
with a uniform direction, a heavy tail like the benchmarks' (most pixels move a few pixels, some
tens to a hundred).

Textures mix photographs shipped inside scikit-image (`skimage.data`, loaded from the installed
wheel, no download) with procedural patterns (checkerboards, gratings, smooth colour noise) and,
when a `dflow_tf.data.textures.TextureLibrary` is given, crops of the frames of a user's folders
of images and videos.
"""
import dataclasses
import functools
import zlib

import cv2
import numpy as np

# skimage.data images stored inside the scikit-image wheel (no pooch download needed).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel",
          "immunohistochemistry", "hubble_deep_field", "coins", "moon")


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    """What a scene may look like. Motions are per frame; the background gets
    `background_motion` times the foreground ranges."""
    height: int = 192
    width: int = 256
    num_frames: int = 5
    min_layers: int = 2            # foreground layers, inclusive range
    max_layers: int = 4
    max_translation: float = 6.0   # px / frame, each axis
    max_acceleration: float = 1.0  # px / frame^2, each axis
    max_rotation: float = 0.04     # rad / frame
    max_zoom: float = 0.04         # log-scale change / frame
    max_shear: float = 0.02        # shear change / frame
    background_motion: float = 0.5
    texture_blur: float = 0.8      # Gaussian sigma (texture pixels) against aliasing
    translation_distribution: str = "uniform"  # "uniform" (per axis) | "log_uniform" (speed)
    min_translation: float = 0.5   # px / frame, lower end of the log-uniform speed
    max_illumination: float = 0.0  # per frame: log-gain change and offset change, each U(-x, x)
    motion_blur: float = 0.0       # exposure as a fraction of the frame interval (0: none)
    motion_blur_samples: int = 5   # renders averaged over the exposure

    def __post_init__(self):
        if self.translation_distribution not in ("uniform", "log_uniform"):
            raise ValueError(f"SceneSpec.translation_distribution={self.translation_distribution!r}: "
                             "use 'uniform' or 'log_uniform'")
        if not 0.0 < self.min_translation <= max(self.max_translation, self.min_translation):
            raise ValueError(f"SceneSpec.min_translation={self.min_translation} must be > 0")
        if not 0.0 <= self.motion_blur <= 1.0:
            raise ValueError(f"SceneSpec.motion_blur={self.motion_blur} must be in [0, 1]")


@dataclasses.dataclass
class Layer:
    texture: np.ndarray      # float32 [th, tw, 3] in [0, 1]; local (0, 0) is its centre
    shape: tuple             # ("all",) | ("superellipse", a, b, p) | ("blob", r0, amps, phases)
    transforms: np.ndarray   # float64 [N, 3, 3], local plane -> image, one per frame
    illumination: np.ndarray = None  # float32 [N, 2, 3]: per frame colour gain and offset (None: 1, 0)


@dataclasses.dataclass
class Scene:
    spec: SceneSpec
    layers: list             # back to front; layers[0] is the background


def example_seed(seed, split, index):
    """A numpy SeedSequence entropy for example `index` of `split` (stable across runs)."""
    return [int(seed), zlib.crc32(split.encode("utf-8")), int(index)]


# ------------------------------------------------------------------------------------ textures

@functools.cache
def _photo(name):
    """(float32 RGB [H, W, 3] in [0, 1], whether the photo is grey) of a skimage.data image."""
    from skimage import data  # pylint: disable=import-outside-toplevel
    image = getattr(data, name)().astype(np.float32) / 255.0
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1), True
    return image[..., :3], False


def _photo_texture(rng, th, tw):
    photo, grey = _photo(PHOTOS[rng.integers(len(PHOTOS))])
    scale = rng.uniform(0.35, 1.0)
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    pad_y, pad_x = max(0, th - small.shape[0]), max(0, tw - small.shape[1])
    if pad_y or pad_x:
        small = np.pad(small, ((0, pad_y), (0, pad_x), (0, 0)), mode="symmetric")
    y0 = rng.integers(small.shape[0] - th + 1)
    x0 = rng.integers(small.shape[1] - tw + 1)
    texture = small[y0:y0 + th, x0:x0 + tw]
    if grey:  # random tint
        texture = texture * rng.uniform(0.5, 1.0, 3).astype(np.float32)
    return texture


def _colours(rng, n):
    return rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)


def _procedural_texture(rng, th, tw):
    ys, xs = np.mgrid[0:th, 0:tw].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:  # checkerboard
        cell = rng.uniform(6, 24)
        c = _colours(rng, 2)
        angle = rng.uniform(0, np.pi)
        u = np.cos(angle) * xs + np.sin(angle) * ys
        v = -np.sin(angle) * xs + np.cos(angle) * ys
        parity = (np.floor(u / cell) + np.floor(v / cell)) % 2
        return np.where(parity[..., None] > 0, c[0], c[1])
    if kind == 1:  # two sinusoidal gratings between random colours
        texture = np.zeros((th, tw, 3), np.float32)
        for c in _colours(rng, 2):
            angle, period = rng.uniform(0, np.pi), rng.uniform(6, 40)
            phase = np.cos(angle) * xs + np.sin(angle) * ys
            texture += 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * phase / period))[..., None] * c
        return texture / max(float(texture.max()), 1e-3)
    # smooth colour noise
    step = rng.uniform(4, 16)
    coarse = rng.uniform(0, 1, (int(th / step) + 2, int(tw / step) + 2, 3)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (tw, th), interpolation=cv2.INTER_CUBIC), 0, 1)


def _texture(rng, th, tw, blur, library=None):
    """float32 [th, tw, 3] in [0, 1]: a crop of `library` (a TextureLibrary, when given: 60 %),
    else a skimage photo (60 % of the rest) or a procedural pattern, blurred by `blur`."""
    if library is not None and rng.random() < 0.6:
        texture = library.crop(rng, th, tw)
    elif rng.random() < 0.6:
        texture = _photo_texture(rng, th, tw)
    else:
        texture = _procedural_texture(rng, th, tw)
    texture = cv2.GaussianBlur(np.ascontiguousarray(texture, np.float32), (0, 0), blur)
    return np.clip(texture, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- scene sampling

def _affine(tx, ty, angle, zoom_x, zoom_y, shear):
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    shearing = np.array([[1, shear, 0], [0, 1, 0], [0, 0, 1]])
    scaling = np.diag([np.exp(zoom_x), np.exp(zoom_y), 1.0])
    translation = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    return translation @ rotation @ shearing @ scaling


def _velocity(rng, spec, motion):
    """[2] px / frame of a layer whose motion ranges are scaled by `motion` (see SceneSpec)."""
    if spec.translation_distribution == "uniform":
        return rng.uniform(-spec.max_translation, spec.max_translation, 2) * motion
    low, high = np.log(spec.min_translation), np.log(max(spec.max_translation, spec.min_translation))
    speed = np.exp(rng.uniform(low, high)) * motion
    angle = rng.uniform(-np.pi, np.pi)
    return speed * np.array([np.cos(angle), np.sin(angle)])


def _illumination(rng, spec):
    """[N, 2, 3] colour gain and offset per frame, identity in the middle frame (None when off)."""
    if spec.max_illumination <= 0:
        return None
    tau = np.arange(spec.num_frames) - (spec.num_frames - 1) / 2.0
    log_gain = rng.uniform(-spec.max_illumination, spec.max_illumination, 3) + \
        rng.uniform(-0.2, 0.2, 3) * spec.max_illumination  # a colour tint on top of the brightness
    offset = rng.uniform(-spec.max_illumination, spec.max_illumination) * 0.5
    gain = np.exp(tau[:, None] * log_gain[None, :])
    return np.stack([gain, np.repeat(tau[:, None] * offset, 3, axis=1)], axis=1).astype(np.float32)


def _trajectory(rng, spec, centre, motion):
    """[N, 3, 3] maps with the layer centred at `centre` in the middle frame."""
    u = lambda limit: rng.uniform(-limit, limit) * motion  # noqa: E731
    velocity = _velocity(rng, spec, motion)
    accel = np.array([u(spec.max_acceleration), u(spec.max_acceleration)])
    angle0, omega = rng.uniform(-np.pi, np.pi), u(spec.max_rotation)
    zoom_rate = np.array([u(spec.max_zoom), u(spec.max_zoom)])
    shear0, shear_rate = rng.uniform(-0.2, 0.2) * motion, u(spec.max_shear)
    mid = (spec.num_frames - 1) / 2.0
    maps = []
    for t in range(spec.num_frames):
        tau = t - mid
        tx, ty = centre + velocity * tau + 0.5 * accel * tau ** 2
        maps.append(_affine(tx, ty, angle0 + omega * tau, zoom_rate[0] * tau, zoom_rate[1] * tau,
                            shear0 + shear_rate * tau))
    return np.stack(maps)


def _foreground_shape(rng, radius):
    if rng.random() < 0.5:
        aspect = rng.uniform(0.6, 1.4)
        return ("superellipse", radius * aspect, radius / aspect, float(rng.choice([1.0, 2.0, 4.0, 8.0])))
    amps = rng.uniform(0.0, 0.15, 3)
    phases = rng.uniform(0, 2 * np.pi, 3)
    return ("blob", radius, amps, phases)


def sample_scene(spec, rng, textures=None):
    """Draws a Scene from `spec` with the numpy Generator `rng`; `textures`: an optional
    dflow_tf.data.textures.TextureLibrary whose crops texture most layers."""
    h, w = spec.height, spec.width
    layers = []
    # Background: centred on the image; its square texture covers the frame at any rotation.
    side = int(1.3 * np.hypot(h, w)) + 32
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    layers.append(Layer(_texture(rng, side, side, spec.texture_blur, textures), ("all",),
                        _trajectory(rng, spec, centre, spec.background_motion), _illumination(rng, spec)))
    for _ in range(rng.integers(spec.min_layers, spec.max_layers + 1)):
        radius = rng.uniform(0.1, 0.3) * min(h, w)
        shape = _foreground_shape(rng, radius)
        size = int(2 * 1.5 * radius) + 8
        centre = np.array([rng.uniform(0, w - 1), rng.uniform(0, h - 1)])
        layers.append(Layer(_texture(rng, size, size, spec.texture_blur, textures), shape,
                            _trajectory(rng, spec, centre, 1.0), _illumination(rng, spec)))
    return Scene(spec, layers)


# ---------------------------------------------------------------------------------- rendering

def _to_local(transform, x, y):
    inv = np.linalg.inv(transform)
    return inv[0, 0] * x + inv[0, 1] * y + inv[0, 2], inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]


def _contains(shape, qx, qy):
    """bool mask of the local points (qx, qy) inside `shape` (tested inside a bounding disc first)."""
    kind = shape[0]
    if kind == "all":
        return np.ones(qx.shape, bool)
    r2 = qx * qx + qy * qy
    if kind == "superellipse":
        _, a, b, p = shape
        bound = max(a, b) * 2 ** 0.5
    else:
        _, r0, amps, phases = shape
        bound = r0 * (1.0 + float(np.sum(amps)))
    inside = r2 <= bound * bound
    qx, qy, r2 = qx[inside], qy[inside], r2[inside]
    if kind == "superellipse":
        hit = np.abs(qx / a) ** p + np.abs(qy / b) ** p <= 1.0
    else:
        theta = np.arctan2(qy, qx)
        radius = r0 * (1.0 + sum(amp * np.cos((k + 2) * theta + phase)
                                 for k, (amp, phase) in enumerate(zip(amps, phases))))
        hit = r2 <= radius * radius
    inside[inside] = hit
    return inside


def visible_layer(scene, t, x, y):
    """int32 index of the layer visible at the (sub-pixel) image points (x, y) of frame t."""
    return _visible(scene.layers, [layer.transforms[t] for layer in scene.layers], x, y)


def _visible(layers, transforms, x, y):
    """int32 index of the layer visible at (x, y) with the layers at `transforms` ([L] maps)."""
    label = np.zeros(np.shape(x), np.int32)
    for index, (layer, transform) in enumerate(zip(layers[1:], transforms[1:]), start=1):
        qx, qy = _to_local(transform, x, y)
        label[_contains(layer.shape, qx, qy)] = index
    return label


def _bilinear(texture, u, v):
    """Bilinear samples of `texture` [th, tw, 3] at (u, v) (clamped to its edge) -> [n, 3]."""
    th, tw = texture.shape[:2]
    u = np.clip(u, 0.0, tw - 1.0)
    v = np.clip(v, 0.0, th - 1.0)
    x0 = np.minimum(np.floor(u), tw - 2)
    y0 = np.minimum(np.floor(v), th - 2)
    fx = (u - x0).astype(np.float32)[:, None]
    fy = (v - y0).astype(np.float32)[:, None]
    flat = texture.reshape(-1, 3)
    index = y0.astype(np.int64) * tw + x0.astype(np.int64)
    take = lambda offset: np.take(flat, index + offset, axis=0)  # noqa: E731  (faster than [])
    top = take(0) * (1 - fx) + take(1) * fx
    bottom = take(tw) * (1 - fx) + take(tw + 1) * fx
    return top * (1 - fy) + bottom * fy


def _grid(spec):
    ys, xs = np.mgrid[0:spec.height, 0:spec.width].astype(np.float64)
    return xs, ys


def _shade(scene, t, transforms, label):
    """float64 [H, W, 3] colours of frame t with the layers at `transforms` ([L] maps) and the
    visible-layer map `label` ([H, W] int)."""
    xs, ys = _grid(scene.spec)
    image = np.zeros(xs.shape + (3,), np.float64)
    for index, (layer, transform) in enumerate(zip(scene.layers, transforms)):
        where = label == index
        qx, qy = _to_local(transform, xs[where], ys[where])
        th, tw = layer.texture.shape[:2]
        colour = _bilinear(layer.texture, qx + (tw - 1) / 2.0, qy + (th - 1) / 2.0)
        if layer.illumination is not None:
            colour = colour * layer.illumination[t, 0] + layer.illumination[t, 1]
        image[where] = colour
    return image


def _exposure_transforms(scene, t, offset):
    """The layers' maps at time t + offset (|offset| <= 1/2), linearly interpolated towards the
    neighbouring frame (an approximation used only for motion blur)."""
    last = len(scene.layers[0].transforms) - 1
    neighbour = min(t + 1, last) if offset >= 0 else max(t - 1, 0)
    w = abs(offset)
    return [(1 - w) * layer.transforms[t] + w * layer.transforms[neighbour] for layer in scene.layers]


def render_frame(scene, t, label=None):
    """uint8 [H, W, 3] frame t (pass `label` = visible_layer on the pixel grid to reuse it; it is
    used for the exposure centre, the sub-frame renders of motion blur find their own)."""
    spec = scene.spec
    xs, ys = _grid(spec)
    if label is None:
        label = visible_layer(scene, t, xs, ys)
    if spec.motion_blur <= 0 or spec.motion_blur_samples <= 1:
        image = _shade(scene, t, [layer.transforms[t] for layer in scene.layers], label)
    else:
        image = np.zeros(xs.shape + (3,), np.float64)
        for offset in np.linspace(-0.5, 0.5, spec.motion_blur_samples) * spec.motion_blur:
            transforms = _exposure_transforms(scene, t, offset)
            image += _shade(scene, t, transforms, _visible(scene.layers, transforms, xs, ys))
        image /= spec.motion_blur_samples
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def flow_and_occlusion(scene, t, s, label_t=None):
    """Exact flow frame t -> frame s (float32 [H, W, 2]) and its occlusion (bool [H, W, 1])."""
    spec = scene.spec
    xs, ys = _grid(spec)
    if label_t is None:
        label_t = visible_layer(scene, t, xs, ys)
    tx, ty = np.empty_like(xs), np.empty_like(ys)
    for index, layer in enumerate(scene.layers):
        where = label_t == index
        m = layer.transforms[s] @ np.linalg.inv(layer.transforms[t])
        tx[where] = m[0, 0] * xs[where] + m[0, 1] * ys[where] + m[0, 2]
        ty[where] = m[1, 0] * xs[where] + m[1, 1] * ys[where] + m[1, 2]
    inside = (tx >= 0) & (tx <= spec.width - 1) & (ty >= 0) & (ty <= spec.height - 1)
    occluded = ~inside | (visible_layer(scene, s, tx, ty) != label_t)
    flow = np.stack([tx - xs, ty - ys], axis=-1).astype(np.float32)
    return flow, occluded[..., None]


def render_sample(spec, rng, textures=None):
    """Renders one sample (`textures`: see `sample_scene`).

    Returns a dict: frames uint8 [N, H, W, 3]; flow_fw / flow_bw float32 [N-1, H, W, 2]
    (frames[i] -> frames[i+1] / frames[i+1] -> frames[i]); occlusion_fw / occlusion_bw bool
    [N-1, H, W, 1].
    """
    scene = sample_scene(spec, rng, textures)
    xs, ys = _grid(spec)
    labels = [visible_layer(scene, t, xs, ys) for t in range(spec.num_frames)]
    frames = np.stack([render_frame(scene, t, labels[t]) for t in range(spec.num_frames)])
    fw = [flow_and_occlusion(scene, t, t + 1, labels[t]) for t in range(spec.num_frames - 1)]
    bw = [flow_and_occlusion(scene, t + 1, t, labels[t + 1]) for t in range(spec.num_frames - 1)]
    return {
        "frames": frames,
        "flow_fw": np.stack([f for f, _ in fw]),
        "occlusion_fw": np.stack([o for _, o in fw]),
        "flow_bw": np.stack([f for f, _ in bw]),
        "occlusion_bw": np.stack([o for _, o in bw]),
    }
