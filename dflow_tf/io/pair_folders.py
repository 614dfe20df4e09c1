"""Folders of frame pairs with ground truth, the `--pairs` layout of docs/evaluation.md.

A pair folder holds the frames `img1` + `img2` (previous frame `img0`) with the flow `flow.flo`
or `flow.png` (16-bit KITTI), or Middlebury's `frame10` + `frame11` (previous `frame09`) with
`flow10.flo` / `flow10.png`; optionally `invalid.png` (pixels without ground truth) and
`occ.png` (occluded pixels), masks with 255 = true.
"""
import os

import numpy as np

from dflow_tf.io.flow_files import (
    IMAGE_EXTENSIONS,
    FlowFileError,
    known_flow,
    read_flo,
    read_image,
    read_kitti_flow,
    read_mask,
)

#: (previous, first, second, ground truth) file stems of a pair folder, in order of preference.
PAIR_LAYOUTS = (("img0", "img1", "img2", "flow"), ("frame09", "frame10", "frame11", "flow10"))


def find_file(folder, stem, extensions):
    """The path of `folder`/`stem` with the first of `extensions` that exists, or None."""
    for ext in extensions:
        path = os.path.join(folder, stem + ext)
        if os.path.isfile(path):
            return path
    return None


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


def pair_folders(root):
    """Sorted (id, path) of the pair folders under `root` (itself included); the id is the path
    relative to root, or root's own name when root is a pair folder."""
    found = []
    for folder, dirs, _ in os.walk(root):
        dirs.sort()
        if is_pair_folder(folder):
            rel = os.path.relpath(folder, root)
            found.append((os.path.basename(os.path.abspath(root)) if rel == "." else rel, folder))
    return sorted(found)
