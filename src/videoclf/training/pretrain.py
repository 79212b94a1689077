"""The pretrain stage's fit: the network of ``model.*`` on the self-supervised pretext set
(``data.pretext``), so that train can start from its body with a fresh classifier.

The fit is train's own (``train.train`` on the pretext set): resumable after a kill to the
same bytes, dvclive curves, precise BatchNorm, the best epoch restored. Its settings come
from the ``pretrain`` block alone (and ``model.*`` but ``init``), so a ``train.*`` change
never reruns it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..artifacts import PRETRAIN_INFO
from ..outputs import staged_dir, write_json
from ..params import AugmentParams, Params, PretrainParams, TrainParams


def pretext_train_params(p: PretrainParams) -> TrainParams:
    """How the pretext task is fitted: train's defaults with the pretrain block's numbers;
    flips and colour changes keep a clip's pace and direction, so both stay on."""
    return TrainParams(
        epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate, weight_decay=0.0,
        lr_schedule="cosine", seed=p.seed,
        augment=AugmentParams(flip=True, flip_pairs=(), color=True, crop_area=1.0), balance="none",
        mixed_precision="auto", jit_compile="auto", distribute="auto", precise_bn_batches=20,
        restore_best=True, early_stopping_patience=0, deterministic=True)


def write_off(out_dir: Path, live_dir: Path) -> None:
    """``pretrain.epochs: 0``: the outputs that say so (train then starts as before)."""
    with staged_dir(out_dir) as tmp:
        write_json(tmp / PRETRAIN_INFO, {"epochs": 0})
    with staged_dir(live_dir) as tmp:
        write_json(tmp / "metrics.json", {})


def fit_pretext(pretext_dir: Path, out_dir: Path, live_dir: Path, params: Params,
                report: dict) -> dict:
    """Fit the pretext set; write the model folder with ``pretrain.json`` (task, pool, fit)."""
    from .train import train  # TensorFlow loads here

    p = params.pretrain
    body = dataclasses.replace(params.model, init="")
    summary = train(pretext_dir, out_dir, live_dir, body, pretext_train_params(p),
                    clips_per_video=1)
    info = {"epochs": p.epochs, "task": p.task,
            "best_val_accuracy": summary["best_val_accuracy"], **report}
    write_json(Path(out_dir) / PRETRAIN_INFO, info)
    return info
