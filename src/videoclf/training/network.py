"""The classifier of ``model.*``, assembled from a backbone (``backbones/``) and the
network's own layers (``layers``): one body, or two pathways fused late.

``import videoclf.training.network`` registers every layer of the package, so
``keras.models.load_model("data/model/model.keras", safe_mode=True)`` works in a fresh
process (their registered names, ``videoclf>Conv2Plus1D`` and so on, are what saved models
refer to; the layers are re-exported here, the module their configs name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._tf import keras
from ..choices import MOTION_SCALED, Fusion, InputKind, MotionDownscale, options
from .backbones import applications
from .backbones.r2plus1d import (  # noqa: F401  (re-exported: saved configs name this module)
    Conv2Plus1D,
    FrameMaxPool,
    Project,
    ResidualMain,
    ResizeVideo,
    add_residual_block,
    body,
)
from .layers import (  # noqa: F401  (re-exported, as above)
    BlockMean,
    FeatureDropout,
    FrameDifference,
    PathwayDropout,
    ScoreFusion,
    TemporalStride,
)

if TYPE_CHECKING:  # types only: the network needs neither the params schema nor decoding
    from ..params import ModelParams
    from ..video import Sampling

layers = keras.layers
CLIP = "clip"  # an image backbone's network: the uint8 clip as its layers read it


def _check(model: ModelParams, height: int, width: int) -> None:
    """What the schema checks, again for callers that build a ModelParams by hand."""
    for key, value, choice in (("input", model.input, InputKind), ("fusion", model.fusion, Fusion),
                               ("motion_downscale", model.motion_downscale, MotionDownscale)):
        if value not in options(choice):
            raise ValueError(f"model.{key} must be one of {options(choice)}, got {value!r}")
    scale = _motion_scale(model)
    if height % scale or width % scale:
        raise ValueError(f"motion_scale {scale} must divide {height}x{width}")


def _motion_scale(model: ModelParams) -> int:
    return model.motion_scale if model.input in MOTION_SCALED else 1


def _motion(x, height: int, width: int, model: ModelParams):
    """The motion body: frame differences, seen at ``1 / model.motion_scale`` of the frame
    size, so that frames stored at the appearance's detail cost the motion body no more than
    frames that many times smaller would. ``model.motion_downscale``: ``mean`` averages them
    over ``scale x scale`` pixels first (an exact box filter, ``BlockMean``; the differences
    are linear, so their block means are the block means' differences); ``stem``: the stem's
    convolution reads every pixel and computes at every ``scale``-th one (a learned filter,
    as ResNet's stride-2 stem), the rest of the body unchanged."""
    scale = _motion_scale(model)
    x = FrameDifference()(x)
    strided = scale > 1 and model.motion_downscale == "stem"
    if scale > 1 and not strided:
        x = BlockMean(scale)(x)
    return body(x, height // scale, width // scale, model.filters, norm=model.norm,
                dropout=model.dropout, stem_stride=scale if strided else 1, stem_pool=False)


def _appearance(frames, x, height: int, width: int, model: ModelParams):
    """The appearance pathway: the RGB of every ``model.appearance_stride``-th frame through
    its own body, ``model.appearance_filters`` wide; ``appearance_stem_stride`` 2: the stem
    reads every pixel and computes at every second one; 4: then max-pools to every fourth.
    An image backbone (``model.appearance_backbone``) reads the uint8 ``frames`` itself
    (``backbones.applications``: each network's own preprocessing)."""
    if model.appearance_backbone != "r2plus1d":
        features = applications.frame_features(frames, height, width, model.appearance_backbone,
                                               model.appearance_stride)
        return applications.pooled(features, model.dropout)
    stride = model.appearance_stem_stride
    return body(TemporalStride(model.appearance_stride)(x), height, width,
                model.appearance_filters, norm=model.norm, dropout=model.dropout,
                stem_stride=min(stride, 2), stem_pool=stride == 4)


def _classifier(features, num_classes: int, name: str = "logits"):
    # float32, so logits and loss stay float32 under mixed precision.
    return layers.Dense(num_classes, dtype="float32", name=name)(features)


def _two_pathway(frames, x, height: int, width: int, num_classes: int, model: ModelParams):
    """Both pathways fused late (``PathwayDropout``); ``model.fusion: scores`` adds a
    classifier on each pathway and fuses the three by ``ScoreFusion``."""
    motion = _motion(x, height, width, model)
    appearance = _appearance(frames, x, height, width, model)
    features = PathwayDropout(model.pathway_dropout)([appearance, motion])
    if model.fusion == "scores":
        heads = [_classifier(f, num_classes, name) for name, f in (
            ("logits", features), ("appearance_logits", appearance), ("motion_logits", motion))]
        return ScoreFusion(name="score_fusion")(heads)
    return _classifier(features, num_classes)


def build_model(model: ModelParams, sampling: Sampling, num_classes: int) -> keras.Model:
    """The network ``model.*`` asks for, for uint8 clips sampled as ``sampling``
    (``(n_frames, height, width, 3)``); logits out.

    Inputs are rescaled to [0, 1] inside the model, so callers feed the stored uint8 frames.
    ``model.input``: ``rgb`` (the tutorial), ``diff`` (frame differences only), ``rgb_diff``
    (both, 6 channels, one body) or ``two_pathway`` (``_two_pathway``: an appearance pathway
    on the RGB, a motion pathway on the differences, each its own stem, normalisation and
    blocks). The difference is computed inside the model, so inference, export and predict
    feed plain clips whatever the choice. ``model.dropout``: the share of each pathway's
    pooled features dropped in training.
    """
    height, width = sampling.height, sampling.width
    _check(model, height, width)
    inputs = keras.Input(shape=(sampling.n_frames, height, width, 3), dtype="uint8",
                         name="frames")
    clip = inputs
    if model.appearance_backbone != "r2plus1d":
        # A tensor of this network's own that ``head_from_features`` can start from (a
        # Functional model cut from the saved one's Input would break saving it).
        clip = layers.Identity(name=CLIP)(inputs)
    x = layers.Rescaling(1.0 / 255)(clip)
    if model.input == "two_pathway":
        outputs = _two_pathway(clip, x, height, width, num_classes, model)
    elif model.input == "rgb" and model.appearance_backbone != "r2plus1d":
        outputs = _classifier(_appearance(clip, x, height, width, model), num_classes)
    elif model.input == "diff":
        outputs = _classifier(_motion(x, height, width, model), num_classes)
    else:
        if model.input == "rgb_diff":
            x = layers.Concatenate(axis=-1)([x, FrameDifference()(x)])
        outputs = _classifier(body(x, height, width, model.filters, norm=model.norm,
                                   dropout=model.dropout, stem_stride=1, stem_pool=False),
                              num_classes)
    return keras.Model(inputs, outputs, name="r2plus1d")


def head_from_features(model: keras.Model) -> keras.Model:
    """What follows an image backbone's per-frame features in ``model`` (``build_model``'s
    network, or ``with_pathway_heads``' of it), as a network of its own: its inputs are the
    features (``(B, T', C)``) and, for ``two_pathway``, the clip the motion pathway reads.
    It shares every layer with ``model``, so fitting it on cached features (the features
    stage) trains ``model``'s head and motion pathway, the frozen backbone left out."""
    features = model.get_layer(applications.FRAME_FEATURES).output
    motion_reads_frames = any(isinstance(layer, FrameDifference) for layer in model.layers)
    inputs = [model.get_layer(CLIP).output, features] if motion_reads_frames else features
    return keras.Model(inputs, model.outputs, name=f"{model.name}_head")


def with_pathway_heads(model: keras.Model) -> keras.Model:
    """The training network of a ``two_pathway`` model with a classifier on each pathway
    (Gradient Blending, Wang et al. 2020: each stream's own loss beside the fused one, so
    that the pathway that fits first cannot stop the other from learning). Its output is the
    fused logits, then the appearance pathway's, then the motion pathway's, side by side
    (``num_classes * 3``), for ``pathway_loss``; the heads read the pooled features before
    ``PathwayDropout``. It shares every layer with ``model``, which stays the network that
    is saved, exported and predicted with: the heads exist only while training, unless
    ``model`` is fused by ``scores``, whose heads are its own (this returns their logits)."""
    fusion = next((layer for layer in model.layers if isinstance(layer, ScoreFusion)), None)
    if fusion is not None:  # the heads are the saved model's own (``fusion: scores``)
        joined = layers.Concatenate(name="fused_and_pathway_logits")(fusion.input)
        return keras.Model(model.inputs, joined, name=f"{model.name}_with_pathway_heads")
    join = next((layer for layer in model.layers if isinstance(layer, PathwayDropout)), None)
    if join is None:
        raise ValueError("pathway heads need a two_pathway model")
    num_classes = model.output.shape[-1]
    heads = [layers.Dense(num_classes, dtype="float32", name=f"{name}_logits")(features)
             for name, features in zip(("appearance", "motion"), join.input)]
    joined = layers.Concatenate(name="fused_and_pathway_logits")([model.output, *heads])
    return keras.Model(model.inputs, joined, name=f"{model.name}_with_pathway_heads")


def pathway_loss(num_classes: int, weight: float):
    """The loss and the accuracy of ``with_pathway_heads``' output for integer labels:
    cross-entropy of the fused logits plus ``weight`` times each pathway's own; accuracy of
    the fused logits alone (what inference predicts)."""
    ce = keras.losses.sparse_categorical_crossentropy
    c = num_classes

    def loss(y_true, y_pred):
        return (ce(y_true, y_pred[:, :c], from_logits=True)
                + weight * (ce(y_true, y_pred[:, c:2 * c], from_logits=True)
                            + ce(y_true, y_pred[:, 2 * c:], from_logits=True)))

    def accuracy(y_true, y_pred):
        return keras.metrics.sparse_categorical_accuracy(y_true, y_pred[:, :c])

    return loss, accuracy


def is_classifier(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` is one of the network's classifiers (the one over both pathways is
    ``logits``; ``fusion: scores`` adds ``appearance_logits`` and ``motion_logits``)."""
    return isinstance(layer, layers.Dense) and layer.name.endswith("logits")


def architecture(model: keras.Model, classes: bool = True) -> list[tuple]:
    """What makes two networks the same one, layer by layer, apart from their weights' values:
    the layer's class, its weights' shapes and, for this module's layers without weights,
    their settings (a frame size, an appearance stride), but those of training alone (the
    pathway dropout rate, and feature dropout, which is no layer at all at rate 0: a model
    trained at one rate starts another run at another). ``classes=False``: the classifiers'
    number of classes left out (a warm start may change it)."""
    own = (ResizeVideo, BlockMean, FrameMaxPool, FrameDifference, TemporalStride,
           PathwayDropout)
    arch = []
    for layer in model.layers:
        if isinstance(layer, FeatureDropout):
            continue
        settings: dict | str | None = None
        if isinstance(layer, own):
            settings = {k: v for k, v in layer.get_config().items()
                        if k not in ("name", "dtype", "trainable", "seed", "rate")}
        shapes = [tuple(w.shape) for w in layer.weights]
        if not classes and is_classifier(layer):
            shapes, settings = [shapes[0][:1]], "classifier"
        arch.append((type(layer).__name__, shapes, settings))
    return arch
