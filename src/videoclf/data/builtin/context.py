"""The built-in ``context`` style: classes that are a (scene, motion) pair, as real actions are.

Five kinds of scene (a court, a forest, a pool, a sky, a wall) told apart by their structure
(lines, upright trunks, lanes and ripples, soft clouds, bricks), never by colour: every group
draws its two colours from one distribution whatever its class. Two motions of a mid-sized
actor (``Jump``: hops up and down; ``Run``: travels sideways, either way) in every scene, so
``PoolJump`` shares its scene kind with ``PoolRun`` and its motion with ``CourtJump``: a model
needs both what is there and how it moves. Odd groups are filmed on a tripod (the scene is
still, and cancels out of a frame difference), even ones hand-held (the view drifts and
shakes, as a phone's does). Each group has its own scene, actor and camera; clips of a group
see that scene from a different spot, at a different time of day.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ...seeding import derive_seed
from .styles import CONTEXT_CLASSES

SCENES: tuple[str, ...] = ("Court", "Forest", "Pool", "Sky", "Wall")
MOTIONS: tuple[str, ...] = ("Jump", "Run")
assert CONTEXT_CLASSES == tuple(s + m for s in SCENES for m in MOTIONS)
_MARGIN = 48   # scene pixels beyond the view on each side, where a hand-held camera drifts


def split_class(cls: str) -> tuple[str, str]:
    """``"PoolJump"`` -> ``("Pool", "Jump")``."""
    for scene in SCENES:
        if cls.startswith(scene) and cls[len(scene):] in MOTIONS:
            return scene, cls[len(scene):]
    raise ValueError(f"unknown built-in class {cls!r}")


def handheld(group: int) -> bool:
    """Even groups are hand-held, odd ones on a tripod: half and half in every class."""
    return group % 2 == 0


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The group's two colours, from one distribution for every scene kind, far enough apart
    in brightness for the structure to show."""
    a = rng.uniform(0, 256, 3)
    b = rng.uniform(0, 256, 3)
    if abs(a.mean() - b.mean()) < 50:
        b = np.clip(255 - a + rng.uniform(-30, 30, 3), 0, 255)
    return a, b


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Band-limited noise in [0, 1] with features about ``scale`` pixels across."""
    small = rng.normal(size=(max(2, int(h / scale)) + 2, max(2, int(w / scale)) + 2))
    big = cv2.resize(small, (w + 2 * int(scale), h + 2 * int(scale)),
                     interpolation=cv2.INTER_CUBIC)[int(scale):int(scale) + h,
                                                     int(scale):int(scale) + w]
    return (big - big.min()) / (np.ptp(big) + 1e-6)


def _mask(kind: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Where the second colour goes, in [0, 1]: the scene kind's structure."""
    m = np.zeros((h, w), np.float32)
    if kind == "Court":
        lw = int(rng.integers(3, 6))
        x0, y0 = int(rng.integers(20, 70)), int(rng.integers(20, 60))
        x1, y1 = w - int(rng.integers(20, 70)), h - int(rng.integers(20, 60))
        cv2.rectangle(m, (x0, y0), (x1, y1), 1.0, lw)
        cv2.line(m, ((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1), 1.0, lw)
        cv2.circle(m, ((x0 + x1) // 2, (y0 + y1) // 2), int(rng.integers(25, 50)), 1.0, lw)
        for x in (x0, x1):  # the keys under the baskets
            d = int(rng.integers(50, 80)) * (1 if x == x0 else -1)
            cv2.rectangle(m, (x, (y0 + y1) // 2 - 40), (x + d, (y0 + y1) // 2 + 40), 1.0, lw)
    elif kind == "Forest":
        for _ in range(int(rng.integers(9, 16))):
            trunk, half = rng.uniform(0, w), rng.uniform(4, 14)
            lean = rng.uniform(-0.08, 0.08)
            ys = np.arange(h)
            for y in ys[::2]:
                cx = int(trunk + lean * (y - h))
                cv2.line(m, (int(cx - half), int(y)), (int(cx + half), int(y)), 1.0, 2)
        m = np.maximum(m, 0.35 * (_smooth_noise(rng, h, w, 40) > 0.6))  # foliage patches
    elif kind == "Pool":
        lane = rng.uniform(28, 44)
        amp, k = rng.uniform(2, 5), rng.uniform(0.03, 0.07)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        wave = yy + amp * np.sin(k * xx + rng.uniform(0, 6.3))
        m = (0.5 + 0.5 * np.sin(2 * math.pi * wave / lane * 3)) ** 4 * 0.6
        ropes = np.abs(np.mod(yy - rng.uniform(0, lane), lane) - lane / 2) > lane / 2 - 2
        m = np.maximum(m, ropes * (np.mod(xx, 12) < 7)).astype(np.float32)
    elif kind == "Sky":
        m = _smooth_noise(rng, h, w, rng.uniform(40, 70)).astype(np.float32)
        m = np.clip((m - 0.35) * 2.0, 0, 1)
    elif kind == "Wall":
        bh, bw = int(rng.integers(16, 26)), int(rng.integers(36, 56))
        lw = int(rng.integers(2, 4))
        for row, y in enumerate(range(0, h, bh)):
            cv2.line(m, (0, y), (w, y), 1.0, lw)
            for x in range((row % 2) * bw // 2, w, bw):
                cv2.line(m, (x, y), (x, y + bh), 1.0, lw)
    else:
        raise ValueError(f"unknown scene kind {kind!r}")
    return m


def scene(seed: int, cls: str, group: int, width: int, height: int) -> np.ndarray:
    """The group's scene, ``(height + 2 M, width + 2 M, 3)`` float32: the view's size plus
    the margin a hand-held camera drifts into. A function of the group alone, so every clip
    of a group is filmed in the same place."""
    kind, _ = split_class(cls)
    rng = np.random.default_rng(derive_seed(seed, "context-scene", cls, group))
    h, w = height + 2 * _MARGIN, width + 2 * _MARGIN
    a, b = _colours(rng)
    m = _mask(kind, rng, h, w)[..., None]
    img = a * (1 - m) + b * m
    shade = 0.75 + 0.5 * _smooth_noise(rng, h, w, 120)[..., None]  # uneven light
    grain = rng.normal(0, 6, (h, w, 1))
    return np.clip(img * shade + grain, 0, 255).astype(np.float32)


def _camera(rng: np.random.Generator, n: int, shaky: bool) -> tuple[np.ndarray, np.ndarray]:
    """The view's offset into the scene margin per frame: fixed on a tripod; hand-held, a
    slow drift plus a tremor (about 1.5 px per frame at 320x240, as a hand holds a phone)."""
    start = rng.uniform(-_MARGIN / 3, _MARGIN / 3, 2)
    if not shaky:
        return np.full(n, start[0]), np.full(n, start[1])
    vel = np.cumsum(rng.normal(0, 0.25, (n, 2)), axis=0)
    path = start + np.cumsum(np.clip(vel, -1.5, 1.5), axis=0) + rng.normal(0, 0.8, (n, 2))
    # Folded back into the margin, so the view never leaves the scene.
    lim = _MARGIN - 4
    path = np.abs(np.mod(path + lim, 4 * lim) - 2 * lim) - lim
    return path[:, 0], path[:, 1]


def _actor_path(motion: str, rng: np.random.Generator, n: int, width: int, height: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The actor's centre per frame: ``Jump`` hops in place (drifting a little), ``Run``
    crosses the view at a steady speed, turning at the edges, with a small bob."""
    t = np.arange(n, dtype=np.float64)
    margin = 36.0
    ground = rng.uniform(height * 0.55, height - margin)
    if motion == "Jump":
        period, lift = rng.uniform(18, 32), rng.uniform(45, 80)
        x = rng.uniform(margin, width - margin) + rng.uniform(-0.25, 0.25) * t
        y = ground - lift * np.abs(np.sin(math.pi * t / period + rng.uniform(0, math.pi)))
    else:
        speed = rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 3.5)
        span = width - 2 * margin
        x = margin + np.abs(np.mod(rng.uniform(0, 2 * span) + speed * t, 2 * span) - span)
        y = ground - 3.0 * np.abs(np.sin(t * rng.uniform(0.25, 0.4)))
    x = np.clip(x, margin / 2, width - margin / 2)
    return x, y


def _draw_actor(frame: np.ndarray, kind: int, colour: tuple, x: float, y: float,
                size: float) -> None:
    """A body and a head (kind 0), a block (1) or a ball (2): a mid-sized actor, about a
    tenth of the view's height."""
    c = (int(x), int(y))
    s = int(size)
    if kind == 0:
        cv2.ellipse(frame, c, (s // 2, s), 0, 0, 360, colour, -1, cv2.LINE_AA)
        cv2.circle(frame, (c[0], c[1] - s - s // 3), s // 3 + 1, colour, -1, cv2.LINE_AA)
    elif kind == 1:
        cv2.rectangle(frame, (c[0] - s // 2, c[1] - s), (c[0] + s // 2, c[1] + s), colour, -1)
    else:
        cv2.circle(frame, c, s, colour, -1, cv2.LINE_AA)


def render(cls: str, seed: int, group: int, rng: np.random.Generator, n: int, width: int,
           height: int) -> np.ndarray:
    """Frames ``(n, height, width, 3)`` uint8 of one clip of ``cls``'s group ``group``."""
    _, motion = split_class(cls)
    place = scene(seed, cls, group, width, height)
    g_rng = np.random.default_rng(derive_seed(seed, "context-actor", cls, group))
    kind = int(g_rng.integers(0, 3))
    colour = tuple(float(c) for c in g_rng.uniform(0, 256, 3))
    size = g_rng.uniform(12, 18)
    dx, dy = _camera(rng, n, handheld(group))
    x, y = _actor_path(motion, rng, n, width, height)
    bright = rng.uniform(0.8, 1.15)
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        m = np.array([[1, 0, -(_MARGIN + dx[i])], [0, 1, -(_MARGIN + dy[i])]], np.float32)
        view = cv2.warpAffine(place, m, (width, height), flags=cv2.INTER_LINEAR)
        # The actor moves with the world, so a hand-held camera shifts it as it shifts the scene.
        _draw_actor(view, kind, colour, x[i] - dx[i], y[i] - dy[i], size)
        frames[i] = np.clip(view * bright, 0, 255).astype(np.uint8)
    return frames
