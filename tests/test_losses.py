"""Losses against independent numpy references and hand-computed values; masks, gradients, graph."""
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

import losses_reference as lref
from dflow_tf import losses

RNG = np.random.default_rng(1)
PSI0 = 0.01 ** 0.4  # psi(0): the floor a perfect match still costs
B, H, W = 2, 9, 11


def _uniform(*shape):
    return RNG.uniform(size=shape).astype(np.float32)


def _binary(*shape, p=0.3):
    return (RNG.uniform(size=shape) < p).astype(np.float32)


def _flow(scale=1.5, b=B, h=H, w=W):
    return (RNG.normal(size=(b, h, w, 2)) * scale).astype(np.float32)


def _shifted_pair(u, v, h=16, w=20, seed=0):
    """Smooth RGB frames with image2(x + u, y + v) = image1(x, y) for integer (u, v) >= 0."""
    canvas = np.random.default_rng(seed).uniform(size=(h + 8, w + 8, 3))
    canvas = ndimage.gaussian_filter(canvas, sigma=(2, 2, 0))
    canvas = (canvas - canvas.min()) / (canvas.max() - canvas.min())
    y0, x0 = 4, 4
    image1 = canvas[y0:y0 + h, x0:x0 + w]
    image2 = canvas[y0 - v:y0 - v + h, x0 - u:x0 - u + w]
    flow = np.zeros((1, h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = u, v
    return image1[None].astype(np.float32), image2[None].astype(np.float32), flow


def _targets_outside(h, w, u, v, margin=0):
    """[1, h, w, 1] = 1 where some pixel within `margin` of (x, y) has its target x+u, y+v out of frame."""
    ys, xs = np.mgrid[0:h, 0:w]
    out = (xs + margin + u > w - 1) | (ys + margin + v > h - 1)
    return out[None, :, :, None].astype(np.float32)


# --- robust penalty and normalisation -------------------------------------------------------------

def test_robust_penalty_values():
    x = np.array([-2.0, -0.3, 0.0, 0.5, 7.0], np.float32)
    np.testing.assert_allclose(losses.robust_penalty(x).numpy(), (np.abs(x) + 0.01) ** 0.4, rtol=1e-6)
    np.testing.assert_allclose(losses.robust_penalty(0.0).numpy(), PSI0, rtol=1e-6)
    np.testing.assert_allclose(losses.robust_penalty(3.0, epsilon=1.0, q=0.5).numpy(), 2.0, rtol=1e-6)


def test_masked_mean_of_constant_difference_is_hand_computed():
    c, channels = 0.3, 3
    diff = np.full((B, H, W, channels), c, np.float32)
    mask = _binary(B, H, W, 1)
    count = mask.reshape(B, -1).sum(axis=1)
    want = np.mean((c + 0.01) ** 0.4 * channels * count / (2 * count + 1e-6))  # counts pixels, not pixel-channels
    got = losses.masked_mean(losses.robust_penalty(diff), mask).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_masked_mean_matches_reference_and_averages_per_image_losses():
    values = _uniform(B, H, W, 2)
    mask = _binary(B, H, W, 1)
    np.testing.assert_allclose(losses.masked_mean(values, mask).numpy(), lref.ddflow_mean(values, mask), rtol=1e-5)
    # one pixel of value 1 in image 0, three of value 5 in image 1: (1 / 2 + 15 / 6) / 2, not (1 + 15) / 8
    values = np.zeros((2, 2, 2, 1), np.float32)
    mask = np.zeros((2, 2, 2, 1), np.float32)
    values[0, 0, 0], mask[0, 0, 0] = 1.0, 1.0
    values[1, :, :] = 5.0
    mask[1].flat[:3] = 1.0
    np.testing.assert_allclose(losses.masked_mean(values, mask).numpy(), 1.5, rtol=1e-5)


def test_masked_mean_of_empty_mask_is_zero_and_mask_gets_no_gradient():
    values = tf.constant(_uniform(1, 3, 3, 2))
    mask = tf.zeros((1, 3, 3, 1))
    assert losses.masked_mean(values, mask).numpy() == 0.0
    mask = tf.constant(_binary(1, 3, 3, 1, p=0.5))
    with tf.GradientTape() as tape:
        tape.watch(mask)
        loss = losses.masked_mean(values, mask)
    assert tape.gradient(loss, mask) is None


# --- photometric ----------------------------------------------------------------------------------

def test_photometric_matches_reference():
    img1, img2 = _uniform(B, H, W, 3), _uniform(B, H, W, 3)
    fw, bw = _flow(), _flow()
    occ_fw, occ_bw, m_fw, m_bw = (_binary(B, H, W, 1) for _ in range(4))
    np.testing.assert_allclose(losses.photometric_loss(img1, img2, fw).numpy(),
                               lref.photometric(img1, img2, fw), rtol=1e-5)
    got = losses.photometric_loss(img1, img2, fw, bw, occ_fw, occ_bw, m_fw, m_bw).numpy()
    np.testing.assert_allclose(got, lref.photometric(img1, img2, fw, bw, occ_fw, occ_bw, m_fw, m_bw), rtol=1e-5)


def test_photometric_decreases_as_flow_approaches_the_true_shift():
    u, v = 3, 1
    img1, img2, true_flow = _shifted_pair(u, v)
    keep = 1.0 - _targets_outside(16, 20, u, v)
    values = [losses.photometric_loss(img1, img2, t * true_flow, mask_fw=keep).numpy()
              for t in np.linspace(0.0, 1.0, 6)]
    assert np.all(np.diff(values) < 0), values
    count = keep.sum()
    np.testing.assert_allclose(values[-1], PSI0 * 3 * count / (2 * count + 1e-6), rtol=1e-5)


def test_photometric_occlusion_and_mask_remove_pixels():
    img1, img2 = _uniform(B, H, W, 3), _uniform(B, H, W, 3)
    fw = _flow()
    occ = np.zeros((B, H, W, 1), np.float32)
    occ[:, 2:6, 3:8] = 1.0
    base = losses.photometric_loss(img1, img2, fw, occlusion_fw=occ).numpy()
    garbage = img1.copy()
    garbage[:, 2:6, 3:8] = RNG.uniform(-50, 50, size=garbage[:, 2:6, 3:8].shape)
    np.testing.assert_allclose(losses.photometric_loss(garbage, img2, fw, occlusion_fw=occ).numpy(), base, rtol=1e-6)
    np.testing.assert_allclose(losses.photometric_loss(garbage, img2, fw, mask_fw=1.0 - occ).numpy(), base, rtol=1e-6)
    assert losses.photometric_loss(garbage, img2, fw).numpy() > base


def test_photometric_gradient_reaches_the_flow():
    img1, img2, flow = _shifted_pair(2, 0, h=8, w=10)
    flow = tf.Variable(flow * 0.5)
    with tf.GradientTape() as tape:
        loss = losses.photometric_loss(img1, img2, flow)
    grad = tape.gradient(loss, flow).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


# --- census ---------------------------------------------------------------------------------------

def test_census_matches_reference():
    img1, img2 = _uniform(B, H, W, 3), _uniform(B, H, W, 3)
    fw, bw = _flow(), _flow()
    occ_fw, occ_bw, m_fw = (_binary(B, H, W, 1) for _ in range(3))
    np.testing.assert_allclose(losses.census_loss(img1, img2, fw).numpy(), lref.census(img1, img2, fw), rtol=1e-3)
    got = losses.census_loss(img1, img2, fw, bw, occ_fw, occ_bw, mask_fw=m_fw).numpy()
    np.testing.assert_allclose(got, lref.census(img1, img2, fw, bw, occ_fw, occ_bw, mask_fw=m_fw), rtol=1e-3)
    got = losses.census_loss(img1, img2, fw, patch_size=3).numpy()
    np.testing.assert_allclose(got, lref.census(img1, img2, fw, patch=3), rtol=1e-3)


def test_census_of_identical_images_and_zero_flow_is_the_floor():
    img = _uniform(B, H, W, 3)
    zero = np.zeros((B, H, W, 2), np.float32)
    count = B * (H - 6) * (W - 6)  # 3-pixel border masked
    floor = PSI0 * count / (2 * count + 1e-6)  # Hamming distance exactly 0, psi(0) remains
    np.testing.assert_allclose(losses.census_loss(img, img, zero).numpy(), floor, rtol=1e-6)
    np.testing.assert_allclose(losses.census_loss(img, img, zero, zero).numpy(), 2 * floor, rtol=1e-6)


def test_census_of_shifted_image_with_true_integer_flow_is_the_floor_inside_the_border():
    u, v = 2, 1
    img1, img2, flow = _shifted_pair(u, v)
    # pixels whose 7x7 window reaches a target outside frame 2 see the warp's zero padding
    occ = _targets_outside(16, 20, u, v, margin=3)
    count = ((1.0 - occ) * lref.border(occ.shape, 3)).sum()
    floor = PSI0 * count / (2 * count + 1e-6)
    np.testing.assert_allclose(losses.census_loss(img1, img2, flow, occlusion_fw=occ).numpy(), floor, rtol=1e-6)
    assert losses.census_loss(img1, img2, flow * 0.0, occlusion_fw=occ).numpy() > floor + 0.1


# --- smoothness -----------------------------------------------------------------------------------

def test_smoothness_matches_reference_and_respects_edges():
    flow, image = _flow(), _uniform(B, H, W, 3)
    np.testing.assert_allclose(losses.smoothness_loss(flow, image).numpy(), lref.smoothness(flow, image, 10.0),
                               rtol=1e-5)
    np.testing.assert_allclose(losses.smoothness_loss(flow, image, edge_constant=2.0).numpy(),
                               lref.smoothness(flow, image, 2.0), rtol=1e-5)
    constant = np.broadcast_to(np.array([1.5, -2.0], np.float32), (B, H, W, 2))
    assert losses.smoothness_loss(constant, image).numpy() == 0.0
    step = np.zeros((1, 4, 6, 2), np.float32)
    step[:, :, 3:] = 1.0
    flat = np.zeros((1, 4, 6, 3), np.float32)
    edge = np.zeros((1, 4, 6, 3), np.float32)
    edge[:, :, 3:] = 1.0
    assert losses.smoothness_loss(step, edge).numpy() < 1e-3 * losses.smoothness_loss(step, flat).numpy()


# --- supervised -----------------------------------------------------------------------------------

def test_supervised_epe_matches_numpy_and_ignores_invalid_garbage():
    flow, gt = _flow(3.0), _flow(3.0)
    valid = _binary(B, H, W, 1, p=0.4)
    sel = valid[..., 0] > 0
    errors = np.sqrt(((flow - gt) ** 2).sum(-1))
    want = np.mean([errors[b][sel[b]].mean() for b in range(B)])  # mean of per-image EPEs
    np.testing.assert_allclose(losses.supervised_loss(flow, gt, valid, kind="epe").numpy(), want, rtol=1e-5)
    garbage = gt.copy()
    garbage[~sel] = np.where(RNG.uniform(size=garbage[~sel].shape) < 0.5, np.nan, 1e9)
    for kind in ("epe", "robust"):
        clean = losses.supervised_loss(flow, gt, valid, kind=kind).numpy()
        np.testing.assert_allclose(losses.supervised_loss(flow, garbage, valid.astype(bool), kind=kind).numpy(),
                                   clean, rtol=1e-6)


def test_supervised_robust_is_hand_computed():
    gt = _flow()
    flow = gt + np.float32(0.5)
    valid = _binary(B, H, W, 1, p=0.5)
    count = valid.sum()
    want = (0.5 + 0.01) ** 0.4 * 2 * count / (2 * count + 1e-6)
    np.testing.assert_allclose(losses.supervised_loss(flow, gt, valid).numpy(), want, rtol=1e-5)


def test_supervised_gradient_is_finite_at_exact_pixels_and_zero_at_invalid_ones():
    gt = _flow()
    gt[0, 0, 0] = np.nan
    valid = np.ones((B, H, W, 1), np.float32)
    valid[0, 0, 0] = 0.0
    init = gt.copy()
    init[0, 0, 0] = 0.0
    init[1, 2:4] += 1.0
    flow = tf.Variable(init)  # exact (EPE 0) at most valid pixels
    for kind in ("epe", "robust"):
        with tf.GradientTape() as tape:
            loss = losses.supervised_loss(flow, gt, valid, kind=kind)
        grad = tape.gradient(loss, flow).numpy()
        assert np.all(np.isfinite(grad)), kind
        assert np.all(grad[0, 0, 0] == 0.0) and np.abs(grad[1, 2:4]).sum() > 0, kind


def test_supervised_unknown_kind_is_named():
    flow = np.zeros((1, 2, 2, 2), np.float32)
    with pytest.raises(ValueError, match="'l3'"):
        losses.supervised_loss(flow, flow, np.ones((1, 2, 2, 1)), kind="l3")


# --- distillation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("student, teacher, extra, want", [
    (1, 0, None, 1), (0, 0, None, 0), (1, 1, None, 0), (0, 1, None, 0),
    (0, 0, 1, 1), (0, 1, 1, 0), (1, 0, 1, 1), (1, 1, 1, 0), (0, 0, 0, 0), (1, 0, 0, 1),
])
def test_distillation_mask_truth_table(student, teacher, extra, want):
    def full(value):
        return None if value is None else np.full((1, 2, 3, 1), value, np.float32)
    got = losses.distillation_mask(full(student), full(teacher), full(extra)).numpy()
    np.testing.assert_array_equal(got, full(want))


