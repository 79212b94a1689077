"""The extract stage: decode every clip once into uint8 NPY shards with a Parquet index.

Videos are decoded by a process pool, results come back in manifest order and stream into
shards of at most ``frames.shard_mb`` (a video's clips never straddle two shards), so memory
stays flat and the bytes written do not depend on the number of workers.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import os
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .dataset import SPLITS, DatasetError
from .frames import Sampling, VideoError, eval_starts, read_clips, train_starts
from .outputs import staged_dir, write_json, write_parquet

log = logging.getLogger(__name__)

INDEX_COLUMNS = ["video", "class", "label", "group", "split", "clip", "shard", "row",
                 "real_frames"]


def _starts(split: str, clips: int, sampling: Sampling, seed: int, name: str):
    if split == "train":
        return partial(train_starts, k=clips, sampling=sampling, seed=seed, name=name)
    return partial(eval_starts, k=1, sampling=sampling)


def _extract_one(job: tuple[Path, str, int, Sampling, int]):
    path, split, clips, sampling, seed = job
    try:
        arr, real, _ = read_clips(path, _starts(split, clips, sampling, seed, path.name), sampling)
        return arr, real, None
    except VideoError as e:
        return None, None, str(e)


def map_videos(func, jobs: list, workers: int, desc: str):
    """Yield ``func(job)`` in job order, over a process pool when ``workers`` > 1."""
    if workers <= 1:
        yield from tqdm(map(func, jobs), total=len(jobs), desc=desc, unit="video", leave=False,
                        disable=None)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    # Forked children share the parent's heap (TensorFlow included) copy-on-write; frozen
    # objects are never visited by the children's garbage collector, so pages stay shared.
    gc.freeze()
    try:
        with ctx.Pool(workers) as pool:
            yield from tqdm(pool.imap(func, jobs, chunksize=4), total=len(jobs), desc=desc,
                            unit="video", leave=False, disable=None)
    finally:
        gc.unfreeze()


class _ShardWriter:
    def __init__(self, folder: Path, split: str, max_bytes: int):
        self.folder, self.split, self.max_bytes = folder, split, max_bytes
        self.buffer: list[np.ndarray] = []
        self.bytes = 0
        self.count = 0

    @property
    def name(self) -> str:
        return f"{self.split}-{self.count:05d}.npy"

    def add(self, clips: np.ndarray) -> tuple[str, int]:
        """Queue a video's clips; returns (shard, first row)."""
        if self.buffer and self.bytes + clips.nbytes > self.max_bytes:
            self.flush()
        row = sum(len(b) for b in self.buffer)
        self.buffer.append(clips)
        self.bytes += clips.nbytes
        return self.name, row

    def flush(self) -> None:
        if not self.buffer:
            return
        tmp = self.folder / f".{self.name}.tmp"
        n = sum(len(b) for b in self.buffer)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                  "fortran_order": False, "shape": (n, *self.buffer[0].shape[1:])}
        with open(tmp, "wb") as f:
            # The NPY header, then each video's bytes: no concatenated copy of the shard.
            np.lib.format.write_array_header_1_0(f, header)
            for clips in self.buffer:
                f.write(np.ascontiguousarray(clips, dtype=np.uint8).data)
        os.replace(tmp, self.folder / self.name)
        self.buffer, self.bytes = [], 0
        self.count += 1


def extract(manifest: pd.DataFrame, videos_dir: Path, out_dir: Path, frames_params: dict,
            classes: list[str]) -> pd.DataFrame:
    """Write ``out_dir/{split}-NNNNN.npy``, ``index.parquet``, ``meta.json`` and ``report.json``."""
    sampling = Sampling.from_params(frames_params)
    k = frames_params["train_clips_per_video"]
    workers = frames_params["workers"] or os.cpu_count() or 1
    max_bytes = frames_params["shard_mb"] * 2**20
    order = manifest.split.map(SPLITS.index)
    records = manifest.assign(_order=order).sort_values(["_order", "video"]).to_dict("records")
    jobs = [(videos_dir / r["video"], r["split"], k, sampling, frames_params["seed"])
            for r in records]
    log.info("extract: %d videos, %dx%dx%d every %d frames (%s), %d clip(s) per train video, "
             "%d worker(s)", len(jobs), sampling.n_frames, sampling.height, sampling.width,
             sampling.frame_step, sampling.short_video, k, workers)
    rows, skipped = [], []
    with staged_dir(out_dir) as tmp:
        writers = {s: _ShardWriter(tmp, s, max_bytes) for s in SPLITS}
        results = map_videos(_extract_one, jobs, workers, "extract")
        for r, (clips, real, error) in zip(records, results):
            if error:
                skipped.append({"video": r["video"], "reason": error})
                continue
            shard, row = writers[r["split"]].add(clips)
            for c in range(len(clips)):
                rows.append({**{key: r[key] for key in ("video", "class", "label", "group",
                                                        "split")},
                             "clip": c, "shard": shard, "row": row + c, "real_frames": real[c]})
        for w in writers.values():
            w.flush()
        index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
        have = set(zip(index.split, index["class"]))
        missing = [f"{s}/{c}" for s in SPLITS for c in classes if (s, c) not in have]
        if missing:
            raise DatasetError(f"extract: no decodable clip for {', '.join(missing)}")
        write_parquet(tmp / "index.parquet", index)
        write_json(tmp / "meta.json", {"sampling": sampling.to_dict(), "classes": classes,
                                       "train_clips_per_video": k})
        write_json(tmp / "report.json", {"skipped": skipped})
    log.info("extract: %d clips from %d videos into %d shard(s); %d video(s) skipped%s",
             len(index), index.video.nunique(), sum(w.count for w in writers.values()),
             len(skipped), f", see {out_dir / 'report.json'}" if skipped else "")
    return index
