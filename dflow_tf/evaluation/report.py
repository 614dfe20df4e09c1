"""Reports of an evaluation: the metrics tables printed by `python -m dflow_tf.evaluate` (flow:
EPE and Fl; stereo: EPE and D1 of the disparity, and the rectification check |v|) and its JSON
file (docs/evaluation.md). `format_columns` and `format_number` lay out every results table,
also an experiment's (dflow_tf.training.experiment.results_table)."""
import json
import math
import os

#: (region, meaning) of the reported rows, in order (docs/method.md §5).
REGIONS = (("all", "all valid pixels"), ("noc", "non-occluded (Sintel: matched)"),
           ("occ", "occluded (Sintel: unmatched)"), ("s0-10", "gt speed < 10 px"),
           ("s10-40", "gt speed 10-40 px"), ("s40+", "gt speed >= 40 px"))
#: The rows of a stereo table (DisparityMetrics().result()).
STEREO_REGIONS = (("all", "all valid pixels"), ("noc", "non-occluded"), ("occ", "occluded"))


def format_number(value):
    """A metric as a table cell: three decimals; "-" when missing (None) or NaN (no pixels)."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def format_columns(header, rows):
    """The text table of `header` and `rows` (lists of strings): left-aligned columns two spaces
    apart, no trailing spaces."""
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + rows)


def format_table(results, title=None):
    """The metrics of FlowMetrics().result() or DisparityMetrics().result() (recognised by its
    d1 keys) as a text table, one row per reported region, under an optional title line."""
    stereo = "d1_all/pixel_pooled" in results
    outlier, regions = ("d1", STEREO_REGIONS) if stereo else ("fl", REGIONS)
    label = "D1%" if stereo else "Fl%"
    header = ["region", "EPE mean/img", "EPE pooled", f"{label} mean/img", f"{label} pooled", "pixels", "images", ""]
    rows = []
    for region, meaning in regions:
        if f"epe_{region}/pixel_pooled" not in results:
            continue
        rows.append([region] + [format_number(results[f"{m}_{region}/{a}"]) for m in ("epe", outlier)
                                for a in ("per_image_mean", "pixel_pooled")]
                    + [str(results[f"pixels_{region}"]), str(results[f"images_{region}"]), meaning])
    lines = ([title] if title else []) + [format_columns(header, rows)]
    what = "disparity error |d - d_gt|" if stereo else "EPE"
    lines.append(f"{results['num_images']} images. {what} in px. 'mean/img' = mean over images of each image's "
                 "value; 'pooled' = over all pixels of all images.")
    if stereo:
        lines.append("D1: error > 3 px and > 5% of the ground-truth disparity. "
                     "Disparity = -u of the left -> right flow.")
        if "v_abs_mean/pixel_pooled" in results:
            per_image, pooled = (format_number(results[f"v_abs_mean/{a}"]) for a in ("per_image_mean", "pixel_pooled"))
            lines.append(f"Rectification check: mean |v| over valid pixels {per_image} px (mean/img), "
                         f"{pooled} px (pooled); 0 on rectified pairs.")
    else:
        lines.append("Fl: error > 3 px and > 5% of the ground-truth speed.")
    return "\n".join(lines)


def format_groups(kind, overall, groups):
    """The tables of one kind ("flow" / "stereo") of an evaluation: one per group (the first folder
    level of the ids, dflow_tf.evaluation.samples.group_of) and, with more than one group, the
    table over all of them."""
    label = "stereo pairs" if kind == "stereo" else "flow pairs"
    tables = [format_table(result, f"{label}: {group}") for group, result in groups.items()]
    if len(groups) != 1:
        tables.append(format_table(overall, f"{label}: all" + (f" ({len(groups)} groups)" if groups else "")))
    return "\n\n".join(tables)


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
