"""Your own footage as a training dataset: video files and folders of numbered frames -> windows.

    train_stage.dataset = @FootageSource()
    FootageSource.footage_dir = "/path/to/clips"

A **clip** is a video file (.mp4, .avi, .mov, .mkv, ... read with OpenCV) or a folder holding image
files (its frames, in natural name order: frame_2 before frame_10), anywhere below `footage_dir`;
its name is its path relative to `footage_dir`. Each clip gives every **window** of `num_frames`
frames (2, 3 or 5) taken `stride` frames apart: frames t, t + s, ..., t + (N - 1) s for every t
(a stride of 2 or 3 gives slow footage larger motions). Frames are resized to cover
`frame_size` (aspect kept; INTER_AREA when shrinking) and centre-cropped to it, then stored
PNG-encoded in the canonical schema (`dflow_tf.data.schema`) without ground truth (`has_flow`
and `has_occlusion` False, zero flow): the pipeline reads them like any tfds split, and
`num_frames` of the pipeline takes a centred sub-window (the reference pair (N - 1) // 2 of
`dflow_tf.data.frame_windows`).

Splits are by clip: `validation_fraction` of the usable clips (rounded, at least one when there
are two or more usable clips and the fraction is positive), chosen by a permutation seeded with
`split_seed`, form `validation`; the others `train`. With a single usable clip there is no
`validation` split.

The cache: the clips are decoded once into a tfds-prepared dataset (builder `footage_windows`)
under `<data_dir>/footage_windows/<config>/`, whose config name holds the frame size, window,
stride and a hash of the folder's contents (every clip file's relative path, size and
modification time) and of the options. Changing a file or an option builds a new cache; an
unchanged folder is read back at once. The prepared data are TFRecords read by tf.data, so the
iterator checkpoints (resume) and distributes like every other dataset's.

Problems are reported, not raised, as long as something is usable: a clip shorter than a window,
a file OpenCV cannot open or decode, a video that stops before the frame count in its header
(its decoded frames are used), frames of mixed sizes or an unreadable image in a frame folder
(the sequence is cut there: windows never span the cut). Every such clip is named in the one
summary line printed when the cache is built; `FootageError` (an OSError, so command lines print
one `error:` line) only when no window is left, and FileNotFoundError for a missing folder.
"""
import dataclasses
import hashlib
import json
import os
import re
from collections import deque
from typing import NamedTuple

import cv2
import gin
import numpy as np
import tensorflow_datasets as tfds

from dflow_tf.data import frame_windows, schema
from dflow_tf.io.flow_files import IMAGE_EXTENSIONS, FlowFileError, read_image
from dflow_tf.io.sequences import VIDEO_EXTENSIONS, image_files, video_frames

#: Windows the footage can be stored in (two-frame models train on 2, three-frame ones on 5).
WINDOW_LENGTHS = (2, 3, 5)
#: Bumped when the stored content for the same folder and options changes.
CACHE_VERSION = "1.0.0"


class FootageError(OSError):
    """No usable window in the footage folder, or a bad FootageSource option (the message says which)."""


class Clip(NamedTuple):
    """One clip: `name` relative to the footage folder, its `path`, and `kind` "video" or "frames"."""
    name: str
    path: str
    kind: str


def find_clips(footage_dir):
    """Clips below `footage_dir` (video files, and folders with image files), sorted by name.

    Hidden files and folders (starting with ".") are ignored; links are followed (a folder seen
    before through another link is not walked again). Raises FileNotFoundError when the folder
    does not exist, FootageError when `footage_dir` is not set."""
    if not footage_dir:
        raise FootageError("FootageSource.footage_dir is not set: pass the folder of your clips, e.g. "
                           "--gin_param=\"FOOTAGE_DIR='/path/to/clips'\"")
    if not os.path.isdir(footage_dir):
        raise FileNotFoundError(f"footage folder {footage_dir} not found (FootageSource.footage_dir)")
    clips, walked = [], set()
    for folder, subfolders, names in os.walk(footage_dir, followlinks=True):
        if os.path.realpath(folder) in walked:  # a link loop, or a second link to one folder
            subfolders[:] = []
            continue
        walked.add(os.path.realpath(folder))
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        names = [n for n in names if not n.startswith(".")]
        relative = os.path.relpath(folder, footage_dir)
        for name in names:
            if name.lower().endswith(VIDEO_EXTENSIONS):
                clip_name = name if relative == "." else os.path.join(relative, name)
                clips.append(Clip(clip_name, os.path.join(folder, name), "video"))
        if any(n.lower().endswith(IMAGE_EXTENSIONS) for n in names):
            clips.append(Clip(os.path.basename(os.path.abspath(folder)) if relative == "." else relative,
                              folder, "frames"))
    return sorted(clips, key=lambda c: c.name)


