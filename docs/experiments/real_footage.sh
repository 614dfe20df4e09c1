#!/bin/bash
# Reproduces docs/results/real_footage.md: an unsupervised teacher on synthetic_flow/large_motion,
# a supervised run beside it, the teacher continued on real clips, a student distilled on clips +
# scenes; then every model next to zero flow, Farneback and DIS on the real pairs, and the curves.
#
#   bash docs/experiments/real_footage.sh ../shared/realvideo ../shared/flowdata [runs/real_footage]
#
# One stage per process (a killed run: start the script again; finished stages are skipped and a
# killed stage resumes from its last checkpoint, every 50 steps). About 2.5 hours on 2 CPU cores.
set -euo pipefail
FOOTAGE=$(realpath "$1"); PAIRS=$(realpath "$2"); OUT=${3:-runs/real_footage}
COMMON=(--gin_param="EVAL_PAIRS='$PAIRS'" --output_dir="$OUT")
for stage in synthetic/teacher/photometric synthetic/teacher/census synthetic/supervised; do
  python -m dflow_tf.train --gin_file=docs/experiments/real_footage_synthetic.gin "${COMMON[@]}" \
    --gin_param="run_experiment.stages=['$stage']"
done
for stage in footage_teacher student; do
  python -m dflow_tf.train --gin_file=docs/experiments/real_footage_clips.gin "${COMMON[@]}" \
    --gin_param="FOOTAGE_DIR='$FOOTAGE'" --gin_param="SYNTHETIC_TEACHER='$OUT/synthetic/teacher/census'" \
    --gin_param="run_experiment.stages=['$stage']"
done
python docs/experiments/real_pairs_table.py "$PAIRS" "$OUT/synthetic/teacher/photometric" \
  "$OUT/synthetic/teacher/census" "$OUT/synthetic/supervised" "$OUT/footage_teacher" "$OUT/student" \
  --json "$OUT/real_pairs.json"
python docs/experiments/plot_curves.py "$OUT/curves.png" "$OUT/synthetic/teacher/photometric" \
  "$OUT/synthetic/teacher/census"
python docs/experiments/plot_curves.py "$OUT/curves_supervised.png" "$OUT/synthetic/supervised"
