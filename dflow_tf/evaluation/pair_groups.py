"""A model on the real pairs of a folder in the `--pairs` layout, one result per group: the
evaluation a training stage runs at its end on `train_stage.eval_pairs` (docs/evaluation.md).

The pairs are found once (`pair_groups`: one walk of the root, samples.folder_pairs), then
evaluated group by group. A group is the first folder level under the root: for a root laid out
as `<root>/sintel/<pair>/`, `<root>/chairs/<pair>/`, ... the groups are "sintel", "chairs", ...;
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
from dflow_tf.evaluation.samples import evaluate_samples, folder_pairs, group_of, read_samples, root_name
from dflow_tf.inference import make_predictor


def pair_groups(root):
    """[(kind, label, readers)] of the groups under `root` (see the module docstring): kind "flow"
    or "stereo", the group's label, its pairs as samples.folder_pairs' readers [(id, read)]; the
    flow groups first, each kind sorted by name.

    Raises FileNotFoundError naming `root` when it is missing or holds no pairs with ground truth,
    ValueError when it holds flow pair folders both directly and in group folders.
    """
    try:
        found = folder_pairs(root)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"eval_pairs: {error}") from None
    name = root_name(root)
    groups = []
    for kind, readers in found.items():
        members = {}
        for reader in readers:
            members.setdefault(group_of(reader[0], name), []).append(reader)
        if kind == "flow" and len(members) > 1 and any("/" not in pair_id for pair_id, _ in readers):
            raise ValueError(f"eval_pairs: {root!r} holds pair folders both directly and in group folders "
                             f"({', '.join(sorted(members))}); give a root of one layout")
        flow_labels = {label for _, label, _ in groups}
        groups += [(kind, f"{group} stereo" if group in flow_labels else group, members[group])
                   for group in sorted(members)]
    return groups


def evaluate_pair_groups(model, root, max_per_group=None, predictor=None):
    """{group: FlowMetrics().result()} of `model` on the flow pairs under `root` and {group:
    DisparityMetrics().result()} on its stereo pairs (see the module docstring);
    `max_per_group` evaluates only the first pairs of each group (a dry run); `predictor`: the
    predictor of `model` to run (e.g. validation.SharedPredictions.predictor), None =
    make_predictor(model). FileNotFoundError names `root` when it holds neither."""
    return evaluate_predictor_on_groups(predictor or make_predictor(model), model.num_frames, root, max_per_group)


def evaluate_predictor_on_groups(predict, num_frames, root, max_per_group=None):
    """evaluate_pair_groups for any predictor: fn(frames [num_frames, H, W, 3] uint8) -> flow
    [H, W, 2] (e.g. a classical method)."""
    results = {}
    for kind, label, readers in pair_groups(root):
        total, samples = read_samples(kind, readers, num_frames)
        results[label], _ = evaluate_samples(predict, samples, total, max_examples=max_per_group, progress=False,
                                             kind=kind)
    return results
