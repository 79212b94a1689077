"""The built-in datasets: UCF101-layout sets of real XVID clips in four styles
(``data.builtin_style``); in the first three the classes differ only by motion:

- ``scene``: fast whole-scene motion (2-4 px per frame). Every class is invariant to a
  horizontal flip (direction-free pans, random roll direction).
- ``camera``: slow whole-scene motion (about 1 px per frame at 320x240) with mirror-image
  classes: a horizontal flip turns PanLeft into PanRight and RotateCW into RotateCCW.
- ``object``: a small shape moving in a still scene (up, down, left, right, growing,
  shrinking, spinning either way, blinking, hovering) with a second small shape wandering
  independently of the class, as most real actions are a person or a thing moving in a still
  place. MoveLeft/MoveRight and SpinCW/SpinCCW are mirror pairs.
- ``context``: classes that are a (scene kind, motion) pair, as real actions are, half the
  groups on a tripod and half hand-held (``data/context.py``).

Each (class, group) pair has its own textured scene, as a UCF101 group shares an actor and a
place; clips of a group see that scene through a different "camera" (start point, zoom, angle,
brightness). No single frame reveals the class, and a split that ignores groups leaks scenes
from train into test.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from ...choices import BuiltinStyle
from ...seeding import derive_seed
from . import context
from .styles import STYLES

WIDTH, HEIGHT, FPS = 320, 240, 25
GROUPS = 25                    # as UCF101: 25 groups per class
CLIPS_PER_GROUP = (4, 7)       # as UCF101: 4 to 7 clips per group
SECONDS = (6.0, 10.0)
FOURCC = "XVID"
_TILE = (512, 384)             # scene texture, tiled by BORDER_WRAP so pans never run out
_ZOOM = (0.6, 3.0)             # every class sees the scene at zoom levels in this range


def member_names(seed: int, style: BuiltinStyle = "scene") -> list[str]:
    """The archive listing of the built-in set: ``UCF101/v_<Class>_gGG_cCC.avi``."""
    classes = STYLES[style]
    names = []
    for cls in classes:
        for g in range(1, GROUPS + 1):
            rng = np.random.default_rng(derive_seed(seed, "listing", cls, g))
            n = int(rng.integers(CLIPS_PER_GROUP[0], CLIPS_PER_GROUP[1] + 1))
            names += [f"UCF101/v_{cls}_g{g:02d}_c{c:02d}.avi" for c in range(1, n + 1)]
    return names


def _scene(seed: int, cls: str, group: int) -> np.ndarray:
    """A periodic textured scene (so BORDER_WRAP shows no seams), float32 HxWx3 in [0, 255]."""
    rng = np.random.default_rng(derive_seed(seed, "scene", cls, group))
    w, h = _TILE
    # Band-limited colour noise, periodic by construction (inverse FFT).
    spec = rng.normal(size=(h, w, 3)) + 1j * rng.normal(size=(h, w, 3))
    fy = np.fft.fftfreq(h)[:, None, None]
    fx = np.fft.fftfreq(w)[None, :, None]
    f = np.sqrt(fx**2 + fy**2)
    spec *= np.exp(-((f / 0.04) ** 2)) + 0.15 * np.exp(-((f / 0.15) ** 2))
    tex = np.real(np.fft.ifft2(spec, axes=(0, 1)))
    tex = (tex - tex.mean()) / (tex.std() + 1e-6)
    img = np.clip(128 + 45 * tex, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(img)
    # Sharp shapes give the motion edges to follow; drawn at 9 offsets so they wrap too.
    for _ in range(int(rng.integers(25, 45))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = int(rng.integers(0, 3))
        size = int(rng.integers(8, 48))
        for dx in (-w, 0, w):
            for dy in (-h, 0, h):
                if kind == 0:
                    cv2.circle(img, (x + dx, y + dy), size, color, -1, cv2.LINE_AA)
                elif kind == 1:
                    cv2.rectangle(img, (x + dx, y + dy), (x + dx + size, y + dy + size // 2),
                                  color, -1)
                else:
                    x2 = x + dx + int(rng.integers(-60, 60))
                    y2 = y + dy + int(rng.integers(-60, 60))
                    cv2.line(img, (x + dx, y + dy), (x2, y2), color, 3, cv2.LINE_AA)
    return img


def _still_camera(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Frame numbers and a camera that does not move: centre (cx, cy) on the scene, angle
    (deg), zoom and brightness, per frame."""
    t = np.arange(n, dtype=np.float64)
    cx = np.full(n, rng.uniform(0, _TILE[0]))
    cy = np.full(n, rng.uniform(0, _TILE[1]))
    angle = np.full(n, rng.uniform(-10, 10))
    zoom = np.full(n, math.exp(rng.uniform(*np.log(_ZOOM))))
    bright = np.full(n, rng.uniform(0.75, 1.15))
    return t, cx, cy, angle, zoom, bright


