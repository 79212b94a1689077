"""The frames layout, written in one place: uint8 NPY shards of clips, ``index.parquet`` (one
``IndexRow`` per clip) and ``meta.json`` (``FramesMeta``). The extract stage writes
``data/frames`` in it and the pretrain stage its pretext set, so train reads either one.

The shard and first row of every video are planned before any decoding (``plan_shards``:
every clip has one shape and each video a known number of clips), the parent allocates each
shard as a sparse NPY file, and pool workers write their rows through a memory map
(``write_rows``), sending back only a few numbers: nothing large is pickled, and the bytes do
not depend on the worker count. Rows of a video that fails stay zero; the index never points
at them. A video's clips never straddle two shards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import FRAMES_META, INDEX, INDEX_COLUMNS, SPLITS
from ..outputs import staged_dir, write_json, write_parquet
from ..video import Sampling


@dataclass(frozen=True)
class Slot:
    """Where a video's clips go: its shard's file name and first row."""

    shard: str
    row: int


@dataclass(frozen=True)
class IndexRow:
    """One clip of the index (``artifacts.INDEX_COLUMNS``; ``cls`` is the column ``class``)."""

    video: str
    cls: str
    label: int
    group: str
    split: str
    clip: int
    start: int
    shard: str
    row: int
    real_frames: int

    def record(self) -> dict:
        out = asdict(self)
        out["class"] = out.pop("cls")
        return {c: out[c] for c in INDEX_COLUMNS}


@dataclass(frozen=True)
class FramesMeta:
    """``meta.json``: how the clips were sampled, the class names in label order, and how
    many clips a training video has."""

    sampling: Sampling
    classes: list[str]
    train_clips_per_video: int

    def to_dict(self) -> dict:
        return {"sampling": self.sampling.to_dict(), "classes": list(self.classes),
                "train_clips_per_video": self.train_clips_per_video}


def plan_shards(splits: Sequence[str], clips_per_video: dict[str, int], clip_bytes: int,
                max_bytes: int) -> tuple[list[Slot], dict[str, int]]:
    """The slot of each video (``splits``: each video's split, in order) and the rows of
    every shard.

    Videos of one split fill ``<split>-00000.npy`` until the next video would pass
    ``max_bytes``, then the next shard (a single video larger than that gets a shard alone).
    """
    where: list[Slot] = []
    rows: dict[str, int] = {}
    count = {s: 0 for s in SPLITS}
    for split in splits:
        name = f"{split}-{count[split]:05d}.npy"
        n = clips_per_video[split]
        if rows.get(name, 0) and (rows[name] + n) * clip_bytes > max_bytes:
            count[split] += 1
            name = f"{split}-{count[split]:05d}.npy"
        where.append(Slot(name, rows.get(name, 0)))
        rows[name] = rows.get(name, 0) + n
    return where, rows


@contextmanager
def frames_layout(out_dir: Path, shard_rows: dict[str, int], sampling: Sampling
                  ) -> Iterator[Path]:
    """A staged folder with every shard allocated (zero rows, NPY header written); it
    replaces ``out_dir`` whole when the block ends without an error."""
    with staged_dir(out_dir) as tmp:
        for name, n in shard_rows.items():
            np.lib.format.open_memmap(tmp / name, mode="w+", dtype=np.uint8,
                                      shape=(n, *sampling.clip_shape)).flush()
        yield tmp


def write_rows(shard: Path, row: int, clips: np.ndarray) -> None:
    """Write ``clips`` into ``shard`` from ``row`` on (in a pool worker, through a memory
    map: only these rows' pages are touched)."""
    arr = np.load(shard, mmap_mode="r+")
    arr[row : row + len(clips)] = clips
    arr.flush()
    del arr


def write_index(folder: Path, rows: list[IndexRow], meta: FramesMeta) -> pd.DataFrame:
    """``index.parquet`` and ``meta.json`` into ``folder``; the index as written."""
    index = pd.DataFrame([r.record() for r in rows], columns=INDEX_COLUMNS)
    write_parquet(folder / INDEX, index)
    write_json(folder / FRAMES_META, meta.to_dict())
    return index
