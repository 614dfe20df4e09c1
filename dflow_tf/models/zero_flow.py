"""The zero-flow baseline: a 'model' whose EPE is the mean ground-truth speed."""
import tensorflow as tf


class ZeroFlowModel:
    """Predicts zero flow; follows the models' output contract (docs/models.md) for inference."""

    num_frames = 2
    size_multiple = 1

    def __call__(self, frames):
        """frames [B, 2, H, W, 3] -> {"flow": zeros float32 [B, H, W, 2]}."""
        shape = tf.shape(frames)
        return {"flow": tf.zeros(tf.stack([shape[0], shape[2], shape[3], 2]), tf.float32)}
