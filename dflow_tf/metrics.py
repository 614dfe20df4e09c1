"""Optical-flow accuracy metrics (numpy only).

Definitions:
  * endpoint error (EPE) of a pixel: Euclidean distance between predicted and ground-truth flow.
  * KITTI Fl outlier: EPE > 3 px **and** EPE > 5% of the ground-truth magnitude (both strict).
    Fl is the outlier fraction in percent.
  * Sintel speed bins by ground-truth magnitude s: s0-10 = [0, 10), s10-40 = [10, 40), s40+ = [40, inf).

Averaging: papers differ, so :class:`FlowMetrics` reports both, under explicit names:
  * ``.../per_image_mean``: the metric is computed per image, then averaged over images;
  * ``.../pixel_pooled``: all evaluated pixels of all images are pooled into one average.

Ground truth with unknown values (Middlebury stores 1e9+) must be excluded through `valid`.
"""
import numpy as np

FL_ABS_THRESHOLD = 3.0
FL_REL_THRESHOLD = 0.05
SPEED_BINS = (("s0-10", 0.0, 10.0), ("s10-40", 10.0, 40.0), ("s40+", 40.0, np.inf))


def endpoint_error(flow, gt):
    """Per-pixel endpoint error: flow, gt [..., H, W, 2] -> float64 [..., H, W]."""
    flow, gt = _check_flows(flow, gt)
    return np.sqrt(np.sum((flow - gt) ** 2, axis=-1))


def fl_outliers(flow, gt):
    """KITTI Fl outliers: flow, gt [..., H, W, 2] -> bool [..., H, W]."""
    return _outliers(endpoint_error(flow, gt), gt)


def _outliers(err, gt):
    mag = np.sqrt(np.sum(np.asarray(gt, np.float64) ** 2, axis=-1))
    return (err > FL_ABS_THRESHOLD) & (err > FL_REL_THRESHOLD * mag)


def speed_bin_masks(gt):
    """Sintel speed bins: gt [..., H, W, 2] -> {name: bool [..., H, W]} (see SPEED_BINS)."""
    speed = np.sqrt(np.sum(np.asarray(gt, np.float64) ** 2, axis=-1))
    return {name: (speed >= lo) & (speed < hi) for name, lo, hi in SPEED_BINS}


def epe(flow, gt, mask=None):
    """Mean EPE over the pixels where `mask` holds (all pixels when None), pooled over any batch.

    flow, gt: [..., H, W, 2]; mask: bool or 0/1 [..., H, W] or [..., H, W, 1]. NaN when no pixel.
    """
    err = endpoint_error(flow, gt)
    sel = _as_mask(mask, err.shape, "mask")
    return float(err[sel].mean()) if sel.any() else float("nan")


def fl(flow, gt, mask=None):
    """KITTI Fl in percent over the pixels where `mask` holds, pooled over any batch (NaN if none)."""
    out = fl_outliers(flow, gt)
    sel = _as_mask(mask, out.shape, "mask")
    return float(100.0 * out[sel].mean()) if sel.any() else float("nan")


