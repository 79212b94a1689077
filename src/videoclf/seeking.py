"""Seek, then verify: frames deep in a long video without decoding everything before them.

A straight decode from frame 0 is right on every codec but costs the video's length. OpenCV's
``CAP_PROP_POS_FRAMES`` seek (to the keyframe before, then decoding forward) is fast but lands
on the wrong frame in some streams: measured on tests/footage, MJPEG and MPEG-1/2 elementary
streams land on frame 0 and Cinepak AVI on a frame whose timestamp is far from its number. So a
seek is trusted only where the stream's own timestamps prove where it landed:

- the stream has a frame grid: frame 0 and 1 are one frame period (1 / FPS) apart;
- the frame a seek lands on has the timestamp of the frame number asked for, and every frame
  decoded after it the next point of the grid (no frame lost or repeated on the way);
- the last frame sits on the grid at ``length - 1`` and no frame follows it, where ``length``
  is the count a straight decode gave (the download stage's) or the header's. A timestamp gap
  anywhere before the end (a dropped frame) then shows as a count that does not agree.

Anything else returns None and the caller decodes straight from frame 0, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# Frames of a straight decode below which seeking gains nothing: a seek decodes from the
# keyframe before its target (up to a GOP: 12 frames for OpenCV's own writer, 250 for x264's
# default) and the checks cost two more seeks.
SEEK_BEYOND = 600
# A gap between wanted frames longer than this is crossed by a seek, not by decoding it.
SEEK_GAP = 300
# How far (in frame periods) a timestamp may sit from its grid point: timestamps are whole
# milliseconds or time-base ticks, far finer than this.
_ON_GRID = 0.1


@dataclass(frozen=True)
class FrameGrid:
    """Where a stream's frames sit in time: frame n at ``t0 + n * period`` milliseconds."""

    t0: float
    period: float

    def index(self, msec: float) -> int | None:
        """The frame number of a timestamp on the grid, else None."""
        x = (msec - self.t0) / self.period
        n = round(x)
        return n if abs(x - n) < _ON_GRID and n >= 0 else None


def frame_grid(cap: cv2.VideoCapture) -> FrameGrid | None:
    """The grid of a freshly opened capture, from its first two frames (None: no grid)."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    if not 0 < fps < 1000 or not cap.grab():
        return None
    t0 = cap.get(cv2.CAP_PROP_POS_MSEC)
    if not cap.grab():
        return None
    grid = FrameGrid(t0, 1000.0 / fps)
    return grid if grid.index(cap.get(cv2.CAP_PROP_POS_MSEC)) == 1 else None


def _seek(cap: cv2.VideoCapture, grid: FrameGrid, n: int) -> bool:
    """Seek so that the last grabbed frame is frame ``n``; True only if its timestamp says so."""
    cap.set(cv2.CAP_PROP_POS_FRAMES, n)
    return cap.grab() and grid.index(cap.get(cv2.CAP_PROP_POS_MSEC)) == n


def _ends_at(cap: cv2.VideoCapture, grid: FrameGrid, length: int) -> bool:
    """Frame ``length - 1`` is on the grid and is the stream's last frame."""
    return _seek(cap, grid, length - 1) and not cap.grab()


def runs(wanted: set[int], gap: int = SEEK_GAP) -> list[list[int]]:
    """The wanted frame numbers in ascending runs, split where the next is over ``gap`` on."""
    out: list[list[int]] = []
    for n in sorted(wanted):
        if out and n - out[-1][-1] <= gap:
            out[-1].append(n)
        else:
            out.append([n])
    return out


def seek_decode(cap: cv2.VideoCapture, wanted: set[int], length: int,
                keep: Callable[[np.ndarray], np.ndarray]) -> dict[int, np.ndarray] | None:
    """``keep(frame)`` of every frame in ``wanted`` of a ``length``-frame stream, reached by
    verified seeks; None where any check fails (the caller then decodes straight)."""
    grid = frame_grid(cap)
    if grid is None or not _ends_at(cap, grid, length):
        return None
    got: dict[int, np.ndarray] = {}
    for run in runs(wanted):
        if not _seek(cap, grid, run[0]):
            return None
        n = run[0]
        while True:
            if n in wanted:
                ok, frame = cap.retrieve()
                if not ok:
                    return None
                got[n] = keep(frame)
            if n == run[-1]:
                break
            if not cap.grab() or grid.index(cap.get(cv2.CAP_PROP_POS_MSEC)) != n + 1:
                return None
            n += 1
    return got
