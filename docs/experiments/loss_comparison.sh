#!/usr/bin/env bash
# Which supervised loss learns fastest from scratch: the same short run of gin/pretrain/rendered.gin
# (TwoFramePWC from random weights on rendered motion, bfloat16, one-cycle learning rate) with the
# three losses of SupervisedTask: "robust" (DDFlow's fine-tuning loss on the full-resolution flow),
# "epe" (mean endpoint error on the full-resolution flow) and "multiscale" (PWC-Net's loss on every
# level). Each run validates on the 64 rendered validation scenes every 100 steps
# (runs/<out>/<loss>/rendered/eval_curve.jsonl); docs/experiments/summarize_loss_comparison.py prints
# the table.
#
#   bash docs/experiments/loss_comparison.sh [steps] [output folder]
set -euo pipefail
steps=${1:-400}
out=${2:-runs/loss_comparison}
for loss in multiscale epe robust; do
  python -m dflow_tf.train --gin_file=gin/pretrain/rendered.gin \
    --output_dir="$out/$loss" \
    --gin_param="SupervisedTask.loss='$loss'" \
    --gin_param="train_stage.num_steps=$steps" \
    --gin_param="make_optimizer.total_steps=$steps" \
    --gin_param="make_optimizer.warmup_steps=50" \
    --gin_param="RenderedMotion.frame_size=(128, 192)" \
    --gin_param="RenderedMotion.max_translation=32.0" \
    --gin_param="train_stage.eval_every=100" \
    --gin_param="train_stage.checkpoint_every=100" \
    --gin_param="train_stage.image_every=0" \
    --gin_param="train_stage.max_minutes=None" \
    --gin_param="train_stage.state_dir=None"
done
