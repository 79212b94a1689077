"""Scoring whole videos: K evenly spaced clips each, softmax averaged (as MMAction2 tests).

``evaluate`` and ``predict`` both go through here, so a video is sampled the same way in both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..engine import Engine, LocalEngine
from ..video import Sampling, VideoError, eval_starts, read_clips


def sample_video(path: Path, k: int, sampling: Sampling, length: int | None = None,
                 min_decodable: float = 0.0) -> np.ndarray:
    """The ``K`` evenly spaced clips ``[K, T, H, W, 3]`` uint8 a video is scored on, or
    VideoError."""
    return read_clips(path, partial(eval_starts, k=k, sampling=sampling), sampling,
                      length=length, min_decodable=min_decodable).array


@dataclass(frozen=True)
class SampleJob:
    """One video to sample, with its frame count where already measured."""

    path: Path
    length: int | None


def _sample(job: SampleJob, k: int, sampling: Sampling, min_decodable: float
            ) -> tuple[np.ndarray | None, str | None]:
    try:
        return sample_video(job.path, k, sampling, job.length, min_decodable), None
    except VideoError as e:
        return None, str(e)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, stable for large logits."""
    z = np.asarray(logits, np.float32)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def sample_videos(paths: list[Path], sampling: Sampling, k: int, workers: int = 0,
                  lengths: list[int] | None = None, min_decodable: float = 0.0,
                  engine: Engine | None = None
                  ) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
    """``(path, clips [K, T, H, W, 3], error)`` per video, in order, decoded by ``engine``
    (the local pool of ``workers`` if None); a video that cannot be read (or, below
    ``min_decodable``, is damaged) gives ``(path, None, reason)``. ``lengths``: frame counts
    already measured (the manifest's), else found while decoding."""
    run: Engine = engine or LocalEngine(workers)
    paths = list(paths)
    jobs = [SampleJob(p, n) for p, n in
            zip(paths, lengths if lengths is not None else [None] * len(paths))]
    results = run.map(partial(_sample, k=k, sampling=sampling, min_decodable=min_decodable),
                      jobs, "score", chunksize=1)
    for path, (clips, error) in zip(paths, results):
        yield path, clips, error


def score_videos(predict: Callable[[np.ndarray], np.ndarray], paths: list[Path],
                 sampling: Sampling, k: int,
                 workers: int = 0, batch_size: int = 16, lengths: list[int] | None = None,
                 min_decodable: float = 0.0, engine: Engine | None = None
                 ) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
    """Yield ``(path, class probabilities of each clip [K, C], error)`` per video, in order;
    the video's prediction is the mean over its clips (``video_probs``).

    ``predict`` maps uint8 clips ``[B, T, H, W, 3]`` to logits (``predictors.load_predictor``:
    Keras, onnxruntime or LiteRT). Clips are decoded as ``sample_videos`` does and scored in
    batches of about ``batch_size``.
    """
    pending: list[tuple[Path, np.ndarray]] = []

    def flush() -> Iterator[tuple[Path, np.ndarray, None]]:
        batch = np.concatenate([c for _, c in pending])
        probs = softmax(predict(batch))
        start = 0
        for p, c in pending:
            yield p, probs[start : start + len(c)], None
            start += len(c)
        pending.clear()

    for path, clips, error in sample_videos(paths, sampling, k, workers, lengths,
                                            min_decodable, engine):
        if error or clips is None:
            yield from flush() if pending else ()
            yield path, None, error
            continue
        pending.append((path, clips))
        if sum(len(c) for _, c in pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()


def video_probs(clip_probs: np.ndarray) -> np.ndarray:
    """A video's class probabilities: its clips' softmax outputs averaged (MMAction2's
    ``average_clips='prob'``)."""
    return clip_probs.mean(axis=0)


def top_k(probs: np.ndarray, labels: Iterable[str], k: int) -> list[dict]:
    """Best ``k`` classes, best first: ``[{"label": name, "probability": p}, ...]``."""
    labels = list(labels)
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": labels[i], "probability": round(float(probs[i]), 6)} for i in order]
