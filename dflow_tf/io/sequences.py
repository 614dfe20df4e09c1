"""Frame sequences (image files, a folder of images, a video) and rectified stereo pairs in, flow
files out: the files of `python -m dflow_tf.predict` (docs/evaluation.md)."""
import os
import re

import numpy as np

from dflow_tf.io.flow_files import IMAGE_EXTENSIONS, FlowFileError, read_image, write_flo, write_kitti_flow
from dflow_tf.io.pair_folders import find_pairs
from dflow_tf.io.stereo_folders import SKIMAGE_MOTORCYCLE, read_stereo_frames, skimage_motorcycle
from dflow_tf.io.visualize import write_flow_png

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
#: Flow file formats: name -> file extension.
FLOW_FORMATS = {"flo": ".flo", "kitti_png": ".png"}


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def image_files(folder):
    """Image files of `folder`, sorted by name with numbers in numeric order (frame_2 < frame_10)."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]


def video_frames(path):
    """(name, uint8 RGB [H, W, 3]) for each frame of a video, read with OpenCV; the name is
    `frame_NNNNNN` (0-based)."""
    import cv2
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise FlowFileError(f"{path}: OpenCV cannot open this video")
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield f"frame_{index:06d}", np.ascontiguousarray(bgr[..., ::-1])
            index += 1
    finally:
        capture.release()


def open_sequence(inputs):
    """(frame count or None, generator of (name, uint8 RGB frame)) of `inputs`: two or more image
    files (in that order, named by their stems), one folder of images (sorted by image_files) or
    one video (video_frames)."""
    if len(inputs) == 1 and os.path.isdir(inputs[0]):
        files = image_files(inputs[0])
        if len(files) < 2:
            raise FileNotFoundError(f"{inputs[0]}: need at least 2 images ({', '.join(IMAGE_EXTENSIONS)}), "
                                    f"found {len(files)}")
    elif len(inputs) == 1 and inputs[0].lower().endswith(VIDEO_EXTENSIONS):
        if not os.path.isfile(inputs[0]):
            raise FileNotFoundError(f"{inputs[0]}: video not found")
        import cv2
        capture = cv2.VideoCapture(inputs[0])
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        capture.release()
        return count, video_frames(inputs[0])
    elif len(inputs) >= 2:
        files = list(inputs)
    else:
        raise ValueError(f"--input takes two or more images, a folder of images or a video "
                         f"({', '.join(VIDEO_EXTENSIONS)}); got {inputs}")
    names = [os.path.splitext(os.path.basename(f))[0] for f in files]
    if len(set(names)) != len(names):
        raise ValueError("input frames must have distinct file names (they name the outputs)")
    return len(files), ((name, read_image(f)) for name, f in zip(names, files))


def open_stereo_pairs(inputs):
    """(pair count, generator of (name, left uint8 [H, W, 3], right)) of the stereo input of
    `python -m dflow_tf.predict --stereo`: two image files (left, right; named after the left
    file's stem), one folder (every stereo pair that pair_folders.find_pairs finds, ground truth
    or not, named by its id), or SKIMAGE_MOTORCYCLE ("motorcycle"). FlowFileError /
    FileNotFoundError / ValueError name the input that does not fit."""
    if len(inputs) == 1 and inputs[0] == SKIMAGE_MOTORCYCLE:
        sample = skimage_motorcycle()
        return 1, iter([("motorcycle", sample["left"], sample["right"])])
    if len(inputs) == 1 and os.path.isdir(inputs[0]):
        pairs = find_pairs(inputs[0]).stereo
        if not pairs:
            raise FileNotFoundError(f"{inputs[0]}: no stereo pairs (Middlebury im0 + im1, or KITTI image_2/ + "
                                    f"image_3/; docs/evaluation.md)")
        return len(pairs), ((pair_id, *read_stereo_frames(pair.left, pair.right)) for pair_id, pair in pairs)
    if len(inputs) == 2 and not any(os.path.isdir(i) for i in inputs):
        return 1, iter([(os.path.splitext(os.path.basename(inputs[0]))[0], *read_stereo_frames(*inputs))])
    raise ValueError(f"--stereo takes two images (left, right), one folder of stereo folders, or "
                     f"{SKIMAGE_MOTORCYCLE}; got {inputs}")


def write_flow(out_dir, name, flow, fmt="flo", color=False, max_flow=None):
    """Writes <name>.flo or <name>.png (KITTI 16-bit) and with `color` <name>_color.png; returns paths."""
    path = os.path.join(out_dir, name + FLOW_FORMATS[fmt])
    if fmt == "flo":
        write_flo(path, flow)
    else:
        write_kitti_flow(path, flow)
    paths = [path]
    if color:
        paths.append(os.path.join(out_dir, name + "_color.png"))
        write_flow_png(paths[-1], flow, max_flow)
    return paths
