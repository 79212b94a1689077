"""Scoring whole videos: K evenly spaced clips each, softmax averaged (as MMAction2 tests).

``evaluate`` and ``predict`` both go through here, so a video is sampled the same way in both.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ._tf import keras, tf
from .frames import Sampling, VideoError, eval_starts, read_clips
from .pool import map_videos


def _sample(job: tuple[Path, int | None], k: int, sampling: Sampling, min_decodable: float
            ) -> tuple[np.ndarray | None, str | None]:
    path, length = job
    try:
        clips = read_clips(path, partial(eval_starts, k=k, sampling=sampling), sampling,
                           length=length, min_decodable=min_decodable)
        return clips.array, None
    except VideoError as e:
        return None, str(e)


def score_videos(model: keras.Model, paths: list[Path], sampling: Sampling, k: int,
                 workers: int = 0, batch_size: int = 16, lengths: list[int] | None = None,
                 min_decodable: float = 0.0
                 ) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
    """Yield ``(path, class probabilities, error)`` per video, in order.

    Clips are decoded by a process pool and scored in batches; a video that cannot be read
    (or, below ``min_decodable``, is damaged) yields ``(path, None, reason)`` and the others
    go on. ``lengths``: frame counts already measured (the manifest's), else found while
    decoding.
    """
    workers = workers or os.cpu_count() or 1
    paths = list(paths)
    jobs = list(zip(paths, lengths if lengths is not None else [None] * len(paths)))
    results = map_videos(partial(_sample, k=k, sampling=sampling, min_decodable=min_decodable),
                         jobs, workers, "score", chunksize=1)
    pending: list[tuple[Path, np.ndarray]] = []

    def flush() -> Iterator[tuple[Path, np.ndarray, None]]:
        batch = np.concatenate([c for _, c in pending])
        logits = model.predict_on_batch(batch)
        probs = tf.nn.softmax(tf.cast(logits, tf.float32)).numpy()
        start = 0
        for p, c in pending:
            yield p, probs[start : start + len(c)].mean(axis=0), None
            start += len(c)
        pending.clear()

    for path, (clips, error) in zip(paths, results):
        if error:
            yield from flush() if pending else ()
            yield path, None, error
            continue
        pending.append((path, clips))
        if sum(len(c) for _, c in pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()


def top_k(probs: np.ndarray, labels: Iterable[str], k: int) -> list[dict]:
    """Best ``k`` classes, best first: ``[{"label": name, "probability": p}, ...]``."""
    labels = list(labels)
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": labels[i], "probability": round(float(probs[i]), 6)} for i in order]
