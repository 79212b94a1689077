"""The train stage: devices, distribution strategy, determinism, fit, and an atomic model save."""

from __future__ import annotations

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
from .model import build_model
from .outputs import staged_dir, write_json
from .pipeline import load_index, make_dataset

log = logging.getLogger(__name__)


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
    desc = (f"{type(strategy).__name__} x{strategy.num_replicas_in_sync} on {devices}"
            f" ({'GPU' if gpus else 'CPU'}), {'mixed_float16' if mixed else 'float32'}, "
            f"XLA {'on' if jit else 'off'}")
    return Runtime(strategy, mixed, jit, desc)


def _live(live_dir: Path):
    from dvclive import Live

    # dvc.yaml is hand-written; dvclive only writes metrics and plots.
    return Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None)


def train(frames_dir: Path, model_dir: Path, live_dir: Path, model_params: dict,
          train_params: dict) -> dict:
    """Fit the model on the train split with validation, save it, and return a summary."""
    # Fresh layer names and graph state, so a second run in one process saves the same bytes.
    keras.backend.clear_session()
    rt = configure_runtime(train_params)
    log.info("train: %s", rt.description)
    index, meta = load_index(frames_dir)
    classes = meta["classes"]
    s = meta["sampling"]
    replicas = rt.strategy.num_replicas_in_sync
    global_batch = train_params["batch_size"] * replicas
    train_ds = make_dataset(frames_dir, index, "train", batch_size=global_batch, training=True,
                            seed=train_params["seed"], flip=train_params["augment"]["flip"])
    val_ds = make_dataset(frames_dir, index, "val", batch_size=global_batch, training=False)

    lr = train_params["learning_rate"]
    if train_params["lr_schedule"] == "cosine":
        steps = int(train_ds.cardinality()) * train_params["epochs"]
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps))
    with rt.strategy.scope():
        model = build_model(s["n_frames"], s["height"], s["width"], len(classes),
                            model_params["filters"])
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            jit_compile=rt.jit_compile,
        )
    epochs = train_params["epochs"]
    patience = train_params["early_stopping_patience"]
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience or epochs + 1,
        restore_best_weights=train_params["restore_best"])
    from dvclive.keras import DVCLiveCallback

    shutil.rmtree(live_dir, ignore_errors=True)
    live = _live(live_dir)
    n_train = index[index.split == "train"].video.nunique()
    log.info("train: %d train and %d val videos, %d classes, %d params, %d epochs, batch %d",
             n_train, int((index.split == "val").sum()), len(classes), model.count_params(),
             epochs, global_batch)
    t0 = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=2, shuffle=False,
                        callbacks=[stopper, DVCLiveCallback(live=live)])
    seconds = time.perf_counter() - t0
    val_loss = history.history["val_loss"]
    best = int(np.argmin(val_loss))
    summary = {
        "epochs_run": len(val_loss),
        "best_epoch": best + 1,
        "best_val_loss": float(val_loss[best]),
        "best_val_accuracy": float(history.history["val_accuracy"][best]),
        "restored_best": bool(train_params["restore_best"]),
        "runtime": rt.description,
    }
    live.summary.update({"best": {k: summary[k] for k in
                                  ("best_epoch", "best_val_loss", "best_val_accuracy")}})
    live.make_summary()
    with staged_dir(model_dir) as tmp:
        save_model(model, tmp / "model.keras")
        write_json(tmp / "labels.json", classes)
        write_json(tmp / "sampling.json", s)
        write_json(tmp / "train.json", summary)
    log.info("train: %d epochs in %.0f s; best epoch %d (val loss %.3f, val accuracy %.3f); "
             "model in %s", summary["epochs_run"], seconds, summary["best_epoch"],
             summary["best_val_loss"], summary["best_val_accuracy"], model_dir)
    return summary


def _renumber_shared_objects(config):
    """Keras names shared objects by their memory address (``id()``), which changes from
    process to process; number them in order of appearance instead (same identities)."""
    ids: dict[int, int] = {}

    def walk(o):
        if isinstance(o, dict):
            return {k: (ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else walk(v))
                    for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    return walk(config)


def save_model(model: keras.Model, path: Path) -> None:
    """``model.save`` made byte-reproducible: Keras stamps the save date and the zip entry
    times, which would make DVC see a new model (and rerun evaluate) for identical weights."""
    import zipfile

    raw = Path(path).with_suffix(".raw.keras")
    model.save(raw)
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = "1970-01-01@00:00:00"
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
            dst.writestr(zipfile.ZipInfo(info.filename, (1980, 1, 1, 0, 0, 0)), data,
                         compress_type=info.compress_type)
    raw.unlink()


def load_trained(model_dir: Path) -> tuple[keras.Model, list[str], dict]:
    """The saved model, its class names and the sampling it was trained with."""
    model_dir = Path(model_dir)
    model = keras.models.load_model(model_dir / "model.keras", safe_mode=True)
    labels = json.loads((model_dir / "labels.json").read_text())
    sampling = json.loads((model_dir / "sampling.json").read_text())
    return model, labels, sampling