def clip_files(clip):
    """The files whose contents make up `clip` (the video, or the folder's images in order)."""
    return [clip.path] if clip.kind == "video" else image_files(clip.path)


def _video_frame_count(path):
    capture = cv2.VideoCapture(path)
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()


def clip_frames(clip, notes):
    """(name, uint8 RGB [H, W, 3] or None) per frame of `clip`, in order; None marks a cut in the
    sequence (an unreadable image, or a frame of another size than the one before it), after
    which a new run of frames starts. A frame folder with two images of one name (00001.png and
    00001.jpg) gives no frame. Appends what happened (one phrase each) to `notes`."""
    if clip.kind == "video":
        try:
            count = 0
            for name, rgb in video_frames(clip.path):
                count += 1
                yield name, rgb
        except FlowFileError:
            notes.append("OpenCV cannot open it")
            return
        if count == 0:
            notes.append("OpenCV decodes no frame")
            return
        announced = _video_frame_count(clip.path)
        if count < announced - 1:  # headers are often off by one (e.g. a 455-frame clip saying 456)
            notes.append(f"truncated: {count} of the {announced} frames its header announces decode")
        return
    paths = image_files(clip.path)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    twins = sorted(os.path.basename(p) for p, stem in zip(paths, stems) if stems.count(stem) > 1)
    if twins:  # which comes first is unknowable, and the names would not tell the windows apart
        notes.append(f"frames with the same name: {', '.join(twins[:4])}{' ...' if len(twins) > 4 else ''}")
        return
    size, cuts = None, []
    for path, name in zip(paths, stems):
        try:
            rgb = read_image(path)
        except FlowFileError:
            cuts.append(f"{os.path.basename(path)} unreadable")
            size = None
            yield name, None
            continue
        if size is not None and rgb.shape[:2] != size:
            cuts.append(f"{os.path.basename(path)} is {rgb.shape[1]}x{rgb.shape[0]} after {size[1]}x{size[0]}")
            yield name, None
        size = rgb.shape[:2]
        yield name, rgb
    if cuts:
        shown = ", ".join(cuts[:3]) + (f" and {len(cuts) - 3} more" if len(cuts) > 3 else "")
        notes.append(f"sequence cut at {shown}")


def window_span(num_frames, stride):
    """Frames from the first to the last frame of a window: (num_frames - 1) * stride + 1."""
    return (num_frames - 1) * stride + 1


def cover_and_crop(rgb, size):
    """uint8 RGB [H, W, 3] -> [h, w, 3] for size = (h, w): resized with the aspect kept so that it
    covers (h, w) (INTER_AREA when shrinking, INTER_LINEAR when enlarging), then centre-cropped."""
    height, width = size
    scale = max(height / rgb.shape[0], width / rgb.shape[1])
    new_h, new_w = max(height, round(rgb.shape[0] * scale)), max(width, round(rgb.shape[1] * scale))
    if (new_h, new_w) != rgb.shape[:2]:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    y0, x0 = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(rgb[y0:y0 + height, x0:x0 + width])


def clip_windows(clip, num_frames, stride, notes, transform=None):
    """(id, [frame of each window position]) for every window of `clip`, streaming: frames are
    read once and `transform(rgb)` applied once per frame (e.g. resize and PNG-encode). The id is
    "<clip name>/<name of the window's first frame>"."""
    span = window_span(num_frames, stride)
    run = deque(maxlen=span)
    for name, rgb in clip_frames(clip, notes):
        if rgb is None:
            run.clear()
            continue
        run.append((name, transform(rgb) if transform else rgb))
        if len(run) == span:
            yield f"{clip.name}/{run[0][0]}", [run[i][1] for i in range(0, span, stride)]


class ClipSurvey(NamedTuple):
    """What one clip gives: its window count and the phrases of what happened to it."""
    clip: Clip
    windows: int
    frames: int
    notes: list


