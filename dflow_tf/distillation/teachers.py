"""Teachers as annotators: an ensemble of frozen flow models and its confidence."""
import os

import gin
import tensorflow as tf

from dflow_tf import ops, pretrained
from dflow_tf.checkpoints import ZERO, load_model
from dflow_tf.data import schema
from dflow_tf.data.frame_windows import training_window
from dflow_tf.models.classical_flow import is_classical
from dflow_tf.ops.occlusion import OCCLUSION_ALPHA1, OCCLUSION_ALPHA2
from dflow_tf.training.flows import centre_pair_flows


@gin.configurable
class TeacherEnsemble:
    """N frozen teachers whose averaged flows and forward-backward check annotate the student.

    Each teacher predicts the forward (a -> a+1) and backward (a+1 -> a) flow of a window's
    reference pair; the ensemble averages the flows over teachers and computes its occlusion,
    O_t = forward_backward_occlusion(mean fw, mean bw) (1 = not confident), on the averaged flows.

    Args:
      checkpoints: stage directories or checkpoint prefixes of trained teachers (each with a
        model.json beside it, as train_stage writes); relative paths are resolved against
        `experiment_dir` when they do not exist as given. Named models are taken as named:
        "pretrained:NAME", "classical:METHOD" (an OpenCV method, models.classical_flow).
      alpha1, alpha2: constants of the confidence check (docs/method.md §2.4, §3.1).

    The models are loaded by `load` (the training stage calls it inside its distribution scope).
    """

    def __init__(self, checkpoints=gin.REQUIRED, alpha1=OCCLUSION_ALPHA1, alpha2=OCCLUSION_ALPHA2):
        if not checkpoints:
            raise ValueError("TeacherEnsemble.checkpoints is empty: give at least one teacher checkpoint")
        self.checkpoints = list(checkpoints)
        self.alpha1 = alpha1
        self.alpha2 = alpha2
        self.models, self.sources, self.paths = [], [], []

    def load(self, experiment_dir=None):
        """Loads every teacher (frozen); relative names are tried against `experiment_dir` too."""
        if self.models:
            return self
        for path in self.checkpoints:
            named = path == ZERO or is_classical(path) or pretrained.is_pretrained(path)  # not files
            if experiment_dir and not named and not os.path.isabs(path) and not os.path.exists(path):
                path = os.path.join(experiment_dir, path)
            model, description = load_model(path)
            model.trainable = False
            self.models.append(model)
            self.sources.append(description)
            self.paths.append(path if named else os.path.abspath(path))
            print(f"teacher {len(self.models)}: {description}")
        return self

    def members_outside(self, directory):
        """(path, model) of the loaded teachers whose path does not lie in `directory` (None: all):
        the teachers that an experiment in `directory` did not train (and so did not evaluate)."""
        root = os.path.abspath(directory) + os.sep if directory else None
        return [(path, model) for path, model in zip(self.paths, self.models)
                if root is None or not (path + os.sep).startswith(root)]

    @property
    def num_frames(self):
        """Window length the ensemble needs: the training window of its largest teacher (5 if any
        teacher has three frames, else 2; frame_windows.training_window)."""
        if not self.models:
            raise RuntimeError("TeacherEnsemble.load() must run before the teachers are used")
        return training_window(max(m.num_frames for m in self.models))

    def annotate(self, frames):
        """Teacher targets of a window's reference pair.

        Args:
          frames: float [B, N, H, W, 3] in [0, 1], H and W multiples of 64 (N = self.num_frames
            or 5).

        Returns:
          dict (schema.TEACHER_KEYS): teacher_flow_fw, teacher_flow_bw [B, H, W, 2] (averaged,
          frame a -> a+1 and a+1 -> a) and teacher_occlusion_fw, teacher_occlusion_bw
          [B, H, W, 1] (1 = not confident), all float32 and without gradient.
        """
        forward, backward = [], []
        for model in self.models:
            fw, bw = centre_pair_flows(model, frames)
            forward.append(tf.cast(fw, tf.float32))  # targets in float32 under any precision policy
            backward.append(tf.cast(bw, tf.float32))
        flow_fw = tf.stop_gradient(tf.add_n(forward) / len(forward))
        flow_bw = tf.stop_gradient(tf.add_n(backward) / len(backward))
        return {
            schema.TEACHER_FLOW_FW: flow_fw,
            schema.TEACHER_FLOW_BW: flow_bw,
            schema.TEACHER_OCCLUSION_FW: ops.forward_backward_occlusion(flow_fw, flow_bw, self.alpha1, self.alpha2),
            schema.TEACHER_OCCLUSION_BW: ops.forward_backward_occlusion(flow_bw, flow_fw, self.alpha1, self.alpha2),
        }
