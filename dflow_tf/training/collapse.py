"""Notices a stage whose predicted flow collapsed towards zero while its data term did not improve.

    monitor = CollapseMonitor(stage="teacher_a/census", suspects=likely_bindings(task))
    for each step: message = monitor.update(step, scalars, learning_rate)   # a line, or None

An unsupervised objective has a trivial fixed point: zero flow is perfectly forward-backward
consistent and, where the check marks little as occluded, costs only the data term of the
unwarped frames. A weak teacher pulled there (e.g. by the forward-backward
consistency term) ends with zero flow's validation numbers and no other sign. The monitor reads
two per-step scalars that the task logs: `flow_magnitude` (mean |flow| in px of the predicted
flows) and its data term (`loss/photometric` or `loss/census`, the first present). The start
magnitude is their mean over the first `start_steps` steps of the run (a collapse can take most
of the flow within ten steps: teacher B's census phase of gin/stereo.gin, 2026-12-03, commit
d850495, had 10-step means of 0.287, 0.075 and 0.029 px, and 0.0025 px at its step 120), the
start data term the mean over the first `window` steps (it
needs more steps to average out the batches); the latest values are means over the latest
`window` steps. Once `min_steps` steps are in, the flow has collapsed when

    start magnitude >= min_start_magnitude                  (the stage started with motion)
    latest magnitude < fraction * start magnitude            (most of it is gone)
    latest data term >= (1 - error_tolerance) * start's      (and the frames did not match better)

and `update` returns one line naming the stage, the step, both numbers and `suspects` (the
bindings most likely responsible, `likely_bindings`), once per run.

Not judged: stages whose task logs no `flow_magnitude` (SupervisedTask: its ground truth is the
judge); stages that start with less than `min_start_magnitude` of flow (e.g. from a teacher that
already sits at zero flow); and, by the trainer, stages whose model starts from random weights.
A random PWC-Net's first flows are noise that the photometric loss shrinks before motion appears
(teacher A's photometric phase of gin/stereo.gin, 2026-12-03, commit c91966b: mean |flow| 1.60 px
over steps 1-10, 0.63 px over steps 21-30, 2.05 px over steps 91-100), so their start is no
reference. Steps with a non-finite scalar are left out. A resumed stage starts the monitor afresh
at its resumed step. The trainer stops the stage (TrainingCollapsed) or only prints the line, by
`train_stage.on_collapse`.
"""
import collections
import math

import gin

MAGNITUDE_KEY = "flow_magnitude"
ERROR_KEYS = ("loss/photometric", "loss/census")
ON_COLLAPSE = ("stop", "warn", "off")


class TrainingCollapsed(RuntimeError):
    """Raised by a stage whose flow collapsed (CollapseMonitor) when `train_stage.on_collapse` is
    "stop"."""


@gin.configurable(denylist=["stage", "suspects"])
class CollapseMonitor:
    """Fed each step's scalars; returns a one-line message when the flow collapsed (module
    docstring), else None.

    Args:
      stage: the stage's name, for the message.
      suspects: "binding=value" strings most likely responsible (`likely_bindings`).
      start_steps: first steps of the run whose mean |flow| is the start magnitude.
      window: steps averaged for the start data term and for the latest values.
      min_steps: steps of the run before the first judgement (at least 2 * window, so that the
        latest window does not overlap the start).
      fraction: the latest mean |flow| below this fraction of the start's is a collapse...
      min_start_magnitude: ...if the start's was at least this many px (lower: a stage that
        starts without motion, not judged)...
      error_tolerance: ...and the data term did not fall by more than this fraction of the
        start's.
    """

    def __init__(self, stage="", suspects=(), start_steps=3, window=20, min_steps=40, fraction=0.2,
                 min_start_magnitude=0.25, error_tolerance=0.05):
        if not 1 <= start_steps <= window or min_steps < 2 * window:
            raise ValueError(f"CollapseMonitor needs 1 <= start_steps <= window and min_steps >= 2 * window, got "
                             f"start_steps={start_steps}, window={window}, min_steps={min_steps}")
        self.stage = stage
        self.start_steps = int(start_steps)
        self.suspects = list(suspects)
        self.window = int(window)
        self.min_steps = int(min_steps)
        self.fraction = fraction
        self.min_start_magnitude = min_start_magnitude
        self.error_tolerance = error_tolerance
        self.error_key = None
        self.start = []  # (magnitude, error) of the first `window` steps
        self.latest = collections.deque(maxlen=self.window)
        self.seen = 0
        self.fired = False

    def update(self, step, scalars, learning_rate=None):
        """Feeds the scalars of `step` ({name: float}); returns the collapse message the first time
        the rule holds, else None. `learning_rate` (the current one) is named in the message."""
        if self.fired or MAGNITUDE_KEY not in scalars:
            return None
        if self.error_key is None:
            self.error_key = next((key for key in ERROR_KEYS if key in scalars), None)
        if self.error_key is None or self.error_key not in scalars:
            return None
        values = (float(scalars[MAGNITUDE_KEY]), float(scalars[self.error_key]))
        if not all(math.isfinite(v) for v in values):
            return None
        self.seen += 1
        if len(self.start) < self.window:
            self.start.append(values)
        self.latest.append(values)
        if self.seen < self.min_steps:
            return None
        start_magnitude, start_error = _means(self.start[:self.start_steps])[0], _means(self.start)[1]
        magnitude, error = _means(self.latest)
        if (start_magnitude < self.min_start_magnitude or magnitude >= self.fraction * start_magnitude
                or error < (1.0 - self.error_tolerance) * start_error):
            return None
        self.fired = True
        suspects = self.suspects + ([f"make_optimizer.learning_rate (now {learning_rate:.2g})"]
                                    if learning_rate is not None else [])
        return (f"[{self.stage}] step {step}: the flow collapsed: mean |flow| {magnitude:.3g} px over the last "
                f"{self.window} steps against {start_magnitude:.3g} px over the first {self.start_steps} of this "
                f"run, "
                f"while {self.error_key} did not fall ({start_error:.4g} -> {error:.4g}); most likely "
                f"responsible: {', '.join(suspects) or 'the task'}")


def _means(pairs):
    n = float(len(pairs))
    return sum(p[0] for p in pairs) / n, sum(p[1] for p in pairs) / n


def likely_bindings(task):
    """The bindings of `task` that most often pull a flow to zero, as "Class.name=value" strings,
    most likely first: the forward-backward consistency weight, the occlusion check's alpha2 (a
    loose check passes small inconsistent flows), the teachers a student follows (zero-flow
    teachers make a zero-flow student) and the distillation weight. The learning rate is added
    by CollapseMonitor.update."""
    name = type(task).__name__
    suspects = []
    consistency = getattr(task, "consistency_weight", 0.0)
    if consistency:
        suspects.append(f"{name}.consistency_weight={consistency:g}")
    teachers = getattr(task, "teachers", None)
    if teachers is not None and getattr(teachers, "checkpoints", None):
        suspects.append(f"TeacherEnsemble.checkpoints={list(teachers.checkpoints)} (teachers at zero flow?)")
    if getattr(task, "distillation_weight", None) is not None:
        suspects.append(f"{name}.distillation_weight={task.distillation_weight:g}")
    if (consistency or getattr(task, "occlusion", False) or teachers is not None) and hasattr(task, "alpha2"):
        suspects.append(f"{name}.alpha2={task.alpha2:g} (occlusion check)")
    return suspects
