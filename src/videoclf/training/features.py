"""The features stage: a frozen image backbone (``train.freeze_backbone``) run once over every
stored clip of the train and val splits, and its mirrored copy when training flips clips
(``train.augment.flip``), into float16 shards beside the frames' (same names, same rows), so
that train fits only what follows the backbone (``network.head_from_features``) and
``dvc exp run -S train.*`` never runs the backbone again.

A frozen backbone is the same function in every epoch, so its features of a stored clip are
too: caching them changes nothing but the time. What cannot be cached is a change of the
pixels the backbone sees, so with cached features ``train.augment.color`` and ``crop_area``
reach the motion pathway alone (the flip is cached, as its own copy). Test clips are scored
from pixels by the saved network, as always.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..artifacts import FEATURES_INFO, read_features_record, read_index, read_weights
from ..errors import VideoclfError
from ..outputs import staged_dir, write_json
from ..params import ModelParams, TrainParams
from ..video import Sampling

log = logging.getLogger(__name__)

_BATCH = 16  # clips a backbone call: 64 frames of MobileNetV3 at 128x128 is ~40 MB


class FeaturesError(VideoclfError):
    """The cached features are not those of this backbone, these weights or these clips."""


@dataclass(frozen=True)
class FeaturesInfo:
    """What the features stage cached: ``cached`` False (with ``why``) when train reads
    pixels; else the backbone, the SHA-256 of its weights (None: random), the frame stride,
    ``flips`` (2: each clip's mirrored copy too) and each shard's ``(rows, flips, T', C)``."""

    cached: bool
    why: str | None = None
    backbone: str | None = None
    weights_sha256: str | None = None
    appearance_stride: int | None = None
    flips: int | None = None
    shards: dict[str, list[int]] | None = None


def why_not_cached(model: ModelParams, train: TrainParams) -> str | None:
    """Why train reads pixels rather than cached features, or None (it reads features)."""
    if model.appearance_backbone == "r2plus1d":
        return "the (2+1)D appearance body trains (model.appearance_backbone: r2plus1d)"
    if not train.freeze_backbone:
        return "the image backbone trains (train.freeze_backbone: false)"
    if model.init:
        return "model.init gives the backbone's weights (a warm start trains from pixels)"
    if model.appearance_weights == "none":
        return "the frozen backbone's random weights are drawn by train (train.seed)"
    return None


def encoder(model_params: ModelParams, sampling: Sampling, classes: int, weights: Path | None):
    """The network's appearance pathway up to the per-frame features, with the weights
    train starts from: the same layers ``build_model`` builds, so the same function."""
    from .._tf import keras
    from .backbones.applications import FRAME_FEATURES, backbone_of
    from .backbones.weights import load_into
    from .network import build_model

    keras.backend.clear_session()
    net = build_model(model_params, sampling, classes)
    if weights is not None:
        load_into(backbone_of(net), weights, model_params.appearance_backbone)
    return keras.Model(net.input, net.get_layer(FRAME_FEATURES).output)


def _shard_features(enc, clips: np.ndarray, flips: int, bar: tqdm) -> np.ndarray:
    """``(rows, flips, T', C)`` float16 features of a shard's clips (flip 1: mirrored)."""
    out = None
    for i in range(0, len(clips), _BATCH):
        x = np.asarray(clips[i:i + _BATCH])
        views = [x, x[:, :, :, ::-1]][:flips]  # (B, T, H, W, 3): W is axis 3
        # predict_on_batch: one traced function for every batch (an eager call per batch
        # ran MobileNetV3 at a tenth of the speed)
        got = np.stack([enc.predict_on_batch(np.ascontiguousarray(v)) for v in views], axis=1)
        if out is None:
            out = np.empty((len(clips), *got.shape[1:]), np.float16)
        out[i:i + len(x)] = got
        bar.update(len(x))
    assert out is not None
    return out


def write_features(frames_dir: Path, weights_dir: Path, out_dir: Path, model: ModelParams,
                   train: TrainParams) -> FeaturesInfo:
    """The features folder: the shards and ``features.json`` (only that one, saying why, when
    train reads pixels)."""
    why = why_not_cached(model, train)
    if why:
        info = FeaturesInfo(cached=False, why=why)
        with staged_dir(out_dir) as tmp:
            write_json(tmp / FEATURES_INFO, asdict(info))
        log.info("features: none cached: %s", why)
        return info
    index, meta = read_index(frames_dir)
    winfo, weights = read_weights(weights_dir)
    if winfo.backbone != model.appearance_backbone:
        raise FeaturesError(f"{weights_dir}: weights of {winfo.backbone}, not "
                            f"{model.appearance_backbone} (rerun the weights stage)")
    enc = encoder(model, Sampling(**meta["sampling"]), len(meta["classes"]), weights)
    flips = 2 if train.augment.flip else 1
    used = index[index.split.isin(["train", "val"])]
    clips = {name: np.load(Path(frames_dir) / name, mmap_mode="r")
             for name in sorted(used.shard.unique())}
    rows = sum(len(c) for c in clips.values())
    shapes = {}
    with staged_dir(out_dir) as tmp, tqdm(total=rows, unit="clip",
                                          desc="features", mininterval=2) as bar:
        for name, shard in clips.items():
            feats = _shard_features(enc, shard, flips, bar)
            np.save(tmp / name, feats)
            shapes[name] = list(feats.shape)
        info = FeaturesInfo(True, None, model.appearance_backbone, winfo.sha256,
                            model.appearance_stride, flips, shapes)
        write_json(tmp / FEATURES_INFO, asdict(info))
    log.info("features: %s over %d clips%s in %d shards, %s per clip (float16)",
             model.appearance_backbone, rows, " and their mirror images" if flips == 2 else "",
             len(clips), "x".join(map(str, next(iter(shapes.values()))[2:])))
    return info


def read_features(features_dir: Path, model: ModelParams, train: TrainParams,
                  weights_sha256: str | None) -> FeaturesInfo:
    """The features stage's record, checked to be of this backbone, these weights, this
    stride and this flip (train refuses other features rather than fit on them)."""
    where = Path(features_dir) / FEATURES_INFO
    try:
        info = FeaturesInfo(**read_features_record(features_dir))
    except TypeError:
        raise FeaturesError(f"{where}: not the features stage's record (rerun features)") from None
    want = why_not_cached(model, train) is None
    if info.cached != want or (want and (
            info.backbone, info.weights_sha256, info.appearance_stride, info.flips) != (
            model.appearance_backbone, weights_sha256, model.appearance_stride,
            2 if train.augment.flip else 1)):
        raise FeaturesError(f"{where}: cached for other params or weights (rerun the features "
                            "stage: dvc repro features)")
    return info
