"""The train stage: devices, distribution strategy, determinism, fit, and an atomic model save."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._tf import keras, tf
from .artifacts import THROUGHPUT, TRAIN_BACKUP, TRAIN_INFO, ModelInfo, read_index
from .errors import VideoclfError
from .model import build_model
from .modelio import save_model_dir
from .outputs import staged_dir, write_json
from .pipeline import make_dataset, mirror_labels, steps
from .precise_bn import PreciseBatchNorm

log = logging.getLogger(__name__)


class TrainError(VideoclfError):
    """Training cannot run as the params ask on this machine."""


@dataclass
class Runtime:
    strategy: tf.distribute.Strategy
    mixed_precision: bool
    jit_compile: bool
    description: str


def configure_runtime(train: dict) -> Runtime:
    """Pick devices, precision, XLA and the distribution strategy from ``train`` params.

    ``auto``: mixed float16 and XLA on a GPU, float32 and no XLA on a CPU;
    MultiWorkerMirroredStrategy when ``TF_CONFIG`` is set, MirroredStrategy with more than
    one GPU, else the default (single-device) strategy.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised (tests build several models in-process)
            pass
    if train["deterministic"]:
        keras.utils.set_random_seed(train["seed"])  # Python, NumPy and TensorFlow
        random.seed(train["seed"])
        np.random.seed(train["seed"])
        tf.config.experimental.enable_op_determinism()

    mode = train["distribute"]
    if mode == "auto":
        mode = "multi_worker" if os.environ.get("TF_CONFIG") else (
            "mirrored" if len(gpus) > 1 else "none")
    if mode == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif mode == "mirrored":
        logical = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy(devices=[d.name for d in logical])
    else:
        strategy = tf.distribute.get_strategy()

    mixed = bool(gpus) if train["mixed_precision"] == "auto" else train["mixed_precision"]
    jit = bool(gpus) if train["jit_compile"] == "auto" else train["jit_compile"]
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    devices = ", ".join(d.name for d in (tf.config.list_logical_devices("GPU")
                                         or tf.config.list_logical_devices("CPU")))
    if gpus:
        names = sorted({tf.config.experimental.get_device_details(g).get("device_name", g.name)
                        for g in gpus})
        devices += f" ({len(gpus)} GPU: {', '.join(names)})"
    else:
        devices += " (CPU)"
    if not train["deterministic"]:
        det = "not deterministic"
    elif gpus:
        # Op determinism holds on GPUs for the ops this model uses; an op without a
        # deterministic GPU kernel raises at the first step (turned into one line by train).
        det = "deterministic ops (GPU: slower; bytes may still differ from a CPU run)"
    else:
        det = "deterministic"
    name = {"multi_worker": "MultiWorkerMirroredStrategy",
            "mirrored": "MirroredStrategy"}.get(mode, "single device")
    desc = (f"{name} x{strategy.num_replicas_in_sync} on {devices}, "
            f"{'mixed_float16' if mixed else 'float32'}, XLA {'on' if jit else 'off'}, {det}")
    return Runtime(strategy, mixed, jit, desc)


