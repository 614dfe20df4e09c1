"""Plain numpy references for the losses (DDFlow's formulas written out independently)."""
import numpy as np

import numpy_reference as ref

EPS, Q = 0.01, 0.4


def psi(x):
    return (np.abs(x) + EPS) ** Q


def ddflow_mean(values, mask):
    """values [B, H, W, C], mask [B, H, W, 1]: per image sum / (2 * masked pixels + 1e-6), batch mean."""
    totals = np.zeros(values.shape[0])
    for idx in np.ndindex(values.shape):
        totals[idx[0]] += values[idx] * mask[idx[:3] + (0,)]
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    return float(np.mean(totals / (2.0 * counts + 1e-6)))


def _weight(occ, mask, shape):
    w = np.ones(shape[:3] + (1,))
    if occ is not None:
        w = w * (1.0 - occ)
    if mask is not None:
        w = w * mask
    return w


def photometric(img1, img2, flow_fw, flow_bw=None, occ_fw=None, occ_bw=None, mask_fw=None, mask_bw=None):
    warped2, _ = ref.backward_warp(img2, flow_fw)
    loss = ddflow_mean(psi(img1 - warped2), _weight(occ_fw, mask_fw, img1.shape))
    if flow_bw is not None:
        warped1, _ = ref.backward_warp(img1, flow_bw)
        loss += ddflow_mean(psi(img2 - warped1), _weight(occ_bw, mask_bw, img2.shape))
    return loss


def hamming(t1, t2):
    d = (t1 - t2) ** 2
    return np.sum(d / (0.1 + d), axis=-1, keepdims=True)


def border(shape, r):
    b, h, w = shape[:3]
    m = np.zeros((b, h, w, 1))
    for i in range(h):
        for j in range(w):
            m[:, i, j, 0] = float(r <= i < h - r and r <= j < w - r)
    return m


def census(img1, img2, flow_fw, flow_bw=None, occ_fw=None, occ_bw=None, mask_fw=None, mask_bw=None, patch=7):
    r = patch // 2

    def term(a, b, flow, occ, mask):
        warped, _ = ref.backward_warp(b, flow)
        dist = hamming(ref.census(a, patch), ref.census(warped, patch))
        return ddflow_mean(psi(dist), _weight(occ, mask, a.shape) * border(a.shape, r))

    loss = term(img1, img2, flow_fw, occ_fw, mask_fw)
    if flow_bw is not None:
        loss += term(img2, img1, flow_bw, occ_bw, mask_bw)
    return loss


def smoothness(flow, image, edge_constant):
    b, h, w, _ = flow.shape
    sx, sy = [], []
    for n in range(b):
        for i in range(h):
            for j in range(w):
                if j + 1 < w:
                    wt = np.exp(-edge_constant * np.mean(np.abs(image[n, i, j + 1] - image[n, i, j])))
                    sx.extend(wt * np.abs(flow[n, i, j + 1] - flow[n, i, j]))
                if i + 1 < h:
                    wt = np.exp(-edge_constant * np.mean(np.abs(image[n, i + 1, j] - image[n, i, j])))
                    sy.extend(wt * np.abs(flow[n, i + 1, j] - flow[n, i, j]))
    return 0.5 * (np.mean(sx) + np.mean(sy))
