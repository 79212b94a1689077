"""Every exported format side by side (``metrics/export.json``): file size, clips per second
on this machine at batch 1 and 16, and test accuracy as the evaluate stage scores it (K
clips a video, softmax averaged), with the share of test videos where the format's top-1 is
the Keras model's. The test clips are decoded once and given to every format."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import EXPORT_FORMATS, MODEL_FILE, ONNX_FILE, TFLITE_FILES, TOLERATED_LOSS
from .predictors import load_predictor
from .scoring import sample_videos, softmax

log = logging.getLogger(__name__)
# Each speed figure: the median of SPEED_ROUNDS timings of about SPEED_SECONDS each, the
# formats taking turns within a round, so a slow spell of a shared 2-core machine lands on every
# format alike instead of on whichever came last (the export table once read ONNX 1.85x Keras
# and the benchmark 0.84x on the same kind of model). benchmarks/inference.py calls the same
# speed_table with the same settings.
SPEED_SECONDS = 0.3
SPEED_ROUNDS = 3
BATCHES = (1, 16)


def _test_clips(manifest: pd.DataFrame, videos_dir: Path, info) -> tuple[list, np.ndarray]:
    test = manifest[manifest.split == "test"].sort_values("video")
    paths = [Path(videos_dir) / v for v in test.video]
    label_of = dict(zip(test.video, test["class"]))
    clips, labels = [], []
    for path, c, error in sample_videos(paths, info.sampling, info.clips_per_video,
                                        lengths=[int(n) for n in test.frames]):
        if c is not None and not error:
            clips.append(c)
            labels.append(info.labels.index(label_of[path.relative_to(videos_dir).as_posix()]))
    return clips, np.array(labels)


def clips_per_second(predict: Callable, clips: np.ndarray, batch: int,
                     seconds: float = SPEED_SECONDS) -> float:
    """Throughput at ``batch`` clips a call: calls repeated for about ``seconds`` (3 at
    least), the caller having warmed ``predict`` up at this batch."""
    x = np.concatenate([clips] * (batch // len(clips) + 1))[:batch]
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds or n < 3:
        predict(x)
        n += 1
    return n * batch / elapsed


def speed_table(predictors: dict[str, Callable], clips: np.ndarray,
                seconds: float = SPEED_SECONDS, rounds: int = SPEED_ROUNDS
                ) -> dict[str, dict[str, float]]:
    """``{format: {"batch_1_clips_per_s": .., "batch_16_clips_per_s": ..}}``: each the median
    of ``rounds`` timings, every format warmed up at every batch first (two calls: a tracing
    one and a steady one), the formats taking turns in each round."""
    batched = {b: np.concatenate([clips] * (b // len(clips) + 1))[:b] for b in BATCHES}
    for predict in predictors.values():
        for x in batched.values():
            predict(x)
            predict(x)
    times: dict[str, dict[int, list[float]]] = {k: {b: [] for b in BATCHES} for k in predictors}
    for _ in range(rounds):
        for b in BATCHES:
            for name, predict in predictors.items():
                times[name][b].append(clips_per_second(predict, batched[b], b, seconds))
    return {name: {f"batch_{b}_clips_per_s": round(float(np.median(t[b])), 2) for b in BATCHES}
            for name, t in times.items()}


def _video_probs(predict: Callable, clips: list[np.ndarray], batch: int = 16) -> np.ndarray:
    flat = np.concatenate(clips)
    logits = np.concatenate([predict(flat[i : i + batch]) for i in range(0, len(flat), batch)])
    probs, out, start = softmax(logits), [], 0
    for c in clips:
        out.append(probs[start : start + len(c)].mean(axis=0))
        start += len(c)
    return np.stack(out)


def compare_formats(model_dir: Path, export_dir: Path, manifest: pd.DataFrame,
                    videos_dir: Path, out: Path) -> dict:
    """Write ``out`` (JSON): per format, ``size_mb``, ``test_accuracy``, ``agrees_with_keras``
    (share of test videos with the same top-1), ``batch_1_clips_per_s`` and
    ``batch_16_clips_per_s``."""
    files = {"keras": Path(model_dir), "onnx": Path(export_dir) / ONNX_FILE,
             **{f"tflite_{k}": Path(export_dir) / f for k, f in TFLITE_FILES.items()}}
    keras_predict, info = load_predictor(files["keras"])
    clips, labels = _test_clips(manifest, videos_dir, info)
    log.info("export: comparing %d formats on %d test videos", len(files), len(clips))
    predictors = {name: keras_predict if name == "keras" else load_predictor(path)[0]
                  for name, path in files.items()}
    reference = None
    table = {}
    for name, path in files.items():
        best = _video_probs(predictors[name], clips).argmax(axis=1)
        reference = best if reference is None else reference
        size = (path / MODEL_FILE if path.is_dir() else path).stat().st_size
        table[name] = {"size_mb": round(size / 2**20, 3),
                       "test_accuracy": round(float((best == labels).mean()), 4),
                       "agrees_with_keras": round(float((best == reference).mean()), 4)}
    for name, speeds in speed_table(predictors, np.concatenate(clips)[:16]).items():
        table[name].update(speeds)
        log.info("export: %-15s %s", name, table[name])
    for name in files:
        if name != "keras":
            _warn_if_below(name, table[name]["test_accuracy"], table["keras"]["test_accuracy"])
    for path in (Path(out), Path(export_dir) / EXPORT_FORMATS):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(table, indent=2) + "\n")
        os.replace(tmp, path)
    return table


def _warn_if_below(name: str, accuracy: float, keras: float) -> None:
    """The export log names a format below Keras by over TOLERATED_LOSS (predict warns too,
    ``predictors.accuracy_warning``)."""
    if accuracy < keras - TOLERATED_LOSS:
        log.warning("export: %s scores %.2f on the test set against Keras's %.2f: predict "
                    "will warn when it is used", name, accuracy, keras)
