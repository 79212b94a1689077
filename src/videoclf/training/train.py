"""The train stage: the network fitted on the train split with validation, resumable after
any interruption, and saved atomically with what inference needs beside it.

``train`` runs its parts in this order (the order of every random draw, so of the weights):
runtime, inputs, resume point, network, callbacks, fit, finish.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._tf import keras, tf
from ..artifacts import (
    FRAMES_META,
    INDEX,
    TRAIN_BACKUP,
    ModelInfo,
    TrainSummary,
    WeightsInfo,
    read_index,
    read_weights,
    write_train_info,
)
from ..closure import module_closure
from ..errors import VideoclfError
from ..outputs import staged_dir, write_json
from ..params import ModelParams, TrainParams, as_dict
from ..video import Sampling
from .backbones.applications import backbone_of
from .backbones.weights import load_into
from .callbacks import Checkpoint, Throughput
from .features import read_features
from .inputs import Stream, class_balance, make_dataset, mirror_labels, steps
from .keras_compat import multi_worker_fit
from .modelio import save_model_dir
from .network import (
    architecture,
    build_model,
    head_from_features,
    is_classifier,
    pathway_loss,
    with_pathway_heads,
)
from .precise_bn import PreciseBatchNorm
from .runtime import Runtime, configure_runtime

log = logging.getLogger(__name__)


class TrainError(VideoclfError):
    """Training cannot run as the params ask on this machine."""


def backup_key(frames_dir: Path, model_params: ModelParams, train_params: TrainParams,
               start: Path | None = None, more: Sequence[Path] = ()) -> str:
    """Everything that decides the training run: the clips (every byte of the shards, not
    only their index: other pixels under the same names are other data), the params, the
    model it starts from (``start``: its bytes), ``more`` files it reads (a backbone's
    weights, cached features) and the code the train stage runs (the import closure that
    ``dvc.yaml`` lists as its deps). Hashing the shards reads them once (about 1 GB/s)."""
    h = hashlib.sha256(json.dumps([as_dict(model_params), as_dict(train_params)],
                                  sort_keys=True).encode())
    code = sorted(module_closure(["videoclf.stage", __name__]))
    shards = sorted(Path(frames_dir).glob("*.npy"))
    starts = [Path(start)] if start else []
    for f in [Path(frames_dir) / INDEX, Path(frames_dir) / FRAMES_META, *shards, *starts,
              *map(Path, more), *code]:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()[:16]


def _check_init(init: str, model_dir: Path) -> None:
    """``model.init`` must not be this stage's own output: DVC removes a stage's outputs
    before it runs, so the file is gone (or, outside DVC, about to be replaced)."""
    if init and Path(init).resolve().parent == Path(model_dir).resolve():
        raise TrainError(f"model.init: {init} is inside this stage's output folder {model_dir}, "
                         "which DVC removes before train runs; copy the model elsewhere first "
                         f"(cp {init} models/start.keras) and point model.init there")


def warm_start(model: keras.Model, init: Path, head: bool = True) -> str:
    """Copy the weights of an earlier run's ``.keras`` model into ``model``, layer by layer.

    The network must be the same (same layers, same weight shapes); only the classification
    layer may differ in its number of classes, and then it stays freshly initialised (fine-
    tuning to new classes), as it does with ``head=False`` (a pretext task's classifier
    says nothing about the classes). Returns what was copied, for the caller's log line.
    """
    from .modelio import load_keras

    old = load_keras(init)
    if architecture(model, classes=False) != architecture(old, classes=False):
        raise TrainError(f"model.init: {init} is not this network (other filters, frame size, "
                         "model.input, model.norm, model.fusion or model.appearance_stride); "
                         "only the number of classes may differ")
    body = lambda m: [la for la in m.layers if la.weights and not is_classifier(la)]
    heads = lambda m: [la for la in m.layers if is_classifier(la)]
    for a, b in zip(body(model), body(old)):
        a.set_weights(b.get_weights())
    shapes = lambda layer: [tuple(w.shape) for w in layer.weights]
    new_heads, old_heads = heads(model), heads(old)
    if head and [shapes(h) for h in new_heads] == [shapes(h) for h in old_heads]:
        for a, b in zip(new_heads, old_heads):
            a.set_weights(b.get_weights())
        return "all layers"
    return (f"all layers but the classifier: "
            f"{old_heads[0].weights[-1].shape[0]} -> {new_heads[0].weights[-1].shape[0]} classes")


def _live(live_dir: Path, resume_from: int | None = None):
    """dvclive writing into ``live_dir``; with ``resume_from``, continued at that epoch: rows
    it wrote for later epochs (an epoch whose checkpoint the kill interrupted) are dropped,
    so every row appears once."""
    from dvclive import Live

    if resume_from is not None:
        for tsv in (live_dir / "plots").rglob("*.tsv"):
            lines = tsv.read_text().splitlines(keepends=True)
            tsv.write_text("".join(lines[:1] + [r for r in lines[1:]
                                                if int(r.split("\t", 1)[0]) < resume_from]))
    # dvc.yaml is hand-written; dvclive only writes metrics and plots.
    live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None,
                resume=resume_from is not None)
    if resume_from is not None:
        live.step = resume_from
    return live


@dataclass(frozen=True)
class _Backbone:
    """Where an image backbone starts (``model.appearance_backbone``): the weights stage's
    record and file (None: random weights), and the features stage's folder when train fits
    on cached features (None: on pixels). For the (2+1)D body: nothing."""

    info: WeightsInfo | None = None
    weights: Path | None = None
    features: Path | None = None

    @classmethod
    def read(cls, weights_dir: Path | None, features_dir: Path | None,
             model_params: ModelParams, train_params: TrainParams) -> _Backbone:
        if weights_dir is None:
            return cls()
        info, weights = read_weights(weights_dir)
        asked = (model_params.appearance_backbone, model_params.appearance_weights)
        if (info.backbone, info.source) != asked:
            raise TrainError(f"{weights_dir}: weights of {info.backbone} from {info.source}, "
                             f"but params ask {asked[0]} from {asked[1]} (rerun the weights "
                             "stage: dvc repro weights)")
        features = None
        if features_dir is not None:
            cached = read_features(features_dir, model_params, train_params, info.sha256)
            features = Path(features_dir) if cached.cached else None
        return cls(info, weights, features)

    @property
    def files(self) -> list[Path]:
        """What training reads of these, for ``backup_key``."""
        return ([self.weights] if self.weights else []) + (
            sorted(self.features.iterdir()) if self.features else [])


def _start_backbone(model: keras.Model, model_params: ModelParams, train_params: TrainParams,
                    start: _Backbone, warm: bool) -> None:
    """The image backbone's weights from the weights stage's file (unless a warm start
    gave every layer's), then frozen with ``train.freeze_backbone``."""
    backbone = backbone_of(model)
    if backbone is None:
        return
    name = model_params.appearance_backbone
    if start.weights is not None and start.info is not None and not warm:
        load_into(backbone, start.weights, name)
        log.info("train: %s from %s (%s, SHA-256 %s)", name, start.info.source,
                 start.info.file, (start.info.sha256 or "")[:12])
    if train_params.freeze_backbone:
        backbone.trainable = False
        log.info("train: %s frozen%s", name, "; fitting what follows its cached features"
                 if start.features else "")


@dataclass
class _Inputs:
    """What train reads from the frames folder, as tf.data datasets."""

    index: pd.DataFrame
    classes: list[str]
    sampling: Sampling
    global_batch: int
    per_epoch: int
    train: tf.data.Dataset
    val: tf.data.Dataset
    precise: tf.data.Dataset | None  # batches of precise BatchNorm (None: off)

    @property
    def n_train(self) -> int:
        return int(self.index[self.index.split == "train"].video.nunique())

    @property
    def n_val(self) -> int:
        return int((self.index.split == "val").sum())


def _resume_point(backup_dir: Path, epochs: int) -> tuple[tuple[Path, dict] | None, int]:
    """The checkpoint of an interrupted run with these exact inputs, and the first epoch."""
    latest = Checkpoint.latest(backup_dir)
    if not latest:
        return None, 0
    log.info("train: resuming after epoch %d of %d from %s", latest[1]["epoch"] + 1, epochs,
             latest[0])
    return latest, epochs if latest[1]["stopped"] else latest[1]["epoch"] + 1


def _flip_pairs(classes: list[str], mirror: list[int], train_params: TrainParams,
                flip_test: bool) -> tuple[tuple[str, str], ...] | None:
    """What the model folder records for test-time flips (``evaluate.flip``): the pairs a
    mirror swaps, or None where the model was not trained on mirrored clips (a model that
    never saw one is not scored on one)."""
    if not (flip_test and train_params.augment.flip):
        return None
    return tuple((classes[i], classes[j]) for i, j in enumerate(mirror) if i < j)


def _mirror(classes: list[str], train_params: TrainParams) -> list[int]:
    augment = train_params.augment
    try:
        mirror, ignored = mirror_labels(classes, augment.flip_pairs)
    except ValueError as e:
        raise TrainError(str(e)) from None
    if augment.flip:
        swapped = [f"{classes[i]}<->{classes[j]}" for i, j in enumerate(mirror) if i < j]
        log.info("train: flip on; labels swap when mirrored: %s%s", ", ".join(swapped) or "none",
                 f" (pairs naming no class here, ignored: {', '.join(ignored)})" if ignored
                 else "")
    if augment.color:
        log.info("train: colour changes on (random channel order and negative per clip)")
    if augment.crop_area < 1:
        log.info("train: random crops of %.0f-100%% of the frame's area, resized back",
                 100 * augment.crop_area)
    return mirror


def _inputs(frames_dir: Path, index: pd.DataFrame, meta: dict, train_params: TrainParams,
            global_batch: int, first_epoch: int, mirror: list[int],
            features: Path | None = None, pixels: bool = True) -> _Inputs:
    """The datasets fit reads; ``features`` (cached by the features stage): each clip's
    appearance features after its pixels, or in their place with ``pixels=False``."""
    epochs, augment = train_params.epochs, train_params.augment
    read: dict[str, Any] = dict(features_dir=features, pixels=pixels)
    repeat, weights = class_balance(index, train_params.balance)
    if repeat is not None:
        log.info("train: balance %s: each class's videos used %d-%d times an epoch",
                 train_params.balance, min(repeat), max(repeat))
    elif weights is not None:
        log.info("train: balance weight: loss weights %.2f-%.2f by class",
                 min(w for w in weights if w), max(weights))
    per_epoch = steps(index, "train", global_batch, repeat)
    stream = Stream(train_params.seed, augment.flip, augment.color, augment.crop_area,
                    first_epoch=min(first_epoch, epochs - 1),
                    epochs=max(1, epochs - first_epoch), mirror=mirror, repeat=repeat,
                    weights=weights)
    train_ds = make_dataset(frames_dir, index, "train", batch_size=global_batch, stream=stream,
                            **read)
    val_ds = make_dataset(frames_dir, index, "val", batch_size=global_batch, stream=None,
                          **read)
    # The batches BatchNorm's statistics are recomputed on before each validation: the first
    # training clips in epoch 0's order, unaugmented as inference sees clips; the same every
    # epoch and every run.
    n_precise = min(train_params.precise_bn_batches, steps(index, "train", global_batch))
    precise_ds = make_dataset(frames_dir, index, "train", batch_size=global_batch,
                              stream=Stream.plain(train_params.seed), **read).take(n_precise)
    return _Inputs(index, meta["classes"], Sampling(**meta["sampling"]), global_batch,
                   per_epoch, train_ds, val_ds, precise_ds if n_precise else None)


def optimizer(lr: Any, weight_decay: float) -> keras.optimizers.Optimizer:
    """Adam, or AdamW (Loshchilov & Hutter: the decay decoupled from the gradient's scale)
    with ``train.weight_decay`` > 0."""
    if weight_decay:
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay)
    return keras.optimizers.Adam(learning_rate=lr)


