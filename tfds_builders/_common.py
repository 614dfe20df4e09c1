"""Helpers shared by the builders: manual-directory checks, frame and ground-truth loading
(frames are encoded by `dflow_tf.data.schema.encode_png`, which `dflow_tf.data.footage` uses too).

Files are read through `dflow_tf.io` (whose errors, `FlowFileError`, name the file); paths are
`epath.Path`s so that the builders never touch `os` directly.
"""
from etils import epath

from dflow_tf import io as flow_io
from dflow_tf.data.schema import encode_png


class ManualDirError(FileNotFoundError):
    """The manual download directory lacks a file or folder a builder needs."""


def require(path, manual_dir, instructions_hint):
    """Returns `path` (an epath.Path); raises ManualDirError naming it when it does not exist."""
    path = epath.Path(path)
    if not path.exists():
        kind = "file" if path.suffix else "folder"
        raise ManualDirError(
            f"missing {kind} {path} (looked for it under the manual directory {manual_dir}). "
            f"{instructions_hint}")
    return path


def sorted_names(folder, pattern):
    """Sorted base names of `folder`'s entries matching the glob `pattern`."""
    return sorted(p.name for p in epath.Path(folder).glob(pattern))


def load_frames(paths):
    """Reads RGB frames -> (list of PNG bytes, (H, W)); all frames must share one size.

    Raises FlowFileError naming an unreadable file, ValueError naming a frame of another size.
    """
    encoded, size = [], None
    for path in paths:
        rgb = flow_io.read_image(str(path))
        if size is None:
            size = rgb.shape[:2]
        elif rgb.shape[:2] != size:
            raise ValueError(f"{path}: frame of size {rgb.shape[:2]} in a window of size {size}")
        encoded.append(encode_png(rgb))
    return encoded, size


def check_size(path, array, size):
    """Raises ValueError naming `path` when `array`'s [H, W] differ from the frames' `size`."""
    if tuple(array.shape[:2]) != tuple(size):
        raise ValueError(f"{path}: ground truth of size {array.shape[:2]} for frames of size {size}")
    return array