def _fix_keras_multi_worker(model: keras.Model, dataset: tf.data.Dataset) -> None:
    """Work around Keras 3's ``fit`` under MultiWorkerMirroredStrategy (open upstream:
    keras-team/keras#20585, tensorflow/tensorflow#72388), which fails in two places:

    1. before the first step it averages a real (x, y) batch across workers only to learn its
       shapes, and the collective reduce of a tuple fails: build from the element spec instead;
    2. it averages each step's scalar logs with ``reduce("MEAN", v, axis=0)``, which a scalar
       has no axis for: scalars are averaged over replicas with ``axis=None``.

    Gradients are all-reduced by the strategy itself, untouched (the two-process test checks
    that both workers end with the same weights).
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    spec = dataset.element_spec
    batch = tuple(tf.zeros([1, *s.shape[1:]], s.dtype) for s in spec)
    strategy = model.distribute_strategy

    def build(iterator=None, data_batch=None):
        with strategy.scope():
            model._symbolic_build(data_batch=batch)

    model._maybe_symbolic_build = build
    original = getattr(tf_trainer.reduce_per_replica, "__wrapped__", tf_trainer.reduce_per_replica)

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None)
                if isinstance(v, tf.distribute.DistributedValues) else v, values)
        return original(values, strategy, reduction)

    reduce_per_replica.__wrapped__ = original
    tf_trainer.reduce_per_replica = reduce_per_replica


class Throughput(keras.callbacks.Callback):
    """Clips per second of training and of validation, per epoch (wall clock).

    The first epoch pays for tracing and warm-up, so the figures are medians over the later
    epochs when there are any. On a GPU a training rate far below the validation rate points
    at an input pipeline that cannot keep up (validation runs the model forward only).
    """

    def __init__(self, train_clips: int, val_clips: int):
        super().__init__()
        self.train_clips, self.val_clips = train_clips, val_clips
        self.train_s: list[float] = []
        self.val_s: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._val_start = None

    def on_test_begin(self, logs=None):
        self._val_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        end = time.perf_counter()
        split = self._val_start or end
        self.train_s.append(split - self._t0)
        self.val_s.append(end - split)

    def summary(self) -> dict:
        def rate(n: int, seconds: list[float]) -> float:
            later = seconds[1:] or seconds
            return round(n / max(1e-9, float(np.median(later))), 1)

        return {"train_clips_per_s": rate(self.train_clips, self.train_s),
                "val_clips_per_s": rate(self.val_clips, self.val_s),
                "epoch_seconds": round(float(np.median(
                    [a + b for a, b in zip(self.train_s, self.val_s)][1:]
                    or [self.train_s[0] + self.val_s[0]])), 2)}


class Checkpoint(keras.callbacks.Callback):
    """Resume after an interruption, SIGKILL included, to the same bytes as an unbroken run.

    At the end of every epoch the weights with the optimizer state (``save_weights``: Adam's
    moments and its step, which is also the learning-rate schedule's position), the history
    so far and EarlyStopping's state with its best weights go into ``epoch-NNNNN/`` through a
    temp folder renamed when complete, so a kill at any moment leaves the last finished
    epoch whole. (Keras' BackupAndRestore writes its weights and its epoch number one after
    the other in place, and keeps neither the history nor EarlyStopping's state.) The input
    pipeline needs no state: every epoch's randomness is a function of (seed, epoch).
    """

    def __init__(self, backup_dir: Path, stopper: keras.callbacks.EarlyStopping):
        super().__init__()
        self.backup_dir, self.stopper = Path(backup_dir), stopper
        self.history: list[dict] = []
        self.stopped = False
        self._restore: Path | None = None

    @staticmethod
    def latest(backup_dir: Path) -> tuple[Path, dict] | None:
        """The newest complete checkpoint and its state, or None."""
        done = sorted(Path(backup_dir).glob("epoch-*/state.json"))
        if not done:
            return None
        return done[-1].parent, json.loads(done[-1].read_text())

    def resume_from(self, ckpt: Path, state: dict) -> None:
        """Restore at the start of ``fit`` (after EarlyStopping has reset itself)."""
        self._restore = ckpt
        self.history = state["history"]
        self.stopped = state["stopped"]

    def on_train_begin(self, logs=None):
        if self._restore is None:
            return
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self._restore / "state.weights.h5")
        st = json.loads((self._restore / "state.json").read_text())["stopper"]
        self.stopper.wait, self.stopper.best = st["wait"], st["best"]
        self.stopper.best_epoch, self.stopper.stopped_epoch = st["best_epoch"], st["stopped_epoch"]
        best = self._restore / "best.npz"
        if best.exists():
            with np.load(best) as z:
                self.stopper.best_weights = [z[f"w{i}"] for i in range(len(z.files))]

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({k: float(v) for k, v in (logs or {}).items()})
        self.stopped = bool(self.model.stop_training)
        tmp = self.backup_dir / f".epoch-{epoch:05d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.model.save_weights(tmp / "state.weights.h5")
        st = self.stopper
        if st.best_weights is not None:
            np.savez(tmp / "best.npz", **{f"w{i}": w for i, w in enumerate(st.best_weights)})
        (tmp / "state.json").write_text(json.dumps({
            "epoch": epoch, "history": self.history, "stopped": self.stopped,
            "stopper": {"wait": st.wait, "best": float(st.best), "best_epoch": st.best_epoch,
                        "stopped_epoch": st.stopped_epoch}}))
        final = self.backup_dir / f"epoch-{epoch:05d}"
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in self.backup_dir.glob("epoch-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)


def backup_key(frames_dir: Path, model_params: dict, train_params: dict) -> str:
    """Everything that decides the training run: the clips, the params and the code."""
    h = hashlib.sha256(json.dumps([model_params, train_params], sort_keys=True).encode())
    here = Path(__file__).parent
    for f in [Path(frames_dir) / "index.parquet", Path(frames_dir) / "meta.json",
              *(here / n for n in ("train.py", "pipeline.py", "model.py", "modelio.py",
                                   "precise_bn.py"))]:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def warm_start(model: keras.Model, init: Path) -> str:
    """Copy the weights of an earlier run's ``.keras`` model into ``model``, layer by layer.

    The network must be the same (same layers, same weight shapes); only the classification
    layer may differ in its number of classes, and then it stays freshly initialised (fine-
    tuning to new classes). Returns a short description for the log.
    """
    from .modelio import load_keras

    old = load_keras(init)
    new_layers = [layer for layer in model.layers if layer.weights]
    old_layers = [layer for layer in old.layers if layer.weights]
    shapes = lambda layer: [tuple(w.shape) for w in layer.weights]  # noqa: E731
    if len(new_layers) != len(old_layers) or any(
            shapes(a) != shapes(b) for a, b in zip(new_layers[:-1], old_layers[:-1])):
        raise TrainError(f"model.init: {init} is not this network (other filters, frame size, "
                         "model.input or model.norm); only the number of classes may differ")
    for a, b in zip(new_layers[:-1], old_layers[:-1]):
        a.set_weights(b.get_weights())
    head_new, head_old = new_layers[-1], old_layers[-1]
    if shapes(head_new) == shapes(head_old):
        head_new.set_weights(head_old.get_weights())
        return f"warm start from {init} (all layers)"
    return (f"warm start from {init} (all layers but the classifier: "
            f"{head_old.weights[-1].shape[0]} -> {head_new.weights[-1].shape[0]} classes)")


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


def train(frames_dir: Path, model_dir: Path, live_dir: Path, model_params: dict,
          train_params: dict, *, clips_per_video: int) -> dict:
    """Fit the model on the train split with validation, save it, and return a summary.

    ``clips_per_video`` (``evaluate.clips_per_video``) is recorded in the model folder, so
    evaluate and predict score a video the same way wherever the folder goes. dvclive writes
    into a hidden folder beside ``live_dir`` that replaces it only when training completes:
    a killed run leaves no per-epoch numbers that look like results.
    """
    # Fresh layer names and graph state, so a second run in one process saves the same bytes.
    keras.backend.clear_session()
    rt = configure_runtime(train_params)
    log.info("train: %s", rt.description)
    index, meta = read_index(frames_dir)
    classes = meta["classes"]
    s = meta["sampling"]
    replicas = rt.strategy.num_replicas_in_sync
    global_batch = train_params["batch_size"] * replicas
    augment = train_params["augment"]
    try:
        mirror, ignored = mirror_labels(classes, augment["flip_pairs"])
    except ValueError as e:
        raise TrainError(str(e)) from None
    if augment["flip"]:
        swapped = [f"{classes[i]}<->{classes[j]}" for i, j in enumerate(mirror) if i < j]
        log.info("train: flip on; labels swap when mirrored: %s%s", ", ".join(swapped) or "none",
                 f" (pairs naming no class here, ignored: {', '.join(ignored)})" if ignored
                 else "")
    if augment["color"]:
        log.info("train: colour changes on (random channel order and negative per clip)")
    epochs = train_params["epochs"]
    # The checkpoint of an interrupted run with these exact inputs, outside DVC's outputs
    # (DVC deletes those before it runs the stage).
    backup_dir = Path(model_dir).parent / TRAIN_BACKUP / backup_key(frames_dir, model_params,
                                                              train_params)
    latest = Checkpoint.latest(backup_dir)
    first_epoch = 0
    if latest:
        first_epoch = epochs if latest[1]["stopped"] else latest[1]["epoch"] + 1
        log.info("train: resuming after epoch %d of %d from %s", latest[1]["epoch"] + 1, epochs,
                 latest[0])
    per_epoch = steps(index, "train", global_batch)
    train_ds = make_dataset(frames_dir, index, "train", batch_size=global_batch, training=True,
                            seed=train_params["seed"], flip=augment["flip"], mirror=mirror,
                            color=augment["color"],
                            first_epoch=min(first_epoch, epochs - 1),
                            epochs=max(1, epochs - first_epoch))
    val_ds = make_dataset(frames_dir, index, "val", batch_size=global_batch, training=False)
    # The batches BatchNorm's statistics are recomputed on before each validation: the first
    # training clips in epoch 0's order, unaugmented as inference sees clips; the same every
    # epoch and every run.
    n_precise = min(train_params["precise_bn_batches"], per_epoch)
    precise_ds = make_dataset(frames_dir, index, "train", batch_size=global_batch,
                              training=True, seed=train_params["seed"]).take(n_precise)

    lr = train_params["learning_rate"]
    if train_params["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, per_epoch * epochs))
    with rt.strategy.scope():
        model = build_model(s["n_frames"], s["height"], s["width"], len(classes),
                            model_params["filters"], model_params["input"],
                            norm=model_params["norm"])
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            jit_compile=rt.jit_compile,
        )
        if model_params["init"]:
            log.info("train: %s", warm_start(model, Path(model_params["init"])))
    if isinstance(rt.strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _fix_keras_multi_worker(model, train_ds)
    patience = train_params["early_stopping_patience"]
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience or epochs + 1,
        restore_best_weights=train_params["restore_best"])
    from dvclive.keras import DVCLiveCallback

    # Precise statistics first, so validation, EarlyStopping's best weights and the checkpoint
    # all see them.
    callbacks = [PreciseBatchNorm(precise_ds)] if n_precise else []
    checkpoint = Checkpoint(backup_dir, stopper)
    if latest:
        checkpoint.resume_from(*latest)
    live_dir = Path(live_dir)
    live_tmp = live_dir.with_name(f".{live_dir.name}.tmp")
    shutil.rmtree(live_dir, ignore_errors=True)
    resume_live = bool(latest) and live_tmp.is_dir()
    if not resume_live:
        shutil.rmtree(live_tmp, ignore_errors=True)
    live = _live(live_tmp, resume_from=first_epoch if resume_live else None)
    n_train = index[index.split == "train"].video.nunique()
    throughput = Throughput(n_train, int((index.split == "val").sum()))
    log.info("train: %d train and %d val videos, %d classes, %d params, %d epochs, batch %d",
             n_train, int((index.split == "val").sum()), len(classes), model.count_params(),
             epochs, global_batch)
    t0 = time.perf_counter()
    try:
        # Order matters at each epoch's end: EarlyStopping updates its best, dvclive writes
        # the epoch's row, then the checkpoint (so a row may precede its checkpoint, never
        # follow it; _live drops such a row when resuming).
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=first_epoch,
                  steps_per_epoch=per_epoch, verbose=2, shuffle=False,
                  callbacks=[*callbacks, stopper, throughput, DVCLiveCallback(live=live),
                             checkpoint])
    except tf.errors.UnimplementedError as e:
        if not train_params["deterministic"]:
            raise
        raise TrainError("train.deterministic: true cannot hold here: "
                         f"{e.message.splitlines()[0]}; set train.deterministic: false") from None
    seconds = time.perf_counter() - t0
    val_loss = [h["val_loss"] for h in checkpoint.history]  # every epoch, resumed or not
    best = int(np.argmin(val_loss))
    summary = {
        "epochs_run": len(val_loss),
        "best_epoch": best + 1,
        "best_val_loss": float(val_loss[best]),
        "best_val_accuracy": float(checkpoint.history[best]["val_accuracy"]),
        "restored_best": bool(train_params["restore_best"]),
        "runtime": rt.description,
    }
    if model_params["init"]:
        # DVC tracks the param (the path), not the file: its hash says what was started from.
        summary["init_sha256"] = hashlib.sha256(Path(model_params["init"]).read_bytes()).hexdigest()
    live.summary.update({"best": {k: summary[k] for k in
                                  ("best_epoch", "best_val_loss", "best_val_accuracy")}})
    live.make_summary()
    with staged_dir(model_dir) as tmp:
        save_model_dir(model, tmp, ModelInfo(classes, s, clips_per_video))
        write_json(tmp / TRAIN_INFO, summary)
    # Wall-clock figures apart from the results, which stay identical run to run.
    if throughput.train_s:
        write_json(live_tmp / THROUGHPUT, {"train": throughput.summary()})
    os.replace(live_tmp, live_dir)
    shutil.rmtree(backup_dir, ignore_errors=True)  # done: nothing left to resume
    log.info("train: %d epochs in %.0f s; best epoch %d (val loss %.3f, val accuracy %.3f); "
             "model in %s", summary["epochs_run"], seconds, summary["best_epoch"],
             summary["best_val_loss"], summary["best_val_accuracy"], model_dir)
    return summary