def _network(rt: Runtime, data: _Inputs, model_params: ModelParams,
             train_params: TrainParams, pretrained: Path | None, start: _Backbone
             ) -> tuple[keras.Model, keras.Model]:
    """The network to save and the one ``fit`` trains: the same one, or (``model.pathway_loss``
    on a two-pathway network) the same layers with a classifier on each pathway; on cached
    features (``start.features``), what of it follows the frozen backbone."""
    lr: Any = train_params.learning_rate
    if train_params.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, data.per_epoch * train_params.epochs))
    with rt.strategy.scope():
        model = build_model(model_params, data.sampling, len(data.classes))
        if model_params.init:
            copied = warm_start(model, Path(model_params.init))
            log.info("train: warm start from %s (%s)", model_params.init, copied)
        elif pretrained:
            warm_start(model, pretrained, head=False)
            log.info("train: pretrained body from %s (classifier fresh)", pretrained)
        _start_backbone(model, model_params, train_params, start,
                        warm=bool(model_params.init or pretrained))
        fitted = model
        loss: Any = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metric: Any = "accuracy"
        if model_params.pathway_loss and model_params.input == "two_pathway":
            fitted = with_pathway_heads(model)
            loss, metric = pathway_loss(len(data.classes), model_params.pathway_loss)
            log.info("train: a classifier on each pathway too, loss weight %g (val_loss "
                     "includes theirs)", model_params.pathway_loss)
        if start.features is not None:
            fitted = head_from_features(fitted)
        fitted.compile(optimizer=optimizer(lr, train_params.weight_decay), loss=loss,
                       metrics=[metric], jit_compile=rt.jit_compile)
    return model, fitted


