"""What happens when: a long video scored window by window, decoded once, in flat memory.

A window is one training clip's span (``n_frames`` frames every ``frame_step``), letterboxed
as training clips are; windows start every ``stride`` frames. The video is decoded once,
sequentially (seeking is not frame-exact on real codecs, see ``video``), and only the
frames some window samples are kept, and only until their last window is scored: memory is
about one clip span of small frames, whatever the video's length.

Each window stands for the ``stride`` frames around its centre, so consecutive windows tile
the video; a segment is a run of windows whose best class is the same and at least
``threshold`` likely, and its boundaries are within one stride of the real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ...video import Sampling, VideoError, _declared, letterbox, open_video
from ..scoring import softmax


@dataclass(frozen=True)
class Window:
    """One scored window: its first frame, and the time span it stands for (seconds)."""

    start_frame: int
    start_s: float
    end_s: float
    probs: np.ndarray


@dataclass(frozen=True)
class Segment:
    label: str
    start_s: float
    end_s: float
    score: float          # the class's mean probability over the segment's windows
    windows: int


def _capture(path: Path) -> cv2.VideoCapture:
    if not Path(path).is_file():
        raise VideoError("no such file")
    cap = open_video(Path(path))
    if not cap.isOpened():
        raise VideoError("OpenCV cannot open it as a video")
    return cap


def _rate(cap: cv2.VideoCapture) -> float:
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    return fps if 0 < fps < 1000 else 25.0  # no usable rate: times in 25 fps frames


def header(path: Path) -> tuple[float, int]:
    """``(frames per second, frames declared or 0)`` from the container, or VideoError."""
    cap = _capture(path)
    try:
        return _rate(cap), _declared(cap)
    finally:
        cap.release()


class WindowStream:
    """Clips ``(start_frame, [T, H, W, 3] uint8)`` of every window that fits in the video, in
    order, from one sequential decode. After iterating: ``fps``, ``frames`` (decoded),
    ``declared`` (the header's count, 0 if none) and ``stopped`` (why decoding ended early:
    a damaged tail; None when the stream ended where it said)."""

    def __init__(self, path: Path, sampling: Sampling, stride: int):
        if stride < 1:
            raise ValueError("stride must be at least one frame")
        self.path, self.sampling, self.stride = Path(path), sampling, int(stride)
        self.fps, self.frames, self.declared = 0.0, 0, 0
        self.stopped: str | None = None

    def _wanted(self, f: int) -> bool:
        """Does some window sample frame ``f``?"""
        s, need = self.sampling, self.sampling.need
        first = max(0, (f - need) // self.stride + 1)
        return any((f - k * self.stride) % s.frame_step == 0
                   for k in range(first, f // self.stride + 1))

    def _open(self) -> cv2.VideoCapture:
        cap = _capture(self.path)
        self.fps, self.declared = _rate(cap), _declared(cap)
        return cap

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        s, need = self.sampling, self.sampling.need
        cap = self._open()
        kept: dict[int, np.ndarray] = {}
        next_window = 0  # index of the next window to complete
        try:
            while True:
                try:
                    ok, frame = cap.read()
                except cv2.error as e:
                    ok, self.stopped = False, f"OpenCV error: {str(e).strip().splitlines()[-1]}"
                if not ok:
                    break
                f = self.frames
                self.frames += 1
                # Until a first window completes, every frame is kept: a video shorter than
                # one clip takes the clip training would (looped or padded), whose frames no
                # window samples (bounded by one clip span, as the windows' frames are).
                if self._wanted(f) or (next_window == 0 and f < need):
                    kept[f] = letterbox(frame, s.height, s.width)
                start = next_window * self.stride
                if f == start + need - 1:
                    yield start, np.stack([kept[start + i * s.frame_step]
                                           for i in range(s.n_frames)])
                    next_window += 1
                    for old in [k for k in kept if k < next_window * self.stride]:
                        del kept[old]
        finally:
            cap.release()
        if self.frames == 0:
            raise VideoError(self.stopped or "no frame could be decoded")
        if self.stopped is None and self.declared and self.frames < self.declared:
            self.stopped = (f"decoding stopped at frame {self.frames} of the "
                            f"{self.declared} its header declares")
        if next_window == 0:  # shorter than one clip: the one clip training would take
            yield 0, self._short_clip(kept)

    def _short_clip(self, kept: dict[int, np.ndarray]) -> np.ndarray:
        from ...video import clip_indices

        plan = clip_indices(self.frames, 0, self.sampling)
        blank = np.zeros_like(next(iter(kept.values())))
        return np.stack([kept[i] if i is not None else blank for i in plan])


def clamp(w: Window, duration_s: float) -> Window:
    """``w`` with its span inside the video (a stride past the end, or a window longer than
    a short video, ends with it)."""
    return replace(w, start_s=min(w.start_s, duration_s), end_s=min(w.end_s, duration_s))


def scan(predict: Callable[[np.ndarray], np.ndarray], stream: WindowStream,
         batch_size: int = 16, progress: Callable[[float], None] | None = None
         ) -> Iterator[Window]:
    """Score every window of ``stream`` in batches; ``progress(seconds decoded)`` after each
    batch. Window ``k`` stands for the ``stride`` frames around its centre."""
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> Iterator[Window]:
        probs = softmax(predict(np.stack([c for _, c in pending])))
        for (start, _), p in zip(pending, probs):
            centre = start + stream.sampling.need / 2
            yield Window(start, max(0.0, (centre - stream.stride / 2) / stream.fps),
                         (centre + stream.stride / 2) / stream.fps, p)
        if progress:
            progress(stream.frames / stream.fps)
        pending.clear()

    for item in stream:
        pending.append(item)
        if len(pending) >= batch_size:
            yield from flush()
    if pending:
        yield from flush()


def segments(windows: list[Window], labels: list[str], threshold: float,
             duration_s: float) -> list[Segment]:
    """Runs of windows of one best class at least ``threshold`` likely. The first window's
    span starts at 0 and the last one's ends with the video, so the segments cover it all
    but where no class is sure."""
    out: list[Segment] = []
    run: list[Window] = []
    best = lambda w: int(np.argmax(w.probs))

    def close() -> None:
        if run:
            c = best(run[0])
            out.append(Segment(labels[c], run[0].start_s, run[-1].end_s,
                               float(np.mean([w.probs[c] for w in run])), len(run)))
            run.clear()

    for w in windows:
        sure = w.probs[best(w)] >= threshold
        if run and (not sure or best(w) != best(run[0])):
            close()
        if sure:
            run.append(w)
    close()
    if out and windows:
        if out[0].start_s == windows[0].start_s:
            out[0] = replace(out[0], start_s=0.0)
        if out[-1].end_s == windows[-1].end_s:
            out[-1] = replace(out[-1], end_s=max(duration_s, out[-1].end_s))
    return out
