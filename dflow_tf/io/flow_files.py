"""Readers and writers for optical-flow ground truth, disparity maps, images and masks.

Formats:
  * Middlebury ``.flo``: little-endian float32 magic 202021.25 (bytes ``PIEH``), int32 width,
    int32 height, then height * width * 2 float32 values, (u, v) interleaved, row-major.
  * KITTI 16-bit PNG flow: uint16 RGB, u = (R - 2^15) / 64, v = (G - 2^15) / 64, valid = B > 0.
    Many image readers silently cut these to 8 bits; this module decodes with OpenCV
    ``IMREAD_UNCHANGED`` (BGR order, converted here).
  * PFM: text header ``PF`` (3 channels) or ``Pf`` (1 channel), ``width height``, a scale whose
    sign gives the endianness (negative = little-endian), then float32 rows stored bottom-up.
  * Disparity (stereo, left image): KITTI 16-bit grey PNG, d = value / 256, 0 = invalid; or a
    one-channel PFM (Middlebury), +inf (any non-finite value) = invalid.
  * Images (png / ppm / jpg ...): 8-bit RGB. Masks: single-channel 8-bit, 255 = true;
    Middlebury 2014 ``mask0nocc.png``: 255 = non-occluded, 128 = occluded, 0 = no ground truth.

Flow is float32 [H, W, 2] (channel 0 = u to the right, channel 1 = v downwards); disparity is
float32 [H, W] in px, d >= 0: the left pixel x matches the right image's x - d. Every failure
raises :class:`FlowFileError`, whose message names the file and what was wrong.
"""
import os
import pathlib

import cv2
import numpy as np

