"""Devices, precision, XLA, determinism and the distribution strategy of a training run."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np

from .._tf import keras, tf
from ..params import TrainParams


@dataclass
class Runtime:
    strategy: tf.distribute.Strategy
    mixed_precision: bool
    jit_compile: bool
    description: str


def configure_runtime(train: TrainParams) -> Runtime:
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
    if train.deterministic:
        keras.utils.set_random_seed(train.seed)  # Python, NumPy and TensorFlow
        random.seed(train.seed)
        np.random.seed(train.seed)
        tf.config.experimental.enable_op_determinism()
    mode = train.distribute
    if mode == "auto":
        mode = "multi_worker" if os.environ.get("TF_CONFIG") else (
            "mirrored" if len(gpus) > 1 else "none")
    strategy = _strategy(mode)
    mixed = bool(gpus) if train.mixed_precision == "auto" else bool(train.mixed_precision)
    jit = bool(gpus) if train.jit_compile == "auto" else bool(train.jit_compile)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    name = {"multi_worker": "MultiWorkerMirroredStrategy",
            "mirrored": "MirroredStrategy"}.get(mode, "single device")
    desc = (f"{name} x{strategy.num_replicas_in_sync} on {_devices(gpus)}, "
            f"{'mixed_float16' if mixed else 'float32'}, XLA {'on' if jit else 'off'}, "
            f"{_determinism(train.deterministic, bool(gpus))}")
    return Runtime(strategy, mixed, jit, desc)


def _strategy(mode: str) -> tf.distribute.Strategy:
    if mode == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if mode == "mirrored":
        logical = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in logical])
    return tf.distribute.get_strategy()


def _devices(gpus: list) -> str:
    """The logical devices, and the GPUs' names (for the log and train.json)."""
    devices = ", ".join(d.name for d in (tf.config.list_logical_devices("GPU")
                                         or tf.config.list_logical_devices("CPU")))
    if not gpus:
        return devices + " (CPU)"
    names = sorted({tf.config.experimental.get_device_details(g).get("device_name", g.name)
                    for g in gpus})
    return devices + f" ({len(gpus)} GPU: {', '.join(names)})"


def _determinism(deterministic: bool, gpu: bool) -> str:
    if not deterministic:
        return "not deterministic"
    if gpu:
        # Op determinism holds on GPUs for the ops this model uses; an op without a
        # deterministic GPU kernel raises at the first step (turned into one line by train).
        return "deterministic ops (GPU: slower; bytes may still differ from a CPU run)"
    return "deterministic"
