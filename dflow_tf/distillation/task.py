"""The student's objective (docs/method.md §3.8): census loss on its own confident pixels plus
distillation from the teachers where the teachers are confident and the student is not."""
import os

import gin
import tensorflow as tf

from dflow_tf import losses, ops
from dflow_tf.data import schema
from dflow_tf.data.frame_windows import reference_index, training_window
from dflow_tf.losses.sequence import SEQUENCE_DECAY, sequence_loss
from dflow_tf.ops.occlusion import OCCLUSION_ALPHA1, OCCLUSION_ALPHA2
from dflow_tf.training.flows import ITERATIONS_KEY, centre_pair_flows, has_iterations
from dflow_tf.training.unsupervised import flow_magnitude

DISTILLED_PIXELS = ("student_occluded", "teacher_confident")


@gin.configurable
class DistillationTask:
    """Trains a student on transformed inputs against teacher annotations (a
    dflow_tf.training.task.Task).

    Per step: teacher targets for the window's reference pair (a, a+1) come from the frozen
    `teachers` on the clean large crop (online mode) or from the batch (precomputed mode), both
    under the keys schema.TEACHER_KEYS; `transforms` (StudentTransforms) derive the student's input and transform the
    targets alike; then

      loss = census(student, mask 1 - O_s, noised correspondences excluded)
             + distillation_weight * 0.5 * [psi(w_t,fw - w_s,fw) M_fw + psi(w_t,bw - w_s,bw) M_bw],
      M = clip(O_s - O_t, 0, 1), extended by the noised region where the teacher is confident
          (pixels="student_occluded", DDFlow's and SelFlow's code), or
      M = 1 - O_t, every pixel where the teacher is confident (pixels="teacher_confident").

    Args:
      teachers: a TeacherEnsemble (online mode), or None when the batches carry precomputed
        targets.
      transforms: a StudentTransforms (None: the student sees the teacher's input unchanged).
      distillation_weight: lambda (1 in DDFlow / SelFlow).
      pixels: where the student learns from the teachers. "student_occluded" (DDFlow's and
        SelFlow's code) suits a student initialised from a teacher: it already agrees with the
        teachers where it is confident, and learns the pixels its transformed view occludes.
        "teacher_confident" (the paper's wording: the student learns occluded as well as
        non-occluded pixels from the confident predictions) suits a student that starts from
        random weights, e.g. one of another network family, which agrees with no teacher yet and
        whose own occlusion check is meaningless at first.
      alpha1, alpha2: constants of the student's forward-backward check (docs/method.md §2.4).
      window: frames per training window; None = 5 if the student or a teacher has three
        frames, else 2.
      sequence_decay: for a student that returns every iteration's flow (the RAFT family), the
        whole objective (its own occlusion check included) is applied to each iteration
        k = 0 .. T-1 against the same teacher targets and weighted by sequence_decay^(T-1-k)
        (`dflow_tf.losses.sequence_loss`); 0 or None = the final flow only. Students without
        iterations (the PWC family) have the one flow. Teachers of any family give their final
        flow ("flow").
    """

    def __init__(self, teachers=None, transforms=None, distillation_weight=1.0, alpha1=OCCLUSION_ALPHA1,
                 alpha2=OCCLUSION_ALPHA2, window=None, sequence_decay=SEQUENCE_DECAY, pixels="student_occluded"):
        if pixels not in DISTILLED_PIXELS:
            raise ValueError(f"DistillationTask.pixels must be one of {DISTILLED_PIXELS}, got {pixels!r}")
        self.pixels = pixels
        self.teachers = teachers
        self.transforms = transforms
        self.distillation_weight = distillation_weight
        self.alpha1 = alpha1
        self.alpha2 = alpha2
        self.window = window
        self.sequence_decay = sequence_decay

    def setup(self, experiment_dir=None):
        """Loads the teachers (called by train_stage inside the distribution strategy's scope)."""
        if self.teachers is not None:
            self.teachers.load(experiment_dir)

    def num_frames(self, model):
        """The window: `window`, else the longer training window of the student and the teachers."""
        if self.window:
            return self.window
        teachers = self.teachers.num_frames if self.teachers is not None else 0
        return max(training_window(model.num_frames), teachers)

    def extra_evaluations(self, evaluate, experiment_dir=None):
        """{"teacher <path>": metrics} of the teachers that the experiment in `experiment_dir` did
        not train (given as checkpoints from elsewhere), so that its table compares the student
        with every teacher. `evaluate(model)` evaluates on the stage's validation split."""
        if self.teachers is None:
            return {}
        return {f"teacher {os.path.relpath(path)}": evaluate(model)
                for path, model in self.teachers.members_outside(experiment_dir)}

    def targets(self, batch):
        """Teacher flows and occlusions of the reference pair (schema.TEACHER_KEYS): from the batch,
        else the teachers."""
        if all(key in batch for key in schema.TEACHER_KEYS):
            return {key: tf.cast(batch[key], tf.float32) for key in schema.TEACHER_KEYS}
        if self.teachers is None:
            raise ValueError("DistillationTask has no teachers and the batch carries no precomputed targets "
                             f"(keys {schema.TEACHER_KEYS}); bind DistillationTask.teachers or use a precomputed "
                             "dataset")
        return self.teachers.annotate(tf.cast(batch["frames"], tf.float32))

    def prepare(self, batch):
        """Teacher targets and the student's input (StudentTransforms.apply's keys); runs outside
        the gradient tape."""
        frames = tf.cast(batch["frames"], tf.float32)
        targets = self.targets(batch)
        if self.transforms is not None:
            prepared = self.transforms.apply(frames, targets, batch["seed"], pair_index=reference_index(
                int(frames.shape[1])))
        else:
            zeros = tf.zeros_like(frames[:, 0, :, :, :1])
            prepared = {"frames": frames, **targets, "noise_mask_fw": zeros, "noise_mask_bw": zeros,
                        "inside": 1.0 - zeros}
        return {key: tf.stop_gradient(value) for key, value in prepared.items()}

    def compute_loss(self, model, batch):
        """Returns (loss, scalars, pictures) for a batch that went through `prepare`; with
        iterations, the scalars and pictures are the final iteration's."""
        if not (self.sequence_decay and has_iterations(model)):
            return self.flows_loss(batch, *centre_pair_flows(model, batch["frames"]))
        flows = centre_pair_flows(model, batch["frames"], key=ITERATIONS_KEY)
        loss, (_, scalars, pictures) = sequence_loss(lambda fw, bw: self.flows_loss(batch, fw, bw), list(flows),
                                                     self.sequence_decay)
        return loss, scalars, pictures

    def flows_loss(self, batch, flow_fw, flow_bw):
        """(loss, scalars, pictures) of the student's flows [B, H, W, 2] of the reference pair
        (forward a -> a+1, backward a+1 -> a) on a batch that went through `prepare`."""
        frames = batch["frames"]
        a = reference_index(int(frames.shape[1]))
        flow_fw, flow_bw = tf.cast(flow_fw, tf.float32), tf.cast(flow_bw, tf.float32)
        occ_fw = ops.forward_backward_occlusion(flow_fw, flow_bw, self.alpha1, self.alpha2)
        occ_bw = ops.forward_backward_occlusion(flow_bw, flow_fw, self.alpha1, self.alpha2)
        # The student's own loss skips noised correspondences and pixels that the geometric
        # transform filled from outside the source image (black).
        census = losses.census_loss(frames[:, a], frames[:, a + 1], flow_fw, flow_bw, occ_fw, occ_bw,
                                    mask_fw=(1.0 - batch["noise_mask_fw"]) * batch["inside"],
                                    mask_bw=(1.0 - batch["noise_mask_bw"]) * batch["inside"])
        # "teacher_confident": the student counts as occluded everywhere, so M = 1 - O_t.
        learn_fw, learn_bw = (occ_fw, occ_bw) if self.pixels == "student_occluded" else (
            tf.ones_like(occ_fw), tf.ones_like(occ_bw))
        mask_fw = losses.distillation_mask(learn_fw, batch[schema.TEACHER_OCCLUSION_FW], extra=batch["noise_mask_fw"])
        mask_bw = losses.distillation_mask(learn_bw, batch[schema.TEACHER_OCCLUSION_BW], extra=batch["noise_mask_bw"])
        distill = losses.distillation_loss(flow_fw, batch[schema.TEACHER_FLOW_FW], mask_fw,
                                           flow_bw, batch[schema.TEACHER_FLOW_BW], mask_bw)
        loss = census + self.distillation_weight * distill
        scalars = {
            "loss/census": census,
            "loss/distillation": distill,
            "occlusion_ratio/student": tf.reduce_mean(occ_fw),
            "occlusion_ratio/teacher": tf.reduce_mean(batch[schema.TEACHER_OCCLUSION_FW]),
            "distillation_mask_ratio": tf.reduce_mean(mask_fw),
            "flow_magnitude": 0.5 * (flow_magnitude(flow_fw) + flow_magnitude(flow_bw)),
        }
        pictures = {"frame": frames[:, a], "flow_student": flow_fw, "flow_teacher": batch[schema.TEACHER_FLOW_FW],
                    "occlusion_student": occ_fw, "occlusion_teacher": batch[schema.TEACHER_OCCLUSION_FW],
                    "distillation_mask": mask_fw}
        return loss, scalars, pictures
