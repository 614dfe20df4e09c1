"""Optical-flow and stereo-disparity accuracy metrics (numpy only).

Definitions:
  * endpoint error (EPE) of a pixel: Euclidean distance between predicted and ground-truth flow;
    for disparity, the absolute difference |d - d_gt| (the EPE of the flows (-d, 0) and (-d_gt, 0)).
  * KITTI Fl outlier: EPE > 3 px **and** EPE > 5% of the ground-truth magnitude (both strict).
    Fl is the outlier fraction in percent.
  * KITTI D1 outlier (stereo): |d - d_gt| > 3 px **and** > 5% of |d_gt| (the same thresholds);
    D1 is the outlier fraction in percent.
  * Sintel speed bins by ground-truth magnitude s: s0-10 = [0, 10), s10-40 = [10, 40), s40+ = [40, inf).

Averaging: papers differ, so :class:`FlowMetrics` and :class:`DisparityMetrics` report both, under
explicit names:
  * ``.../per_image_mean``: the metric is computed per image, then averaged over images;
  * ``.../pixel_pooled``: all evaluated pixels of all images are pooled into one average.

Ground truth with unknown values (Middlebury stores 1e9+, stereo +inf) must be excluded through `valid`.
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
    return _outliers(endpoint_error(flow, gt), _magnitude(gt))


def _magnitude(gt):
    return np.sqrt(np.sum(np.asarray(gt, np.float64) ** 2, axis=-1))


def _outliers(err, magnitude):
    """KITTI outlier rule (Fl, D1): err > 3 px and err > 5% of the ground-truth magnitude."""
    return (err > FL_ABS_THRESHOLD) & (err > FL_REL_THRESHOLD * magnitude)


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


class _RegionMetrics:
    """Streaming per-region sums of per-pixel values over images (the accumulation shared by
    FlowMetrics and DisparityMetrics); memory does not grow with the number of images.

    Subclasses set METRICS ({name: scale}: 1 for errors in px, 100 for outlier flags reported in
    percent), BASE_REGIONS (always reported) and OPTIONAL_REGIONS (reported once an image
    contributed to them).
    """

    METRICS = {}
    BASE_REGIONS = ()
    OPTIONAL_REGIONS = ()

    def __init__(self):
        self.num_images = 0
        self._sums = {r: self._empty() for r in self.BASE_REGIONS + self.OPTIONAL_REGIONS}
        self._seen = set(self.BASE_REGIONS)

    def _empty(self):
        sums = {"pixels": 0.0, "images": 0.0}
        for metric in self.METRICS:
            sums[metric] = 0.0  # sum over pixels
            sums[metric + "/image"] = 0.0  # sum over images of the per-image mean
        return sums

    def _add(self, values, regions):
        """Adds B images: values {metric: float or bool [B, H, W]}, regions {region: bool [B, H, W]}."""
        self.num_images += next(iter(values.values())).shape[0]
        for name, sel in regions.items():
            self._seen.add(name)
            _accumulate(self._sums[name], values, sel)

    def merge(self, other):
        """Adds the sums of another accumulator of the same class into this one (in place); returns self."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        self.num_images += other.num_images
        self._seen |= other._seen
        for name, acc in self._sums.items():
            for field in acc:
                acc[field] += other._sums[name][field]
        return self

    def _region_results(self, name, metrics):
        acc = self._sums[name]
        res = {}
        for metric in metrics:
            scale = self.METRICS[metric]
            res[f"{metric}_{name}/per_image_mean"] = _ratio(scale * acc[metric + "/image"], acc["images"])
            res[f"{metric}_{name}/pixel_pooled"] = _ratio(scale * acc[metric], acc["pixels"])
        return res

    def result(self):
        """The flat dict described in the class docstring."""
        res = {"num_images": self.num_images}
        for name in self.BASE_REGIONS + self.OPTIONAL_REGIONS:
            if name not in self._seen:
                continue
            res.update(self._region_results(name, self.METRICS))
            res[f"pixels_{name}"] = int(self._sums[name]["pixels"])
            res[f"images_{name}"] = int(self._sums[name]["images"])
        return res


class FlowMetrics(_RegionMetrics):
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

    METRICS = {"epe": 1.0, "fl": 100.0}
    BASE_REGIONS = ("all",) + tuple(name for name, _, _ in SPEED_BINS)
    OPTIONAL_REGIONS = OCCLUSION_REGIONS = ("noc", "occ")

    def update(self, flow, gt, valid=None, occluded=None):
        """Adds one image ([H, W, 2]) or a batch ([B, H, W, 2]) of predictions and ground truth.

        valid, occluded: optional bool or 0/1 masks [H, W] / [H, W, 1] (batched: [B, H, W] /
        [B, H, W, 1]); valid defaults to all pixels, occluded to "no occlusion mask".
        Returns self.
        """
        err = endpoint_error(flow, gt)
        regions = _occlusion_regions(valid, occluded, err.shape)
        for name, sel in speed_bin_masks(gt).items():
            regions[name] = regions["all"] & sel
        values = {"epe": err, "fl": _outliers(err, _magnitude(gt))}
        self._add(*_batch_of(values, regions))
        return self


