"""Makes every name the gin files may use known to gin: import this module before parsing a gin
file (dflow_tf.train does).

Classes and functions of dflow_tf that gin configures carry `@gin.configurable` in their own
module (so that a call from Python, e.g. train_stage -> make_optimizer, reads the bindings); this
module imports each of those modules and registers the classes defined elsewhere:

  experiment    run_experiment (dflow_tf.training.experiment), train_stage (.trainer)
  models        TwoFramePWC, ThreeFramePWC, RAFT, RAFTSmall (dflow_tf.models, registered here)
  data          Augmentation, Photometric (dflow_tf.data.augment, registered here),
                CombinedSource (dflow_tf.data.sources), FootageSource (dflow_tf.data.footage),
                MixedSource (dflow_tf.data.mixture), RenderedMotion (dflow_tf.data.rendered_motion)
  tasks         UnsupervisedTask, SupervisedTask (dflow_tf.training), DistillationTask
                (dflow_tf.distillation.task)
  distillation  TeacherEnsemble, StudentTransforms (dflow_tf.distillation)
  training      make_optimizer, make_strategy (dflow_tf.training), CollapseMonitor
                (dflow_tf.training.collapse), LossSpikeMonitor (dflow_tf.training.loss_spike;
                both imported by .trainer)
"""
import gin

from dflow_tf import models
from dflow_tf.data import augment, footage, mixture, rendered_motion, sources  # noqa: F401  (the sources)
from dflow_tf.distillation import task, teachers, transforms  # noqa: F401  (the student's parts)
from dflow_tf.training import experiment, optimizer, strategy, supervised, unsupervised  # noqa: F401

gin.external_configurable(models.TwoFramePWC, module="dflow_tf.models")
gin.external_configurable(models.ThreeFramePWC, module="dflow_tf.models")
gin.external_configurable(models.RAFT, module="dflow_tf.models")
gin.external_configurable(models.RAFTSmall, module="dflow_tf.models")
gin.external_configurable(augment.Augmentation, module="dflow_tf.data")
gin.external_configurable(augment.Photometric, module="dflow_tf.data")
