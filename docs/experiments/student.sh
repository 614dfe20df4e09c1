#!/usr/bin/env bash
# The student stage of gin/distill.gin against existing teachers (the first also initialises the
# student), with extra gin bindings, evaluated on the synthetic validation split every 100 steps
# (OUT/student/eval_curve.jsonl). It pins the student settings of the experiments in
# docs/results/distillation_synthetic.md (learning rate 1e-4, 128x192 patches; gin/distill.gin's
# own student uses 4e-4 on 128x128 patches); bindings given as arguments override them. Used by
# distill_synthetic.sh and for ablations:
#
#   NAME=crop_superpixel bash docs/experiments/student.sh \
#       'StudentTransforms.geometric=False' 'StudentTransforms.appearance=False'
#   TEACHERS="runs/t1/census runs/t2/census" NAME=crop_only bash docs/experiments/student.sh \
#       'StudentTransforms.superpixel=False'
set -euo pipefail
cd "$(dirname "$0")/../.."
TEACHERS=${TEACHERS:-runs/teacher_evidence/census}
STEPS=${STEPS:-300}
OUT=${OUT:-runs/experiments/ablation_${NAME:?set NAME or OUT}}
teachers=""
for dir in $TEACHERS; do teachers="$teachers\"$dir\", "; done
first=$(echo $TEACHERS | cut -d' ' -f1)
params=()
for binding in "$@"; do params+=("--gin_param=$binding"); done
python -m dflow_tf.train --gin_file=gin/distill.gin --output_dir="$OUT" \
  --gin_param='run_experiment.stages=["student"]' \
  --gin_param="TeacherEnsemble.checkpoints=[${teachers%, }]" \
  --gin_param="student/train_stage.init_from=\"$first\"" \
  --gin_param="student/train_stage.num_steps=$STEPS" \
  --gin_param='student/train_stage.eval_every=100' \
  --gin_param='student/train_stage.eval_batches=13' \
  --gin_param='student/make_optimizer.learning_rate=1e-4' \
  --gin_param='StudentTransforms.crop_size=(128, 192)' ${params[@]+"${params[@]}"}
