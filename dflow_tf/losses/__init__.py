"""Loss functions (pure TensorFlow): robust penalty and DDFlow normalisation, photometric, census,
optional smoothness and forward-backward consistency, supervised, distillation (docs/method.md §2-§4),
and their weighting over a model's iterations (sequence).

Every loss returns a float scalar, the mean over the batch of per-image losses; flows are full resolution [B, H, W, 2],
images [B, H, W, C], masks [B, H, W, 1]. Weights between terms are applied by the trainer.
"""
from dflow_tf.losses.census import census_loss
from dflow_tf.losses.consistency import consistency_loss
from dflow_tf.losses.distillation import distillation_loss, distillation_mask
from dflow_tf.losses.photometric import photometric_loss
from dflow_tf.losses.robust import masked_mean, robust_penalty
from dflow_tf.losses.sequence import sequence_loss, sequence_weights
from dflow_tf.losses.smoothness import smoothness_loss
from dflow_tf.losses.supervised import multiscale_loss, supervised_loss

__all__ = [
    "census_loss",
    "consistency_loss",
    "distillation_loss",
    "distillation_mask",
    "masked_mean",
    "photometric_loss",
    "robust_penalty",
    "sequence_loss",
    "sequence_weights",
    "smoothness_loss",
    "multiscale_loss",
    "supervised_loss",
]
