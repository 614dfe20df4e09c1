"""Textures from your own images and videos, for the scene renderer (`dflow_tf.data.render`).

    library = TextureLibrary(["/path/to/clips", "/path/to/photos"])
    library.crop(np.random.default_rng(0), 200, 300)   # float32 [200, 300, 3] in [0, 1]

Every clip below the folders (a video file or a folder of images, found as
`dflow_tf.data.footage.find_clips` finds them) gives at most `frames_per_clip` frames, evenly spaced
over the clip, each shrunk so that its longer side is at most `max_side` pixels (INTER_AREA) and
kept as uint8 RGB in memory (about 1 MB per frame at the default 768). A crop is a random
window of a random frame at a random scale in [0.5, 1] of the frame, resized to the requested size
when the frame is smaller than it. So unlabeled footage becomes texture for scenes whose motion,
flow and occlusion the renderer knows exactly.
"""
import cv2
import numpy as np

from dflow_tf.data.footage import FootageError, clip_frames, find_clips


class TextureLibrary:
    """Frames of the clips below `folders`, kept in memory as texture sources.

    Args:
      folders: a folder or a list of folders (searched recursively).
      frames_per_clip: at most this many frames per clip, evenly spaced.
      max_side: longer side of a stored frame, in pixels.

    Raises:
      FileNotFoundError: a folder does not exist.
      FootageError: no readable frame in any folder (the message names the folders).
    """

    def __init__(self, folders, frames_per_clip=24, max_side=768):
        self.folders = [folders] if isinstance(folders, str) else list(folders)
        self.frames = []
        self.clip_names = []
        for folder in self.folders:
            for clip in find_clips(folder):
                frames = _spaced_frames(clip, frames_per_clip, max_side)
                if frames:
                    self.frames.extend(frames)
                    self.clip_names.append(clip.path)
        if not self.frames:
            raise FootageError(f"no readable image or video frame in {', '.join(self.folders)} "
                               "(texture folders)")

    def __len__(self):
        return len(self.frames)

    def crop(self, rng, height, width):
        """float32 [height, width, 3] in [0, 1]: a window of a random frame at a random scale."""
        frame = self.frames[rng.integers(len(self.frames))]
        fh, fw = frame.shape[:2]
        scale = rng.uniform(0.5, 1.0)
        ch, cw = max(1, min(fh, int(round(height / scale)))), max(1, min(fw, int(round(width / scale))))
        y0, x0 = rng.integers(fh - ch + 1), rng.integers(fw - cw + 1)
        window = frame[y0:y0 + ch, x0:x0 + cw]
        if rng.random() < 0.5:
            window = window[:, ::-1]
        interpolation = cv2.INTER_AREA if ch > height and cw > width else cv2.INTER_LINEAR
        window = cv2.resize(np.ascontiguousarray(window), (width, height), interpolation=interpolation)
        return window.astype(np.float32) / 255.0


def _spaced_frames(clip, count, max_side):
    """Up to `count` uint8 RGB frames of `clip`, evenly spaced, longer side at most `max_side`."""
    frames = [_shrink(rgb, max_side) for _, rgb in clip_frames(clip, notes=[]) if rgb is not None]
    if not frames:
        return []
    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    return [frames[index] for index in picks]


def _shrink(rgb, max_side):
    factor = max_side / max(rgb.shape[:2])
    if factor < 1.0:
        rgb = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb, np.uint8)
