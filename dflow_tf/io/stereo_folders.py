"""Rectified stereo pairs with ground-truth disparity: the stereo folder layouts of
docs/evaluation.md and scikit-image's bundled Middlebury Motorcycle pair.

Layouts (frames: any of IMAGE_EXTENSIONS):
  * **Middlebury** (the flowdata `stereo/` folders, Middlebury 2014): one pair per folder,
    `im0` (left) + `im1` (right); ground truth `disp0GT.pfm` or `disp0.pfm` (rows bottom-up,
    +inf = no ground truth), optional `mask0nocc.png` (255 non-occluded, 128 occluded, 0 none).
  * **KITTI** (2015; 2012 names in brackets): a folder with `image_2/` (`colored_0/`, left) and
    `image_3/` (`colored_1/`, right) holding frames of the same names; one pair per name, e.g.
    `000000_10.png`. Ground truth, 16-bit PNG d = value / 256 (0 = none), under the frame's name
    in `disp_occ_0/` (`disp_occ/`: all pixels) and / or `disp_noc_0/` (`disp_noc/`:
    non-occluded pixels); with both, occluded = has `disp_occ` but not `disp_noc`.

A **stereo sample** is a dict {"left", "right": uint8 RGB [H, W, 3], "disparity": float32 [H, W]
px (0 where not valid) or None, "valid": bool [H, W] or None, "occluded": bool [H, W] or None};
disparity d >= 0 means the left pixel x matches the right image's x - d, i.e. the left -> right
optical flow is (-d, 0) (Flow2Stereo). Errors are FlowFileError naming the file.
"""
import collections
import os

import numpy as np

from dflow_tf.io.flow_files import (
    IMAGE_EXTENSIONS,
    FlowFileError,
    find_file,
    read_disparity,
    read_image,
    read_occlusion_mask,
)

#: The name of scikit-image's bundled Middlebury 2014 Motorcycle pair (`skimage_motorcycle`) where
#: the command lines take a stereo folder.
SKIMAGE_MOTORCYCLE = "skimage:motorcycle"
#: Middlebury layout: (left, right) frame stems, ground-truth files in order of preference, mask.
MIDDLEBURY_FRAMES = ("im0", "im1")
MIDDLEBURY_DISPARITY = ("disp0GT.pfm", "disp0.pfm")
MIDDLEBURY_MASK = "mask0nocc.png"
#: KITTI layouts: (left folder, right folder, all-pixel disparity folder, non-occluded disparity folder).
KITTI_LAYOUTS = (("image_2", "image_3", "disp_occ_0", "disp_noc_0"), ("colored_0", "colored_1", "disp_occ", "disp_noc"))

#: The files of one stereo pair: left, right (paths), disparity (all-pixel ground truth or None),
#: disparity_noc (non-occluded ground truth or None), mask (Middlebury mask0nocc.png or None).
StereoPair = collections.namedtuple("StereoPair", "left right disparity disparity_noc mask")


def _existing(path):
    return path if os.path.isfile(path) else None


def _middlebury_pair(folder):
    left, right = (find_file(folder, stem, IMAGE_EXTENSIONS) for stem in MIDDLEBURY_FRAMES)
    if not (left and right):
        return None
    disparity = next(filter(None, (_existing(os.path.join(folder, n)) for n in MIDDLEBURY_DISPARITY)), None)
    return StereoPair(left, right, disparity, None, _existing(os.path.join(folder, MIDDLEBURY_MASK)))


def _kitti_layout(folder):
    for layout in KITTI_LAYOUTS:
        if all(os.path.isdir(os.path.join(folder, name)) for name in layout[:2]):
            return layout
    return None


