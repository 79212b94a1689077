"""The pretrain stage's fit: the network of ``model.*`` on the self-supervised pretext set
(``data.pretext``), so that train can start from its body with a fresh classifier.

The fit is train's own (``train.train`` on the pretext set): resumable after a kill to the
same bytes, dvclive curves, precise BatchNorm, the best epoch restored. Its settings come
from the ``pretrain`` block alone (``PretrainParams.as_train``; and ``model.*`` but
``init``), so a ``train.*`` change never reruns it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..artifacts import PoolReport, PretrainInfo, write_pretrain_info
from ..outputs import staged_dir, write_json
from ..params import Params


def write_off(out_dir: Path, live_dir: Path) -> None:
    """``pretrain.epochs: 0``: the outputs that say so (train then starts as before)."""
    with staged_dir(out_dir) as tmp:
        write_pretrain_info(tmp, PretrainInfo(epochs=0))
    with staged_dir(live_dir) as tmp:
        write_json(tmp / "metrics.json", {})


def fit_pretext(pretext_dir: Path, out_dir: Path, live_dir: Path, params: Params,
                report: PoolReport) -> PretrainInfo:
    """Fit the pretext set; write the model folder with ``pretrain.json`` (task, pool, fit)."""
    from .train import train  # TensorFlow loads here

    p = params.pretrain
    body = dataclasses.replace(params.model, init="")
    summary = train(pretext_dir, out_dir, live_dir, body, p.as_train(), clips_per_video=1)
    info = PretrainInfo(p.epochs, p.task, summary.best_val_accuracy, report)
    write_pretrain_info(out_dir, info)
    return info