def _zoom_sweep(cls: str, n: int, rng: np.random.Generator, rates: tuple[float, float]
                ) -> np.ndarray:
    """One monotonic zoom sweep inside the common range (no jump back, which would look like
    the other class); ZoomIn and ZoomOut cover the range alike, so the zoom level of one frame
    says nothing about the direction."""
    lo, hi = np.log(_ZOOM)
    rate = min(rng.uniform(*rates), (hi - lo) / max(1, n - 1))
    start = rng.uniform(lo, max(lo, hi - rate * (n - 1)))
    sweep = start + rate * np.arange(n, dtype=np.float64)
    return np.exp(sweep if cls == "ZoomIn" else lo + hi - sweep)


def _trajectory(cls: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Per-frame camera of the ``scene`` style: centre (cx, cy), angle, zoom, brightness."""
    t, cx, cy, angle, zoom, bright = _still_camera(n, rng)
    speed = rng.uniform(2.0, 4.0)  # output pixels per frame
    if cls == "Flicker":
        bright = bright * rng.uniform(0.55, 1.45, n)
    elif cls in ("PanUp", "PanDown"):
        # The camera centre moving down the scene makes the content move up on screen.
        sign = 1.0 if cls == "PanUp" else -1.0
        cy = cy + sign * speed * t / zoom
    elif cls == "PanSideways":
        cx = cx + rng.choice([-1.0, 1.0]) * speed * t / zoom
    elif cls == "Roll":
        angle = angle + rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 3.0) * t
    elif cls == "Shake":
        amp = rng.uniform(12, 24)
        cx = cx + rng.uniform(-amp, amp, n) / zoom
        cy = cy + rng.uniform(-amp, amp, n) / zoom
    elif cls == "Dim":
        # Brightness sweeps the same range as other classes' single frames, downwards.
        period = rng.uniform(40, 60)
        bright = 1.3 - 0.8 * np.mod(t / period + rng.uniform(0, 1), 1.0)
    elif cls in ("ZoomIn", "ZoomOut"):
        zoom = _zoom_sweep(cls, n, rng, (0.006, 0.010))
    elif cls != "Still":
        raise ValueError(f"unknown built-in class {cls!r}")
    return cx, cy, angle, zoom, bright


def _camera_trajectory(cls: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Slow camera motion, about 1 output pixel per frame; directions are the class."""
    t, cx, cy, angle, zoom, bright = _still_camera(n, rng)
    speed = rng.uniform(0.7, 1.3)  # output pixels per frame
    if cls == "Flicker":
        bright = bright * rng.uniform(0.7, 1.3, n)
    elif cls in ("PanUp", "PanDown"):
        cy = cy + (1.0 if cls == "PanUp" else -1.0) * speed * t / zoom
    elif cls in ("PanLeft", "PanRight"):
        # The camera centre moving right along the scene makes the content move left.
        cx = cx + (1.0 if cls == "PanLeft" else -1.0) * speed * t / zoom
    elif cls in ("RotateCW", "RotateCCW"):
        # OpenCV angles are anticlockwise on screen; the content turns against the camera.
        angle = angle + (1.0 if cls == "RotateCW" else -1.0) * rng.uniform(0.25, 0.45) * t
    elif cls in ("ZoomIn", "ZoomOut"):
        zoom = _zoom_sweep(cls, n, rng, (0.002, 0.004))
    elif cls != "Still":
        raise ValueError(f"unknown built-in class {cls!r}")
    return cx, cy, angle, zoom, bright


def _shape_points(kind: int, cx: float, cy: float, size: float, angle: float) -> np.ndarray:
    """Polygon of a small actor: an arrow-like triangle (0) or a bar (1), rotated by angle
    (degrees, clockwise on screen); both look different when turned, so spin is visible."""
    if kind == 0:
        pts = np.array([[1.0, 0.0], [-0.7, 0.6], [-0.4, 0.0], [-0.7, -0.6]])
    else:
        pts = np.array([[1.0, 0.35], [-1.0, 0.35], [-1.0, -0.35], [1.0, -0.35]])
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (pts @ rot.T * size + [cx, cy]).round().astype(np.int32)


_MARGIN = 30.0  # object style: the actor and the distractor stay this far from the border


def _object_view(group_scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clip's camera on the group's scene: a fixed crop at its own zoom and brightness,
    softer than the scene styles' view (the actor must stay visible), still textured."""
    zoom = math.exp(rng.uniform(*np.log((0.8, 1.6))))
    cx, cy = rng.uniform(0, _TILE[0]), rng.uniform(0, _TILE[1])
    m = cv2.getRotationMatrix2D((cx, cy), rng.uniform(-10, 10), zoom)
    m[0, 2] += WIDTH / 2 - cx
    m[1, 2] += HEIGHT / 2 - cy
    background = cv2.warpAffine(group_scene, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_WRAP)
    return cv2.addWeighted(background, rng.uniform(0.45, 0.6), np.full_like(background, 128),
                           0.0, rng.uniform(40, 70))


def _move(cls: str, rng: np.random.Generator, n: int, x: np.ndarray, y: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """MoveLeft/Right/Up/Down: constant speed across most of the view."""
    t = np.arange(n, dtype=np.float64)
    horizontal = cls in ("MoveLeft", "MoveRight")
    extent = (WIDTH if horizontal else HEIGHT) - 2 * _MARGIN
    speed = rng.uniform(0.6, 0.9) * extent / max(1, n - 1)
    sign = 1.0 if cls in ("MoveRight", "MoveDown") else -1.0
    start = _MARGIN if sign > 0 else _MARGIN + extent
    start += sign * rng.uniform(0, extent - speed * (n - 1))
    return (start + sign * speed * t, y) if horizontal else (x, start + sign * speed * t)


def _object_motion(cls: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """The actor per frame: x, y, half-size (pixels at 320x240), angle, visible."""
    size = np.full(n, rng.uniform(10, 15))
    angle = np.full(n, rng.uniform(0, 360))
    visible = np.ones(n, bool)
    x0, y0 = rng.uniform(_MARGIN, WIDTH - _MARGIN), rng.uniform(_MARGIN, HEIGHT - _MARGIN)
    x, y = np.full(n, x0), np.full(n, y0)
    if cls in ("MoveLeft", "MoveRight", "MoveUp", "MoveDown"):
        x, y = _move(cls, rng, n, x, y)
    elif cls in ("Grow", "Shrink"):
        sweep = np.linspace(math.log(6.0), math.log(26.0), n)
        size = np.exp(sweep if cls == "Grow" else sweep[::-1])
    elif cls in ("SpinCW", "SpinCCW"):
        turn = (1.0 if cls == "SpinCW" else -1.0) * rng.uniform(2.0, 4.0)
        angle = angle + turn * np.arange(n, dtype=np.float64)
    elif cls == "Blink":
        period = int(rng.integers(8, 16))
        visible = (np.arange(n) // period) % 2 == 0
    elif cls == "Hover":
        x = x0 + rng.normal(0, 0.8, n)
        y = y0 + rng.normal(0, 0.8, n)
    else:
        raise ValueError(f"unknown built-in class {cls!r}")
    return x, y, size, angle, visible


def _reflect(v: np.ndarray, extent: float) -> np.ndarray:
    """Positions folded back into [margin, margin + extent] (bouncing off the borders)."""
    return _MARGIN + np.abs(np.mod(v - _MARGIN, 2 * extent) - extent)


def _distractor(rng: np.random.Generator, n: int) -> tuple:
    """Another small shape on a smooth random walk, whatever the class: kind, colour, centres
    per frame, half-size, angles per frame."""
    color = tuple(int(c) for c in rng.integers(0, 256, 3))
    kind = int(rng.integers(0, 2))
    vel = np.clip(np.cumsum(rng.normal(0, 0.15, (n, 2)), axis=0), -1.5, 1.5)
    d = np.array([rng.uniform(_MARGIN, WIDTH - _MARGIN), rng.uniform(_MARGIN, HEIGHT - _MARGIN)])
    d = d + np.cumsum(vel, axis=0)
    d[:, 0] = _reflect(d[:, 0], WIDTH - 2 * _MARGIN)
    d[:, 1] = _reflect(d[:, 1], HEIGHT - 2 * _MARGIN)
    size = rng.uniform(7, 11)
    angle = rng.uniform(0, 360) + np.cumsum(rng.normal(0, 1.0, n))
    return kind, color, d, size, angle


def _object_frames(cls: str, group_scene: np.ndarray, seed: int, group: int,
                   rng: np.random.Generator, n: int) -> np.ndarray:
    """A still view of the group's scene, the class's actor and an independent distractor."""
    # The group's actor: shape and colour fixed per group (as a UCF101 group's actor).
    g_rng = np.random.default_rng(derive_seed(seed, "actor", cls, group))
    kind = int(g_rng.integers(0, 2))
    color = tuple(int(c) for c in g_rng.integers(0, 256, 3))
    background = _object_view(group_scene, rng)
    x, y, size, angle, visible = _object_motion(cls, rng, n)
    d_kind, d_color, d, d_size, d_angle = _distractor(rng, n)
    frames = np.empty((n, HEIGHT, WIDTH, 3), np.uint8)
    for i in range(n):
        f = background.copy()
        cv2.fillPoly(f, [_shape_points(d_kind, d[i, 0], d[i, 1], d_size, d_angle[i])], d_color,
                     cv2.LINE_AA)
        if visible[i]:
            cv2.fillPoly(f, [_shape_points(kind, x[i], y[i], size[i], angle[i])], color,
                         cv2.LINE_AA)
        frames[i] = f
    return frames


def frame_count(name: str, seed: int) -> int:
    """How many frames ``render_clip`` makes for a member (its first draw), without rendering:
    what a written clip must decode to, checked by download."""
    _, cls, g, c = Path(name).stem.split("_")
    rng = np.random.default_rng(derive_seed(seed, "clip", cls, int(g[1:]), int(c[1:])))
    return int(round(rng.uniform(*SECONDS) * FPS))


def render_clip(name: str, seed: int, style: BuiltinStyle = "scene") -> np.ndarray:
    """Frames (T, 240, 320, 3) uint8 BGR of one built-in member, deterministic from its name."""
    stem = Path(name).stem  # v_<Class>_gGG_cCC
    _, cls, g, c = stem.split("_")
    group, clip = int(g[1:]), int(c[1:])
    rng = np.random.default_rng(derive_seed(seed, "clip", cls, group, clip))
    n = int(round(rng.uniform(*SECONDS) * FPS))
    if style == "context":
        return context.render(cls, seed, group, rng, n, WIDTH, HEIGHT)
    scene = _scene(seed, cls, group)
    if style == "object":
        return _object_frames(cls, scene, seed, group, rng, n)
    trajectory = _camera_trajectory if style == "camera" else _trajectory
    cx, cy, angle, zoom, bright = trajectory(cls, n, rng)
    frames = np.empty((n, HEIGHT, WIDTH, 3), np.uint8)
    for i in range(n):
        # Maps the scene point (cx, cy) to the frame centre, rotated and zoomed about it.
        x, y = cx[i] % _TILE[0], cy[i] % _TILE[1]  # the scene is periodic
        m = cv2.getRotationMatrix2D((x, y), angle[i], zoom[i])
        m[0, 2] += WIDTH / 2 - x
        m[1, 2] += HEIGHT / 2 - y
        frame = cv2.warpAffine(scene, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_WRAP)
        frames[i] = cv2.convertScaleAbs(frame, alpha=float(bright[i]))
    return frames


def write_clip(name: str, seed: int, dest: Path, style: BuiltinStyle = "scene") -> None:
    """Render a built-in member and encode it as XVID AVI at ``dest`` (written as-is; the
    caller renames it)."""
    frames = render_clip(name, seed, style)
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter.fourcc(*FOURCC), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {FOURCC} video to {dest}")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    # OpenCV's writer reports no failure (a full disk included): an empty file is caught
    # here, a short one by download, which decodes every clip and compares with frame_count.
    if not dest.is_file() or dest.stat().st_size == 0:
        code = errno.ENOSPC if shutil.disk_usage(dest.parent).free < 2**20 else errno.EIO
        raise OSError(code, f"{os.strerror(code)} (OpenCV wrote an empty clip)", str(dest))
