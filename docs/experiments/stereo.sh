#!/usr/bin/env bash
# The stereo results of docs/results/stereo.md: the stereo main job (gin/stereo.gin: two
# teachers and a student on synthetic_stereo, evaluated on its validation pairs and on
# scikit-image's Motorcycle pair), timed, then OpenCV StereoSGBM on the same pairs and the
# tables (docs/experiments/stereo_baseline.py), plus the real pairs of ../shared/flowdata/stereo
# when present.
#
#   bash docs/experiments/stereo.sh            # OUT=runs/stereo
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/stereo}
STEREO=${STEREO:-../shared/flowdata/stereo}
mkdir -p "$OUT"
start=$(date +%s)
python -m dflow_tf.train --gin_file=gin/stereo.gin --output_dir="$OUT" | tee "$OUT/train.log"
echo "wall time of the main job: $(( $(date +%s) - start )) s" | tee -a "$OUT/train.log"
extra=()
if [ -d "$STEREO" ]; then extra=(--stereo "$STEREO"); fi
python docs/experiments/stereo_baseline.py --run "$OUT" ${extra[@]+"${extra[@]}"} | tee "$OUT/tables.md"
