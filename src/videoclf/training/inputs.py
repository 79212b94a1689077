"""tf.data input pipeline over the NPY shards: no Python call per clip.

Shards are loaded one at a time (one ``numpy_function`` call per shard, memory-mapped) and
interleaved, so a split larger than memory streams; clips are reshuffled every epoch from
``train.seed``. Every random choice is a stateless op seeded by (``train.seed``, epoch), so
it is reproducible with parallel ``map`` and an epoch is the same in a resumed run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._tf import tf
from ..choices import Balance

AUTOTUNE = tf.data.AUTOTUNE


def _load_shard(path: bytes) -> np.ndarray:
    return np.load(path.decode(), mmap_mode="r")


def _flip(x, label: tf.Tensor, seed: tf.Tensor, mirror: tf.Tensor):
    """Mirror a clip left-right with probability 1/2; a mirrored clip takes the label of its
    mirror-image class (``mirror[label]``, itself for most classes). ``x``: a (T, H, W, C)
    clip, its cached features ``(flips, T', C)`` (copy 1 is the mirrored clip's), or both."""
    coin = tf.random.stateless_uniform([], seed=seed) < 0.5

    def mirrored(part):
        if part.dtype == tf.uint8:
            return tf.cond(coin, lambda: tf.reverse(part, axis=[2]), lambda: part)
        return tf.cond(coin, lambda: part[1], lambda: part[0])

    x = tuple(mirrored(p) for p in x) if isinstance(x, tuple) else mirrored(x)
    return x, tf.where(coin, tf.gather(mirror, label), label)


def _unflipped(x):
    """Cached features as an unmirrored clip's (copy 0); clips unchanged."""
    pick = lambda part: part if part.dtype == tf.uint8 else part[0]
    return tuple(pick(p) for p in x) if isinstance(x, tuple) else pick(x)


def _on_pixels(x, change):
    """``change`` applied to the clip of an element (cached features have no pixels)."""
    if isinstance(x, tuple):
        return (change(x[0]), *x[1:])
    return change(x) if x.dtype == tf.uint8 else x


# The six orders of three colour channels.
_PERMUTATIONS = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]


