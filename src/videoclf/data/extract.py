"""The extract stage: decode every clip once into the frames layout (``shards``: uint8 NPY
shards, a Parquet index, ``meta.json``), the shard and row of every video planned from the
manifest before any decoding, so the workers write their clips straight into the shard files
and the bytes are the same for any ``frames.workers``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import FRAMES_REPORT, SPLITS, clips_per_video
from ..engine import Engine, LocalEngine
from ..outputs import write_json
from ..params import FramesParams
from ..video import Sampling, VideoError, eval_starts, read_clips, train_starts
from .shards import (
    FramesMeta,
    IndexRow,
    Slot,
    frames_layout,
    plan_shards,
    write_index,
    write_rows,
)
from .splits import DatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipJob:
    """One video for a pool worker: where it is, how to cut it, where its rows go."""

    path: Path
    split: str
    clips: int            # clips of this video (its split's count)
    sampling: Sampling
    seed: int             # frames.seed: the training clips' hashed offsets
    length: int | None    # the manifest's real frame count (None: read the header)
    shard: Path
    row: int


@dataclass(frozen=True)
class ClipResult:
    """What a worker sends back: each clip's real frames and start, or the error report;
    the clips themselves too where the worker cannot write the driver's shard (Ray)."""

    real_frames: list[int]
    starts: list[int]
    error: dict | None
    array: np.ndarray | None = None


def _starts(job: ClipJob):
    if job.split == "train":
        return partial(train_starts, k=job.clips, sampling=job.sampling, seed=job.seed,
                       name=job.path.name)
    return partial(eval_starts, k=1, sampling=job.sampling)


def _decode_one(job: ClipJob) -> ClipResult:
    """Decode one video's clips and send them back (a worker on another machine)."""
    try:
        clips = read_clips(job.path, _starts(job), job.sampling, length=job.length)
    except VideoError as e:
        return ClipResult([], [], e.report())
    return ClipResult(clips.real_frames, clips.starts, None, clips.array)


def _extract_one(job: ClipJob) -> ClipResult:
    """Decode one video's clips into its rows of its shard (a worker of this machine: no
    clip crosses a pipe)."""
    result = _decode_one(job)
    if result.array is not None:
        write_rows(job.shard, job.row, result.array)
    return ClipResult(result.real_frames, result.starts, result.error)


def _index_rows(record: dict, slot: Slot, result: ClipResult) -> list[IndexRow]:
    return [IndexRow(record["video"], record["class"], int(record["label"]), record["group"],
                     record["split"], c, int(start), slot.shard, slot.row + c, int(real))
            for c, (start, real) in enumerate(zip(result.starts, result.real_frames))]


def _check_every_class(rows: list[IndexRow], classes: list[str]) -> None:
    have = {(r.split, r.cls) for r in rows}
    missing = [f"{s}/{c}" for s in SPLITS for c in classes if (s, c) not in have]
    if missing:
        raise DatasetError(f"extract: no decodable clip for {', '.join(missing)}")


def extract(manifest: pd.DataFrame, videos_dir: Path, out_dir: Path, frames_params: FramesParams,
            classes: list[str], engine: Engine | None = None) -> pd.DataFrame:
    """Write ``out_dir/{split}-NNNNN.npy``, ``index.parquet``, ``meta.json`` and ``report.json``.

    Rows of a video that fails to decode stay zero in its shard; the index never points at them.
    ``engine``: where the videos are decoded (the local pool of ``frames.workers`` if None).
    """
    sampling = frames_params.sampling
    k = frames_params.train_clips_per_video
    per_video = {s: clips_per_video(s, k) for s in SPLITS}
    run: Engine = engine or LocalEngine(frames_params.workers)
    order = manifest.split.map(SPLITS.index)
    records = manifest.assign(_order=order).sort_values(["_order", "video"]).to_dict("records")
    slots, shard_rows = plan_shards([r["split"] for r in records], per_video,
                                    sampling.clip_bytes, frames_params.shard_mb * 2**20)
    log.info("extract: %d videos, %dx%dx%d every %d frames (%s), %d clip(s) per train video, "
             "%s", len(records), sampling.n_frames, sampling.height, sampling.width,
             sampling.frame_step, sampling.short_video, k, run.describe())
    rows: list[IndexRow] = []
    skipped = []
    with frames_layout(out_dir, shard_rows, sampling) as tmp:
        jobs = [ClipJob(videos_dir / r["video"], r["split"], per_video[r["split"]], sampling,
                        frames_params.seed, int(r["frames"]) if "frames" in r else None,
                        tmp / slot.shard, slot.row) for r, slot in zip(records, slots)]
        work = _extract_one if run.shares_disk else _decode_one
        for r, slot, result in zip(records, slots, run.map(work, jobs, "extract")):
            if result.array is not None:  # sent back: the driver writes it, in job order
                write_rows(tmp / slot.shard, slot.row, result.array)
            if result.error:
                skipped.append({"video": r["video"], **result.error})
            else:
                rows += _index_rows(r, slot, result)
        _check_every_class(rows, classes)
        index = write_index(tmp, rows, FramesMeta(sampling, classes, k))
        write_json(tmp / FRAMES_REPORT, {"skipped": skipped})
    log.info("extract: %d clips from %d videos into %d shard(s); %d video(s) skipped%s",
             len(index), index.video.nunique(), len(shard_rows), len(skipped),
             f", see {out_dir / FRAMES_REPORT}" if skipped else "")
    return index