def test_distillation_loss_matches_numpy():
    s_fw, t_fw, s_bw, t_bw = _flow(), _flow(), _flow(), _flow()
    m_fw, m_bw = _binary(B, H, W, 1), _binary(B, H, W, 1)
    fw = lref.ddflow_mean(lref.psi(t_fw - s_fw), m_fw)
    bw = lref.ddflow_mean(lref.psi(t_bw - s_bw), m_bw)
    got = losses.distillation_loss(s_fw, t_fw, m_fw, s_bw, t_bw, m_bw).numpy()
    np.testing.assert_allclose(got, 0.5 * (fw + bw), rtol=1e-5)
    np.testing.assert_allclose(losses.distillation_loss(s_fw, t_fw, m_fw).numpy(), fw, rtol=1e-5)
    with pytest.raises(ValueError, match="mask_bw"):
        losses.distillation_loss(s_fw, t_fw, m_fw, s_bw, t_bw)


def test_distillation_gradient_reaches_the_student_only():
    student, teacher = tf.Variable(_flow()), tf.Variable(_flow())
    mask = _binary(B, H, W, 1)
    with tf.GradientTape() as tape:
        loss = losses.distillation_loss(student, teacher, mask, student, teacher, mask)
    g_student, g_teacher = tape.gradient(loss, [student, teacher])
    assert g_teacher is None
    g_student = g_student.numpy()
    assert np.all(g_student[mask[..., 0] == 0] == 0.0)
    assert np.all(g_student[mask[..., 0] == 1] != 0.0)