def _recolor(clip: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One random colour change for a whole (T, H, W, 3) uint8 clip: its channels in one of
    six orders, and with probability 1/2 its negative (255 - x). A thing's colour, and whether
    it is lighter or darker than what is behind it, stop being evidence for its class, so a
    network cannot learn a training actor's colour in place of its motion; the motion is
    unchanged (frame differences only change sign)."""
    draw = tf.random.stateless_uniform([2], seed=seed)
    order = tf.gather(tf.constant(_PERMUTATIONS, tf.int32),
                      tf.cast(draw[0] * len(_PERMUTATIONS), tf.int32))
    clip = tf.gather(clip, order, axis=-1)
    return tf.cond(draw[1] < 0.5, lambda: 255 - clip, lambda: clip)


def _crop(clip: tf.Tensor, seed: tf.Tensor, min_area: float) -> tf.Tensor:
    """One random crop of a whole (T, H, W, 3) uint8 clip, resized back to (H, W): a box of
    ``min_area`` to all of the frame's area, aspect ratio 3/4 to 4/3, anywhere in the frame
    (Inception's and MMAction2's RandomResizedCrop, one box for every frame so that no motion
    is made up). The scene is seen closer and elsewhere in the frame, so a training group's
    layout stops being evidence; what kind of structure it is stays."""
    shape = tf.shape(clip)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape[1:], tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed, min_object_covered=0.0,
        aspect_ratio_range=(0.75, 1.0 / 0.75), area_range=(min_area, 1.0), max_attempts=20,
        use_image_if_no_bounding_boxes=True)
    box = tf.slice(clip, tf.concat([[0], begin], 0), tf.concat([[-1], size], 0))
    resized = tf.image.resize(box, shape[1:3], method="bilinear")
    out = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return tf.ensure_shape(out, clip.shape)  # the static shape the network is built for


def mirror_labels(classes: list[str], pairs: Sequence[Sequence[str]]
                  ) -> tuple[list[int], list[str]]:
    """The label each class takes when its clip is mirrored, and notes on ignored pairs.

    A pair naming two classes of the data swaps them; a pair naming neither is ignored (the
    default lists the built-in styles' pairs); a pair naming only one is an error, since the
    mirror image of a class cannot be missing from the data.
    """
    mirror = list(range(len(classes)))
    notes = []
    for a, b in pairs:
        have = [c in classes for c in (a, b)]
        if all(have):
            ia, ib = classes.index(a), classes.index(b)
            mirror[ia], mirror[ib] = ib, ia
        elif any(have):
            present, absent = (a, b) if have[0] else (b, a)
            raise ValueError(f"train.augment.flip_pairs: [{a}, {b}]: {absent} is not a class "
                             f"of this data set, so {present} has no mirror image here")
        else:
            notes.append(f"[{a}, {b}]")
    return mirror, notes


def class_balance(index: pd.DataFrame, kind: Balance) -> tuple[list[int] | None,
                                                        list[float] | None]:
    """For ``train.balance``: per label, how often a training video is used per epoch
    (``sample``: every class about as often as the largest, the factor ``n_max / n_c``
    rounded; ``sqrt``: the square root of that factor, rounded, as LVIS's and MMAction2's
    repeat-factor sampling, which lifts the small classes without showing their few videos
    over and over) or its loss weight (``weight``: inverse frequency, mean 1 over the
    training videos); ``(None, None)`` for ``none``."""
    if kind == "none":
        return None, None
    heads = index[(index.split == "train") & (index["clip"] == 0)]
    labels = int(index.label.max()) + 1
    counts = np.bincount(heads.label.to_numpy(), minlength=labels)
    if kind in ("sample", "sqrt"):
        power = 1.0 if kind == "sample" else 0.5
        return [max(1, int(round((counts.max() / c) ** power))) if c else 1
                for c in counts], None
    present = int((counts > 0).sum())
    return None, [len(heads) / (present * c) if c else 0.0 for c in counts]


def _heads(part: pd.DataFrame, repeat: Sequence[int] | None) -> pd.DataFrame:
    """Clip 0 of every video in shard order, each ``repeat[label]`` times (consecutive: the
    shuffle that follows spreads them, and each draw picks its own clip and flip)."""
    heads = part[part["clip"] == 0].sort_values(["shard", "row"])
    if repeat is not None:
        heads = heads.loc[heads.index.repeat(np.asarray(repeat)[heads.label.to_numpy()])]
    return heads


@dataclass(frozen=True)
class Stream:
    """How a training split is read: the epochs ``first_epoch`` to ``first_epoch + epochs``,
    one batch after another, with every random choice seeded by (``seed``, epoch). ``flip``,
    ``color``, ``crop_area`` (``train.augment``); ``mirror``: the label of each class once
    mirrored (``mirror_labels``); ``repeat`` and ``weights`` (``class_balance``): videos used
    several times an epoch, or ``(x, y, sample_weight)`` batches; ``cycle_length``: shards
    read at once."""

    seed: int
    flip: bool
    color: bool
    crop_area: float
    first_epoch: int
    epochs: int
    mirror: Sequence[int] | None = None
    repeat: Sequence[int] | None = None
    weights: Sequence[float] | None = None
    cycle_length: int = 2

    @classmethod
    def plain(cls, seed: int) -> Stream:
        """One epoch in epoch 0's order, unaugmented: training clips as inference sees them."""
        return cls(seed, flip=False, color=False, crop_area=1.0, first_epoch=0, epochs=1)


@dataclass(frozen=True)
class _Shards:
    """The clips of one split, by shard: their first rows and labels, for tf.data."""

    heads: pd.DataFrame
    paths: tf.Tensor
    rows: tf.RaggedTensor
    labels: tf.RaggedTensor
    clip_shape: list[int]
    per_shard: int
    pixels: bool = True
    features: tf.Tensor | None = None  # the shards' cached features (features stage)
    feature_shape: list[int] | None = None

    @classmethod
    def of(cls, frames_dir: Path, part: pd.DataFrame, repeat: Sequence[int] | None,
           features_dir: Path | None = None, pixels: bool = True) -> _Shards:
        heads = _heads(part, repeat)
        shards = sorted(heads.shard.unique())
        cached: dict = {}
        if features_dir is not None:
            first_features = np.load(Path(features_dir) / shards[0], mmap_mode="r")
            cached = dict(features=tf.constant([str(Path(features_dir) / s) for s in shards]),
                          feature_shape=list(first_features.shape[1:]))
        rows = tf.ragged.constant([heads.row[heads.shard == s].to_numpy(np.int64)
                                   for s in shards], dtype=tf.int64)
        labels = tf.ragged.constant([heads.label[heads.shard == s].to_numpy(np.int32)
                                     for s in shards], dtype=tf.int32)
        first = np.load(frames_dir / shards[0], mmap_mode="r")
        return cls(heads, tf.constant([str(frames_dir / s) for s in shards]), rows, labels,
                   list(first.shape[1:]), int(heads.groupby("shard").size().max()),
                   pixels, **cached)

    @property
    def n(self) -> int:
        return int(self.paths.shape[0])

    def clips(self, i, k: int, pick_seed):
        """Shard i's clips (one of each video's ``k``, picked by ``pick_seed``) and labels:
        the clips, their cached features (float32), or both, as the shards hold them."""
        rows = self.rows[i]
        if k > 1:
            rows = rows + tf.random.stateless_uniform(tf.shape(rows), seed=pick_seed, minval=0,
                                                      maxval=k, dtype=tf.int64)
        parts = []
        if self.pixels:
            arr = tf.numpy_function(_load_shard, [self.paths[i]], tf.uint8, stateful=False)
            parts.append(tf.gather(tf.ensure_shape(arr, [None, *self.clip_shape]), rows))
        if self.features is not None:
            feats = tf.numpy_function(_load_shard, [self.features[i]], tf.float16,
                                      stateful=False)
            feats = tf.ensure_shape(feats, [None, *(self.feature_shape or [])])
            parts.append(tf.cast(tf.gather(feats, rows), tf.float32))
        x = parts[0] if len(parts) == 1 else tuple(parts)
        return tf.data.Dataset.from_tensor_slices((x, self.labels[i]))


def _augmented(ds: tf.data.Dataset, stream: Stream, table: tf.Tensor, pair,
               shards: _Shards) -> tf.data.Dataset:
    """The flip, then the colour change, then the crop, each with its own seeds (purposes
    2, 3, 4), so turning one on leaves the others' draws as they were."""
    if stream.flip:
        ds = ds.enumerate().map(lambda j, xy: _flip(xy[0], xy[1], pair(2, j), table),
                                num_parallel_calls=AUTOTUNE, deterministic=True)
    if stream.color:
        ds = ds.enumerate().map(
            lambda j, xy: (_on_pixels(xy[0], lambda c: _recolor(c, pair(3, j))), xy[1]),
            num_parallel_calls=AUTOTUNE, deterministic=True)
    if stream.crop_area < 1.0:
        ds = ds.enumerate().map(
            lambda j, xy: (_on_pixels(xy[0], lambda c: _crop(c, pair(4, j), stream.crop_area)),
                           xy[1]),
            num_parallel_calls=AUTOTUNE, deterministic=True)
    if shards.features is not None and not stream.flip:
        ds = ds.map(lambda x, y: (_unflipped(x), y), num_parallel_calls=AUTOTUNE,
                    deterministic=True)
    return ds


def _epoch_fn(shards: _Shards, stream: Stream | None, k: int, table: tf.Tensor,
              batch_size: int):
    """The batches of one epoch (a tensor), shuffled and augmented when ``stream`` is set."""
    seed = stream.seed if stream else 0
    cycle = min(stream.cycle_length if stream else 2, shards.n)

    def one_epoch(epoch):
        # Seeds of this epoch: (seed, epoch, purpose), as stateless seed pairs.
        def pair(purpose, j):
            return tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + epoch,
                             tf.cast(purpose, tf.int64) * 1_000_003 + tf.cast(j, tf.int64)])

        ids = tf.data.Dataset.range(shards.n)
        if stream:
            ids = ids.shuffle(shards.n, seed=tf.cast(seed, tf.int64) * 7919 + epoch,
                              reshuffle_each_iteration=False)
        ids = ids.map(lambda i: (i, pair(1, i)))
        ds = ids.interleave(lambda i, s: shards.clips(i, k, s), cycle_length=cycle,
                            num_parallel_calls=AUTOTUNE, deterministic=True)
        if stream:
            ds = ds.shuffle(min(len(shards.heads), shards.per_shard * cycle),
                            seed=tf.cast(seed + 1, tf.int64) * 7919 + epoch,
                            reshuffle_each_iteration=False)
            ds = _augmented(ds, stream, table, pair, shards)
        elif shards.features is not None:
            ds = ds.map(lambda x, y: (_unflipped(x), y), num_parallel_calls=AUTOTUNE,
                        deterministic=True)
        return ds.batch(batch_size)

    return one_epoch


