"""Pictures of flow fields and of flow errors.

Colour convention (Middlebury, Baker et al., IJCV 2011): the direction of a flow vector sets the
hue on a 55-step colour wheel (segments red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11,
blue-magenta 13, magenta-red 6); its magnitude, divided by the normalising maximum, sets the
saturation, so zero flow is white and flow at the maximum is the fully saturated hue. With u to the
right and v downwards: +u (right) is red, +v (down) is yellow, -u (left) is cyan, -v (up) is
blue-violet. Vectors longer than the maximum keep their hue and are darkened (x 0.75). Unknown
flow (non-finite, or |u| or |v| >= 1e9 as in Middlebury ground truth) is black.
"""
import cv2
import numpy as np

from dflow_tf.io.flow_files import known_flow, write_image

_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))


def make_colorwheel():
    """Returns the Middlebury colour wheel, uint8-valued float64 [55, 3] (RGB)."""
    ry, yg, gc, cb, bm, mr = (n for _, n in _SEGMENTS)
    wheel = np.zeros((ry + yg + gc + cb + bm + mr, 3))
    col = 0

    def ramp(n):
        return np.floor(255 * np.arange(n) / n)

    for n, channel, rising in ((ry, 1, True), (yg, 0, False), (gc, 2, True),
                               (cb, 1, False), (bm, 0, True), (mr, 2, False)):
        # In each segment one channel ramps while the previous one stays at 255.
        fixed = (channel + 2) % 3 if rising else (channel + 1) % 3
        wheel[col:col + n, fixed] = 255
        wheel[col:col + n, channel] = ramp(n) if rising else 255 - ramp(n)
        col += n
    return wheel


def flow_to_color(flow, max_flow=None):
    """Colour-codes flow [H, W, 2] -> uint8 RGB [H, W, 3] (see the module docstring).

    Magnitudes are divided by `max_flow` when given, else by the largest known magnitude in `flow`.
    """
    flow = np.asarray(flow, np.float64)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be [H, W, 2], got shape {list(flow.shape)}")
    known = known_flow(flow)
    u = np.where(known, flow[..., 0], 0.0)
    v = np.where(known, flow[..., 1], 0.0)
    rad = np.sqrt(u * u + v * v)
    if max_flow is None:
        max_flow = rad.max() if rad.size else 0.0
    elif max_flow <= 0:
        raise ValueError(f"max_flow must be positive, got {max_flow}")
    rad = rad / max(float(max_flow), np.finfo(np.float64).eps)

    wheel = make_colorwheel() / 255.0
    ncols = wheel.shape[0]
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]
    fk = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(np.int64)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[..., None]
    col = (1 - f) * wheel[k0] + f * wheel[k1]
    inside = (rad <= 1)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    col = np.where(known[..., None], col, 0.0)
    return np.floor(255 * np.clip(col, 0, 1)).astype(np.uint8)


def error_map(flow, gt, valid=None, max_error=5.0):
    """Colour map of the endpoint error -> uint8 RGB [H, W, 3].

    Args:
      flow, gt: [H, W, 2]. valid: optional bool/0-1 [H, W] or [H, W, 1]; invalid pixels are black.
      max_error: error (px) mapped to the top of the colour scale (OpenCV TURBO: dark blue = 0,
        through green and yellow, to dark red = max_error); larger errors saturate.
    """
    flow = np.asarray(flow, np.float64)
    gt = np.asarray(gt, np.float64)
    if flow.ndim != 3 or flow.shape[-1] != 2 or flow.shape != gt.shape:
        raise ValueError(f"flow and gt must both be [H, W, 2], got {list(flow.shape)} and {list(gt.shape)}")
    if max_error <= 0:
        raise ValueError(f"max_error must be positive, got {max_error}")
    err = np.sqrt(np.sum((flow - gt) ** 2, axis=-1))
    ok = np.isfinite(err)
    if valid is not None:
        valid = np.asarray(valid)
        if valid.shape not in (err.shape, err.shape + (1,)):
            raise ValueError(f"valid must be [H, W] or [H, W, 1] for flow {list(flow.shape)}, "
                             f"got {list(valid.shape)}")
        ok &= valid.reshape(err.shape) > 0.5
    level = np.round(np.clip(np.where(ok, err, 0.0) / max_error, 0, 1) * 255).astype(np.uint8)
    rgb = cv2.applyColorMap(level, cv2.COLORMAP_TURBO)[..., ::-1]
    return np.where(ok[..., None], rgb, 0).astype(np.uint8)


def write_flow_png(path, flow, max_flow=None):
    """Writes the colour coding of flow [H, W, 2] (see flow_to_color) as an image file."""
    write_image(path, flow_to_color(flow, max_flow))
