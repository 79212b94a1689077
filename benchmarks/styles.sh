#!/usr/bin/env bash
# The README's table "The defaults, on data the project did not tune them on": the defaults,
# the defaults of before this round (frame differences, one body), two pathways with pathway
# dropout instead of per-pathway losses, and the tutorial's recipe on
# every built-in style, and the model.input ablation on the context style; one
# benchmarks/recipes.py row each (group split, 30/10/10 clips per class; val, test, train
# minutes, data minutes). Rows in the order they are needed most: if the run is cut short,
# the defaults and their comparison are already there.
#
#   bash benchmarks/styles.sh                 # all rows, about two and a half hours on 2 cores
#   bash benchmarks/styles.sh defaults        # the defaults and the defaults before this round
#
# The tutorial's recipe runs at 64x64 here: at its 224x224 one epoch costs about 15 times the
# defaults' (more pixels, 10 frames), about 75 minutes a style on this project's 2-core CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
WORK=${WORK:-/tmp/videoclf-recipes}  # data, frames and models, cached by their params
rows=${1:-all}
TUTORIAL=(-S frames.n_frames=10 -S frames.frame_step=15 -S frames.short_video=pad
          -S train.epochs=50 -S train.learning_rate=0.0001 -S train.lr_schedule=constant
          -S train.augment.flip=false -S train.augment.color=false
          -S model.input=rgb -S model.norm=layer -S train.precise_bn_batches=0)
BEFORE=(-S model.input=diff)
DROPOUT=(-S model.pathway_loss=0 -S model.pathway_dropout=0.25)  # two pathways, before the per-pathway losses
echo "| style | recipe | val | test | train min | data min | overrides |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for style in context object scene camera; do
  $PY benchmarks/recipes.py --work "$WORK" --style "$style" --name defaults
  $PY benchmarks/recipes.py --work "$WORK" --style "$style" --name "defaults before this round" "${BEFORE[@]}"
  $PY benchmarks/recipes.py --work "$WORK" --style "$style" --name "pathway dropout, no pathway losses" "${DROPOUT[@]}"
done
[ "$rows" = defaults ] && exit 0
for input in rgb rgb_diff; do
  $PY benchmarks/recipes.py --work "$WORK" --style context --name "model.input=$input" -S model.input=$input
done
for style in context object scene camera; do
  $PY benchmarks/recipes.py --work "$WORK" --style "$style" --name "tutorial recipe at 64x64" "${TUTORIAL[@]}"
done
