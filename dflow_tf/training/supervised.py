"""The supervised fine-tuning objective (docs/method.md §4)."""
import gin
import tensorflow as tf

from dflow_tf.data.frame_windows import model_window, reference_index
from dflow_tf.losses.supervised import KINDS, supervised_loss


@gin.configurable
class SupervisedTask:
    """Loss of the full-resolution forward flow against ground truth where it is valid.

    The prediction is the flow of the samples' reference pair (docs/datasets.md): a two-frame
    model reads frames [B, 2, ...] (pair 0 -> 1); a three-frame model reads [B, 3, ...] and its
    forward flow of the centre frame is the reference pair 1 -> 2. Samples of 2 frames given to
    a three-frame model (set `input_frames = 2`, e.g. the KITTI benchmark pairs, which store no
    frame _09) use the first-frame fallback of `dflow_tf.data.frame_windows` (the centre frame
    repeated as the previous one). Invalid ground truth (sparse KITTI, Sintel `invalid`) is
    excluded by `valid`.

    Args:
      loss: "robust" (psi(x) = (|x| + 0.01)^0.4 with the section-2 normalisation) or "epe"
        (per-image mean endpoint error); see `dflow_tf.losses.supervised_loss`.
      input_frames: frames per training sample; None = the model's `num_frames`.
    """

    def __init__(self, loss="robust", input_frames=None):
        if loss not in KINDS:
            raise ValueError(f"SupervisedTask.loss must be one of {KINDS}, got {loss!r}")
        if input_frames not in (None, 2, 3):
            raise ValueError(f"SupervisedTask.input_frames must be None, 2 or 3, got {input_frames!r}")
        self.loss_kind = loss
        self.input_frames = input_frames

    def num_frames(self, model):
        return self.input_frames or model.num_frames

    def predict(self, model, frames):
        """Full-resolution forward flow [B, H, W, 2] of the reference pair of frames [B, N, H, W, 3]."""
        return tf.cast(model(model_window(frames, model.num_frames))["flow"], tf.float32)

    def compute_loss(self, model, batch):
        """Returns (loss scalar, {name: scalar}, {name: [B, H, W, C] tensor for pictures})."""
        frames = tf.cast(batch["frames"], tf.float32)
        gt = tf.cast(batch["flow"], tf.float32)
        valid = tf.cast(batch["valid"], tf.float32)
        flow = self.predict(model, frames)
        loss = supervised_loss(flow, gt, valid, kind=self.loss_kind)
        scalars = {"loss/supervised_" + self.loss_kind: loss, "train_epe": training_epe(flow, gt, valid)}
        pictures = {"frame": frames[:, reference_index(int(frames.shape[1]))], "flow_forward": flow,
                    "flow_gt": gt * valid}
        return loss, scalars, pictures


def training_epe(flow, gt, valid):
    """Pixel-pooled EPE over the valid pixels of a batch (a training scalar, no gradient);
    0 when no pixel is valid. flow, gt [B, H, W, 2]; valid [B, H, W, 1]."""
    flow, gt = tf.stop_gradient(flow), tf.cast(gt, flow.dtype)
    mask = tf.cast(tf.not_equal(tf.cast(valid, flow.dtype), 0.0), flow.dtype)[..., 0]
    diff = tf.where(mask[..., None] > 0, flow - gt, tf.zeros_like(flow))
    err = tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1))
    return tf.math.divide_no_nan(tf.reduce_sum(err * mask), tf.reduce_sum(mask))

