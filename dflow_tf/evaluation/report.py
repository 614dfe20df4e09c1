"""Reports of an evaluation: the metrics table printed by `python -m dflow_tf.evaluate` and its
JSON file (docs/evaluation.md)."""
import json
import math
import os

#: (region, meaning) of the reported rows, in order (docs/method.md §5).
REGIONS = (("all", "all valid pixels"), ("noc", "non-occluded (Sintel: matched)"),
           ("occ", "occluded (Sintel: unmatched)"), ("s0-10", "gt speed < 10 px"),
           ("s10-40", "gt speed 10-40 px"), ("s40+", "gt speed >= 40 px"))


def _num(value):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def format_table(results):
    """The metrics of FlowMetrics().result() as a text table, one row per reported region."""
    header = ["region", "EPE mean/img", "EPE pooled", "Fl% mean/img", "Fl% pooled", "pixels", "images", ""]
    rows = []
    for region, meaning in REGIONS:
        if f"epe_{region}/pixel_pooled" not in results:
            continue
        rows.append([region] + [_num(results[f"{m}_{region}/{a}"]) for m in ("epe", "fl")
                                for a in ("per_image_mean", "pixel_pooled")]
                    + [str(results[f"pixels_{region}"]), str(results[f"images_{region}"]), meaning])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + rows]
    lines.append(f"{results['num_images']} images. EPE in px. 'mean/img' = mean over images of each image's "
                 "value; 'pooled' = over all pixels of all images.")
    lines.append("Fl: error > 3 px and > 5% of the ground-truth speed.")
    return "\n".join(lines)


def _nan_to_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def write_report(path, **report):
    """Writes the `report` entries (e.g. checkpoint, model, data, metrics, per_image) to the JSON
    file `path`, NaN as null (a region without pixels); creates its folder. Returns `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_nan_to_none(report), f, indent=1)
    return path
