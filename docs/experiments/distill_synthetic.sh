#!/usr/bin/env bash
# Distillation experiment on the embedded synthetic_flow dataset (results: docs/results/distillation_synthetic.md).
#
# 1. teachers: gin/teacher.gin runs (photometric then census + occlusion), one per seed; a teacher
#    folder that already exists is reused (finished stages are skipped, killed ones resume);
# 2. student: the student stage of gin/distill.gin (student.sh), initialised from the first
#    teacher, with the ensemble of all teachers as annotators;
# 3. evaluation of every teacher and the student on the synthetic validation split and on the
#    real pairs of ../shared/flowdata (when present).
#
#   bash docs/experiments/distill_synthetic.sh                    # defaults below
#   TEACHER_SEEDS="1 2" STUDENT_STEPS=800 bash docs/experiments/distill_synthetic.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/experiments/distill_synthetic}
TEACHER_SEEDS=${TEACHER_SEEDS:-1}
TEACHER_DIRS=${TEACHER_DIRS:-}          # existing teacher experiment folders instead of training
STUDENT_STEPS=${STUDENT_STEPS:-500}
FLOWDATA=${FLOWDATA:-../shared/flowdata}
mkdir -p "$OUT"

if [ -z "$TEACHER_DIRS" ]; then
  for seed in $TEACHER_SEEDS; do
    python -m dflow_tf.train --gin_file=gin/teacher.gin --output_dir="$OUT/teacher_seed$seed" \
      --gin_param="train_stage.seed=$seed"
    TEACHER_DIRS="$TEACHER_DIRS $OUT/teacher_seed$seed"
  done
fi
teachers=""
for dir in $TEACHER_DIRS; do teachers="$teachers $dir/census"; done
OUT="$OUT/distill" TEACHERS="$teachers" STEPS="$STUDENT_STEPS" bash docs/experiments/student.sh

models="$(for d in $TEACHER_DIRS; do echo "$d/census"; done) $OUT/distill/student"
for model in $models; do
  name=$(echo "$model" | tr '/' '_')
  python -m dflow_tf.evaluate --checkpoint "$model" --dataset synthetic_flow --split validation \
    --out "$OUT/eval_${name}_synthetic.json" --quiet
  if [ -d "$FLOWDATA" ]; then
    for subset in sintel chairs kitti2015 middlebury; do
      python -m dflow_tf.evaluate --checkpoint "$model" --pairs "$FLOWDATA/$subset" \
        --out "$OUT/eval_${name}_${subset}.json" --quiet
    done
  fi
done
python docs/experiments/summarize.py "$OUT"