# --- graph mode, XLA and errors -------------------------------------------------------------------

def _all_losses(img1, img2, fw, bw, occ, gt, valid):
    return tf.stack([
        losses.photometric_loss(img1, img2, fw, bw, occ, occ, mask_fw=1.0 - occ),
        losses.census_loss(img1, img2, fw, bw, occ, occ),
        losses.smoothness_loss(fw, img1),
        losses.supervised_loss(fw, gt, valid, kind="robust"),
        losses.supervised_loss(fw, gt, valid, kind="epe"),
        losses.distillation_loss(fw, gt, losses.distillation_mask(occ, valid, extra=occ), bw, gt, valid),
    ])


def test_all_losses_agree_under_tf_function_and_xla():
    args = (_uniform(B, H, W, 3), _uniform(B, H, W, 3), _flow(), _flow(), _binary(B, H, W, 1), _flow(),
            _binary(B, H, W, 1, p=0.6))
    eager = _all_losses(*args).numpy()
    spec = [tf.TensorSpec([None, None, None, a.shape[-1]], tf.float32) for a in args]
    dynamic = tf.function(_all_losses, input_signature=spec)(*args).numpy()
    xla = tf.function(_all_losses, jit_compile=True)(*args).numpy()
    assert np.all(np.isfinite(eager))
    np.testing.assert_allclose(dynamic, eager, rtol=1e-5)
    np.testing.assert_allclose(xla, eager, rtol=1e-4)


