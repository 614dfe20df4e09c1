"""A model on the real pairs of a folder in the `--pairs` layout, one result per group: the
evaluation a training stage runs at its end on `train_stage.eval_pairs` (docs/evaluation.md).

A group is the first folder level under the root: for a root laid out as
`<root>/sintel/<pair>/`, `<root>/chairs/<pair>/`, ... the groups are "sintel", "chairs", ...;
pair folders directly in the root (or a root that is a pair folder) make the whole root one group,
named after it (a root may not mix both layouts). Folders that are not flow pairs (e.g. stereo
folders) are not flow groups.

Stereo groups: the rectified stereo pairs with ground truth under the root
(dflow_tf.io.stereo_folders: Middlebury im0 + im1 folders, KITTI image_2/ + image_3/ folders),
grouped the same way (`samples.group_of`), are scored with DisparityMetrics on d = -u of the
left -> right flow; the root may also be `skimage:motorcycle` (scikit-image's bundled Middlebury
Motorcycle pair, group "skimage"). A stereo group named like a flow group is called
"<name> stereo".
"""
import os

from dflow_tf.evaluation.samples import evaluate_samples, group_of, pair_samples, stereo_samples
from dflow_tf.inference import make_predictor
from dflow_tf.io.pair_folders import pair_folders
from dflow_tf.io.stereo_folders import SKIMAGE_MOTORCYCLE, stereo_pairs


def pair_groups(root):
    """Sorted {group name: folder to read its pairs from} of the flow pairs under `root`.

    Raises FileNotFoundError naming `root` when it is missing or holds no flow pair."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"eval_pairs: {root!r} is not a folder (docs/evaluation.md gives the layout)")
    name = os.path.basename(os.path.abspath(root))
    groups = {}
    for pair_id, _ in pair_folders(root):
        nested = "/" in pair_id  # else a pair folder in the root (or the root is one): group `name`
        groups.setdefault(group_of(pair_id, name), os.path.join(root, pair_id.split("/")[0]) if nested else root)
    if not groups:
        raise FileNotFoundError(f"eval_pairs: no flow pairs under {root!r} (each pair folder needs img1 + img2 or "
                                "frame10 + frame11 and its ground truth; docs/evaluation.md)")
    if root in groups.values() and len(groups) > 1:
        raise ValueError(f"eval_pairs: {root!r} holds pair folders both directly and in group folders "
                         f"({', '.join(sorted(groups))}); give a root of one layout")
    return dict(sorted(groups.items()))


def stereo_groups(root):
    """(group name of ids without a folder part, whether `root` holds stereo pairs with ground
    truth); root may be SKIMAGE_MOTORCYCLE."""
    if root == SKIMAGE_MOTORCYCLE:
        return "skimage", True
    name = os.path.basename(os.path.abspath(root))
    return name, os.path.isdir(root) and any(p.disparity or p.disparity_noc for _, p in stereo_pairs(root))


def evaluate_pair_groups(model, root, max_per_group=None):
    """{group: FlowMetrics().result()} of `model` on the flow pairs under `root` and {group:
    DisparityMetrics().result()} on its stereo pairs (see the module docstring);
    `max_per_group` evaluates only the first pairs of each group (a dry run). FileNotFoundError
    names `root` when it holds neither."""
    return evaluate_predictor_on_groups(make_predictor(model), model.num_frames, root, max_per_group)


def evaluate_predictor_on_groups(predict, num_frames, root, max_per_group=None):
    """evaluate_pair_groups for any predictor: fn(frames [num_frames, H, W, 3] uint8) -> flow
    [H, W, 2] (e.g. a classical method)."""
    name, has_stereo = stereo_groups(root)
    has_flow = root != SKIMAGE_MOTORCYCLE and os.path.isdir(root) and bool(pair_folders(root))
    if not (has_flow or has_stereo):
        pair_groups(root)  # raises, naming root
    results = {}
    if has_flow:
        for group, folder in pair_groups(root).items():
            total, samples = pair_samples(folder, num_frames)
            results[group], _ = evaluate_samples(predict, samples, total, max_examples=max_per_group,
                                                 progress=False)
    if has_stereo:
        _, samples = stereo_samples(root, num_frames)
        by_group = {}
        for sample in samples:
            by_group.setdefault(group_of(sample[0], name), []).append(sample)
        for group, members in sorted(by_group.items()):
            label = f"{group} stereo" if group in results else group
            results[label], _ = evaluate_samples(predict, iter(members), len(members), max_examples=max_per_group,
                                                 progress=False, kind="stereo")
    return results
