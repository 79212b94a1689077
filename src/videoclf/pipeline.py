"""tf.data input pipeline over the NPY shards: no Python call per clip.

Shards are loaded one at a time (one ``numpy_function`` call per shard, memory-mapped) and
interleaved, so a split larger than memory streams; clips are reshuffled every epoch from
``train.seed``. Randomness (the pick among the K clips of a video, the flip) uses stateless
ops seeded from ``Dataset.random``, so it is reproducible even with parallel ``map``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ._tf import tf

AUTOTUNE = tf.data.AUTOTUNE


def load_index(frames_dir: Path) -> tuple[pd.DataFrame, dict]:
    """The shard index and the extraction metadata (sampling, classes)."""
    frames_dir = Path(frames_dir)
    index = pd.read_parquet(frames_dir / "index.parquet")
    meta = json.loads((frames_dir / "meta.json").read_text())
    return index, meta


def _load_shard(path: bytes) -> np.ndarray:
    return np.load(path.decode(), mmap_mode="r")


def _flip(clip: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirror a (T, H, W, C) clip left-right with probability 1/2."""
    coin = tf.random.stateless_uniform([], seed=seed) < 0.5
    return tf.cond(coin, lambda: tf.reverse(clip, axis=[2]), lambda: clip)


def make_dataset(frames_dir: Path, index: pd.DataFrame, split: str, *, batch_size: int,
                 training: bool, seed: int = 0, flip: bool = False,
                 cycle_length: int = 2) -> tf.data.Dataset:
    """Batches of ``(uint8 clips [B, T, H, W, 3], int32 labels [B])`` for one split.

    Training: shard order and clips reshuffled every epoch, one of the K clips of each video
    picked at random per epoch, optional random flip. Otherwise: one pass in index order
    (clip 0 of each video).
    """
    frames_dir = Path(frames_dir)
    part = index[index.split == split]
    if part.empty:
        raise ValueError(f"no clip of split {split!r} in the index")
    k = int(part["clip"].max()) + 1 if training else 1
    heads = part[part["clip"] == 0].sort_values(["shard", "row"])
    shards = sorted(heads.shard.unique())
    base = tf.ragged.constant([heads.row[heads.shard == s].to_numpy(np.int64) for s in shards],
                              dtype=tf.int64)
    labels = tf.ragged.constant([heads.label[heads.shard == s].to_numpy(np.int32)
                                 for s in shards], dtype=tf.int32)
    paths = tf.constant([str(frames_dir / s) for s in shards])
    first = np.load(frames_dir / shards[0], mmap_mode="r")
    clip_shape = list(first.shape[1:])

    def shard_clips(i, rng_seed):
        arr = tf.numpy_function(_load_shard, [paths[i]], tf.uint8, stateful=False)
        arr = tf.ensure_shape(arr, [None, *clip_shape])
        rows = base[i]
        if k > 1:
            rows = rows + tf.random.stateless_uniform(tf.shape(rows), seed=rng_seed, minval=0,
                                                      maxval=k, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((tf.gather(arr, rows), labels[i]))

    n = len(shards)
    ids = tf.data.Dataset.range(n)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    if training:
        ids = ids.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ids, seeds).interleave(
        shard_clips, cycle_length=min(cycle_length, n), num_parallel_calls=AUTOTUNE,
        deterministic=True)
    if training:
        per_shard = int(heads.groupby("shard").size().max())
        ds = ds.shuffle(min(len(heads), per_shard * min(cycle_length, n)), seed=seed + 1,
                        reshuffle_each_iteration=True)
        if flip:
            flips = tf.data.Dataset.random(seed=seed + 2, rerandomize_each_iteration=True).batch(2)
            ds = tf.data.Dataset.zip(ds, flips).map(
                lambda xy, s: (_flip(xy[0], s), xy[1]), num_parallel_calls=AUTOTUNE,
                deterministic=True)
    # A known length lets Keras show progress and end epochs without a warning.
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(heads)))
    options = tf.data.Options()
    options.deterministic = True
    # Elements, not files, are split across workers: a shard list may be shorter than workers.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.batch(batch_size).prefetch(AUTOTUNE).with_options(options)
