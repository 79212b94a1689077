"""The evaluate stage: test-split metrics for ``dvc metrics`` and data for ``dvc plots``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .frames import Sampling
from .inference import score_videos
from .outputs import write_json

log = logging.getLogger(__name__)


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
    r = lambda x: round(float(x), 6)  # noqa: E731
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


def evaluate(model, classes: list[str], sampling: dict, manifest: pd.DataFrame,
             videos_dir: Path, metrics_dir: Path, clips_per_video: int,
             workers: int = 0) -> dict:
    """Score the test split and write metrics.json, per_class.json and eval/ plot data."""
    test = manifest[manifest.split == "test"].sort_values("video")
    paths = [videos_dir / v for v in test.video]
    s = Sampling(**sampling)
    log.info("evaluate: %d test videos, %d clip(s) per video", len(paths), clips_per_video)
    probs, actual, kept, skipped = [], [], [], []
    label_of = dict(zip(test.video, test["class"]))
    lengths = [int(n) for n in test.frames] if "frames" in test else None  # measured on download
    for path, p, error in score_videos(model, paths, s, clips_per_video, workers,
                                       lengths=lengths):
        rel = path.relative_to(videos_dir).as_posix()
        if error:
            skipped.append({"video": rel, "reason": error})
            continue
        probs.append(p)
        actual.append(classes.index(label_of[rel]))
        kept.append(rel)
    if not probs:
        raise RuntimeError("evaluate: no test video could be scored")
    probs_arr = np.stack(probs)
    actual_arr = np.array(actual)
    predicted = probs_arr.argmax(axis=1)
    summary, per_class, _ = classification_metrics(actual_arr, predicted, classes)
    nll = -np.log(np.clip(probs_arr[np.arange(len(actual_arr)), actual_arr], 1e-12, 1.0))
    summary.update({"loss": round(float(nll.mean()), 6), "clips_per_video": clips_per_video,
                    "test_videos": len(kept), "skipped_videos": len(skipped)})
    eval_dir = metrics_dir / "eval"
    write_json(metrics_dir / "metrics.json", summary)
    write_json(metrics_dir / "per_class.json", per_class)
    write_json(eval_dir / "predictions.json", [
        {"video": v, "actual": classes[a], "predicted": classes[p]}
        for v, a, p in zip(kept, actual_arr, predicted)])
    write_json(eval_dir / "per_class.json",
               [{"class": c, **per_class[c]} for c in classes])
    write_json(eval_dir / "report.json", {"skipped": skipped})
    log.info("evaluate: accuracy %.3f, precision %.3f, recall %.3f on %d test videos%s",
             summary["accuracy"], summary["precision"], summary["recall"], len(kept),
             f"; {len(skipped)} skipped" if skipped else "")
    return summary
