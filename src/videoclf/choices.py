"""Every choice a params key offers, declared once as a ``Literal`` type (no imports of the
package): the schema in ``params`` validates against these, the typed params blocks carry
them, and every module that acts on a choice annotates with the same type, so mypy
(``strict_equality``) refuses a comparison with a value the choice does not offer.

``options(T)`` is the tuple of a choice's values, for messages and loops.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

# data.* (download: readers.open_source, splits.parse_members, splits.split_videos)
Source = Literal["builtin", "url"]
Layout = Literal["auto", "ucf101", "folders"]
SplitBy = Literal["group", "file"]
BuiltinStyle = Literal["scene", "camera", "object", "context"]  # data/builtin/styles.py
Fingerprint = Literal["stat", "content"]  # data/source.py: how a local folder is fingerprinted
# frames.* (video.clip_indices)
ShortVideo = Literal["loop", "pad"]
# model.* (training/network.py and its backbones)
InputKind = Literal["rgb", "diff", "rgb_diff", "two_pathway"]
Norm = Literal["layer", "batch"]
Fusion = Literal["features", "scores"]
MotionDownscale = Literal["mean", "stem"]
StemStride = Literal[1, 2, 4]
# model.appearance_backbone: the (2+1)D body, or a keras.applications image network per frame
# (training/backbones/applications.py)
AppearanceBackbone = Literal["r2plus1d", "mobilenet_v3_small", "efficientnet_b0"]
# train.* (train, inputs.class_balance, runtime)
LrSchedule = Literal["constant", "cosine"]
Monitor = Literal["val_loss", "val_accuracy"]  # train.monitor: early stopping, restore_best
Balance = Literal["none", "sample", "sqrt", "weight"]
Distribute = Literal["auto", "none", "mirrored", "multi_worker"]
AutoOrBool = Literal["auto", True, False]  # train.mixed_precision, train.jit_compile
# engine.* (engine.py: where decode-bound work runs)
Backend = Literal["local", "ray"]
# pretrain.* (data/pretext.py)
PretextTask = Literal["pace", "arrow"]

# The inputs that model.motion_scale applies to (their frame differences are downscaled).
MOTION_SCALED: tuple[InputKind, ...] = ("diff", "two_pathway")
# The inputs that have an appearance pathway (model.appearance_backbone applies to them).
WITH_APPEARANCE: tuple[InputKind, ...] = ("rgb", "two_pathway")


def options(choice: Any) -> tuple[Any, ...]:
    """The values a choice offers, in declaration order."""
    return get_args(choice)
