"""The stereo results tables of docs/results/stereo.md: the teachers and the student of a
gin/stereo.gin run next to OpenCV's StereoSGBM, all scored by the same DisparityMetrics.

    python docs/experiments/stereo_baseline.py --run runs/stereo [--stereo ../shared/flowdata/stereo --scale 0.5]

Rows: every stage of the run's results.json (the synthetic validation split as the run evaluated
it, pixel-pooled; the real pairs of its eval_pairs group, mean over the pairs), and StereoSGBM
computed here on the same synthetic validation pairs (tfds synthetic_stereo, unaugmented) and on
the same real pairs. `--stereo` adds a folder of stereo folders (Middlebury / KITTI layout,
dflow_tf.io.stereo_folders) on which the run's final teachers and student are evaluated here
(dflow_tf.evaluation.pair_groups) next to SGBM; `--scale 0.5` also on those pairs at half size
(SGBM numDisparities 64 there).

SGBM: block 5, P1 = 8*3*5^2, P2 = 32*3*5^2, uniqueness 10, speckle window 100 / range 2,
3-way mode; numDisparities 32 on synthetic_stereo (its disparities are at most 24 px) and 128 on
the real pairs (Middlebury 2014 at quarter size: at most ~70 px). Pixels SGBM leaves invalid are
filled as in the KITTI devkit (each row: the smaller of the nearest valid disparities to the left
and right), so that every pixel is scored; its density before filling is reported.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np

from dflow_tf.metrics import DisparityMetrics

REGION_KEYS = [("epe_all", "EPE all"), ("epe_noc", "EPE noc"), ("epe_occ", "EPE occ"),
               ("d1_all", "D1 all %"), ("d1_noc", "D1 noc %"), ("d1_occ", "D1 occ %")]
FINAL_STAGES = ("teacher_a/census", "teacher_b/census", "student")


def sgbm(left, right, num_disparities):
    """OpenCV StereoSGBM on uint8 RGB [H, W, 3] -> (disparity float32 [H, W] px, filled where SGBM
    found none; density: the fraction SGBM found)."""
    block = 5
    matcher = cv2.StereoSGBM_create(minDisparity=0, numDisparities=num_disparities, blockSize=block,
                                    P1=8 * 3 * block ** 2, P2=32 * 3 * block ** 2, uniquenessRatio=10,
                                    speckleWindowSize=100, speckleRange=2, disp12MaxDiff=1,
                                    mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
    raw = matcher.compute(cv2.cvtColor(left, cv2.COLOR_RGB2BGR), cv2.cvtColor(right, cv2.COLOR_RGB2BGR))
    disparity = raw.astype(np.float32) / 16.0
    found = disparity > 0
    return fill_invalid(disparity, found), float(found.mean())


def fill_invalid(disparity, found):
    """KITTI devkit background interpolation: each invalid pixel of a row takes the smaller of the
    nearest found disparities to its left and right (the one that exists at a row end; 0 in a
    row without any)."""
    out = disparity.copy()
    width = disparity.shape[1]
    cols = np.arange(width)
    for y in range(disparity.shape[0]):
        valid = found[y]
        if not valid.any():
            out[y] = 0.0
            continue
        idx = np.where(valid, cols, -1)
        left = np.maximum.accumulate(idx)
        right = np.minimum.accumulate(np.where(valid, cols, width)[::-1])[::-1]
        from_left = np.where(left >= 0, disparity[y, np.clip(left, 0, width - 1)], np.inf)
        from_right = np.where(right < width, disparity[y, np.clip(right, 0, width - 1)], np.inf)
        out[y] = np.where(valid, disparity[y], np.minimum(from_left, from_right))
    return out


def synthetic_pairs(data_dir=None):
    """(left, right, gt disparity, valid, occluded) of every synthetic_stereo validation pair."""
    from dflow_tf.data.pipeline import make_dataset
    ds = make_dataset("synthetic_stereo", "validation", batch_size=1, augmentation=None, shuffle=False,
                      repeat=False, drop_remainder=False, data_dir=data_dir)
    for batch in ds:
        frames = np.round(batch["frames"][0].numpy() * 255).astype(np.uint8)
        yield (frames[0], frames[1], -batch["flow"][0, ..., 0].numpy(), batch["valid"][0, ..., 0].numpy() > 0.5,
               batch["occlusion"][0, ..., 0].numpy() > 0.5)


def real_pairs(source):
    """(left, right, gt, valid, occluded) of the stereo pairs with ground truth of a folder of stereo
    folders, or of skimage:motorcycle."""
    from dflow_tf.evaluation.samples import folder_pairs
    samples = [read() for _, read in folder_pairs(source, kinds=("stereo",))["stereo"]]
    for s in samples:
        yield s["left"], s["right"], s["disparity"], s["valid"], s["occluded"]


def rescaled(pairs, scale):
    """The pairs resized by `scale` (frames: area; disparity x scale, masks: nearest)."""
    def resize(a, size, how):
        return cv2.resize(a, size, interpolation=how)

    for left, right, gt, valid, occluded in pairs:
        size = tuple(int(round(n * scale)) for n in left.shape[1::-1])  # (W, H)
        occluded = None if occluded is None else resize(occluded.astype(np.uint8), size, cv2.INTER_NEAREST) > 0
        yield (resize(left, size, cv2.INTER_AREA), resize(right, size, cv2.INTER_AREA),
               resize(gt, size, cv2.INTER_NEAREST) * scale,
               resize(valid.astype(np.uint8), size, cv2.INTER_NEAREST) > 0, occluded)


def model_metrics(model, pairs):
    """DisparityMetrics of a flow model (d = -u of its left -> right flow) on `pairs`."""
    from dflow_tf.inference import make_predictor
    from dflow_tf.models.stereo import disparity_from_flow, stereo_window
    predict, metrics = make_predictor(model), DisparityMetrics()
    for left, right, gt, valid, occluded in pairs:
        disparity, v = disparity_from_flow(predict(np.stack(stereo_window(left, right, model.num_frames))))
        metrics.update(disparity, gt, valid=valid, occluded=occluded, v=v)
    return metrics.result()


def baseline_metrics(pairs, num_disparities):
    """(StereoSGBM's metrics with its mean density, the zero-disparity metrics) on `pairs`."""
    metrics, zero, densities = DisparityMetrics(), DisparityMetrics(), []
    for left, right, gt, valid, occluded in pairs:
        disparity, density = sgbm(left, right, num_disparities)
        metrics.update(disparity, gt, valid=valid, occluded=occluded)
        zero.update(np.zeros_like(gt), gt, valid=valid, occluded=occluded)
        densities.append(density)
    return {**metrics.result(), "density": float(np.mean(densities))}, zero.result()


def table(title, rows, averaging):
    keys = [(k, label) for k, label in REGION_KEYS if any(f"{k}/{averaging}" in m for _, m in rows)]
    lines = [f"\n{title}\n", "| model | " + " | ".join(label for _, label in keys) + " |",
             "|---" * (len(keys) + 1) + "|"]
    for name, m in rows:
        cells = [f"{m[f'{k}/{averaging}']:.3f}" if f"{k}/{averaging}" in m else "-" for k, _ in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/stereo", help="output folder of a gin/stereo.gin run")
    parser.add_argument("--stereo", default=None, help="a folder of stereo folders to evaluate the run's "
                        "final models and SGBM on (e.g. ../shared/flowdata/stereo)")
    parser.add_argument("--scale", type=float, default=1.0, help="also evaluate the --stereo pairs resized by "
                        "this factor (a check of the disparity range the models learnt)")
    parser.add_argument("--eval_pairs", default="skimage:motorcycle", help="the run's train_stage.eval_pairs")
    parser.add_argument("--data_dir", default=None, help="tfds data directory of synthetic_stereo")
    args = parser.parse_args(argv)
    results_path = os.path.join(args.run, "results.json")
    try:
        with open(results_path) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        sys.exit(f"error: cannot read {results_path} ({error}); run gin/stereo.gin first")
    stages = [(name, m) for name, m in results.items() if m]
    synthetic, zero = baseline_metrics(synthetic_pairs(args.data_dir), 32)
    print(table("synthetic_stereo validation (40 pairs, pixel-pooled)",
                stages + [("OpenCV StereoSGBM", synthetic), ("zero disparity", zero)], "pixel_pooled"))
    print(f"\n(SGBM density before filling: {100 * synthetic['density']:.1f} %)")
    real, real_zero = baseline_metrics(real_pairs(args.eval_pairs), 128)
    groups = sorted({g for _, m in stages for g in m.get("pairs", {})})
    for group in groups:
        rows = [(name, m["pairs"][group]) for name, m in stages if group in m.get("pairs", {})]
        print(table(f"{args.eval_pairs} (group {group}, mean over pairs)",
                    rows + [("OpenCV StereoSGBM", real), ("zero disparity", real_zero)], "per_image_mean"))
        print(f"\n(SGBM density before filling: {100 * real['density']:.1f} %)")
    if args.stereo:
        from dflow_tf.checkpoints import load_model
        from dflow_tf.evaluation.pair_groups import evaluate_pair_groups
        rows = []
        for stage in FINAL_STAGES:
            model, _ = load_model(os.path.join(args.run, stage))
            for group, m in evaluate_pair_groups(model, args.stereo).items():
                rows.append((f"{stage} ({group})", m))
        folder, folder_zero = baseline_metrics(real_pairs(args.stereo), 128)
        print(table(f"{args.stereo} (mean over pairs)",
                    rows + [("OpenCV StereoSGBM", folder), ("zero disparity", folder_zero)], "per_image_mean"))
        print(f"\n(SGBM density before filling: {100 * folder['density']:.1f} %)")
        if args.scale != 1.0:
            rows = [(stage, model_metrics(load_model(os.path.join(args.run, stage))[0],
                                          rescaled(real_pairs(args.stereo), args.scale))) for stage in FINAL_STAGES]
            folder, folder_zero = baseline_metrics(rescaled(real_pairs(args.stereo), args.scale), 64)
            print(table(f"{args.stereo} resized by {args.scale} (disparities x {args.scale}; mean over pairs)",
                        rows + [("OpenCV StereoSGBM", folder), ("zero disparity", folder_zero)], "per_image_mean"))


if __name__ == "__main__":
    main()