def make_dataset(frames_dir: Path, index: pd.DataFrame, split: str, *, batch_size: int,
                 stream: Stream | None, features_dir: Path | None = None,
                 pixels: bool = True) -> tf.data.Dataset:
    """Batches of ``(uint8 clips [B, T, H, W, 3], int32 labels [B])`` for one split.

    ``stream`` (training): the batches of its epochs one after the other (``fit(...,
    steps_per_epoch=steps(...))`` reads them as epochs). Every random choice of epoch ``e``
    — shard order, clip order, which of the K clips of a video, the flip, the colour change
    (``_recolor``), the crop (``_crop``) — comes from stateless ops seeded by ``(seed, e)``
    alone, so epoch ``e`` is the same whether the run started at epoch 0 or resumed at ``e``
    after an interruption. ``None``: one pass in index order (clip 0 of each video).
    ``features_dir`` (the features stage's): each clip's cached appearance features, after
    the clip (``(clip, features)``) or, ``pixels=False``, in its place.
    """
    frames_dir = Path(frames_dir)
    part = index[index.split == split]
    if part.empty:
        raise ValueError(f"no clip of split {split!r} in the index")
    shards = _Shards.of(frames_dir, part, stream.repeat if stream else None, features_dir,
                        pixels)
    k = int(part["clip"].max()) + 1 if stream else 1
    mirror = stream.mirror if stream and stream.mirror is not None else None
    table = tf.constant(mirror if mirror is not None
                        else np.arange(int(index.label.max()) + 1), tf.int32)
    one_epoch = _epoch_fn(shards, stream, k, table, batch_size)
    if stream:
        ds = tf.data.Dataset.range(stream.first_epoch, stream.first_epoch + stream.epochs
                                   ).flat_map(one_epoch)
        batches = steps(index, split, batch_size, stream.repeat) * stream.epochs
        if stream.weights is not None:  # of the label each clip trains with (mirrored too)
            w = tf.constant(stream.weights, tf.float32)
            ds = ds.map(lambda x, y: (x, y, tf.gather(w, y)), num_parallel_calls=AUTOTUNE,
                        deterministic=True)
    else:
        ds = one_epoch(tf.constant(0, tf.int64))
        batches = steps(index, split, batch_size)
    return _finish(ds, batches)


def _finish(ds: tf.data.Dataset, batches: int) -> tf.data.Dataset:
    # A known length lets Keras show progress and end epochs without a warning.
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    options = tf.data.Options()
    options.deterministic = True
    # Elements, not files, are split across workers: a shard list may be shorter than workers.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.prefetch(AUTOTUNE).with_options(options)


def steps(index: pd.DataFrame, split: str, batch_size: int,
          repeat: Sequence[int] | None = None) -> int:
    """Batches in one epoch of ``split`` (one clip per video, ``repeat[label]`` times)."""
    heads = index[(index.split == split) & (index["clip"] == 0)]
    videos = len(heads) if repeat is None else int(np.asarray(repeat)[heads.label].sum())
    return -(-videos // batch_size)