class DisparityMetrics(_RegionMetrics):
    """Streaming stereo accumulator (EPE and KITTI D1 of disparities) over images.

    Regions: ``all`` (= valid), ``noc`` / ``occ`` (valid and not / and occluded; only images that
    came with an occlusion mask, reported once one did). With the predicted vertical flow ``v``
    passed to update (the rectification check: on rectified pairs it should be 0) also
    ``v_abs_mean``: the mean |v| over the valid pixels.

    ``result()`` keys, for each reported region R: ``epe_R/per_image_mean``, ``epe_R/pixel_pooled``
    (px), ``d1_R/per_image_mean``, ``d1_R/pixel_pooled`` (percent), ``pixels_R``, ``images_R``;
    ``v_abs_mean/per_image_mean``, ``v_abs_mean/pixel_pooled`` (px, once a v was given); and
    ``num_images``. Averaging as FlowMetrics.
    """

    METRICS = {"epe": 1.0, "d1": 100.0}
    BASE_REGIONS = ("all",)
    OPTIONAL_REGIONS = ("noc", "occ")

    def __init__(self):
        super().__init__()
        self._v = {"pixels": 0.0, "images": 0.0, "v": 0.0, "v/image": 0.0}
        self._has_v = False

    def update(self, disparity, gt, valid=None, occluded=None, v=None):
        """Adds one image ([H, W]) or a batch ([B, H, W]) of predicted and ground-truth disparities.

        disparity, gt: float [H, W], [B, H, W] or [B, H, W, 1], px; positive d: the left pixel x
        matches the right image's x - d (the left -> right flow is (-d, 0)). valid, occluded:
        optional bool or 0/1 masks [H, W] / [B, H, W] (also [..., 1]); valid defaults to all
        pixels, occluded to "no occlusion mask". v: optional predicted vertical flow of the
        disparity's shape (px). Returns self.
        """
        disparity, gt = _check_disparities(disparity, gt)
        err = np.abs(disparity - gt)
        regions = _occlusion_regions(valid, occluded, err.shape)
        self._add(*_batch_of({"epe": err, "d1": _outliers(err, np.abs(gt))}, regions))
        if v is not None:
            v = np.asarray(v, np.float64)
            if v.shape not in (err.shape, err.shape + (1,)):
                raise ValueError(f"v must have the disparity's shape {list(err.shape)}, got {list(v.shape)}")
            values, sel = _batch_of({"v": np.abs(v.reshape(err.shape))}, {"all": regions["all"]})
            _accumulate(self._v, values, sel["all"])
            self._has_v = True
        return self

    def merge(self, other):
        super().merge(other)
        for field in self._v:
            self._v[field] += other._v[field]
        self._has_v |= other._has_v
        return self

    def result(self):
        res = super().result()
        if self._has_v:
            res["v_abs_mean/per_image_mean"] = _ratio(self._v["v/image"], self._v["images"])
            res["v_abs_mean/pixel_pooled"] = _ratio(self._v["v"], self._v["pixels"])
        return res


def d1_outliers(disparity, gt):
    """KITTI D1 outliers: disparity, gt [..., H, W] -> bool [..., H, W] (error > 3 px and > 5% of |gt|)."""
    disparity, gt = _check_disparities(disparity, gt)
    return _outliers(np.abs(disparity - gt), np.abs(gt))


def _accumulate(acc, values, sel):
    """Adds to the sums `acc` ("pixels", "images", and per metric m: m = sum over the pixels,
    "m/image" = sum over images of their mean) the values {m: [B, H, W]} where sel [B, H, W] holds."""
    n = sel.sum(axis=(1, 2))
    has = n > 0
    acc["pixels"] += float(n.sum())
    acc["images"] += float(has.sum())
    for metric, value in values.items():
        total = np.where(sel, value, 0.0).sum(axis=(1, 2))
        acc[metric] += float(total.sum())
        acc[metric + "/image"] += float((total[has] / n[has]).sum())


def _batch_of(values, regions):
    """Adds the batch axis to [H, W] values and regions ([B, H, W] ones pass unchanged)."""
    if next(iter(values.values())).ndim == 2:
        values = {k: v[None] for k, v in values.items()}
        regions = {k: v[None] for k, v in regions.items()}
    return values, regions


def _occlusion_regions(valid, occluded, shape):
    """{"all": valid} plus, with an occlusion mask, "noc" and "occ" (bool masks of `shape`)."""
    valid = _as_mask(valid, shape, "valid")
    regions = {"all": valid}
    if occluded is not None:
        occluded = _as_mask(occluded, shape, "occluded")
        regions["noc"] = valid & ~occluded
        regions["occ"] = valid & occluded
    return regions


def _check_disparities(disparity, gt):
    disparity = np.asarray(disparity, np.float64)
    gt = np.asarray(gt, np.float64)
    if disparity.ndim == 4 and disparity.shape[-1] == 1:
        disparity = disparity[..., 0]
    if gt.ndim == 4 and gt.shape[-1] == 1:
        gt = gt[..., 0]
    if disparity.ndim not in (2, 3):
        raise ValueError(f"disparity must be [H, W] or [B, H, W], got shape {list(disparity.shape)}")
    if disparity.shape != gt.shape:
        raise ValueError(f"disparity shape {list(disparity.shape)} and gt shape {list(gt.shape)} differ")
    return disparity, gt


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