class FlowMetrics:
    """Streaming EPE / Fl accumulator over images; memory does not grow with the number of images.

    Regions: ``all`` (= valid), ``noc`` (= valid & ~occluded) and ``occ`` (= valid & occluded) --
    ``noc``/``occ`` only accumulate images that came with an occlusion mask and are reported only
    once one did -- plus the speed bins ``s0-10``, ``s10-40``, ``s40+`` (valid pixels by gt speed).

    ``result()`` keys, for each reported region R:
      ``epe_R/per_image_mean``, ``epe_R/pixel_pooled`` (px), ``fl_R/per_image_mean``,
      ``fl_R/pixel_pooled`` (percent), ``pixels_R`` (evaluated pixels), ``images_R`` (images with
      at least one pixel in R), and ``num_images``. An image with no pixel in a region is skipped
      in that region's per-image mean; a region with no pixel at all reports NaN.
    """

    BASE_REGIONS = ("all",) + tuple(name for name, _, _ in SPEED_BINS)
    OCCLUSION_REGIONS = ("noc", "occ")
    _FIELDS = ("err_sum", "out_sum", "pixels", "img_epe_sum", "img_fl_sum", "images")

    def __init__(self):
        self.num_images = 0
        self._sums = {r: dict.fromkeys(self._FIELDS, 0.0)
                      for r in self.BASE_REGIONS + self.OCCLUSION_REGIONS}
        self._has_occlusion = False

    def update(self, flow, gt, valid=None, occluded=None):
        """Adds one image ([H, W, 2]) or a batch ([B, H, W, 2]) of predictions and ground truth.

        valid, occluded: optional bool or 0/1 masks [H, W] / [H, W, 1] (batched: [B, H, W] /
        [B, H, W, 1]); valid defaults to all pixels, occluded to "no occlusion mask".
        Returns self.
        """
        err = endpoint_error(flow, gt)
        out = _outliers(err, gt)
        batched = err.ndim == 3
        valid = _as_mask(valid, err.shape, "valid")
        regions = {"all": valid}
        for name, sel in speed_bin_masks(gt).items():
            regions[name] = valid & sel
        if occluded is not None:
            occluded = _as_mask(occluded, err.shape, "occluded")
            regions["noc"] = valid & ~occluded
            regions["occ"] = valid & occluded
            self._has_occlusion = True
        if not batched:
            err, out = err[None], out[None]
            regions = {k: v[None] for k, v in regions.items()}
        self.num_images += err.shape[0]
        for name, sel in regions.items():
            acc = self._sums[name]
            n = sel.sum(axis=(1, 2))
            err_sum = np.where(sel, err, 0.0).sum(axis=(1, 2))
            out_sum = np.where(sel, out, False).sum(axis=(1, 2))
            has = n > 0
            acc["err_sum"] += float(err_sum.sum())
            acc["out_sum"] += float(out_sum.sum())
            acc["pixels"] += float(n.sum())
            acc["img_epe_sum"] += float((err_sum[has] / n[has]).sum())
            acc["img_fl_sum"] += float((100.0 * out_sum[has] / n[has]).sum())
            acc["images"] += float(has.sum())
        return self

    def merge(self, other):
        """Adds the sums of another FlowMetrics into this one (in place); returns self."""
        self.num_images += other.num_images
        self._has_occlusion |= other._has_occlusion
        for name, acc in self._sums.items():
            for field in self._FIELDS:
                acc[field] += other._sums[name][field]
        return self

    def result(self):
        """Returns the flat dict described in the class docstring."""
        regions = self.BASE_REGIONS + (self.OCCLUSION_REGIONS if self._has_occlusion else ())
        res = {"num_images": self.num_images}
        for name in regions:
            acc = self._sums[name]
            pixels, images = acc["pixels"], acc["images"]
            res[f"epe_{name}/per_image_mean"] = _ratio(acc["img_epe_sum"], images)
            res[f"epe_{name}/pixel_pooled"] = _ratio(acc["err_sum"], pixels)
            res[f"fl_{name}/per_image_mean"] = _ratio(acc["img_fl_sum"], images)
            res[f"fl_{name}/pixel_pooled"] = _ratio(100.0 * acc["out_sum"], pixels)
            res[f"pixels_{name}"] = int(pixels)
            res[f"images_{name}"] = int(images)
        return res


def _ratio(num, den):
    return num / den if den > 0 else float("nan")


def _check_flows(flow, gt):
    flow = np.asarray(flow, np.float64)
    gt = np.asarray(gt, np.float64)
    if flow.ndim not in (3, 4) or flow.shape[-1] != 2:
        raise ValueError(f"flow must be [H, W, 2] or [B, H, W, 2], got shape {list(flow.shape)}")
    if flow.shape != gt.shape:
        raise ValueError(f"flow shape {list(flow.shape)} and gt shape {list(gt.shape)} differ")
    return flow, gt


def _as_mask(mask, shape, name):
    """bool mask of `shape` ([H, W] or [B, H, W]) from None (all true), bool or 0/1 values."""
    if mask is None:
        return np.ones(shape, bool)
    mask = np.asarray(mask)
    if mask.shape not in (shape, shape + (1,)):
        raise ValueError(f"{name} must have shape {list(shape)} or {list(shape) + [1]}, "
                         f"got {list(mask.shape)}")
    mask = mask.reshape(shape)
    return mask if mask.dtype == bool else mask > 0.5