def survey_clip(clip, num_frames, stride):
    """Decodes `clip` once (no resizing) and counts its frames and windows (a run of L uncut
    frames gives max(0, L - span + 1) windows, span = `window_span`)."""
    notes, runs = [], [0]
    for _, rgb in clip_frames(clip, notes):
        if rgb is None:
            runs.append(0)
        else:
            runs[-1] += 1
    span = window_span(num_frames, stride)
    windows, frames = sum(max(0, n - span + 1) for n in runs), sum(runs)
    if windows == 0 and frames > 0:
        notes.append(f"too short: {frames} frame{'s' * (frames != 1)}, a window of {num_frames} at stride "
                     f"{stride} spans {span}"
                     if len(runs) == 1 else f"no uncut run of {span} frames among its {frames}")
    return ClipSurvey(clip, windows, frames, notes)


def split_clips(names, validation_fraction, seed):
    """{"train": [...], "validation": [...]} of clip names: a permutation seeded with `seed`; the
    first round(fraction * n) (at least 1 when n >= 2 and fraction > 0, at most n - 1) validate."""
    names = sorted(names)
    count = 0
    if validation_fraction > 0 and len(names) >= 2:
        count = min(len(names) - 1, max(1, round(validation_fraction * len(names))))
    order = np.random.default_rng(seed).permutation(len(names))
    validation = sorted(names[i] for i in order[:count])
    return {"train": [n for n in names if n not in validation], "validation": validation}


def summary_line(footage_dir, surveys, splits, config):
    """The one line that says what was found, used and skipped (and why)."""
    used = [s for s in surveys if s.windows]
    skipped = [s for s in surveys if not s.windows]
    counts = {split: sum(s.windows for s in used if s.clip.name in names) for split, names in splits.items()}
    line = (f"footage {footage_dir}: {len(surveys)} clips, {len(used)} used ({len(splits['train'])} train / "
            f"{len(splits['validation'])} validation): {counts['train']} train / {counts['validation']} "
            f"validation windows of {config.num_frames} frames at stride {config.stride}, stored at "
            f"{config.height}x{config.width}")
    if skipped:
        line += f"; skipped {len(skipped)}: " + "; ".join(f"{s.clip.name} ({', '.join(s.notes)})" for s in skipped)
    noted = [s for s in used if s.notes]
    if noted:
        line += f"; used with notes {len(noted)}: " + "; ".join(f"{s.clip.name} ({', '.join(s.notes)})"
                                                               for s in noted)
    return line


@dataclasses.dataclass
class FootageConfig(tfds.core.BuilderConfig):
    """The folder and the options of one footage cache (see the module docstring)."""
    footage_dir: str = ""
    height: int = 256
    width: int = 384
    num_frames: int = 2
    stride: int = 1
    validation_fraction: float = 0.2
    split_seed: int = 0


class FootageWindows(tfds.core.GeneratorBasedBuilder):
    """Windows of the clips of a footage folder, without ground truth (build it through FootageSource)."""

    VERSION = tfds.core.Version(CACHE_VERSION)
    RELEASE_NOTES = {CACHE_VERSION: "Initial release."}

    def _info(self):
        c = self.builder_config
        return self.dataset_info_from_configs(
            description=__doc__, features=schema.features(c.num_frames, c.height, c.width))

    def _split_generators(self, dl_manager):
        del dl_manager  # the clips are local
        c = self.builder_config
        clips = find_clips(c.footage_dir)
        if not clips:
            raise FootageError(f"{c.footage_dir}: no video files ({', '.join(VIDEO_EXTENSIONS)}) and no folders "
                               f"of frames ({', '.join(IMAGE_EXTENSIONS)}) found")
        surveys = [survey_clip(clip, c.num_frames, c.stride) for clip in clips]
        usable = [s.clip.name for s in surveys if s.windows]
        splits = split_clips(usable, c.validation_fraction, c.split_seed)
        print(summary_line(c.footage_dir, surveys, splits, c), flush=True)
        if not usable:
            raise FootageError(f"{c.footage_dir}: no usable window of {c.num_frames} frames at stride {c.stride} "
                               f"in {len(clips)} clips (see the line above)")
        by_name = {clip.name: clip for clip in clips}
        return {split: self._generate_examples([by_name[n] for n in names])
                for split, names in splits.items() if names}

    def _generate_examples(self, clips):
        c = self.builder_config
        empty = schema.no_ground_truth(c.height, c.width)

        def transform(rgb):
            return schema.encode_png(cover_and_crop(rgb, (c.height, c.width)))

        for clip in clips:
            for key, frames in clip_windows(clip, c.num_frames, c.stride, [], transform):
                yield key, {schema.ID: key, schema.FRAMES: frames, **empty}