@pytest.mark.parametrize("call, name", [
    (lambda: losses.photometric_loss(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 5, 3)), np.zeros((1, 4, 4, 2))),
     "image2"),
    (lambda: losses.photometric_loss(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 3))),
     "flow_fw"),
    (lambda: losses.census_loss(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 2)),
                                occlusion_bw=np.zeros((1, 4, 4, 1))), "occlusion_bw"),
    (lambda: losses.census_loss(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 2)),
                                occlusion_fw=np.zeros((1, 4, 3, 1))), "occlusion_fw"),
    (lambda: losses.masked_mean(np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 4, 2))), "mask"),
    (lambda: losses.supervised_loss(np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 4, 2)), np.ones((1, 4, 4))), "valid"),
    (lambda: losses.distillation_mask(np.zeros((1, 4, 4, 1)), np.zeros((1, 3, 4, 1))), "teacher_occlusion"),
    (lambda: losses.distillation_loss(np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 5, 1))),
     "mask_fw"),
])
def test_bad_arguments_raise_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_consistency_loss_known_answers_and_mask():
    """Zero residual costs the floor 2 psi(0); a uniform residual (1, 0) costs psi(1) + psi(0)
    per direction's pixel pair; occluded pixels are left out; both flows get gradients."""
    from dflow_tf.losses import consistency_loss
    psi0, psi1 = 0.01 ** 0.4, 1.01 ** 0.4
    zero = tf.zeros([2, 6, 8, 2])
    assert float(consistency_loss(zero, zero)) == pytest.approx(2 * psi0, rel=1e-6)
    ones_u = tf.concat([tf.ones([2, 6, 8, 1]), tf.zeros([2, 6, 8, 1])], axis=-1)
    # w_fw = (1, 0) everywhere, w_bw = 0: residual (1, 0) in both directions wherever w_fw's target
    # stays inside frame 2 (all columns but the last, where the zero border is sampled).
    inside = tf.concat([tf.ones([2, 6, 7, 1]), tf.zeros([2, 6, 1, 1])], axis=2)
    # Leave the last column out of frame 1 (as the occlusion check would: its target is outside).
    loss = consistency_loss(ones_u, zero, occlusion_fw=1.0 - inside)
    assert float(loss) == pytest.approx((psi1 + psi0) / 2 * 2, rel=1e-6)
    occluded_everywhere = tf.ones([2, 6, 8, 1])
    assert float(consistency_loss(ones_u, zero, occluded_everywhere, occluded_everywhere)) == 0.0
    flow_fw = tf.Variable(ones_u * 0.5)
    flow_bw = tf.Variable(zero)
    with tf.GradientTape() as tape:
        value = consistency_loss(flow_fw, flow_bw)
    grad_fw, grad_bw = tape.gradient(value, [flow_fw, flow_bw])
    assert float(tf.reduce_max(tf.abs(grad_fw))) > 0 and float(tf.reduce_max(tf.abs(grad_bw))) > 0


