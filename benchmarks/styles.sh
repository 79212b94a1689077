#!/usr/bin/env bash
# The README's table "The defaults, on data the project did not tune them on": the defaults
# (two pathways, the appearance at 128x128 through ResNet's pooled stem, flipped test clips),
# the defaults before the two pathways (frame differences, one body, 64x64) and the tutorial's
# recipe on every built-in style; then last round's defaults (two pathways at 64x64) and the
# model.input ablation on the context style; one benchmarks/recipes.py row each (group split,
# 30/10/10 clips per class; val, test, train minutes, data minutes). Rows in the order they
# are needed most, scene first (make run's style, whose train-time ratio the issue bounds):
# if the run is cut short, the defaults and their comparison are already there. Rows run one
# after the other do not time the defaults against the diff network on this project's
# machines (their speed moves by up to 2x): benchmarks/epoch_cost.py does, in alternating rounds.
#
#   bash benchmarks/styles.sh                 # all rows, about three hours on 2 cores
#   bash benchmarks/styles.sh defaults        # the defaults and the diff network (8 rows, 1 h)
#
# The tutorial's recipe runs at 64x64 here: at its 224x224 one epoch costs about 15 times the
# 64x64 defaults' (more pixels, 10 frames), about 75 minutes a style on this project's 2-core CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
WORK=${WORK:-/tmp/videoclf-recipes}  # data, frames and models, cached by their params
rows=${1:-all}
AT64=(-S frames.height=64 -S frames.width=64 -S model.motion_scale=1)
TUTORIAL=("${AT64[@]}" -S frames.n_frames=10 -S frames.frame_step=15 -S frames.short_video=pad
          -S train.epochs=50 -S train.learning_rate=0.0001 -S train.lr_schedule=constant
          -S train.augment.flip=false -S train.augment.color=false
          -S model.input=rgb -S model.norm=layer -S train.precise_bn_batches=0)
LAST=("${AT64[@]}" -S model.appearance_filters=[16,32,64,128] -S model.appearance_stem_stride=1 -S model.appearance_stride=4
      -S evaluate.flip=false)
BEFORE=("${AT64[@]}" -S model.input=diff -S evaluate.flip=false)
echo "| style | recipe | val | test | train min | data min | overrides |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for style in scene context object camera; do
  $PY benchmarks/recipes.py --work "$WORK" --style "$style" --name defaults
  $PY benchmarks/recipes.py --work "$WORK" --style "$style" --name "before two pathways (diff, 64x64)" "${BEFORE[@]}"
done
[ "$rows" = defaults ] && exit 0
for style in scene context object camera; do
  $PY benchmarks/recipes.py --work "$WORK" --style "$style" --name "tutorial recipe at 64x64" "${TUTORIAL[@]}"
done
for style in context object scene camera; do
  $PY benchmarks/recipes.py --work "$WORK" --style "$style" --name "last round's defaults (64x64)" "${LAST[@]}"
done
for input in rgb rgb_diff; do
  $PY benchmarks/recipes.py --work "$WORK" --style context --name "model.input=$input (64x64)" "${AT64[@]}" -S model.input=$input -S evaluate.flip=false
done
