"""The evaluate stage: test-split metrics for ``dvc metrics`` and data for ``dvc plots``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import (
    EVAL_DIR,
    EVAL_PER_CLASS,
    EVAL_REPORT,
    METRICS,
    PER_CLASS,
    PREDICTIONS,
    THROUGHPUT,
    ModelInfo,
)
from ..engine import Engine
from ..errors import VideoclfError
from ..outputs import write_json
from ..params import EvaluateParams
from .scoring import score_videos, top_k, video_probs

log = logging.getLogger(__name__)


class EvaluateError(VideoclfError):
    """The test split cannot be scored."""


def classification_metrics(actual: np.ndarray, predicted: np.ndarray,
                           classes: list[str]) -> tuple[dict, dict, np.ndarray]:
    """Accuracy, macro and weighted precision/recall/F1, per-class figures, confusion matrix.

    A class never predicted has precision 0 (and never present, recall 0), as scikit-learn's
    ``zero_division=0``.
    """
    n = len(classes)
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (actual, predicted), 1)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted_n = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted_n > 0, tp / predicted_n, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    weights = support / max(1, support.sum())
    r = lambda x: round(float(x), 6)
    summary = {
        "accuracy": r(tp.sum() / max(1, cm.sum())),
        "precision": r(precision.mean()),
        "recall": r(recall.mean()),
        "f1": r(f1.mean()),
        "precision_weighted": r((precision * weights).sum()),
        "recall_weighted": r((recall * weights).sum()),
        "f1_weighted": r((f1 * weights).sum()),
    }
    per_class = {c: {"precision": r(precision[i]), "recall": r(recall[i]), "f1": r(f1[i]),
                     "support": int(support[i])} for i, c in enumerate(classes)}
    return summary, per_class, cm


def top_k_accuracy(probs: np.ndarray, actual: np.ndarray, k: int) -> float:
    """Share of rows whose true class is among the ``k`` most probable (ties: lower index)."""
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == actual[:, None]).any(axis=1).mean())


def bootstrap_ci(correct: np.ndarray, resamples: int, seed: int, level: float = 0.95
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``correct`` (0/1 per test video),
    resampling videos with replacement: how far top-1 accuracy could move on another test
    set of this size drawn the same way."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(correct), size=(resamples, len(correct)))
    means = correct[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def mean_class_ci(correct: np.ndarray, actual: np.ndarray, resamples: int, seed: int,
                  level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of mean-class accuracy (the mean over classes of each
    class's share right), resampling test videos within each class, so every resample holds
    every class as the test set does."""
    rng = np.random.default_rng(seed)
    per_class = []
    for c in np.unique(actual):
        hits = correct[actual == c]
        idx = rng.integers(0, len(hits), size=(resamples, len(hits)))
        per_class.append(hits[idx].mean(axis=1))
    means = np.mean(per_class, axis=0)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass
class _Scores:
    """The test split as scored: per kept video, its probabilities and true label."""

    probs: np.ndarray        # [videos, classes], the mean of each video's clip softmax
    actual: np.ndarray       # [videos] labels
    kept: list[str]          # videos, relative to the videos folder
    clip_hits: list[bool]    # every clip of every kept video, right or not
    skipped: list[dict]      # {"video", "reason"} of videos that could not be scored
    seconds: float


def _score(predict, info: ModelInfo, manifest: pd.DataFrame, videos_dir: Path,
           engine: Engine | None) -> _Scores:
    test = manifest[manifest.split == "test"].sort_values("video")
    foreign = sorted(set(test["class"]) - set(info.labels))
    if foreign:
        raise EvaluateError(f"the test videos' class(es) {', '.join(foreign[:3])} are not among "
                            f"the model's {len(info.labels)} labels: the model and the videos "
                            "come from different data (rerun train, or evaluate the matching "
                            "model)")
    paths = [videos_dir / v for v in test.video]
    log.info("evaluate: %d test videos, %d clip(s) per video", len(paths),
             info.clips_per_video)
    probs, clip_hits, actual, kept, skipped = [], [], [], [], []
    label_of = dict(zip(test.video, test["class"]))
    lengths = [int(n) for n in test.frames] if "frames" in test else None  # measured on download
    t0 = time.perf_counter()
    scored = score_videos(predict, paths, info.sampling, info.clips_per_video, lengths=lengths,
                          engine=engine)
    for path, clip_probs, error in scored:
        rel = path.relative_to(videos_dir).as_posix()
        if error or clip_probs is None:
            skipped.append({"video": rel, "reason": error})
            continue
        label = info.labels.index(label_of[rel])
        probs.append(video_probs(clip_probs))
        clip_hits += list(clip_probs.argmax(axis=1) == label)
        actual.append(label)
        kept.append(rel)
    seconds = time.perf_counter() - t0
    if not probs:
        first = skipped[0] if skipped else {"video": "-", "reason": "no test video"}
        raise EvaluateError(f"none of the {len(skipped)} test videos could be scored; first: "
                            f"{first['video']}: {first['reason']}")
    return _Scores(np.stack(probs), np.array(actual), kept, clip_hits, skipped, seconds)


