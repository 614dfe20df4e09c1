"""Distillation: the student learns the teacher's confident flow where the student is occluded."""
import tensorflow as tf

from dflow_tf.losses.robust import masked_mean, robust_penalty
from dflow_tf.ops._checks import check_channels, check_compatible, check_rank


def _check_pair(name_a, a, name_b, b, channels):
    check_rank(name_a, a, 4)
    check_channels(name_a, a, channels)
    check_rank(name_b, b, 4)
    check_compatible(name_a, a, name_b, b, axes=(0, 1, 2, 3))


def distillation_mask(student_occlusion, teacher_occlusion, extra=None):
    """Pixels the student should learn from the teacher (docs/method.md §3.7).

    M = clip(O_s - O_t, 0, 1): 1 where the student's pixel is occluded (O_s = 1) and the teacher
    is confident (O_t = 0); 0 elsewhere. With `extra` (e.g. 1 on superpixel-noised pixels, or a
    transformed region), M = max(clip(O_s - O_t, 0, 1), extra * (1 - O_t)): extra pixels join
    wherever the teacher is confident. No gradient flows through the mask.

    Args:
      student_occlusion: float [B, H, W, 1], 1 = occluded in the student's (transformed) view.
      teacher_occlusion: float [B, H, W, 1], 1 = teacher not confident (aligned with the student).
      extra: optional float [B, H, W, 1] in [0, 1].

    Returns:
      float [B, H, W, 1] in [0, 1].
    """
    student_occlusion = tf.convert_to_tensor(student_occlusion)
    teacher_occlusion = tf.cast(teacher_occlusion, student_occlusion.dtype)
    _check_pair("student_occlusion", student_occlusion, "teacher_occlusion", teacher_occlusion, 1)
    mask = tf.clip_by_value(student_occlusion - teacher_occlusion, 0.0, 1.0)
    if extra is not None:
        extra = tf.cast(extra, mask.dtype)
        _check_pair("extra", extra, "teacher_occlusion", teacher_occlusion, 1)
        mask = tf.maximum(mask, extra * (1.0 - teacher_occlusion))
    return tf.stop_gradient(mask)


def distillation_loss(student_flow_fw, teacher_flow_fw, mask_fw,
                      student_flow_bw=None, teacher_flow_bw=None, mask_bw=None):
    """0.5 * [masked_mean(psi(w_t,fw - w_s,fw), M_fw) + masked_mean(psi(w_t,bw - w_s,bw), M_bw)].

    DDFlow's distillation term (docs/method.md §3.8) with the §2.1 normalisation: each
    direction sums psi over both flow components and the masked pixels of the batch, divided by
    2 * sum(M) + 1e-6. The result is the mean of the directions given: the forward term alone when
    the backward arguments are omitted (all three must be given together). The teacher flows are
    targets: no gradient reaches them. The weight lambda is the trainer's business.

    Args:
      student_flow_fw, teacher_flow_fw: float [B, H, W, 2], full resolution, frame 1 -> 2.
      mask_fw: float [B, H, W, 1], usually `distillation_mask(...)` of the forward occlusions.
      student_flow_bw, teacher_flow_bw, mask_bw: the same for frame 2 -> 1, or all None.

    Returns:
      float scalar.
    """
    backward = (student_flow_bw, teacher_flow_bw, mask_bw)
    if any(t is None for t in backward) and not all(t is None for t in backward):
        raise ValueError("`student_flow_bw`, `teacher_flow_bw` and `mask_bw` must be given together")

    def term(student, teacher, mask, suffix):
        student = tf.convert_to_tensor(student)
        teacher = tf.stop_gradient(tf.cast(teacher, student.dtype))
        mask = tf.cast(mask, student.dtype)
        _check_pair(f"student_flow_{suffix}", student, f"teacher_flow_{suffix}", teacher, 2)
        check_rank(f"mask_{suffix}", mask, 4)
        check_channels(f"mask_{suffix}", mask, 1)
        check_compatible(f"mask_{suffix}", mask, f"student_flow_{suffix}", student, axes=(0, 1, 2))
        return masked_mean(robust_penalty(teacher - student), mask)

    loss = term(student_flow_fw, teacher_flow_fw, mask_fw, "fw")
    if student_flow_bw is None:
        return loss
    return 0.5 * (loss + term(student_flow_bw, teacher_flow_bw, mask_bw, "bw"))