def _kitti_pairs(folder, layout):
    """[(frame stem, StereoPair)] of a KITTI folder, sorted by name."""
    left_dir, right_dir, occ_dir, noc_dir = (os.path.join(folder, name) for name in layout)
    pairs = []
    for name in sorted(os.listdir(left_dir)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS or not os.path.isfile(os.path.join(right_dir, name)):
            continue
        pairs.append((stem, StereoPair(os.path.join(left_dir, name), os.path.join(right_dir, name),
                                       _existing(os.path.join(occ_dir, stem + ".png")),
                                       _existing(os.path.join(noc_dir, stem + ".png")), None)))
    return pairs


def is_stereo_folder(folder):
    """True when `folder` is a Middlebury pair folder (im0 + im1) or a KITTI stereo folder
    (image_2/ + image_3/, or colored_0/ + colored_1/)."""
    return _middlebury_pair(folder) is not None or _kitti_layout(folder) is not None


def folder_stereo_pairs(folder, folder_id):
    """The stereo pairs that `folder` itself holds, for a walk of a root (pair_folders.find_pairs).

    Returns ([(id, StereoPair)], names of the subfolders that are part of them): a Middlebury
    folder's pair has the id `folder_id`; a KITTI folder's pairs have `<folder_id>/<frame stem>`,
    and its frame and ground-truth folders (KITTI_LAYOUTS) are not stereo folders. Ground truth may
    be missing (StereoPair.disparity None).
    """
    found = []
    pair = _middlebury_pair(folder)
    if pair is not None:
        found.append((folder_id, pair))
    layout = _kitti_layout(folder)
    if layout is None:
        return found, ()
    return found + [(f"{folder_id}/{stem}", pair) for stem, pair in _kitti_pairs(folder, layout)], layout


def read_stereo_pair(pair):
    """The stereo sample (module docstring) of the files of a StereoPair.

    Middlebury: valid = finite ground truth, occluded = mask 128 (None without a
    mask). KITTI: valid = ground truth > 0 in disparity (all pixels), else in disparity_noc;
    occluded = valid & not in disparity_noc when both exist, else None. FlowFileError names a
    file whose size differs from the left frame's.
    """
    left, right = read_stereo_frames(pair.left, pair.right)
    disparity = valid = occluded = None
    if pair.disparity or pair.disparity_noc:
        path = pair.disparity or pair.disparity_noc
        disparity, valid = read_disparity(path)
        _check_size(path, disparity, left)
        if pair.disparity and pair.disparity_noc:
            _, noc = read_disparity(pair.disparity_noc)
            _check_size(pair.disparity_noc, noc, left)
            occluded = valid & ~noc
        if pair.mask:
            occluded = read_occlusion_mask(pair.mask)
            _check_size(pair.mask, occluded, left)
    return {"left": left, "right": right, "disparity": disparity, "valid": valid, "occluded": occluded}


def read_stereo_frames(left_path, right_path):
    """(left, right) uint8 RGB [H, W, 3] of a pair's frame files; FlowFileError names the right
    frame when its size differs from the left frame's."""
    left, right = read_image(left_path), read_image(right_path)
    if right.shape != left.shape:
        raise FlowFileError(f"{right_path}: right frame size {right.shape[:2]} differs from the left "
                            f"frame's {left.shape[:2]} ({left_path})")
    return left, right


def read_stereo_folder(folder):
    """The stereo sample of a Middlebury pair folder, or None if `folder` is not one (a KITTI
    folder holds many pairs: pair_folders.find_pairs + read_stereo_pair)."""
    pair = _middlebury_pair(folder)
    return None if pair is None else read_stereo_pair(pair)


def skimage_motorcycle():
    """The stereo sample of scikit-image's bundled Middlebury 2014 Motorcycle pair
    (`skimage.data.stereo_motorcycle`, 500 x 741; no occlusion mask). Its disparity marks pixels
    without ground truth with +inf (its docstring says NaN; both count as not valid); as measured
    on the pair, left x matches right x - d, as in the Middlebury files. FileNotFoundError when this
    scikit-image cannot provide it offline."""
    try:
        import skimage
        import skimage.data
        left, right, disparity = skimage.data.stereo_motorcycle()
    except ImportError as error:
        raise FileNotFoundError(f"{SKIMAGE_MOTORCYCLE} needs scikit-image: {error}") from None
    except Exception as error:  # without the bundled files scikit-image tries a download (pooch)
        raise FileNotFoundError(f"{SKIMAGE_MOTORCYCLE}: scikit-image {skimage.__version__} cannot provide the "
                                f"Motorcycle pair offline ({type(error).__name__}: {error})") from None
    disparity = np.asarray(disparity, np.float32)
    valid = np.isfinite(disparity)
    return {"left": np.asarray(left, np.uint8), "right": np.asarray(right, np.uint8),
            "disparity": np.where(valid, disparity, 0.0).astype(np.float32), "valid": valid, "occluded": None}


def _check_size(path, array, left):
    if array.shape[:2] != left.shape[:2]:
        raise FlowFileError(f"{path}: size {array.shape[:2]} differs from the left frame's {left.shape[:2]}")