@dataclass
class _Callbacks:
    stopper: keras.callbacks.EarlyStopping
    checkpoint: Checkpoint
    throughput: Throughput
    live: Any           # dvclive.Live
    live_tmp: Path
    keras: list         # in the order fit calls them

    @classmethod
    def make(cls, data: _Inputs, train_params: TrainParams, backup_dir: Path, live_dir: Path,
             latest: tuple[Path, dict] | None, first_epoch: int) -> _Callbacks:
        from dvclive.keras import DVCLiveCallback

        epochs = train_params.epochs
        stopper = keras.callbacks.EarlyStopping(
            monitor=train_params.monitor, patience=train_params.patience or epochs + 1,
            restore_best_weights=train_params.restore_best)
        checkpoint = Checkpoint(backup_dir, stopper)
        if latest:
            checkpoint.resume_from(*latest)
        live_tmp = live_dir.with_name(f".{live_dir.name}.tmp")
        shutil.rmtree(live_dir, ignore_errors=True)
        resume_live = bool(latest) and live_tmp.is_dir()
        if not resume_live:
            shutil.rmtree(live_tmp, ignore_errors=True)
        live = _live(live_tmp, resume_from=first_epoch if resume_live else None)
        throughput = Throughput(data.n_train, data.n_val)
        # Precise statistics first, so validation, EarlyStopping's best weights and the
        # checkpoint all see them. Then, at each epoch's end: EarlyStopping updates its best,
        # dvclive writes the epoch's row, then the checkpoint (so a row may precede its
        # checkpoint, never follow it; _live drops such a row when resuming).
        precise = [PreciseBatchNorm(data.precise)] if data.precise is not None else []
        return cls(stopper, checkpoint, throughput, live, live_tmp,
                   [*precise, stopper, throughput, DVCLiveCallback(live=live), checkpoint])


