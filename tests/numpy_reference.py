"""Plain-loop numpy implementations used as independent references in the tests."""
import numpy as np


def bilinear_sample(image, x, y):
    """image [H, W, C]; samples at float (x, y) with zero outside; returns [C]."""
    h, w, c = image.shape
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    out = np.zeros(c, dtype=np.float64)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= xx < w and 0 <= yy < h:
                out += wx * wy * image[yy, xx]
    return out


def backward_warp(image, flow):
    """image [B, H, W, C], flow [B, H, W, 2] -> (warped, inside [B, H, W, 1])."""
    b, h, w, c = image.shape
    warped = np.zeros((b, h, w, c))
    inside = np.zeros((b, h, w, 1))
    for n in range(b):
        for i in range(h):
            for j in range(w):
                x, y = j + flow[n, i, j, 0], i + flow[n, i, j, 1]
                warped[n, i, j] = bilinear_sample(image[n], x, y)
                inside[n, i, j, 0] = float(0 <= x <= w - 1 and 0 <= y <= h - 1)
    return warped, inside


def cost_volume(f1, f2, d, normalize):
    if normalize:
        f1 = f1 / np.maximum(np.linalg.norm(f1, axis=-1, keepdims=True), 1e-6)
        f2 = f2 / np.maximum(np.linalg.norm(f2, axis=-1, keepdims=True), 1e-6)
    b, h, w, _ = f1.shape
    out = np.zeros((b, h, w, (2 * d + 1) ** 2))
    for n in range(b):
        for i in range(h):
            for j in range(w):
                k = 0
                for dy in range(-d, d + 1):
                    for dx in range(-d, d + 1):
                        if 0 <= i + dy < h and 0 <= j + dx < w:
                            out[n, i, j, k] = np.dot(f1[n, i, j], f2[n, i + dy, j + dx])
                        k += 1
    return out


def census(image_rgb, patch):
    """image [B, H, W, 3] in [0, 1] -> [B, H, W, patch^2] soft census (grey by BT.601 weights)."""
    grey = (image_rgb @ np.array([0.2989, 0.5870, 0.1140])) * 255.0
    b, h, w = grey.shape
    r = patch // 2
    out = np.zeros((b, h, w, patch * patch))
    for n in range(b):
        for i in range(h):
            for j in range(w):
                k = 0
                for dy in range(-r, r + 1):
                    for dx in range(-r, r + 1):
                        p = grey[n, i + dy, j + dx] if (0 <= i + dy < h and 0 <= j + dx < w) else 0.0
                        diff = p - grey[n, i, j]
                        out[n, i, j, k] = diff / np.sqrt(0.81 + diff * diff)
                        k += 1
    return out


def fb_occlusion(flow_fw, flow_bw, a1, a2):
    bw_at, inside = backward_warp(flow_bw, flow_fw)
    mismatch = np.sum((flow_fw + bw_at) ** 2, axis=-1, keepdims=True)
    mag = np.sum(flow_fw ** 2 + bw_at ** 2, axis=-1, keepdims=True)
    return ((mismatch > a1 * mag + a2) | (inside == 0)).astype(np.float64)


def resize_bilinear(image, size):
    """image [H, W, C] -> float64 [h, w, C] for size = (h, w): bilinear interpolation with half-pixel
    centres and the edge pixels repeated outside (no antialiasing), computed per axis."""
    image = np.asarray(image, np.float64)

    def taps(n_out, n_in):
        source = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(source).astype(int)
        return low, np.minimum(low + 1, n_in - 1), source - low

    (top, bottom, fy), (left, right, fx) = taps(size[0], image.shape[0]), taps(size[1], image.shape[1])
    rows = image[top] * (1 - fy)[:, None, None] + image[bottom] * fy[:, None, None]
    return rows[:, left] * (1 - fx)[None, :, None] + rows[:, right] * fx[None, :, None]


def resize_area(image, size):
    """image [H, W, C] -> float64 [h, w, C] for a shrinking size = (h, w): every output pixel is
    the mean of the input area it covers (input pixels weighted by their overlap)."""
    image = np.asarray(image, np.float64)

    def weights(n_out, n_in):
        scale = n_in / n_out
        w = np.zeros((n_out, n_in))
        for i in range(n_out):
            for j in range(n_in):
                w[i, j] = max(0.0, min(j + 1, (i + 1) * scale) - max(j, i * scale)) / scale
        return w

    rows = np.einsum("ij,jwc->iwc", weights(size[0], image.shape[0]), image)
    return np.einsum("kw,iwc->ikc", weights(size[1], image.shape[1]), rows)


