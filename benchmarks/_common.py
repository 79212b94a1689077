"""Shared by the benchmarks: the videos to measure on, and the tutorial's per-clip decoding."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from videoclf.data.download import download
from videoclf.params import load

ROOT = Path(__file__).resolve().parents[1]

# Student's t at 97.5% for n - 1 degrees of freedom (n seeds or runs), for 95% intervals.
T975 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}


def project_params(changes: dict | None = None) -> dict:
    """The project's params.yaml (the one source of defaults) with ``changes``."""
    return load(ROOT / "params.yaml", changes)


def overrides(items: list[str], changes: dict | None = None) -> dict:
    """``KEY=VALUE`` params overrides (dotted keys, YAML values, as ``dvc exp run -S``) as the
    nested dict ``project_params`` takes, added to ``changes``."""
    import yaml

    changes = {} if changes is None else changes
    for item in items:
        key, _, value = item.partition("=")
        *parents, last = key.split(".")
        node = changes
        for k in parents:
            node = node.setdefault(k, {})
        node[last] = yaml.safe_load(value)
    return changes


def videos_and_frames(p, work: Path, frames: Path | None = None
                      ) -> tuple[pd.DataFrame, Path, Path]:
    """The download and extract stages' outputs for params ``p`` under ``work`` (kept
    between runs of a benchmark): the manifest, the videos folder and the frames folder
    (``frames``, else ``work/frames``)."""
    from videoclf.artifacts import read_classes, read_manifest
    from videoclf.data.extract import extract

    videos, frames = work / "videos", frames or work / "frames"
    if not (videos / "manifest.parquet").exists():
        download(p.data, videos, work / ".staging")
    manifest = read_manifest(videos)
    if not (frames / "index.parquet").exists():
        extract(manifest, videos, frames, p.frames, read_classes(videos))
    return manifest, videos, frames


def videos_for_benchmark(n: int, workdir: Path, videos_dir: Path = Path("data/videos")
                         ) -> tuple[pd.DataFrame, Path]:
    """``n`` videos from ``data/videos`` if the pipeline ran, else built-in ones generated now."""
    manifest_path = videos_dir / "manifest.parquet"
    if manifest_path.exists():
        m = pd.read_parquet(manifest_path)
        if len(m) >= n:
            return m.sort_values("video").head(n).reset_index(drop=True), videos_dir
    per = -(-n // 10)
    per_class = {"train": max(1, per - 2), "val": 1, "test": 1}
    data = project_params({"data": {"per_class": per_class}}).data
    out = workdir / "videos"
    m = download(data, out, workdir / "staging")
    return m.sort_values("video").head(n).reset_index(drop=True), out


def tutorial_frames_from_video_file(path: str, n_frames: int, output_size, frame_step: int):
    """The tutorial's ``frames_from_video_file`` (TUTORIAL-NOTES.md), with only its start fixed.

    One process; ``read()`` (decode + convert) of every frame; ``tf.image.resize_with_pad`` on
    float32 frames.
    """
    from videoclf._tf import tf

    def format_frames(frame):
        frame = tf.image.convert_image_dtype(frame, tf.float32)
        return tf.image.resize_with_pad(frame, *output_size)

    result = []
    src = cv2.VideoCapture(str(path))
    video_length = int(src.get(cv2.CAP_PROP_FRAME_COUNT))
    need_length = 1 + (n_frames - 1) * frame_step
    if need_length > video_length:
        start = 0
    else:
        start = random.randint(0, video_length - need_length)
    src.set(cv2.CAP_PROP_POS_FRAMES, start)
    ret, frame = src.read()
    result.append(format_frames(frame))
    for _ in range(n_frames - 1):
        for _ in range(frame_step):
            ret, frame = src.read()
        if ret:
            result.append(format_frames(frame))
        else:
            result.append(np.zeros_like(result[0]))
    src.release()
    return np.array(result)[..., [2, 1, 0]]
