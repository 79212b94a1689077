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
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import cv2
import numpy as np

from .choices import ShortVideo
from .errors import VideoclfError
from .seeding import derive_seed
from .seeking import SEEK_BEYOND, seek_decode

# Containers and raw streams read through OpenCV's FFmpeg backend; matched on the suffix, in
# any case. Every file of a source is either taken as a video or listed with why (report.json).
VIDEO_EXTENSIONS: frozenset[str] = frozenset({
    ".avi", ".mp4", ".m4v", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".wmv", ".asf", ".flv",
    ".3gp", ".ogv", ".ogg", ".ts", ".mts", ".m2ts", ".vob", ".divx", ".rm", ".rmvb",
    # less common, all decoded by FFmpeg (measured on real files: tests/footage)
    ".m1v", ".m2v", ".mpv", ".f4v", ".3g2", ".mxf", ".y4m", ".nut", ".gif", ".dv", ".ivf",
    ".mjpeg", ".mjpg", ".h264", ".264", ".hevc", ".h265", ".mk3d", ".ogm", ".m2t", ".mod",
    ".tod", ".qt", ".wtv", ".amv",
})


def is_video(name: str) -> bool:
    """A file name (or zip member) with a video container's suffix."""
    return PurePosixPath(name.replace("\\", "/")).suffix.lower() in VIDEO_EXTENSIONS


class VideoError(VideoclfError):
    """A video that OpenCV cannot decode (or decodes far less of than it claims)."""

    def __init__(self, reason: str, decoded: int | None = None, declared: int | None = None):
        super().__init__(reason)
        self.decoded, self.declared = decoded, declared

    def report(self) -> dict:
        """The reason, plus the frame counts when the stream is damaged (for report.json)."""
        out: dict = {"reason": str(self)}
        if self.decoded is not None:
            out.update(decoded_frames=self.decoded, declared_frames=self.declared)
        return out


