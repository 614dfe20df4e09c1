"""The unsupervised teacher objective (docs/method.md §2)."""
import gin
import tensorflow as tf

from dflow_tf import losses, ops
from dflow_tf.data.frame_windows import training_window
from dflow_tf.losses.sequence import SEQUENCE_DECAY, sequence_loss
from dflow_tf.ops.occlusion import OCCLUSION_ALPHA1, OCCLUSION_ALPHA2
from dflow_tf.training.flows import ITERATIONS_KEY, has_iterations, pair_flows

LOSS_KINDS = ("photometric", "census")


@gin.configurable
class UnsupervisedTask:
    """Photometric or census loss on full-resolution flows, optionally occlusion-masked.

    DDFlow trains in two phases: "photometric" without occlusion handling, then "census" with
    forward-backward occlusion masks (gin/teacher.gin binds both).

    Args:
      loss: "photometric" or "census".
      occlusion: mask the loss with 1 - forward-backward occlusion.
      alpha1, alpha2: occlusion-check constants (code 0.01 / 0.5; the paper text says 0.05;
        docs/method.md §2.4).
      smoothness_weight: weight of the optional edge-aware smoothness term (0 = off, DDFlow).
        Logged unweighted as `loss/smoothness`; `loss/<loss>` is the data term alone.
      consistency_weight: weight of the optional forward-backward consistency term
        (losses.consistency_loss on the pixels the check finds visible; 0 = off, DDFlow; UnFlow
        uses 0.2). It trains down the residual the occlusion check thresholds, so that short
        CPU runs reach masks the guard accepts (docs/training.md). It always uses the check's
        own masks, also where the guard rejects them for the loss: applied to every pixel of an
        image whose check failed, it pulled a weak teacher to the trivially consistent zero flow
        (docs/training.md).
      max_occlusion_fraction: an image whose estimated occluded fraction exceeds this bound is
        trained without occlusion mask (ops.reject_implausible_occlusion): the guard against the
        all-occluded zero-loss collapse. Natural sequences rarely occlude more than a third of a
        frame; None = DDFlow's unguarded behaviour. Only acts where the check has failed, so
        well-trained teachers are unaffected (docs/training.md).
      sequence_decay: for a model that returns every iteration's flow (the RAFT family), the whole
        objective (occlusion check included) is applied to each iteration k = 0 .. T-1 and
        weighted by sequence_decay^(T-1-k) (SMURF; `dflow_tf.losses.sequence_loss`); 0 or None =
        the final flow only. Models without iterations (the PWC family) have the one flow.
    """

    def __init__(self, loss="census", occlusion=True, alpha1=OCCLUSION_ALPHA1, alpha2=OCCLUSION_ALPHA2,
                 smoothness_weight=0.0, max_occlusion_fraction=0.5, consistency_weight=0.0,
                 sequence_decay=SEQUENCE_DECAY):
        if loss not in LOSS_KINDS:
            raise ValueError(f"UnsupervisedTask.loss must be one of {LOSS_KINDS}, got {loss!r}")
        self.loss_kind = loss
        self.occlusion = occlusion
        self.alpha1 = alpha1
        self.alpha2 = alpha2
        self.smoothness_weight = smoothness_weight
        self.max_occlusion_fraction = max_occlusion_fraction
        self.consistency_weight = consistency_weight
        self.sequence_decay = sequence_decay

    def num_frames(self, model):
        return training_window(model.num_frames)

    def occlusions(self, flow_ab, flow_ba):
        """The forward-backward check of a pair: (O_a, O_b) [B, H, W, 1] that mask the loss (after the
        guard; None with `occlusion` off), (C_a, C_b) the check's own masks, which the
        consistency term uses (None when neither needs the check), and the fraction of the 2B
        loss masks rejected as implausible (0 without the guard)."""
        if not (self.occlusion or self.consistency_weight):
            return (None, None), (None, None), 0.0
        checked = (ops.forward_backward_occlusion(flow_ab, flow_ba, self.alpha1, self.alpha2),
                   ops.forward_backward_occlusion(flow_ba, flow_ab, self.alpha1, self.alpha2))
        if not self.occlusion:
            return (None, None), checked, 0.0
        if self.max_occlusion_fraction is None:
            return checked, checked, tf.constant(0.0)
        guarded = [ops.reject_implausible_occlusion(m, self.max_occlusion_fraction) for m in checked]
        rejected = 0.5 * (tf.reduce_mean(guarded[0][1]) + tf.reduce_mean(guarded[1][1]))
        return (guarded[0][0], guarded[1][0]), checked, rejected

    def compute_loss(self, model, batch):
        """Returns (loss scalar, {name: scalar}, {name: [B, H, W, C] tensor for pictures}); with
        iterations, the scalars and pictures are the final iteration's."""
        frames = tf.cast(batch["frames"], tf.float32)
        if not (self.sequence_decay and has_iterations(model)):
            return self.pairs_loss(pair_flows(model, frames))
        pairs = pair_flows(model, frames, key=ITERATIONS_KEY)
        images = [(image_a, image_b) for image_a, image_b, _, _ in pairs]

        def iteration_loss(*flows):  # flow_ab, flow_ba of each pair, [B, H, W, 2]
            return self.pairs_loss([(*ab, *flows[2 * i:2 * i + 2]) for i, ab in enumerate(images)])

        sequences = [flow for _, _, flow_ab, flow_ba in pairs for flow in (flow_ab, flow_ba)]
        loss, (_, scalars, pictures) = sequence_loss(iteration_loss, sequences, self.sequence_decay)
        return loss, scalars, pictures

    def pairs_loss(self, pairs):
        """(loss, scalars, pictures) of the pairs' flows: a list of (image_a, image_b [B, H, W, 3],
        flow_ab, flow_ba [B, H, W, 2]) as `pair_flows` returns them."""
        term = losses.census_loss if self.loss_kind == "census" else losses.photometric_loss
        total, data, smoothness, consistency, magnitude = 0.0, 0.0, 0.0, 0.0, 0.0
        occluded, rejected, first_occlusion = 0.0, 0.0, None
        for image_a, image_b, flow_ab, flow_ba in pairs:
            flow_ab = tf.cast(flow_ab, tf.float32)
            flow_ba = tf.cast(flow_ba, tf.float32)
            (occ_a, occ_b), checked, rejected_pair = self.occlusions(flow_ab, flow_ba)
            rejected += rejected_pair
            magnitude += 0.5 * (flow_magnitude(flow_ab) + flow_magnitude(flow_ba))
            data_pair = term(image_a, image_b, flow_ab, flow_ba, occ_a, occ_b)
            data += data_pair
            total += data_pair
            if self.consistency_weight:
                consistency += losses.consistency_loss(flow_ab, flow_ba, *checked)
            if self.smoothness_weight:
                smoothness_pair = (losses.smoothness_loss(flow_ab, image_a)
                                   + losses.smoothness_loss(flow_ba, image_b))
                smoothness += smoothness_pair
                total += self.smoothness_weight * smoothness_pair
            if occ_a is not None:
                occluded += tf.reduce_mean(occ_a)
                first_occlusion = occ_a if first_occlusion is None else first_occlusion
        count = float(len(pairs))
        loss = (total + self.consistency_weight * consistency) / count
        scalars = {"loss/" + self.loss_kind: data / count, "flow_magnitude": magnitude / count}
        if self.smoothness_weight:
            scalars["loss/smoothness"] = smoothness / count
        if self.consistency_weight:
            scalars["loss/consistency"] = consistency / count
        if self.occlusion:
            scalars["occlusion_ratio"] = occluded / count
            scalars["occlusion_rejected"] = rejected / count
        image_a, _, flow_ab, _ = pairs[0]
        pictures = {"frame": image_a, "flow_forward": tf.cast(flow_ab, tf.float32)}
        if first_occlusion is not None:
            pictures["occlusion"] = first_occlusion
        return loss, scalars, pictures


def flow_magnitude(flow):
    """Mean |flow| in px over the pixels of flow [B, H, W, 2] (a training scalar, no gradient;
    what dflow_tf.training.collapse watches)."""
    flow = tf.stop_gradient(tf.cast(flow, tf.float32))
    return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(flow), axis=-1)))
