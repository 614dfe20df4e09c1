#!/usr/bin/env bash
# One ablation of the student transformations: the student stage of gin/distill.gin with extra
# bindings, against an existing teacher, evaluated on the synthetic validation split.
#
#   NAME=crop_superpixel bash docs/experiments/ablation.sh \
#       'StudentTransforms.geometric=False' 'StudentTransforms.appearance=False'
set -euo pipefail
cd "$(dirname "$0")/../.."
NAME=${NAME:?set NAME}
TEACHER=${TEACHER:-runs/teacher_evidence/census}
STEPS=${STEPS:-300}
OUT=${OUT:-runs/experiments/ablation_$NAME}
params=()
for binding in "$@"; do params+=("--gin_param=$binding"); done
python -m dflow_tf.train --gin_file=gin/distill.gin --output_dir="$OUT" \
  --gin_param='run_experiment.stages=["student"]' \
  --gin_param="TeacherEnsemble.checkpoints=[\"$TEACHER\"]" \
  --gin_param="student/train_stage.init_from=\"$TEACHER\"" \
  --gin_param="student/train_stage.num_steps=$STEPS" \
  --gin_param='student/train_stage.eval_every=100' \
  --gin_param='student/train_stage.eval_batches=13' "${params[@]}"