def _fit(model: keras.Model, data: _Inputs, cb: _Callbacks, train_params: TrainParams,
         first_epoch: int, extra: Sequence[keras.callbacks.Callback] = ()) -> float:
    """``model.fit`` from ``first_epoch`` (``extra`` callbacks after the stage's own);
    returns its wall-clock seconds."""
    t0 = time.perf_counter()
    try:
        with multi_worker_fit(model, data.train):
            model.fit(data.train, validation_data=data.val, epochs=train_params.epochs,
                      initial_epoch=first_epoch, steps_per_epoch=data.per_epoch, verbose=2,
                      shuffle=False, callbacks=[*cb.keras, *extra])
    except tf.errors.UnimplementedError as e:
        if not train_params.deterministic:
            raise
        raise TrainError("train.deterministic: true cannot hold here: "
                         f"{e.message.splitlines()[0]}; set train.deterministic: false") from None
    return time.perf_counter() - t0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _summary(cb: _Callbacks, rt: Runtime, model_params: ModelParams,
             train_params: TrainParams, pretrained: Path | None) -> TrainSummary:
    history = cb.checkpoint.history  # every epoch, resumed or not
    val_loss = [h["val_loss"] for h in history]
    watched = [h[train_params.monitor] for h in history]
    # The first best, as EarlyStopping counts an improvement (strictly better).
    best = int(np.argmin(watched) if train_params.monitor == "val_loss" else np.argmax(watched))
    # The epoch whose weights the model keeps: the best one when restored, else the last.
    kept = best if train_params.restore_best else len(val_loss) - 1
    return TrainSummary(
        epochs_run=len(val_loss), best_epoch=best + 1, best_val_loss=float(val_loss[best]),
        best_val_accuracy=float(history[best]["val_accuracy"]),
        restored_best=bool(train_params.restore_best), kept_epoch=kept + 1,
        kept_val_loss=float(val_loss[kept]),
        kept_val_accuracy=float(history[kept]["val_accuracy"]), runtime=rt.description,
        # DVC tracks the param (the path), not the file: its hash says what was started from.
        init_sha256=_sha256(Path(model_params.init)) if model_params.init else None,
        pretrained_sha256=_sha256(pretrained) if pretrained else None,
        stopped_epoch=len(val_loss) if len(val_loss) < train_params.epochs else None,
        stop_reason=_stop_reason(train_params, best, len(val_loss)))


