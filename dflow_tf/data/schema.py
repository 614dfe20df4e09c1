"""The canonical example schema shared by every TFDS builder in `tfds_builders` (docs/datasets.md).

One example is a window of N consecutive frames plus the ground truth of its *reference pair*,
frames[r] -> frames[r + 1] with r = (N - 1) // 2 (dflow_tf.data.frame_windows.reference_index; N = 2:
0 -> 1; N = 3: 1 -> 2, the centre frame forward; N = 5: 2 -> 3). Every builder stores every key below, so one
pipeline reads them all; splits without ground truth store zeros with `has_flow` False.

Stored (as `tfds` decodes them, before the pipeline):
  id            string   unique within the split, e.g. "000042_10" or "alley_1/frame_0007".
  frames        uint8    [N, H, W, 3] RGB, stored PNG-encoded frame by frame (lossless).
  flow          float32  [H, W, 2] ground truth of the reference pair (u right, v down, pixels);
                         zero where not `valid`.
  valid         bool     [H, W, 1] where `flow` is known (KITTI: sparse; Sintel: not `invalid`).
  occlusion     bool     [H, W, 1] occluded in the reference pair (meaningful where `valid` and
                         `has_occlusion`; KITTI: valid in flow_occ but not in flow_noc).
  has_flow      bool     scalar: the example carries ground-truth flow (false on test splits).
  has_occlusion bool     scalar: `occlusion` is known (false for FlyingChairs and test splits).

Only in `synthetic_flow` (every consecutive pair, forward and backward):
  flow_fw       float32  [N-1, H, W, 2]  frames[i] -> frames[i + 1]
  flow_bw       float32  [N-1, H, W, 2]  frames[i + 1] -> frames[i]
  occlusion_fw  bool     [N-1, H, W, 1]  pixels of frames[i] occluded in frames[i + 1]
  occlusion_bw  bool     [N-1, H, W, 1]  pixels of frames[i + 1] occluded in frames[i]

Only in the stereo builders (`synthetic_stereo`, `kitti_stereo`; N = 2):
  stereo        bool     scalar: the pair is a rectified stereo pair, frames[0] the left view and
                         frames[1] the right view; `flow` is then (-disparity, 0) (a left pixel x
                         is seen at x - d on the right) and evaluation reports disparity metrics.
"""
import cv2
import numpy as np
import tensorflow_datasets as tfds

from dflow_tf.data.frame_windows import reference_index

ID = "id"
FRAMES = "frames"
FLOW = "flow"
VALID = "valid"
OCCLUSION = "occlusion"
HAS_FLOW = "has_flow"
HAS_OCCLUSION = "has_occlusion"
FLOW_FW = "flow_fw"
FLOW_BW = "flow_bw"
OCCLUSION_FW = "occlusion_fw"
OCCLUSION_BW = "occlusion_bw"
STEREO = "stereo"

#: Keys present in every example of every builder.
COMMON_KEYS = (ID, FRAMES, FLOW, VALID, OCCLUSION, HAS_FLOW, HAS_OCCLUSION)
#: Keys present only where every consecutive pair has ground truth (synthetic_flow).
SEQUENCE_KEYS = (FLOW_FW, FLOW_BW, OCCLUSION_FW, OCCLUSION_BW)
#: Teacher targets of the reference pair, by these names wherever they go: the ensemble's
#: annotations (TeacherEnsemble.annotate), the datasets of dflow_tf.distillation.precompute, the
#: student's transforms (StudentTransforms.apply) and objective (DistillationTask).
TEACHER_FLOW_FW = "teacher_flow_fw"
TEACHER_FLOW_BW = "teacher_flow_bw"
TEACHER_OCCLUSION_FW = "teacher_occlusion_fw"
TEACHER_OCCLUSION_BW = "teacher_occlusion_bw"
TEACHER_KEYS = (TEACHER_FLOW_FW, TEACHER_FLOW_BW, TEACHER_OCCLUSION_FW, TEACHER_OCCLUSION_BW)
#: Spatial keys by kind (the pipeline transforms each kind in its own way).
FLOW_KEYS = (FLOW, FLOW_FW, FLOW_BW, TEACHER_FLOW_FW, TEACHER_FLOW_BW)
MASK_KEYS = (VALID, OCCLUSION, OCCLUSION_FW, OCCLUSION_BW, TEACHER_OCCLUSION_FW, TEACHER_OCCLUSION_BW)


