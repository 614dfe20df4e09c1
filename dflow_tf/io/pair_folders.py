"""The `--pairs` layout of docs/evaluation.md: folders of frame pairs with ground truth, and the
stereo folders (dflow_tf.io.stereo_folders) beside them, all found under a root in one walk
(`find_pairs`).

A pair folder holds the frames `img1` + `img2` (previous frame `img0`) with the flow `flow.flo`
or `flow.png` (16-bit KITTI), or Middlebury's `frame10` + `frame11` (previous `frame09`) with
`flow10.flo` / `flow10.png`; optionally `invalid.png` (pixels without ground truth) and
`occ.png` (occluded pixels), masks with 255 = true.
"""
import collections
import os

import numpy as np

from dflow_tf.io.flow_files import (
    IMAGE_EXTENSIONS,
    FlowFileError,
    find_file,
    known_flow,
    read_flo,
    read_image,
    read_kitti_flow,
    read_mask,
)
from dflow_tf.io.stereo_folders import folder_stereo_pairs

#: (previous, first, second, ground truth) file stems of a pair folder, in order of preference.
PAIR_LAYOUTS = (("img0", "img1", "img2", "flow"), ("frame09", "frame10", "frame11", "flow10"))

#: The pairs under a root (`find_pairs`): flow, sorted (id, pair folder path); stereo, sorted
#: (id, stereo_folders.StereoPair), ground truth or not.
FoundPairs = collections.namedtuple("FoundPairs", "flow stereo")


def read_pair_folder(folder):
    """One pair folder -> sample dict, or None if `folder` is not a pair folder.

    Returns {"frames": list of uint8 [H, W, 3] (previous frame first when the folder has one),
    "has_previous": bool, "flow": float32 [H, W, 2] (0 where not valid), "valid": bool [H, W],
    "occluded": bool [H, W] or None}. FlowFileError names a missing ground truth or a frame
    whose size differs from it.
    """
    for layout in PAIR_LAYOUTS:
        first = find_file(folder, layout[1], IMAGE_EXTENSIONS)
        second = find_file(folder, layout[2], IMAGE_EXTENSIONS)
        if first and second:
            break
    else:
        return None
    prev_stem, _, _, flow_stem = layout
    flo = find_file(folder, flow_stem, (".flo",))
    kitti = os.path.join(folder, flow_stem + ".png")
    if flo:
        flow = read_flo(flo)
        valid = known_flow(flow)
    elif os.path.isfile(kitti):
        flow, valid = read_kitti_flow(kitti)
    else:
        raise FlowFileError(f"{folder}: frames {os.path.basename(first)}, {os.path.basename(second)} "
                            f"but no ground truth {flow_stem}.flo or {flow_stem}.png")
    frames = [read_image(first), read_image(second)]
    previous = find_file(folder, prev_stem, IMAGE_EXTENSIONS)
    if previous:
        frames.insert(0, read_image(previous))
    for path, frame in zip((first, second), frames[-2:]):
        if frame.shape[:2] != flow.shape[:2]:
            raise FlowFileError(f"{path}: frame size {frame.shape[:2]} differs from the ground truth "
                                f"{flow.shape[:2]}")
    invalid = os.path.join(folder, "invalid.png")
    if os.path.isfile(invalid):
        valid &= ~read_mask(invalid)
    occ = os.path.join(folder, "occ.png")
    occluded = read_mask(occ) if os.path.isfile(occ) else None
    flow = np.where(valid[..., None], flow, 0.0).astype(np.float32)
    return {"frames": frames, "has_previous": bool(previous), "flow": flow, "valid": valid,
            "occluded": occluded}


def is_pair_folder(folder):
    """True when `folder` holds a frame pair of one of PAIR_LAYOUTS."""
    return any(find_file(folder, a, IMAGE_EXTENSIONS) and find_file(folder, b, IMAGE_EXTENSIONS)
               for _, a, b, _ in PAIR_LAYOUTS)


def find_pairs(root):
    """The FoundPairs under `root` (itself included), in one walk of its folders: the pair folders
    and the stereo pairs (stereo_folders.folder_stereo_pairs; the frame and ground-truth folders of
    a KITTI stereo folder are not searched further).

    Ids: a folder's path relative to root, root's own name for root itself; a KITTI stereo
    folder's pairs add `/<frame stem>`.
    """
    name = os.path.basename(os.path.abspath(root))
    flow, stereo = [], []
    for folder, dirs, _ in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(folder, root)
        folder_id = name if rel == "." else rel
        if is_pair_folder(folder):
            flow.append((folder_id, folder))
        pairs, searched = folder_stereo_pairs(folder, folder_id)
        stereo += pairs
        dirs[:] = [d for d in dirs if d not in searched]
    return FoundPairs(sorted(flow), sorted(stereo))