def _stop_reason(train_params: TrainParams, best: int, ran: int) -> str | None:
    """Why training ended before ``train.epochs`` (None when it ran them all)."""
    if ran >= train_params.epochs:
        return None
    better = "lower" if train_params.monitor == "val_loss" else "higher"
    return (f"{train_params.monitor} not {better} for {ran - best - 1} epochs since epoch "
            f"{best + 1} (train.patience {train_params.patience})")


def _finish(model: keras.Model, data: _Inputs, cb: _Callbacks, summary: TrainSummary,
            model_dir: Path,
            live_dir: Path, backup_dir: Path, info: ModelInfo,
            throughput_file: Path | None) -> None:
    """Save the model folder and the dvclive folder, each replacing the old one whole."""
    done = summary.to_dict()
    cb.live.summary.update({part: {k: done[k] for k in
                                   (f"{part}_epoch", f"{part}_val_loss", f"{part}_val_accuracy")}
                            for part in ("best", "kept")})
    cb.live.make_summary()
    with staged_dir(model_dir) as tmp:
        save_model_dir(model, tmp, info)
        write_train_info(tmp, summary)
    # Wall-clock figures apart from the results (and from dvclive's folder, which the plot
    # stage reads), so a rerun with the same results changes nothing downstream.
    if throughput_file is not None and cb.throughput.train_s:
        write_json(throughput_file, {"train": cb.throughput.summary()})
    os.replace(cb.live_tmp, live_dir)
    shutil.rmtree(backup_dir, ignore_errors=True)  # done: nothing left to resume