FLO_MAGIC = 202021.25
_FLO_HEADER_BYTES = 12
_KITTI_OFFSET = 2.0 ** 15
_KITTI_SCALE = 64.0
_KITTI_DISPARITY_SCALE = 256.0
#: Disparity files that read_disparity / write_disparity know (KITTI 16-bit PNG, PFM).
DISPARITY_EXTENSIONS = (".png", ".pfm")
#: Middlebury .flo: a flow component whose magnitude is at least this is unknown.
UNKNOWN_FLOW_THRESHOLD = 1e9
#: Image files the readers of frames (pair folders, frame sequences) recognise.
IMAGE_EXTENSIONS = (".png", ".ppm", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class FlowFileError(ValueError):
    """A flow, disparity, image or mask file could not be read or written."""


def find_file(folder, stem, extensions):
    """The path of `folder`/`stem` with the first of `extensions` that exists, or None."""
    for ext in extensions:
        path = os.path.join(folder, stem + ext)
        if os.path.isfile(path):
            return path
    return None


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FlowFileError(f"{path}: file not found") from None
    except OSError as e:
        raise FlowFileError(f"{path}: cannot read ({e.strerror or e})") from None


def _write_bytes(path, data):
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise FlowFileError(f"{path}: cannot write ({e.strerror or e})") from None


def _decode_image(path, flags):
    """Decodes an image file with OpenCV; returns the array in OpenCV (BGR) channel order."""
    data = _read_bytes(path)
    image = None
    if data:
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        except cv2.error:
            image = None
    if image is None:
        raise FlowFileError(f"{path}: not a decodable image ({len(data)} bytes)")
    return image


def _encode_image(path, image):
    """Encodes an array in OpenCV (BGR) channel order, format from the file extension."""
    ext = pathlib.Path(os.fspath(path)).suffix.lower()
    try:
        ok, buf = cv2.imencode(ext, image)
    except cv2.error:
        ok = False
    if not ok:
        raise FlowFileError(f"{path}: cannot encode a {image.dtype} {image.shape} image as '{ext}'")
    _write_bytes(path, buf.tobytes())


def _check_array(path, array, allowed_shapes, what):
    """Returns `array` as numpy; raises FlowFileError unless its shape matches one pattern.

    `allowed_shapes` holds tuples whose entries are ints (fixed size) or None (any size >= 1).
    """
    array = np.asarray(array)
    for pattern in allowed_shapes:
        if array.ndim == len(pattern) and all(
                (p is None and s >= 1) or p == s for p, s in zip(pattern, array.shape)):
            return array
    wanted = " or ".join("[" + ", ".join("N" if p is None else str(p) for p in pat) + "]"
                         for pat in allowed_shapes)
    raise FlowFileError(f"{path}: cannot write {what} of shape {list(array.shape)}; expected {wanted}")


# ----------------------------------------------------------------------------------------- .flo

def read_flo(path):
    """Reads a Middlebury ``.flo`` file -> float32 [H, W, 2]."""
    data = _read_bytes(path)
    if len(data) < _FLO_HEADER_BYTES:
        raise FlowFileError(f"{path}: truncated .flo header ({len(data)} bytes, need 12)")
    magic = np.frombuffer(data, "<f4", count=1)[0]
    if magic != np.float32(FLO_MAGIC):
        raise FlowFileError(f"{path}: bad .flo magic {data[:4]!r} (expected b'PIEH' = 202021.25)")
    width, height = (int(x) for x in np.frombuffer(data, "<i4", count=2, offset=4))
    if width <= 0 or height <= 0:
        raise FlowFileError(f"{path}: invalid .flo size width={width} height={height}")
    expected = _FLO_HEADER_BYTES + 8 * width * height
    if len(data) != expected:
        raise FlowFileError(
            f"{path}: .flo data size mismatch: header says {width}x{height}x2 float32 "
            f"({expected - _FLO_HEADER_BYTES} bytes) but the file holds {len(data) - _FLO_HEADER_BYTES}")
    flow = np.frombuffer(data, "<f4", offset=_FLO_HEADER_BYTES).reshape(height, width, 2)
    return flow.astype(np.float32)


def known_flow(flow):
    """bool [H, W]: the pixels of a .flo flow [H, W, 2] whose (u, v) are finite and below
    UNKNOWN_FLOW_THRESHOLD (Middlebury's mark of unknown flow)."""
    return np.all(np.isfinite(flow) & (np.abs(flow) < UNKNOWN_FLOW_THRESHOLD), axis=-1)


def write_flo(path, flow):
    """Writes float [H, W, 2] flow as a Middlebury ``.flo`` file."""
    flow = _check_array(path, flow, [(None, None, 2)], "flow")
    height, width = flow.shape[:2]
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    _write_bytes(path, header + np.ascontiguousarray(flow, "<f4").tobytes())


# ------------------------------------------------------------------------------ KITTI flow PNG

def read_kitti_flow(path):
    """Reads a KITTI 16-bit PNG flow file -> (flow float32 [H, W, 2], valid bool [H, W])."""
    image = _decode_image(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] != 3:
        raise FlowFileError(
            f"{path}: not a KITTI flow PNG: got {image.dtype} image of shape {list(image.shape)}, "
            "expected 16-bit 3-channel")
    rgb = image[..., ::-1].astype(np.float32)
    flow = (rgb[..., :2] - _KITTI_OFFSET) / _KITTI_SCALE
    valid = image[..., 0] > 0  # B channel (OpenCV order is BGR)
    return flow, valid


def write_kitti_flow(path, flow, valid=None):
    """Writes flow float [H, W, 2] (and valid bool [H, W], default all true) as a KITTI PNG.

    Stores round(flow * 64 + 2^15) clipped to [0, 65535] in R, G and the valid flag in B.
    """
    if pathlib.Path(os.fspath(path)).suffix.lower() != ".png":
        raise FlowFileError(f"{path}: KITTI flow must be written as .png")
    flow = _check_array(path, flow, [(None, None, 2)], "flow")
    if valid is None:
        valid = np.ones(flow.shape[:2], bool)
    valid = np.asarray(valid)
    if valid.shape not in (flow.shape[:2], flow.shape[:2] + (1,)):
        raise FlowFileError(
            f"{path}: valid mask shape {list(valid.shape)} does not match flow shape {list(flow.shape)}")
    encoded = np.clip(np.round(flow.astype(np.float64) * _KITTI_SCALE + _KITTI_OFFSET), 0, 65535)
    bgr = np.stack([valid.reshape(flow.shape[:2]).astype(bool).astype(np.float64),
                    encoded[..., 1], encoded[..., 0]], axis=-1).astype(np.uint16)
    _encode_image(path, bgr)


# ----------------------------------------------------------------------------------------- PFM

def read_pfm(path):
    """Reads a PFM file -> float32 [H, W] (``Pf``) or [H, W, 3] (``PF``), rows top-down."""
    data = _read_bytes(path)
    tokens, pos = [], 0
    while len(tokens) < 4:  # magic, width, height, scale: separated by single whitespace runs
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        if start == pos or pos >= len(data):
            raise FlowFileError(f"{path}: truncated PFM header")
        tokens.append(data[start:pos])
    pos += 1  # exactly one whitespace character ends the header
    magic = tokens[0]
    if magic not in (b"PF", b"Pf"):
        raise FlowFileError(f"{path}: bad PFM magic {magic[:8]!r} (expected b'PF' or b'Pf')")
    try:
        width, height, scale = int(tokens[1]), int(tokens[2]), float(tokens[3])
    except ValueError:
        raise FlowFileError(f"{path}: unparsable PFM header {b' '.join(tokens[1:])!r}") from None
    if width <= 0 or height <= 0 or scale == 0:
        raise FlowFileError(f"{path}: invalid PFM header width={width} height={height} scale={scale}")
    channels = 3 if magic == b"PF" else 1
    count = width * height * channels
    if len(data) - pos != 4 * count:
        raise FlowFileError(
            f"{path}: PFM data size mismatch: header says {width}x{height}x{channels} float32 "
            f"({4 * count} bytes) but the file holds {len(data) - pos}")
    dtype = "<f4" if scale < 0 else ">f4"
    array = np.frombuffer(data, dtype, count=count, offset=pos).astype(np.float32)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(array.reshape(shape)[::-1])


def write_pfm(path, array):
    """Writes float [H, W] or [H, W, 3] as a little-endian PFM (rows stored bottom-up)."""
    array = _check_array(path, array, [(None, None), (None, None, 3)], "PFM data")
    height, width = array.shape[:2]
    magic = "PF" if array.ndim == 3 else "Pf"
    header = f"{magic}\n{width} {height}\n-1.0\n".encode("ascii")
    _write_bytes(path, header + np.ascontiguousarray(array[::-1], "<f4").tobytes())


# ----------------------------------------------------------------------------------- disparity

def read_kitti_disparity(path):
    """Reads a KITTI 16-bit disparity PNG -> (disparity float32 [H, W] px, valid bool [H, W]):
    d = value / 256, value 0 = invalid (d = 0 there)."""
    image = _decode_image(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint16 or image.ndim != 2:
        raise FlowFileError(
            f"{path}: not a KITTI disparity PNG: got {image.dtype} image of shape {list(image.shape)}, "
            "expected 16-bit 1-channel")
    return (image.astype(np.float32) / _KITTI_DISPARITY_SCALE), image > 0


def write_kitti_disparity(path, disparity, valid=None):
    """Writes disparity float [H, W] (px; valid bool [H, W], default all true) as a KITTI 16-bit PNG.

    Stores round(d * 256) clipped to [1, 65535] where valid (so a valid d below 1/512 px, or a
    negative one, is stored as 1/256 px: 0 is KITTI's mark of no value, as in its devkit) and 0
    where not valid or not finite. Largest storable d: 255.996 px.
    """
    if pathlib.Path(os.fspath(path)).suffix.lower() != ".png":
        raise FlowFileError(f"{path}: KITTI disparity must be written as .png")
    disparity, valid = _disparity_and_valid(path, disparity, valid)
    encoded = np.clip(np.round(np.where(valid, disparity, 0.0) * _KITTI_DISPARITY_SCALE), 1, 65535)
    _encode_image(path, np.where(valid, encoded, 0).astype(np.uint16))


def read_pfm_disparity(path):
    """Reads a one-channel PFM disparity (Middlebury) -> (disparity float32 [H, W] px, valid bool
    [H, W]): rows top-down; non-finite values (+inf in Middlebury) are invalid (d = 0 there)."""
    disparity = read_pfm(path)
    if disparity.ndim != 2:
        raise FlowFileError(f"{path}: a disparity PFM has 1 channel (Pf), this one has 3 (PF)")
    valid = np.isfinite(disparity)
    return np.where(valid, disparity, 0.0).astype(np.float32), valid


def write_pfm_disparity(path, disparity, valid=None):
    """Writes disparity float [H, W] (px) as a one-channel PFM (rows bottom-up), +inf where not valid."""
    disparity, valid = _disparity_and_valid(path, disparity, valid)
    write_pfm(path, np.where(valid, disparity, np.inf).astype(np.float32))


def read_disparity(path):
    """Reads a disparity file by extension (.png: KITTI 16-bit, .pfm) -> (float32 [H, W], valid bool [H, W])."""
    ext = pathlib.Path(os.fspath(path)).suffix.lower()
    if ext == ".png":
        return read_kitti_disparity(path)
    if ext == ".pfm":
        return read_pfm_disparity(path)
    raise FlowFileError(f"{path}: unknown disparity format '{ext}' (expected {', '.join(DISPARITY_EXTENSIONS)})")


def write_disparity(path, disparity, valid=None):
    """Writes disparity float [H, W] by extension (.png: KITTI 16-bit, .pfm); valid bool [H, W]."""
    ext = pathlib.Path(os.fspath(path)).suffix.lower()
    if ext == ".png":
        return write_kitti_disparity(path, disparity, valid)
    if ext == ".pfm":
        return write_pfm_disparity(path, disparity, valid)
    raise FlowFileError(f"{path}: unknown disparity format '{ext}' (expected {', '.join(DISPARITY_EXTENSIONS)})")


def _disparity_and_valid(path, disparity, valid):
    """(float64 [H, W], bool [H, W]: valid and finite) for the disparity writers."""
    disparity = _check_array(path, disparity, [(None, None)], "disparity").astype(np.float64)
    if valid is None:
        valid = np.ones(disparity.shape, bool)
    valid = np.asarray(valid)
    if valid.shape not in (disparity.shape, disparity.shape + (1,)):
        raise FlowFileError(f"{path}: valid mask shape {list(valid.shape)} does not match disparity "
                            f"shape {list(disparity.shape)}")
    return disparity, valid.reshape(disparity.shape).astype(bool) & np.isfinite(disparity)


# ------------------------------------------------------------------------------- images, masks

def read_image(path):
    """Reads an 8-bit image (png, ppm, jpg, ...) -> uint8 RGB [H, W, 3]; grey becomes 3 channels."""
    image = _decode_image(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8:
        raise FlowFileError(
            f"{path}: expected an 8-bit image, got {image.dtype} (a 16-bit PNG is probably KITTI "
            "flow: use read_kitti_flow)")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=-1)
    if image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[..., 2::-1])  # BGR(A) -> RGB, alpha dropped
    raise FlowFileError(f"{path}: unsupported image with {image.shape[2]} channels")


def write_image(path, rgb):
    """Writes uint8 RGB [H, W, 3] (or grey [H, W]); the format comes from the file extension."""
    rgb = _check_array(path, rgb, [(None, None, 3), (None, None)], "image")
    if rgb.dtype != np.uint8:
        raise FlowFileError(f"{path}: cannot write image of dtype {rgb.dtype}; expected uint8")
    _encode_image(path, rgb[..., ::-1] if rgb.ndim == 3 else rgb)


def read_mask(path):
    """Reads an 8-bit mask image (e.g. Sintel occ.png / invalid.png) -> bool [H, W], 255 = true.

    Colour masks count as true only where every channel is 255.
    """
    image = _decode_image(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8:
        raise FlowFileError(f"{path}: expected an 8-bit mask, got {image.dtype}")
    mask = image == 255
    return mask if mask.ndim == 2 else np.all(mask, axis=-1)


def read_occlusion_mask(path):
    """Reads a Middlebury 2014 stereo mask (``mask0nocc.png``: 255 non-occluded, 128 occluded,
    0 no ground truth) -> occluded bool [H, W] (value 128)."""
    image = _decode_image(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8 or image.ndim != 2:
        raise FlowFileError(f"{path}: expected an 8-bit grey mask (255 / 128 / 0), got {image.dtype} "
                            f"image of shape {list(image.shape)}")
    unexpected = ~np.isin(image, (0, 128, 255))
    if unexpected.any():
        raise FlowFileError(f"{path}: mask values must be 0, 128 or 255; found {int(image[unexpected][0])}")
    return image == 128
