"""Classical flow (OpenCV) behind the models' contract: a known translation, the backward flow,
the name in load_model, and a classical teacher annotating a student inside a tf.function."""
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from dflow_tf.checkpoints import load_model
from dflow_tf.distillation.teachers import TeacherEnsemble
from dflow_tf.models.classical_flow import ClassicalFlowModel

SHIFT = (3, -2)  # (u, v) px: frame 2 shows frame 1's content 3 px right and 2 px up


def _translated_pair(height=128, width=192, shift=SHIFT, seed=0):
    """frames float [1, 2, H, W, 3] in [0, 1]: frame2(p + shift) = frame1(p), a smooth random
    texture cut from a larger canvas (no wrap-around)."""
    rng = np.random.default_rng(seed)
    canvas = scipy.ndimage.gaussian_filter(rng.uniform(size=(height + 20, width + 20, 3)), (1.5, 1.5, 0))
    canvas = (canvas - canvas.min()) / (canvas.max() - canvas.min())
    y, x = 10, 10
    first = canvas[y:y + height, x:x + width]
    second = canvas[y - shift[1]:y - shift[1] + height, x - shift[0]:x - shift[0] + width]
    return np.stack([first, second])[None].astype(np.float32)


@pytest.mark.parametrize("method", ["dis_medium", "farneback"])
def test_a_known_translation_forward_and_backward(method):
    model, description = load_model(f"classical:{method}")
    assert isinstance(model, ClassicalFlowModel) and method in description
    out = model.bidirectional(tf.constant(_translated_pair()))
    inner = (slice(None), slice(16, -16), slice(16, -16))
    forward, backward = out["forward"]["flow"].numpy()[inner], out["backward"]["flow"].numpy()[inner]
    np.testing.assert_allclose(np.median(forward.reshape(-1, 2), axis=0), SHIFT, atol=0.25)
    np.testing.assert_allclose(np.median(backward.reshape(-1, 2), axis=0), [-SHIFT[0], -SHIFT[1]], atol=0.25)


def test_an_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown classical flow method 'lucas'.*dis_medium, farneback"):
        load_model("classical:lucas")


def test_a_classical_teacher_annotates_in_a_graph(tmp_path):
    """TeacherEnsemble(["classical:dis_medium"]): the targets of the translated pair inside a
    tf.function (as in the training step): the shift where confident; the 3 columns whose
    content leaves the frame on the right marked not confident."""
    teachers = TeacherEnsemble(checkpoints=["classical:dis_medium"]).load(experiment_dir=str(tmp_path))
    targets = tf.function(teachers.annotate)(tf.constant(_translated_pair()))
    flow = targets["teacher_flow_fw"].numpy()[0]
    occluded = targets["teacher_occlusion_fw"].numpy()[0, ..., 0]
    assert flow.shape == (128, 192, 2) and flow.dtype == np.float32
    np.testing.assert_allclose(np.median(flow[16:-16, 16:-16].reshape(-1, 2), axis=0), SHIFT, atol=0.25)
    assert occluded[16:-16, 16:-16].mean() < 0.05
    assert occluded[16:-16, -SHIFT[0]:].mean() > 0.9