def cache_key(footage_dir, options):
    """Hex digest of the folder's clips (relative paths, sizes, modification times) and `options`."""
    digest = hashlib.sha256(json.dumps({"dir": os.path.abspath(footage_dir), "options": options,
                                        "version": CACHE_VERSION}, sort_keys=True).encode())
    for clip in find_clips(footage_dir):
        for path in clip_files(clip):
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, footage_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class _Info:
    def __init__(self, info):
        self.features = info.features
        self.splits = info.splits


@gin.configurable
class FootageSource:
    """Duck-types the part of a tfds builder that `make_dataset` uses, for a folder of footage.

    Args:
      footage_dir: folder of video files and / or folders of numbered frames (required).
      frame_size: (height, width) the frames are stored at (resized to cover, centre-cropped);
        train on crops of it that are multiples of 64 (train_stage.crop_size).
      num_frames: stored window length, 2, 3 or 5 (5 for three-frame models; the pipeline takes
        a centred sub-window for fewer).
      stride: frames between consecutive frames of a window (1: consecutive).
      validation_fraction: share of the clips in the `validation` split (by clip).
      split_seed: seed of the clip split (one split for every stage, whatever its seed).
      data_dir: where the cache goes (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
    """

    def __init__(self, footage_dir=gin.REQUIRED, frame_size=(256, 384), num_frames=2, stride=1,
                 validation_fraction=0.2, split_seed=0, data_dir=None):
        if num_frames not in WINDOW_LENGTHS:
            raise FootageError(f"FootageSource.num_frames must be one of {WINDOW_LENGTHS}, got {num_frames!r}")
        if not (isinstance(stride, int) and stride >= 1):
            raise FootageError(f"FootageSource.stride must be a positive integer, got {stride!r}")
        if len(frame_size) != 2 or min(frame_size) < 1:
            raise FootageError(f"FootageSource.frame_size must be (height, width), got {frame_size!r}")
        if not 0 <= validation_fraction < 1:
            raise FootageError(f"FootageSource.validation_fraction must be in [0, 1), got {validation_fraction!r}")
        frame_windows.reference_index(num_frames)
        find_clips(footage_dir)  # a missing or unset folder is named now, not at the first read
        self.footage_dir = footage_dir
        self.options = {"height": int(frame_size[0]), "width": int(frame_size[1]), "num_frames": int(num_frames),
                        "stride": int(stride), "validation_fraction": float(validation_fraction),
                        "split_seed": int(split_seed)}
        self.data_dir = data_dir
        self._builder = None

    def config_name(self):
        """The cache's tfds config name: size, window, stride and the hash of `cache_key`."""
        o = self.options
        digest = cache_key(self.footage_dir, o)[:16]
        return f"{o['height']}x{o['width']}_n{o['num_frames']}_s{o['stride']}_{digest}"

    @property
    def builder(self):
        if self._builder is None:
            config = FootageConfig(name=self.config_name(), footage_dir=os.path.abspath(self.footage_dir),
                                   description=f"footage of {self.footage_dir}", **self.options)
            self._builder = FootageWindows(config=config, data_dir=self.data_dir)
        return self._builder

    @property
    def name(self):
        return self.builder.name

    @property
    def info(self):
        return _Info(self.builder.info)

    @property
    def cache_dir(self):
        """The folder of the prepared windows."""
        return str(self.builder.data_dir)

    def download_and_prepare(self, download_config=None):
        """Builds the cache unless it exists (prints the summary line when it builds)."""
        del download_config  # nothing to download; the clips are local
        self.builder.download_and_prepare()
        self._builder = None  # a builder made before the data existed knows no splits
        splits = self.builder.info.splits
        counts = ", ".join(f"{name} {splits[name].num_examples}" for name in sorted(splits.keys()))
        print(f"footage {self.footage_dir}: windows {counts} (cache {self.cache_dir})", flush=True)

    def num_examples(self, split):
        return self.builder.info.splits[split].num_examples

    def as_dataset(self, split, shuffle_files=False, read_config=None, decoders=None):
        splits = self.builder.info.splits
        base = re.split(r"[\[+]", split, maxsplit=1)[0]
        if base not in splits:
            raise FootageError(f"footage {self.footage_dir} has no {base!r} split (it has "
                               f"{', '.join(sorted(splits.keys()))}; a validation split needs two usable clips)")
        return self.builder.as_dataset(split=split, shuffle_files=shuffle_files, read_config=read_config,
                                       decoders=decoders)

