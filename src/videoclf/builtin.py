"""The built-in dataset: a UCF101-layout set of real XVID clips whose classes differ only by motion.

Each (class, group) pair has its own textured scene, as a UCF101 group shares an actor and a
place; clips of a group see that scene through a different "camera" (start point, zoom, angle,
brightness). The class is carried only by how the whole scene moves over time, so no single
frame reveals it and a split that ignores groups leaks scenes from train into test.

Every class is invariant to a horizontal flip (direction-free pans, random roll direction), so
flip augmentation never changes a label.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from .seeding import derive_seed

CLASSES: tuple[str, ...] = (
    "Dim",          # the light fades steadily, then comes back at once (a sawtooth)
    "Flicker",      # brightness jumps at random every frame
    "PanDown",      # scene moves down at constant speed
    "PanSideways",  # scene moves left or right at constant speed
    "PanUp",        # scene moves up at constant speed
    "Roll",         # camera rotates about its axis, either way
    "Shake",        # camera jitters at random around a fixed point
    "Still",        # nothing moves
    "ZoomIn",       # scene grows
    "ZoomOut",      # scene shrinks
)
WIDTH, HEIGHT, FPS = 320, 240, 25
GROUPS = 25                    # as UCF101: 25 groups per class
CLIPS_PER_GROUP = (4, 7)       # as UCF101: 4 to 7 clips per group
SECONDS = (6.0, 10.0)
FOURCC = "XVID"
_TILE = (512, 384)             # scene texture, tiled by BORDER_WRAP so pans never run out
_ZOOM = (0.6, 3.0)             # every class sees the scene at zoom levels in this range


def member_names(seed: int, classes: tuple[str, ...] = CLASSES) -> list[str]:
    """The archive listing of the built-in set: ``UCF101/v_<Class>_gGG_cCC.avi``."""
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
                    cv2.rectangle(img, (x + dx, y + dy), (x + dx + size, y + dy + size // 2), color, -1)
                else:
                    x2, y2 = x + dx + int(rng.integers(-60, 60)), y + dy + int(rng.integers(-60, 60))
                    cv2.line(img, (x + dx, y + dy), (x2, y2), color, 3, cv2.LINE_AA)
    return img


def _trajectory(cls: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Per-frame camera: centre (cx, cy) on the scene, angle (deg), zoom, brightness."""
    t = np.arange(n, dtype=np.float64)
    cx = np.full(n, rng.uniform(0, _TILE[0]))
    cy = np.full(n, rng.uniform(0, _TILE[1]))
    angle = np.full(n, rng.uniform(-10, 10))
    zoom = np.full(n, math.exp(rng.uniform(*np.log(_ZOOM))))
    bright = np.full(n, rng.uniform(0.75, 1.15))
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
        # One monotonic sweep inside the common range (no jump back, which would look like
        # the other class); both classes cover the range alike, so the zoom level of one
        # frame says nothing about the direction.
        lo, hi = np.log(_ZOOM)
        rate = min(rng.uniform(0.006, 0.010), (hi - lo) / max(1, n - 1))
        start = rng.uniform(lo, max(lo, hi - rate * (n - 1)))
        sweep = start + rate * t
        zoom = np.exp(sweep if cls == "ZoomIn" else lo + hi - sweep)
    elif cls != "Still":
        raise ValueError(f"unknown built-in class {cls!r}")
    return cx, cy, angle, zoom, bright


def render_clip(name: str, seed: int) -> np.ndarray:
    """Frames (T, 240, 320, 3) uint8 BGR of one built-in member, deterministic from its name."""
    stem = Path(name).stem  # v_<Class>_gGG_cCC
    _, cls, g, c = stem.split("_")
    group, clip = int(g[1:]), int(c[1:])
    scene = _scene(seed, cls, group)
    rng = np.random.default_rng(derive_seed(seed, "clip", cls, group, clip))
    n = int(round(rng.uniform(*SECONDS) * FPS))
    cx, cy, angle, zoom, bright = _trajectory(cls, n, rng)
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


def write_clip(name: str, seed: int, dest: Path) -> None:
    """Render a built-in member and encode it as XVID AVI at ``dest`` (written as-is, caller renames)."""
    frames = render_clip(name, seed)
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*FOURCC), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {FOURCC} video to {dest}")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
