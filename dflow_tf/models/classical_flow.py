"""Classical optical flow (OpenCV) behind the models' output contract.

Two uses: the baselines of the real-pair tables (docs/experiments/real_pairs_table.py), and a
teacher without weights whose forward-backward-consistent flow annotates a student, as the
paper's confident teacher predictions do:

    TeacherEnsemble.checkpoints = ["classical:dis_medium", "runs/teacher_a/census"]

`load_model("classical:METHOD")` (and so every `--checkpoint`) returns a ClassicalFlowModel.

Methods (on grey frames, uint8):
  dis_medium  OpenCV's DIS optical flow, MEDIUM preset (Kroeger et al., ECCV 2016).
  farneback   OpenCV's Farneback flow with its tutorial settings: pyramid scale 0.5, 3 levels,
              window 15, 3 iterations, poly_n 5, poly_sigma 1.2.

The flows are computed on the CPU by OpenCV through tf.numpy_function: usable in eager mode and
in tf.function graphs (the training step), not under XLA (`train_stage.jit_compile`), not in an
export, and without gradient (a teacher's targets need none).
"""
import cv2
import numpy as np
import tensorflow as tf

PREFIX = "classical:"
METHODS = ("dis_medium", "farneback")


def _grey(image):
    """[H, W, 3] RGB, uint8 or float in [0, 1] -> uint8 [H, W] grey."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.asarray(image, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def classical_flow(method, image1, image2):
    """Flow image1 -> image2 by `method` (METHODS).

    Args:
      image1, image2: [H, W, 3] RGB, uint8 or float in [0, 1].

    Returns:
      float32 [H, W, 2] in pixels, channel 0 = u (right), 1 = v (down).
    """
    first, second = _grey(image1), _grey(image2)
    if method == "dis_medium":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(first, second, None)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(first, second, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    else:
        raise ValueError(f"unknown classical flow method {method!r}; known: {', '.join(METHODS)}")
    return np.asarray(flow, np.float32)


def is_classical(name):
    """Whether `name` (a --checkpoint value) names a classical method: "classical:METHOD"."""
    return isinstance(name, str) and name.startswith(PREFIX)


class ClassicalFlowModel:
    """A classical method as a two-frame flow model without weights (module docstring).

    `model(frames)` -> {"flow": [B, H, W, 2]}, `model.bidirectional(frames)` -> {"forward": ...,
    "backward": ...}: frames float [B, 2, H, W, 3] in [0, 1], any H and W.
    """

    num_frames = 2
    size_multiple = 1
    iterations = None

    def __init__(self, method="dis_medium"):
        if method not in METHODS:
            raise ValueError(f"unknown classical flow method {method!r} (classical:METHOD); known: "
                             f"{', '.join(METHODS)}")
        self.method = method
        self.trainable = False
        self.trainable_variables = []

    @classmethod
    def from_name(cls, name):
        """ClassicalFlowModel of "classical:METHOD"."""
        return cls(name[len(PREFIX):])

    def _flows(self, first, second):
        def batch(a, b):
            return np.stack([classical_flow(self.method, x, y) for x, y in zip(a, b)]).astype(np.float32)

        flow = tf.numpy_function(batch, [first, second], tf.float32, stateful=False)
        return tf.ensure_shape(flow, first.shape[:3].concatenate([2]))

    def __call__(self, frames):
        return {"flow": self._flows(frames[:, 0], frames[:, 1])}

    def bidirectional(self, frames):
        return {"forward": {"flow": self._flows(frames[:, 0], frames[:, 1])},
                "backward": {"flow": self._flows(frames[:, 1], frames[:, 0])}}
