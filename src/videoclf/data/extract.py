"""The extract stage: decode every clip once into uint8 NPY shards with a Parquet index.

The shard and row of every video are planned from the manifest before any decoding (every
clip has the same shape, and each split a fixed number of clips per video), so the workers
write their clips straight into the shard files (memory-mapped) and send back only a few
numbers; the parent writes the index. Which shard a video lands in depends on the video
order and ``frames.shard_mb`` alone, never on the worker count, so the bytes are the same
for any ``frames.workers``. A video's clips never straddle two shards.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import FRAMES_META, FRAMES_REPORT, INDEX, INDEX_COLUMNS, SPLITS, clips_per_video
from ..outputs import staged_dir, write_json, write_parquet
from ..params import FramesParams
from ..pool import map_videos
from ..video import Sampling, VideoError, eval_starts, read_clips, train_starts
from .splits import DatasetError

log = logging.getLogger(__name__)



def _starts(split: str, clips: int, sampling: Sampling, seed: int, name: str):
    if split == "train":
        return partial(train_starts, k=clips, sampling=sampling, seed=seed, name=name)
    return partial(eval_starts, k=1, sampling=sampling)


def _extract_one(job: dict) -> tuple[list[int], list[int], dict | None]:
    """Decode one video's clips into its rows of its shard; return (real frames, starts, error)."""
    try:
        clips = read_clips(job["path"], _starts(job["split"], job["k"], job["sampling"],
                                                job["seed"], job["path"].name),
                           job["sampling"], length=job["length"])
    except VideoError as e:
        return [], [], e.report()
    shard = np.load(job["shard"], mmap_mode="r+")
    shard[job["row"] : job["row"] + len(clips.array)] = clips.array
    shard.flush()
    del shard
    return clips.real_frames, clips.starts, None


def plan_shards(records: list[dict], clips_per_video: dict[str, int], clip_bytes: int,
                max_bytes: int) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """(shard name, first row) for each record, in order, and the rows of every shard.

    Records of one split fill ``<split>-00000.npy`` until the next video would pass
    ``max_bytes``, then the next shard (a single video larger than that gets a shard alone).
    """
    where: list[tuple[str, int]] = []
    rows: dict[str, int] = {}
    count = {s: 0 for s in SPLITS}
    for r in records:
        split = r["split"]
        name = f"{split}-{count[split]:05d}.npy"
        n = clips_per_video[split]
        if rows.get(name, 0) and (rows[name] + n) * clip_bytes > max_bytes:
            count[split] += 1
            name = f"{split}-{count[split]:05d}.npy"
        where.append((name, rows.get(name, 0)))
        rows[name] = rows.get(name, 0) + n
    return where, rows


def extract(manifest: pd.DataFrame, videos_dir: Path, out_dir: Path, frames_params: FramesParams,
            classes: list[str]) -> pd.DataFrame:
    """Write ``out_dir/{split}-NNNNN.npy``, ``index.parquet``, ``meta.json`` and ``report.json``.

    Rows of a video that fails to decode stay zero in its shard; the index never points at them.
    """
    sampling = frames_params.sampling
    k = frames_params.train_clips_per_video
    per_video = {s: clips_per_video(s, k) for s in SPLITS}
    workers = frames_params.workers or os.cpu_count() or 1
    max_bytes = frames_params.shard_mb * 2**20
    clip_shape = (sampling.n_frames, sampling.height, sampling.width, 3)
    order = manifest.split.map(SPLITS.index)
    records = manifest.assign(_order=order).sort_values(["_order", "video"]).to_dict("records")
    where, shard_rows = plan_shards(records, per_video, int(np.prod(clip_shape)), max_bytes)
    log.info("extract: %d videos, %dx%dx%d every %d frames (%s), %d clip(s) per train video, "
             "%d worker(s)", len(records), sampling.n_frames, sampling.height, sampling.width,
             sampling.frame_step, sampling.short_video, k, workers)
    rows, skipped = [], []
    with staged_dir(out_dir) as tmp:
        for name, n in shard_rows.items():
            # A sparse file of the right size with its NPY header; workers fill the rows.
            np.lib.format.open_memmap(tmp / name, mode="w+", dtype=np.uint8,
                                      shape=(n, *clip_shape)).flush()
        jobs = [{"path": videos_dir / r["video"], "split": r["split"], "k": per_video[r["split"]],
                 "sampling": sampling, "seed": frames_params.seed,
                 "length": int(r["frames"]) if "frames" in r else None,
                 "shard": tmp / shard, "row": row} for r, (shard, row) in zip(records, where)]
        results = map_videos(_extract_one, jobs, workers, "extract")
        for r, (shard, row), (real, starts, error) in zip(records, where, results):
            if error:
                skipped.append({"video": r["video"], **error})
                continue
            for c in range(len(starts)):
                rows.append({**{key: r[key] for key in ("video", "class", "label", "group",
                                                        "split")},
                             "clip": c, "start": starts[c], "shard": shard, "row": row + c,
                             "real_frames": real[c]})
        index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
        have = set(zip(index.split, index["class"]))
        missing = [f"{s}/{c}" for s in SPLITS for c in classes if (s, c) not in have]
        if missing:
            raise DatasetError(f"extract: no decodable clip for {', '.join(missing)}")
        write_parquet(tmp / INDEX, index)
        write_json(tmp / FRAMES_META, {"sampling": sampling.to_dict(), "classes": classes,
                                       "train_clips_per_video": k})
        write_json(tmp / FRAMES_REPORT, {"skipped": skipped})
    log.info("extract: %d clips from %d videos into %d shard(s); %d video(s) skipped%s",
             len(index), index.video.nunique(), len(shard_rows), len(skipped),
             f", see {out_dir / FRAMES_REPORT}" if skipped else "")
    return index
