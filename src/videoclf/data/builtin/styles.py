"""The built-in data set's styles: their class names and the classes a mirror swaps.

Read by the generator and the context style; the style names themselves are the core's
``choices.BuiltinStyle`` (what ``data.builtin_style`` may be), which these keys must match
(tests/data/test_builtin.py).
"""

from __future__ import annotations

from ...choices import BuiltinStyle

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
CAMERA_CLASSES: tuple[str, ...] = (
    "Flicker", "PanDown", "PanLeft", "PanRight", "PanUp", "RotateCCW", "RotateCW", "Still",
    "ZoomIn", "ZoomOut",
)
OBJECT_CLASSES: tuple[str, ...] = (
    "Blink", "Grow", "Hover", "MoveDown", "MoveLeft", "MoveRight", "MoveUp", "Shrink", "SpinCCW",
    "SpinCW",
)
# (scene, motion) pairs: five scene kinds x two motions (data/context.py draws them).
CONTEXT_CLASSES: tuple[str, ...] = (
    "CourtJump", "CourtRun", "ForestJump", "ForestRun", "PoolJump", "PoolRun", "SkyJump",
    "SkyRun", "WallJump", "WallRun",
)
STYLES: dict[BuiltinStyle, tuple[str, ...]] = {"scene": CLASSES, "camera": CAMERA_CLASSES,
                                      "object": OBJECT_CLASSES, "context": CONTEXT_CLASSES}
# Classes a horizontal flip turns into each other (for train.augment.flip_pairs).
MIRROR_PAIRS: dict[BuiltinStyle, list[list[str]]] = {
    "scene": [],
    "camera": [["PanLeft", "PanRight"], ["RotateCCW", "RotateCW"]],
    "object": [["MoveLeft", "MoveRight"], ["SpinCCW", "SpinCW"]],
    "context": [],
}