@dataclass(frozen=True)
class Sampling:
    """How clips are cut from a video: the ``frames`` params, recorded in ``meta.json`` and in
    a model folder's ``sampling.json``."""

    n_frames: int
    frame_step: int
    height: int
    width: int
    # How a clip longer than its video is completed: the video loops (as MMAction2), or
    # black frames pad it.
    short_video: ShortVideo = "loop"

    @property
    def need(self) -> int:
        """Frames spanned by one clip."""
        return 1 + (self.n_frames - 1) * self.frame_step

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """One stored clip: (frames, height, width, RGB), uint8."""
        return (self.n_frames, self.height, self.width, 3)

    @property
    def clip_bytes(self) -> int:
        return self.n_frames * self.height * self.width * 3

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
    # At least one row and column: a 16x2000 video letterboxed to 64x64 keeps a 1-pixel strip
    # (TensorFlow's arithmetic gives 0, which no resize can make).
    return (max(1, int(math.floor(rh))), max(1, int(math.floor(rw))),
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


# A header count outside (0, this) is no count at all (FLV and Ogg give -2**63, some give 0).
_MAX_PLAUSIBLE_FRAMES = 10_000_000


def _declared(cap: cv2.VideoCapture) -> int:
    """The container's frame count, or 0 where it has none worth reading."""
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(n) if 0 < n < _MAX_PLAUSIBLE_FRAMES else 0


@dataclass(frozen=True)
class Probe:
    """What a straight decode of a whole video found."""

    decoded: int      # frames a sequential decode gives: the real length
    declared: int     # what the container claims (0: no usable claim)


def measure(path: Path, min_decodable: float = 0.0) -> Probe:
    """Decode a whole video once (``grab`` only, no colour conversion) and count its frames.

    Raises VideoError if it cannot be opened, decodes no frame, or decodes less than
    ``min_decodable`` of the frames its header declares (a damaged stream).
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError("no such file")
    if path.stat().st_size == 0:
        raise VideoError("empty file")
    cap = open_video(path)
    try:
        if not cap.isOpened():
            raise VideoError("OpenCV cannot open it as a video")
        declared = _declared(cap)
        n = 0
        try:
            while cap.grab():
                n += 1
        except cv2.error as e:  # some corrupt streams raise instead of returning False
            if n == 0:
                raise VideoError(f"OpenCV error: {_last_line(e)}") from None
    finally:
        cap.release()
    if n == 0:
        raise VideoError("OpenCV opens it but decodes no frame")
    _check_damage(n, declared, min_decodable)
    return Probe(n, declared)


def _check_damage(decoded: int, declared: int, min_decodable: float) -> None:
    if declared and decoded < min_decodable * declared:
        raise VideoError(
            f"damaged stream: decodes {decoded} of the {declared} frames its header declares "
            f"(below {min_decodable:g} of them)", decoded, declared)


def probe(path: Path) -> str | None:
    """None if the whole video decodes, else the reason it does not."""
    try:
        measure(path)
        return None
    except VideoError as e:
        return str(e)


class Clips(NamedTuple):
    """Clips of one video and where they come from."""

    array: np.ndarray        # [K, T, H, W, 3] uint8 RGB
    real_frames: list[int]   # per clip, frames inside the video (the rest loop or pad)
    starts: list[int]        # per clip, its first frame number (0-based, decode order)
    length: int              # frames the video really has


def _decode(path: Path, wanted: set[int], stop: int, sampling: Sampling
            ) -> tuple[dict[int, np.ndarray], int, bool]:
    """One straight pass from frame 0, no seek: ``CAP_PROP_POS_FRAMES`` seeks land on the
    wrong frame in some streams (MJPEG, MPEG elementary streams, Cinepak, damaged files), so
    long videos seek only where the timestamps verify it (``_seek_decode``).

    Keeps (letterboxed) the frames in ``wanted`` and grabs up to frame number ``stop``.
    Returns the frames, how many frames were grabbed, and whether the stream ended first.
    """
    cap = open_video(path)
    if not cap.isOpened():
        raise VideoError("OpenCV cannot open it as a video")
    got: dict[int, np.ndarray] = {}
    i = 0
    ended = False
    try:
        while i <= stop:
            # grab() decodes without converting; only kept frames pay for retrieve().
            if not cap.grab():
                ended = True
                break
            if i in wanted:
                ok, frame = cap.retrieve()
                if not ok:
                    ended = True
                    break
                got[i] = letterbox(frame, sampling.height, sampling.width)
            i += 1
    finally:
        cap.release()
    return got, i, ended


def _seek_decode(path: Path, wanted: set[int], length: int, sampling: Sampling
                 ) -> dict[int, np.ndarray] | None:
    """The frames by verified seeks (seeking.py), or None: then a straight decode."""
    cap = open_video(path)
    try:
        if not cap.isOpened():
            return None
        return seek_decode(cap, wanted, length,
                           lambda f: letterbox(f, sampling.height, sampling.width))
    except cv2.error:  # a stream that raises on a seek: the straight decode says what it is
        return None
    finally:
        cap.release()


_TO_END = 1 << 62  # a ``stop`` no stream reaches: decode until the stream ends


def read_clips(path: Path, starts_for, sampling: Sampling, length: int | None = None,
               min_decodable: float = 0.0) -> Clips:
    """Clips ``[K, T, H, W, 3]`` uint8 RGB from ``path``, frame for frame what a straight
    sequential decode gives at the chosen frame numbers.

    ``starts_for(length)`` gives the K start frames for a video of that many frames. The
    length is ``length`` when the caller measured it (the download stage does), else the
    header's count, checked while decoding: the pass goes one frame past the claimed end,
    so a header that over- or under-counts is caught and the clips are sampled again from
    the real length. A stream decoding less than ``min_decodable`` of what it declares is
    an error, never looped.
    """
    if not Path(path).is_file():
        raise VideoError("no such file")
    try:
        return _read_clips(Path(path), starts_for, sampling, length, min_decodable)
    except cv2.error as e:  # OpenCV raises on some corrupt streams instead of returning False
        raise VideoError(f"OpenCV error: {_last_line(e)}") from None


def _read_clips(path: Path, starts_for, sampling: Sampling, length: int | None,
                min_decodable: float) -> Clips:
    declared = 0
    if not length:
        cap = open_video(path)
        try:
            if not cap.isOpened():
                raise VideoError("OpenCV cannot open it as a video")
            declared = _declared(cap)
        finally:
            cap.release()
        length = declared
    frames: dict[int, np.ndarray] = {}
    for _ in range(3):
        if length:
            starts = list(starts_for(length))
            plans = [clip_indices(length, s, sampling) for s in starts]
            wanted = {f for plan in plans for f in plan if f is not None}
            if wanted <= frames.keys():
                break
            seeked = _seek_decode(path, wanted, length, sampling) if length > SEEK_BEYOND else None
            if seeked is not None:
                frames = seeked  # the end check proved the length too
                break
            # Grab one frame past the claimed end, so a short count is caught too.
            frames, seen, ended = _decode(path, wanted, max(max(wanted), length), sampling)
        else:  # no usable count: decode to the end, keeping nothing, then sample
            frames, seen, ended = _decode(path, set(), _TO_END, sampling)
        if seen == 0:
            raise VideoError("OpenCV decodes no frame")
        if ended and seen != length:
            length = seen  # the count was wrong: the real length is what decoded
            continue
        if not ended:  # frame number `length` exists: more frames than claimed, count them
            _, length, _ = _decode(path, set(), _TO_END, sampling)
            continue
        break
    else:
        raise VideoError("frame count keeps changing while decoding")
    _check_damage(length, declared, min_decodable)
    black = np.zeros((sampling.height, sampling.width, 3), np.uint8)
    clips = np.stack([np.stack([frames[f] if f is not None else black for f in plan])
                      for plan in plans])
    real = [sum(1 for j in range(sampling.n_frames) if s + j * sampling.frame_step < length)
            for s in starts]
    return Clips(clips, real, starts, length)


def read_frames(path: Path, wanted: set[int], sampling: Sampling) -> dict[int, np.ndarray]:
    """The (letterboxed RGB) frames numbered ``wanted``, in one straight pass: for callers
    that know the real length (``measure``) and cut clips of several steps at once."""
    try:
        got, _, _ = _decode(Path(path), wanted, max(wanted, default=0), sampling)
    except cv2.error as e:
        raise VideoError(f"OpenCV error: {_last_line(e)}") from None
    if not wanted <= got.keys():
        raise VideoError(f"decodes {len(got)} of the {len(wanted)} frames its length promised")
    return got


def _last_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[-1] if lines else type(e).__name__
