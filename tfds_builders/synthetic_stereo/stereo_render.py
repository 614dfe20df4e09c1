"""Rectified stereo pairs of the synthetic_flow scenes, with exact disparity and occlusion (numpy).

A stereo camera pair with a horizontal baseline sees a point of depth Z at x in the left view and
at x - d in the right view, d = f B / Z (disparity, px, > 0). Every layer of a `render.Scene` is
fronto-parallel at its own depth, so its right view is its left view shifted by -d_l: the right
view of frame t is the scene rendered with every layer's map pre-multiplied by a horizontal
translation of -d_l. Layers are drawn back to front, so d_l increases with the layer index (the
background is the farthest, smallest disparity); a nearer layer then also occludes the farther
ones in the right view, as in a real camera.

`stereo_scene` builds one Scene whose 2N frames are [left_0 .. left_{N-1}, right_0 .. right_{N-1}];
`render.flow_and_occlusion(scene, t, N + t)` is then the exact left -> right flow (-d, 0) of time
step t and its occlusion (pixels of the left view hidden or outside the right view).
"""
import dataclasses

import numpy as np

from dflow_tf.data import render


@dataclasses.dataclass(frozen=True)
class StereoSpec:
    """Disparity range of the layers (px at the rendered size): the background's disparity is drawn
    in [min_disparity, background_max_disparity], each foreground layer's above the previous
    layer's, up to max_disparity."""
    min_disparity: float = 0.5
    background_max_disparity: float = 4.0
    max_disparity: float = 24.0

    def __post_init__(self):
        if not 0.0 <= self.min_disparity <= self.background_max_disparity <= self.max_disparity:
            raise ValueError(f"StereoSpec: need 0 <= min_disparity ({self.min_disparity}) <= "
                             f"background_max_disparity ({self.background_max_disparity}) <= "
                             f"max_disparity ({self.max_disparity})")


def layer_disparities(rng, num_layers, spec=StereoSpec()):
    """float64 [num_layers] disparities, non-decreasing from the background (index 0) to the front."""
    background = rng.uniform(spec.min_disparity, spec.background_max_disparity)
    foreground = np.sort(rng.uniform(background, spec.max_disparity, num_layers - 1))
    return np.concatenate([[background], foreground])


def _shift(dx):
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _both_views(value, num_frames):
    """A per-frame field [N, ...] of a Layer for the 2N frames: the right view of time step t has
    the left view's value of t. Fields that are not per frame are kept."""
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == num_frames:
        return np.concatenate([value, value])
    return value


def stereo_scene(scene, disparities):
    """The Scene of 2N frames [left_0 .. left_{N-1}, right_0 .. right_{N-1}] of `scene` (N frames,
    the left views) seen by a rectified stereo pair; disparities: [num layers] px (`layer_disparities`).

    Per-frame fields of a Layer other than `transforms` (e.g. illumination) are repeated for the
    right views; the texture and the shape are shared."""
    n = scene.spec.num_frames
    if getattr(scene.spec, "motion_blur", 0.0) > 0:
        raise ValueError("stereo_scene: motion blur interpolates between consecutive frames, which the "
                         "2N frames [left..., right...] are not; use a SceneSpec with motion_blur=0")
    if len(disparities) != len(scene.layers):
        raise ValueError(f"stereo_scene: {len(disparities)} disparities for {len(scene.layers)} layers")
    layers = []
    for layer, d in zip(scene.layers, disparities):
        per_frame = {field.name: _both_views(getattr(layer, field.name), n)
                     for field in dataclasses.fields(layer) if field.name not in ("texture", "shape", "transforms")}
        transforms = np.concatenate([layer.transforms, _shift(-float(d)) @ layer.transforms])
        layers.append(dataclasses.replace(layer, transforms=transforms, **per_frame))
    return render.Scene(dataclasses.replace(scene.spec, num_frames=2 * n), layers)


def render_stereo_sample(spec, rng, stereo=StereoSpec()):
    """Renders the stereo video of one scene: `spec.num_frames` time steps, both views.

    Returns a dict: left, right uint8 [N, H, W, 3]; flow float32 [N, H, W, 2] left -> right of
    each time step (= (-disparity, 0), v exactly 0); occlusion bool [N, H, W, 1] (left pixels not visible in
    the right view); disparities float64 [num layers].
    """
    scene = render.sample_scene(spec, rng)
    disparities = layer_disparities(rng, len(scene.layers), stereo)
    both = stereo_scene(scene, disparities)
    n = spec.num_frames
    xs, ys = np.meshgrid(np.arange(spec.width, dtype=np.float64), np.arange(spec.height, dtype=np.float64))
    labels = [render.visible_layer(both, t, xs, ys) for t in range(2 * n)]
    frames = [render.render_frame(both, t, labels[t]) for t in range(2 * n)]
    pairs = [render.flow_and_occlusion(both, t, n + t, labels[t]) for t in range(n)]
    # v is 0 by construction (the computed one carries float64 round-off of the inverse maps)
    u = np.stack([flow[..., 0] for flow, _ in pairs])
    return {
        "left": np.stack(frames[:n]),
        "right": np.stack(frames[n:]),
        "flow": np.stack([u, np.zeros_like(u)], axis=-1),
        "occlusion": np.stack([occ for _, occ in pairs]),
        "disparities": disparities,
    }