def train(frames_dir: Path, model_dir: Path, live_dir: Path, model_params: ModelParams,
          train_params: TrainParams, *, clips_per_video: int, flip_test: bool = False,
          throughput_file: Path | None = None, pretrained: Path | None = None,
          weights_dir: Path | None = None, features_dir: Path | None = None,
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainSummary:
    """Fit the model on the train split with validation, save it, and return a summary.

    ``clips_per_video`` (``evaluate.clips_per_video``) and ``flip_test`` (``evaluate.flip``)
    are recorded in the model folder, so evaluate and predict score a video the same way
    wherever the folder goes. dvclive writes
    into a hidden folder beside ``live_dir`` that replaces it only when training completes:
    a killed run leaves no per-epoch numbers that look like results. ``throughput_file``
    gets the wall-clock clips/s of training and validation. ``pretrained`` (the pretrain
    stage's model file) gives the starting body, its classifier left fresh. ``weights_dir``
    (the weights stage's) gives an image backbone's weights; ``features_dir`` (the features
    stage's) its cached features, when it is frozen. ``callbacks`` (benchmarks, notebooks)
    run after the stage's own each epoch, on the network ``fit`` trains; the stage passes none.
    """
    _check_init(model_params.init, Path(model_dir))
    if model_params.init and pretrained:
        raise TrainError(f"model.init ({model_params.init}) and pretrain.epochs > 0 both give "
                         "the starting weights; set one (model.init: \"\" or pretrain.epochs: 0)")
    # Fresh layer names and graph state, so a second run in one process saves the same bytes.
    keras.backend.clear_session()
    rt = configure_runtime(train_params)
    log.info("train: %s", rt.description)
    index, meta = read_index(frames_dir)
    global_batch = train_params.batch_size * rt.strategy.num_replicas_in_sync
    mirror = _mirror(meta["classes"], train_params)
    # Checkpoints live outside DVC's outputs (DVC deletes those before it runs the stage).
    backbone = _Backbone.read(weights_dir, features_dir, model_params, train_params)
    start = Path(model_params.init) if model_params.init else pretrained
    backup_dir = Path(model_dir).parent / TRAIN_BACKUP / backup_key(
        frames_dir, model_params, train_params, start, backbone.files)
    latest, first_epoch = _resume_point(backup_dir, train_params.epochs)
    data = _inputs(frames_dir, index, meta, train_params, global_batch, first_epoch, mirror,
                   backbone.features,
                   pixels=backbone.features is None or model_params.input == "two_pathway")
    model, fitted = _network(rt, data, model_params, train_params, pretrained, backbone)
    cb = _Callbacks.make(data, train_params, backup_dir, Path(live_dir), latest, first_epoch)
    log.info("train: %d train and %d val videos, %d classes, %d params, %d epochs, batch %d",
             data.n_train, data.n_val, len(data.classes), model.count_params(),
             train_params.epochs, global_batch)
    seconds = _fit(fitted, data, cb, train_params, first_epoch, callbacks)
    summary = _summary(cb, rt, model_params, train_params, pretrained)
    _finish(model, data, cb, summary, Path(model_dir), Path(live_dir), backup_dir,
            ModelInfo(data.classes, data.sampling, clips_per_video,
                      flip_pairs=_flip_pairs(data.classes, mirror, train_params, flip_test)),
            throughput_file)
    if summary.stopped_epoch:
        log.info("train: stopped at epoch %d of %d: %s", summary.stopped_epoch,
                 train_params.epochs, summary.stop_reason)
    best_by = "lowest val loss" if train_params.monitor == "val_loss" else "highest val accuracy"
    log.info("train: %d epochs in %.0f s; kept epoch %d (val loss %.3f, val accuracy %.3f), "
             "%s at epoch %d; model in %s", summary.epochs_run, seconds,
             summary.kept_epoch, summary.kept_val_loss, summary.kept_val_accuracy,
             best_by, summary.best_epoch, model_dir)
    return summary