# ------------------------------------------------------------------------ multi-scale (PWC-Net)

def test_multiscale_loss_of_zero_flow_against_a_constant_motion_is_known():
    # |(6, -8)| = 10 px -> 0.5 after PWC-Net's /20; zero prediction at levels 2..6 of a 64x128 image:
    # 0.5 * (0.005 * 16*32 + 0.01 * 8*16 + 0.02 * 4*8 + 0.08 * 2*4 + 0.32 * 1*2) = 2.88 per image.
    gt = np.broadcast_to(np.array([6.0, -8.0], np.float32), (2, 64, 128, 2))
    levels = {level: np.zeros((2, 64 >> level, 128 >> level, 2), np.float32) for level in range(2, 7)}
    loss = losses.multiscale_loss(levels, gt, np.ones((2, 64, 128, 1), np.float32))
    np.testing.assert_allclose(float(loss), 2.88, rtol=1e-5)


def _numpy_multiscale(levels, gt, valid, weights):
    """Per level: the valid full-resolution vectors averaged in each level pixel (pixels without
    any left out), scaled to the level, then sum of |f - g| * 2^l / 20, weighted, batch mean."""
    total = 0.0
    for level, flow in levels.items():
        s = 2 ** level
        b, h, w, _ = flow.shape
        blocks_gt = gt.reshape(b, h, s, w, s, 2)
        blocks_valid = valid.reshape(b, h, s, w, s, 1)
        count = blocks_valid.sum(axis=(2, 4))
        mean = (blocks_gt * blocks_valid).sum(axis=(2, 4)) / np.maximum(count, 1) / s
        err = np.linalg.norm((flow - mean) * s / 20.0, axis=-1)[..., None]
        total += weights[level] * (err * (count > 0)).sum(axis=(1, 2, 3)).mean()
    return total


def test_multiscale_loss_matches_numpy_on_sparse_ground_truth():
    rng = np.random.default_rng(4)
    gt = rng.normal(0, 6, (2, 32, 64, 2)).astype(np.float32)
    valid = (rng.uniform(size=(2, 32, 64, 1)) < 0.3).astype(np.float32)  # sparse: some level pixels empty
    valid[:, :8, :8] = 0.0
    levels = {level: rng.normal(0, 2, (2, 32 >> level, 64 >> level, 2)).astype(np.float32) for level in (2, 3, 4)}
    weights = {2: 0.5, 3: 0.25, 4: 2.0}
    gt_with_junk = np.where(valid > 0, gt, np.float32(1e9))  # invalid pixels never enter
    loss = losses.multiscale_loss(levels, gt_with_junk, valid, weights=weights)
    np.testing.assert_allclose(float(loss), _numpy_multiscale(levels, gt, valid, weights), rtol=1e-5)
