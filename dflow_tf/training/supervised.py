"""The supervised fine-tuning objective (docs/method.md §4)."""
import gin
import tensorflow as tf

from dflow_tf.data.frame_windows import model_window, reference_index
from dflow_tf.losses.sequence import SEQUENCE_DECAY, sequence_loss
from dflow_tf.losses.supervised import KINDS, multiscale_loss, supervised_loss
from dflow_tf.training.flows import ITERATIONS_KEY, has_iterations

#: The losses SupervisedTask offers: the full-resolution ones of `supervised_loss`,
#: "multiscale" (PWC-Net's loss on every pyramid level, `multiscale_loss`) and "sequence" (RAFT's
#: loss on every iteration, `sequence_loss` of the "l1" loss).
TASK_LOSSES = (*KINDS, "multiscale", "sequence")


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
      loss: "robust" (psi(x) = (|x| + 0.01)^0.4 with the section-2 normalisation), "epe"
        (per-image mean endpoint error) or "l1" (mean absolute error), on the full-resolution
        flow (see `dflow_tf.losses.supervised_loss`); "multiscale": PWC-Net's loss on the
        estimator flow of every level above 2 and the refined level-2 flow
        (`dflow_tf.losses.multiscale_loss`), the loss for training a PWC model from scratch (a
        model without `levels` is an error); or "sequence": RAFT's loss, the "l1" loss of every
        iteration's flow weighted by sequence_decay^(T-1-k) (`dflow_tf.losses.sequence_loss`;
        a model without iterations has the one flow "flow"). The robust loss is DDFlow's
        fine-tuning loss: its gradient 0.4 x^-0.6 fades as the error x grows and it gives the
        coarse levels no direct signal.
      input_frames: frames per training sample; None = the model's `num_frames`.
      sequence_decay: gamma of loss "sequence" (RAFT: 0.8); 0 or None = the final flow only.
    """

    def __init__(self, loss="robust", input_frames=None, sequence_decay=SEQUENCE_DECAY):
        if loss not in TASK_LOSSES:
            raise ValueError(f"SupervisedTask.loss must be one of {TASK_LOSSES}, got {loss!r}")
        if input_frames not in (None, 2, 3):
            raise ValueError(f"SupervisedTask.input_frames must be None, 2 or 3, got {input_frames!r}")
        self.loss_kind = loss
        self.input_frames = input_frames
        self.sequence_decay = sequence_decay

    def num_frames(self, model):
        return self.input_frames or model.num_frames

    def _loss(self, model, frames, gt, valid):
        """(loss, full-resolution forward flow [B, H, W, 2] float32 of the reference pair of
        frames [B, N, H, W, 3])."""
        outputs = model(model_window(frames, model.num_frames))
        flow = tf.cast(outputs["flow"], tf.float32)
        if self.loss_kind == "sequence":
            flows = outputs[ITERATIONS_KEY] if has_iterations(model) else flow[:, None]
            loss, _ = sequence_loss(lambda f: supervised_loss(f, gt, valid, kind="l1"),
                                    [tf.cast(flows, tf.float32)], self.sequence_decay)
            return loss, flow
        if self.loss_kind != "multiscale":
            return supervised_loss(flow, gt, valid, kind=self.loss_kind), flow
        if not hasattr(model, "levels"):
            raise ValueError(f"SupervisedTask.loss = 'multiscale' needs a model with pyramid levels (the PWC "
                             f"family); {type(model).__name__} has none: use loss 'sequence' for the RAFT "
                             f"family, or 'robust' / 'epe' / 'l1'")
        levels = {level: outputs[f"flow_level{level}"] for level in model.levels if level > 2}
        levels[2] = outputs["flow_refined"]
        return multiscale_loss(levels, gt, valid), flow

    def compute_loss(self, model, batch):
        """Returns (loss scalar, {name: scalar}, {name: [B, H, W, C] tensor for pictures})."""
        frames = tf.cast(batch["frames"], tf.float32)
        gt = tf.cast(batch["flow"], tf.float32)
        valid = tf.cast(batch["valid"], tf.float32)
        loss, flow = self._loss(model, frames, gt, valid)
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

