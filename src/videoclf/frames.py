"""Frame sampling as the tutorial's ``frames_from_video_file``, made correct and deterministic.

A clip is ``n_frames`` frames taken every ``frame_step`` frames from a start frame, letterboxed
to ``height x width`` with the geometry of ``tf.image.resize_with_pad`` and converted to RGB.
Fixes against the tutorial: the start lies in ``[0, length - need]`` (no off-by-one), it comes
from a hash of (seed, video name) rather than a global RNG, a failed first read is an error
for that video rather than a crash, and short videos loop (as MMAction2) or pad with black.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from .seeding import derive_seed


class VideoError(RuntimeError):
    """A video that OpenCV cannot decode."""


@dataclass(frozen=True)
class Sampling:
    n_frames: int
    frame_step: int
    height: int
    width: int
    short_video: str = "loop"

    @property
    def need(self) -> int:
        """Frames spanned by one clip."""
        return 1 + (self.n_frames - 1) * self.frame_step

    @classmethod
    def from_params(cls, frames: dict) -> "Sampling":
        return cls(frames["n_frames"], frames["frame_step"], frames["height"], frames["width"],
                   frames["short_video"])

    def to_dict(self) -> dict:
        return asdict(self)


def train_starts(length: int, k: int, sampling: Sampling, seed: int, name: str) -> list[int]:
    """K start frames for a training video: one hashed offset in each of K equal strata."""
    max_start = max(0, length - sampling.need)
    width = (max_start + 1) / k
    starts = []
    for i in range(k):
        u = np.random.default_rng(derive_seed(seed, Path(name).name, i)).random()
        starts.append(min(max_start, int(math.floor((i + u) * width))))
    return starts


def eval_starts(length: int, k: int, sampling: Sampling) -> list[int]:
    """K evenly spaced start frames, each centred in its stratum (K=1: the centre clip)."""
    max_start = max(0, length - sampling.need)
    width = (max_start + 1) / k
    return [min(max_start, int(math.floor((i + 0.5) * width))) for i in range(k)]


def clip_indices(length: int, start: int, sampling: Sampling) -> list[int | None]:
    """Frame numbers of one clip; ``None`` stands for a black padding frame."""
    idx: list[int | None] = []
    for i in range(sampling.n_frames):
        f = start + i * sampling.frame_step
        if f < length:
            idx.append(f)
        elif sampling.short_video == "loop":
            idx.append(f % length)
        else:
            idx.append(None)
    return idx


def letterbox_geometry(h: int, w: int, out_h: int, out_w: int) -> tuple[int, int, int, int]:
    """(resized_h, resized_w, pad_top, pad_left) exactly as ``tf.image.resize_with_pad``."""
    ratio = max(w / out_w, h / out_h)
    rh, rw = h / ratio, w / ratio
    return (int(math.floor(rh)), int(math.floor(rw)),
            max(0, int(math.floor((out_h - rh) / 2))), max(0, int(math.floor((out_w - rw) / 2))))


def letterbox(frame: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize keeping the aspect ratio (INTER_AREA), pad with black, BGR to RGB; uint8."""
    rh, rw, top, left = letterbox_geometry(frame.shape[0], frame.shape[1], out_h, out_w)
    out = np.zeros((out_h, out_w, 3), np.uint8)
    resized = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_AREA)
    out[top : top + rh, left : left + rw] = resized[..., ::-1]
    return out


def open_video(path: Path) -> cv2.VideoCapture:
    """An FFmpeg capture decoding on one thread: processes, not codec threads, give the
    parallelism (two codec threads per process made two processes slower than one)."""
    return cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])


def frame_count(path: Path) -> int:
    cap = open_video(path)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


def probe(path: Path) -> str | None:
    """None if OpenCV decodes a first frame of the video, else the reason it does not."""
    if Path(path).stat().st_size == 0:
        return "empty file"
    cap = open_video(path)
    try:
        if not cap.isOpened():
            return "OpenCV cannot open it as a video"
        ok, _ = cap.read()
        return None if ok else "OpenCV opens it but decodes no frame"
    finally:
        cap.release()


def _decode(path: Path, wanted: set[int], sampling: Sampling) -> tuple[dict[int, np.ndarray], int]:
    """Decode frames in ``wanted`` in one forward pass; returns them and the frames seen."""
    cap = open_video(path)
    if not cap.isOpened():
        raise VideoError("OpenCV cannot open it as a video")
    got: dict[int, np.ndarray] = {}
    last = max(wanted)
    i = min(wanted)
    try:
        # FFmpeg seeks to the keyframe before frame i and decodes forward to it exactly,
        # which skips most of the frames before a clip.
        if i > 0 and not cap.set(cv2.CAP_PROP_POS_FRAMES, i):
            i = 0
        while i <= last:
            # grab() decodes without converting; only kept frames pay for retrieve().
            if not cap.grab():
                break
            if i in wanted:
                ok, frame = cap.retrieve()
                if not ok:
                    break
                got[i] = letterbox(frame, sampling.height, sampling.width)
            i += 1
    finally:
        cap.release()
    return got, i


def read_clips(path: Path, starts_for, sampling: Sampling) -> tuple[np.ndarray, list[int], int]:
    """Clips ``[K, T, H, W, 3]`` uint8 RGB from ``path``.

    ``starts_for(length)`` gives the K start frames for a video of that many frames. The frame
    count in the header is trusted first; if decoding ends early the clips are sampled again
    from the frames that really exist. Returns the clips, real frames per clip, and the length.
    """
    if not Path(path).is_file():
        raise VideoError("no such file")
    try:
        return _read_clips(Path(path), starts_for, sampling)
    except cv2.error as e:  # OpenCV raises on some corrupt streams instead of returning False
        raise VideoError(f"OpenCV error: {str(e).strip().splitlines()[-1]}") from None


def _read_clips(path: Path, starts_for, sampling: Sampling) -> tuple[np.ndarray, list[int], int]:
    length = frame_count(path)
    for _ in range(2):
        if length <= 0:
            length = _count_by_decoding(path)
            if length == 0:
                raise VideoError("OpenCV decodes no frame")
        starts = starts_for(length)
        plans = [clip_indices(length, s, sampling) for s in starts]
        wanted = {f for plan in plans for f in plan if f is not None}
        frames, seen = _decode(path, wanted, sampling)
        if wanted <= frames.keys():
            black = np.zeros((sampling.height, sampling.width, 3), np.uint8)
            clips = np.stack([
                np.stack([frames[f] if f is not None else black for f in plan]) for plan in plans
            ])
            real = [sum(1 for j in range(sampling.n_frames) if s + j * sampling.frame_step < length)
                    for s in starts]
            return clips, real, length
        if seen == 0:
            raise VideoError("OpenCV decodes no frame")
        length = seen  # the header over-counted: sample again from what decodes
    raise VideoError("frame count keeps changing while decoding")


def _count_by_decoding(path: Path) -> int:
    cap = open_video(path)
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n