def features(num_frames, height=None, width=None, sequence_ground_truth=False, compress_flow=True,
             stereo=False):
    """The `tfds.features.FeaturesDict` of the schema for windows of `num_frames` frames.

    Args:
      num_frames: N, frames per example (>= 2).
      height, width: fixed frame size, or None where sizes vary (KITTI).
      sequence_ground_truth: also declare `flow_fw`, `flow_bw`, `occlusion_fw`, `occlusion_bw`.
      compress_flow: store float flows zlib-compressed (worth it for sparse ground truth and the
        all-zero flows of test splits) or as raw bytes (dense float flows barely compress and
        zlib is slow). A storage detail only: decoded tensors are the same.
      stereo: also declare `stereo` (the stereo builders; needs num_frames = 2).
    """
    reference_index(num_frames)
    f = tfds.features
    hw = (height, width)
    zlib = f.Encoding.ZLIB
    flow_encoding = zlib if compress_flow else f.Encoding.BYTES
    spec = {
        ID: f.Text(doc="unique within the split"),
        FRAMES: f.Sequence(f.Image(shape=hw + (3,), encoding_format="png"), length=num_frames,
                           doc="N consecutive RGB frames"),
        FLOW: f.Tensor(shape=hw + (2,), dtype=np.float32, encoding=flow_encoding,
                       doc="reference pair frames[r] -> frames[r+1], r = (N-1)//2; (u, v) pixels"),
        VALID: f.Tensor(shape=hw + (1,), dtype=np.bool_, encoding=zlib, doc="flow is known"),
        OCCLUSION: f.Tensor(shape=hw + (1,), dtype=np.bool_, encoding=zlib,
                            doc="occluded in the reference pair"),
        HAS_FLOW: f.Scalar(dtype=np.bool_, doc="ground-truth flow is present"),
        HAS_OCCLUSION: f.Scalar(dtype=np.bool_, doc="occlusion ground truth is present"),
    }
    if sequence_ground_truth:
        pairs = (num_frames - 1,) + hw
        spec.update({
            FLOW_FW: f.Tensor(shape=pairs + (2,), dtype=np.float32, encoding=flow_encoding,
                              doc="frames[i] -> frames[i+1]"),
            FLOW_BW: f.Tensor(shape=pairs + (2,), dtype=np.float32, encoding=flow_encoding,
                              doc="frames[i+1] -> frames[i]"),
            OCCLUSION_FW: f.Tensor(shape=pairs + (1,), dtype=np.bool_, encoding=zlib,
                                   doc="pixels of frames[i] occluded in frames[i+1]"),
            OCCLUSION_BW: f.Tensor(shape=pairs + (1,), dtype=np.bool_, encoding=zlib,
                                   doc="pixels of frames[i+1] occluded in frames[i]"),
        })
    if stereo:
        if num_frames != 2:
            raise ValueError(f"a stereo example is a pair (left, right), got num_frames={num_frames}")
        spec[STEREO] = f.Scalar(dtype=np.bool_, doc="rectified stereo pair: frames = (left, right)")
    return f.FeaturesDict(spec)


def encode_png(rgb):
    """uint8 RGB [H, W, 3] -> the PNG bytes of a stored frame (lossless; fast compression level)."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"cannot PNG-encode an image of shape {rgb.shape}")
    return buf.tobytes()


def no_ground_truth(height, width):
    """The ground-truth part of an example of a split without ground truth (all zeros / False)."""
    return {
        FLOW: np.zeros((height, width, 2), np.float32),
        VALID: np.zeros((height, width, 1), bool),
        OCCLUSION: np.zeros((height, width, 1), bool),
        HAS_FLOW: False,
        HAS_OCCLUSION: False,
    }