def evaluate(predict, info: ModelInfo, manifest: pd.DataFrame, videos_dir: Path,
             metrics_dir: Path, evaluate_params: EvaluateParams, engine: Engine | None = None
             ) -> dict:
    """Score the test split as the predict command does (``predict``: clips -> logits from
    ``predictors.load_predictor``; the model folder's sampling and clips per video) and write
    metrics.json, per_class.json and eval/ plot data.

    Video-level figures average the softmax of a video's clips; ``clip_accuracy`` scores each
    clip alone (the R(2+1)D paper reports both); ``accuracy_ci95`` is a seeded bootstrap over
    test videos (``evaluate.bootstrap`` resamples, ``evaluate.seed``). ``engine``: where the
    videos are decoded (this machine's pool if None).
    """
    classes = info.labels
    sc = _score(predict, info, manifest, videos_dir, engine)
    predicted = sc.probs.argmax(axis=1)
    summary, per_class, _ = classification_metrics(sc.actual, predicted, classes)
    nll = -np.log(np.clip(sc.probs[np.arange(len(sc.actual)), sc.actual], 1e-12, 1.0))
    correct = (predicted == sc.actual).astype(float)
    lo, hi = bootstrap_ci(correct, evaluate_params.bootstrap, evaluate_params.seed)
    mlo, mhi = mean_class_ci(correct, sc.actual, evaluate_params.bootstrap, evaluate_params.seed)
    r = lambda x: round(float(x), 6)
    summary = {"accuracy": summary.pop("accuracy"),
               "accuracy_ci95_low": r(lo), "accuracy_ci95_high": r(hi),
               "top5_accuracy": r(top_k_accuracy(sc.probs, sc.actual, 5)),
               "mean_class_accuracy": summary["recall"],  # mean of per-class recall
               "mean_class_accuracy_ci95_low": r(mlo), "mean_class_accuracy_ci95_high": r(mhi),
               "clip_accuracy": r(np.mean(sc.clip_hits)),
               **summary,
               "loss": r(nll.mean()), "clips_per_video": info.clips_per_video,
               "test_videos": len(sc.kept), "test_clips": len(sc.clip_hits),
               "skipped_videos": len(sc.skipped)}
    _write(metrics_dir, summary, per_class, sc, predicted, classes)
    log.info("evaluate: accuracy %.3f (95%% CI %.3f-%.3f), top-5 %.3f, mean class %.3f, "
             "clip %.3f on %d test videos%s", summary["accuracy"], lo, hi,
             summary["top5_accuracy"], summary["mean_class_accuracy"], summary["clip_accuracy"],
             len(sc.kept), f"; {len(sc.skipped)} skipped" if sc.skipped else "")
    return summary


def _write(metrics_dir: Path, summary: dict, per_class: dict, sc: _Scores,
           predicted: np.ndarray, classes: list[str]) -> None:
    eval_dir = metrics_dir / EVAL_DIR
    write_json(metrics_dir / METRICS, summary)
    write_json(metrics_dir / PER_CLASS, per_class)
    write_json(eval_dir / PREDICTIONS, [
        {"video": v, "actual": classes[a], "predicted": classes[p],
         "top": top_k(pr, classes, 3)}
        for v, a, p, pr in zip(sc.kept, sc.actual, predicted, sc.probs)])
    write_json(eval_dir / EVAL_PER_CLASS,
               [{"class": c, **per_class[c]} for c in classes])
    write_json(eval_dir / EVAL_REPORT, {"skipped": sc.skipped})
    # Decoding and scoring together, as predict sees it (wall clock, so apart from the results).
    write_json(metrics_dir / THROUGHPUT, {"evaluate": {
        "clips_per_s": round(len(sc.clip_hits) / max(sc.seconds, 1e-9), 1),
        "videos_per_s": round(len(sc.kept) / max(sc.seconds, 1e-9), 2)}})