def all_pairs_correlation(f1, f2):
    """f1, f2 [B, H, W, C] -> [B, H, W, H, W]: the dot product of every pixel pair over sqrt(C)."""
    b, h, w, c = f1.shape
    out = np.zeros((b, h, w, h, w))
    for n in range(b):
        for y1 in range(h):
            for x1 in range(w):
                for y2 in range(h):
                    for x2 in range(w):
                        out[n, y1, x1, y2, x2] = np.dot(f1[n, y1, x1], f2[n, y2, x2]) / np.sqrt(c)
    return out


def average_pool_2x2(image):
    """image [H, W] -> [ceil(H/2), ceil(W/2)]: the mean of the cells of each 2x2 block that lie
    inside the image (one or two cells at an odd end)."""
    h, w = image.shape
    out = np.zeros(((h + 1) // 2, (w + 1) // 2))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.mean(image[2 * i:2 * i + 2, 2 * j:2 * j + 2])
    return out


def correlation_lookup(volume, targets, radius, levels):
    """volume [B, H, W, H, W] (all_pairs_correlation), targets [B, H, W, 2] (x, y) ->
    [B, H, W, levels * (2r+1)^2]: for level l (the map pooled l times with average_pool_2x2), channel
    l * (2r+1)^2 + (dx + r) * (2r+1) + (dy + r) is the map bilinearly sampled (zero outside) at
    targets / 2^l + (dx, dy)."""
    b, h, w = volume.shape[:3]
    size = 2 * radius + 1
    out = np.zeros((b, h, w, levels * size * size))
    for n in range(b):
        for i in range(h):
            for j in range(w):
                level_map = volume[n, i, j]
                for level in range(levels):
                    x, y = targets[n, i, j] / 2.0 ** level
                    for dx in range(-radius, radius + 1):
                        for dy in range(-radius, radius + 1):
                            channel = level * size * size + (dx + radius) * size + (dy + radius)
                            out[n, i, j, channel] = bilinear_sample(level_map[..., None], x + dx, y + dy)[0]
                    level_map = average_pool_2x2(level_map)
    return out


def convex_upsample(flow, mask, factor):
    """flow [B, h, w, 2], mask [B, h, w, 9 * factor^2] -> [B, factor*h, factor*w, 2]: fine pixel
    (factor*i + a, factor*j + c) = sum over the 3x3 neighbours k = (dy+1)*3 + (dx+1) of
    softmax_k(mask[..., k*factor^2 + a*factor + c]) * factor * flow[i+dy, j+dx] (zero outside)."""
    b, h, w, _ = flow.shape
    out = np.zeros((b, factor * h, factor * w, 2))
    for n in range(b):
        for i in range(h):
            for j in range(w):
                for a in range(factor):
                    for c in range(factor):
                        logits = np.array([mask[n, i, j, k * factor * factor + a * factor + c] for k in range(9)])
                        weights = np.exp(logits - logits.max())
                        weights /= weights.sum()
                        for k in range(9):
                            dy, dx = k // 3 - 1, k % 3 - 1
                            if 0 <= i + dy < h and 0 <= j + dx < w:
                                out[n, factor * i + a, factor * j + c] += weights[k] * factor * flow[n, i + dy, j + dx]
    return out


def smooth_shifted_frames(sizes, seed=0):
    """{(H, W): [frame1, frame2]} uint8 [2, H, W, 3] for each size: a smooth random pattern
    (bicubic upsampling of noise) and a copy shifted by (+1, +2) px, for export parity tests."""
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    out = {}
    for h, w in sizes:
        base = rng.uniform(0, 255, (2, h // 4 + 3, w // 4 + 3, 3)).astype(np.float32)
        big = tf.image.resize(base, (h + 8, w + 8), method="bicubic").numpy()
        big = np.clip(big, 0, 255).astype(np.uint8)
        out[(h, w)] = [big[:, 4:h + 4, 4:w + 4], big[:, 2:h + 2, 5:w + 5]]
    return out


def serving_reference_flow(model, frames):
    """The flow of `model` for uint8 frames (model.num_frames of [B, H, W, 3]) as the serving
    contract defines it, without dflow_tf's inference code: frames / 255, resized bilinearly
    (half-pixel centres, numpy) up to the next multiples of model.size_multiple, the model called
    directly in float32, and its flow resized back (numpy) with u scaled by W / W' and v by H / H'."""
    import tensorflow as tf
    frames = np.stack(frames, axis=1).astype(np.float64) / 255.0  # [B, F, H, W, 3]
    batch, count, h, w, _ = frames.shape
    multiple = model.size_multiple
    run_h, run_w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    resized = np.stack([[resize_bilinear(frames[b, f], (run_h, run_w)) for f in range(count)]
                        for b in range(batch)])
    flow = model(tf.constant(resized, tf.float32))["flow"].numpy()
    back = np.stack([resize_bilinear(f, (h, w)) for f in flow]) * [w / run_w, h / run_h]
    return back.astype(np.float32)
