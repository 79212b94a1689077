"""The (2+1)D ResNet of the TensorFlow tutorial (Tran et al. 2018), built from params.

The custom layers are registered Keras serialisables with ``get_config``, so
``keras.models.load_model("data/model/model.keras", safe_mode=True)`` works in a fresh
process after ``import videoclf.training.network`` (the one import that registers them; their
registered names, ``videoclf>Conv2Plus1D`` and so on, are what saved models refer to).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import einops

from .._tf import keras
from .options import FUSIONS, INPUTS, MOTION_DOWNSCALES, MOTION_SCALED, NORMS

if TYPE_CHECKING:  # types only: the network needs neither the params schema nor decoding
    from ..params import ModelParams
    from ..video import Sampling

layers = keras.layers
_PKG = "videoclf"


class _Nested(layers.Layer):
    """A layer that runs its own ``keras.Sequential`` (``self.seq``, set by the subclass)."""

    seq: keras.Sequential

    def build(self, input_shape):
        # Builds the weights now, so a saved model reloads without guessing.
        self.seq.build(input_shape)

    def call(self, x, training=None):
        # Inference unless told otherwise: the nested Sequential otherwise runs a
        # BatchNormalization on batch statistics when the model is called directly, model(x)
        # (measured with Keras 3.15).
        return self.seq(x, training=bool(training))


@keras.saving.register_keras_serializable(package=_PKG)
class Conv2Plus1D(_Nested):
    """A spatial (1, k, k) convolution followed by a temporal (k, 1, 1) one; ``strides``: the
    spatial one's (2: it reads every pixel and computes at every second one, as ResNet's
    stem does)."""

    def __init__(self, filters: int, kernel_size: tuple[int, int, int], padding: str = "same",
                 strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.padding = filters, tuple(kernel_size), padding
        self.strides = int(strides)
        self.seq = keras.Sequential([
            layers.Conv3D(filters, (1, kernel_size[1], kernel_size[2]), padding=padding,
                          strides=(1, self.strides, self.strides)),
            layers.Conv3D(filters, (kernel_size[0], 1, 1), padding=padding),
        ])

    def call(self, x, training=None):
        """The two convolutions as 2D ones over reshaped clips, with the Conv3D layers'
        own weights: the same numbers, but graphs that exporters handle well. Measured on
        this CPU: onnxruntime ran the Conv3D graph at 0.5x Keras' clips/s and LiteRT has no
        int8 Conv3D kernel (the int8 model ran its convolutions in float32); TensorFlow
        trains both forms at the same speed."""
        if self.padding != "same":
            return super().call(x, training)
        spatial, temporal = self.seq.layers
        ops = keras.ops
        _, t, h, w, c = x.shape
        k = lambda layer: ops.cast(layer.kernel, x.dtype)  # noqa: E731  (mixed precision)
        b = lambda layer: ops.cast(layer.bias, x.dtype)  # noqa: E731
        y = ops.reshape(x, (-1, h, w, c))                       # (b t) h w c
        y = ops.conv(y, k(spatial)[0], strides=self.strides, padding="same") + b(spatial)
        h, w = -(-h // self.strides), -(-w // self.strides)
        y = ops.reshape(y, (-1, t, h * w, self.filters))        # b t (h w) f
        y = ops.conv(y, k(temporal)[:, 0], padding="same") + b(temporal)
        return ops.reshape(y, (-1, t, h, w, self.filters))

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "padding": self.padding,
                "strides": self.strides}


def _norm(kind: str) -> layers.Layer:
    """``layer``: LayerNormalization over the channels of each position (the tutorial);
    ``batch``: BatchNormalization (the R(2+1)D paper's ResNets)."""
    if kind not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")
    return layers.LayerNormalization() if kind == "layer" else layers.BatchNormalization()


@keras.saving.register_keras_serializable(package=_PKG)
class ResidualMain(_Nested):
    """Main branch of a residual block: conv, norm, ReLU, conv, norm."""

    def __init__(self, filters: int, kernel_size: tuple[int, int, int], norm: str = "layer",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.norm = filters, tuple(kernel_size), norm
        self.seq = keras.Sequential([
            Conv2Plus1D(filters, kernel_size, padding="same"),
            _norm(norm),
            layers.ReLU(),
            Conv2Plus1D(filters, kernel_size, padding="same"),
            _norm(norm),
        ])

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "norm": self.norm}


@keras.saving.register_keras_serializable(package=_PKG)
class Project(_Nested):
    """Dense + norm on the shortcut when the number of channels changes."""

    def __init__(self, units: int, norm: str = "layer", **kwargs):
        super().__init__(**kwargs)
        self.units, self.norm = units, norm
        self.seq = keras.Sequential([layers.Dense(units), _norm(norm)])

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "norm": self.norm}


@keras.saving.register_keras_serializable(package=_PKG)
class ResizeVideo(layers.Layer):
    """Resize every frame of a ``(b, t, h, w, c)`` video; time is left as it is."""

    def __init__(self, height: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = height, width

    def build(self, input_shape):
        pass  # no weights

    def call(self, video):
        # keras.ops, not a keras.layers.Resizing (the tutorial's): Resizing is a preprocessing
        # layer whose call defaults to training=True, and called without an outer training
        # flag (model(x), an exporter's trace) it set that for every layer after it, so the
        # BatchNorm layers ran on batch statistics (found when the ONNX graph of a model
        # whose first layer did not pin training=False held 23 ReduceMean nodes, and its
        # output for a clip depended on the rest of the batch). Same bilinear resize.
        old_shape = einops.parse_shape(video, "b t h w c")
        images = einops.rearrange(video, "b t h w c -> (b t) h w c")
        images = keras.ops.image.resize(images, (self.height, self.width),
                                        interpolation="bilinear")
        return einops.rearrange(images, "(b t) h w c -> b t h w c", t=old_shape["t"])

    def get_config(self) -> dict:
        return {**super().get_config(), "height": self.height, "width": self.width}


def _per_frame(video, op):
    """``op`` on the frames of a ``(b, t, h, w, c)`` video as one batch of images."""
    t = einops.parse_shape(video, "b t h w c")["t"]
    images = op(einops.rearrange(video, "b t h w c -> (b t) h w c"))
    return einops.rearrange(images, "(b t) h w c -> b t h w c", t=t)


@keras.saving.register_keras_serializable(package=_PKG)
class BlockMean(layers.Layer):
    """The mean of every ``scale x scale`` block of each frame of a ``(b, t, h, w, c)`` video:
    an exact box filter and subsampling, as 2D average pooling over the frames (LiteRT has no
    3D pooling kernel: ``AveragePooling3D`` made the TFLite conversion fail)."""

    def __init__(self, scale: int, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def build(self, input_shape):
        pass  # no weights

    def call(self, video):
        return _per_frame(video, lambda images: keras.ops.average_pool(
            images, self.scale, self.scale, padding="valid"))

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package=_PKG)
class FrameMaxPool(layers.Layer):
    """ResNet's stem pooling on every frame of a ``(b, t, h, w, c)`` video: the maximum of
    each ``size x size`` window, every ``stride``-th one ("same" padding), as 2D pooling over
    the frames for the reason ``BlockMean`` gives."""

    def __init__(self, size: int = 3, stride: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.size, self.stride = int(size), int(stride)

    def build(self, input_shape):
        pass  # no weights

    def call(self, video):
        return _per_frame(video, lambda images: keras.ops.max_pool(
            images, self.size, self.stride, padding="same"))

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "stride": self.stride}


@keras.saving.register_keras_serializable(package=_PKG)
class FrameDifference(layers.Layer):
    """TSN's "RGB difference" (Wang et al. 2016): frame t minus frame t-1 of a
    ``(b, t, h, w, c)`` clip, the first frame's difference zero. A still background cancels
    out, so what moves is what the network sees, whatever the scene."""

    def call(self, video):
        diff = video[:, 1:] - video[:, :-1]
        return keras.ops.concatenate([keras.ops.zeros_like(video[:, :1]), diff], axis=1)


@keras.saving.register_keras_serializable(package=_PKG)
class TemporalStride(layers.Layer):
    """Every ``stride``-th frame of a ``(b, t, h, w, c)`` clip, from the first: the appearance
    pathway's input (SlowFast's Slow pathway: appearance changes slowly, so few frames do)."""

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, video):
        return video[:, ::self.stride]

    def get_config(self) -> dict:
        return {**super().get_config(), "stride": self.stride}


class _SavesSeedState(layers.Layer):
    """A layer with a ``seed_generator`` whose state is saved with the layer (Keras saves only
    weights): a training run resumed from a checkpoint then draws the masks the unbroken run
    draws, and the final model's bytes are the same (tests/train/test_resume.py)."""

    seed_generator: keras.random.SeedGenerator

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["seed_state"] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if "seed_state" in keys:
            self.seed_generator.state.assign(store["seed_state"])
        super().load_own_variables({k: store[k] for k in keys if k != "seed_state"})


@keras.saving.register_keras_serializable(package=_PKG)
class FeatureDropout(_SavesSeedState, layers.Dropout):
    """Dropout on a pathway's pooled features, before the classifiers (``model.dropout``: the
    heads of TSN, I3D and SlowFast drop 0.4-0.8 of them), with its seed state saved."""


@keras.saving.register_keras_serializable(package=_PKG)
class PathwayDropout(_SavesSeedState):
    """Joins the pooled features of the appearance and the motion pathway (late fusion: one
    linear classifier over both is the sum of one per pathway, TSN's score fusion).

    In training, each clip drops the appearance pathway's features with probability ``rate``
    and, otherwise, the motion pathway's with probability ``rate`` (ModDrop, Neverova et al.
    2016), the kept ones scaled by ``1 / (1 - rate)``; at 0.5 every clip trains exactly one
    pathway, as TSN's streams are trained apart and their scores summed. Why: trained
    jointly, the pathway that fits the training set first stops the other from learning
    (Wang et al. 2020, "What makes training multi-modal classification networks hard?"); here
    the RGB pathway can memorise each training group's scene. A clip that only one pathway
    sees makes that pathway classify on its own. At inference both are kept, unscaled.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate <= 0.5:  # above 0.5 a clip could lose both
            raise ValueError(f"pathway dropout rate must be in [0, 0.5], got {rate}")
        self.rate, self.seed = float(rate), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        appearance, motion = inputs
        if training and self.rate > 0:
            ops = keras.ops
            u = keras.random.uniform((ops.shape(motion)[0], 1), seed=self.seed_generator)
            scale = 1.0 / (1.0 - self.rate)
            appearance = appearance * ops.cast(u >= self.rate, appearance.dtype) * scale
            motion = motion * ops.cast(u < 1.0 - self.rate, motion.dtype) * scale
        return keras.ops.concatenate([appearance, motion], axis=-1)

    def compute_output_shape(self, input_shapes):
        a, m = input_shapes
        return (*a[:-1], a[-1] + m[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PKG)
class ScoreFusion(layers.Layer):
    """TSN's score fusion of classifiers' logits: the sum of their log-probabilities, so that
    the softmax of the output is the normalised product of the classifiers' probabilities
    (a class any one of them rules out stays out; a single linear classifier over both
    pathways' features sums their evidence instead, and the pathway with the larger
    activations decides). The output is float32 log-probabilities, which are logits."""

    def call(self, logits):
        ops = keras.ops
        return sum(ops.log_softmax(ops.cast(x, "float32"), axis=-1) for x in logits)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


def add_residual_block(x, filters: int, kernel_size: tuple[int, int, int], norm: str = "layer"):
    """Residual block; the shortcut is projected when the channel count changes."""
    out = ResidualMain(filters, kernel_size, norm)(x)
    res = x
    if out.shape[-1] != x.shape[-1]:
        res = Project(out.shape[-1], norm)(res)
    return layers.add([res, out])


def _pathway(x, height: int, width: int, filters: Sequence[int], norm: str,
             dropout: float = 0.0, stem_stride: int = 1, stem_pool: bool = False):
    """The tutorial's body: a (2+1)D stem, one residual block per entry of ``filters`` (each
    halving the frame), global average pooling; pooled features out (``dropout``: a share
    of them dropped in training). ``stem_stride`` 2: the stem computes at half the frame
    size, the size the first block works at anyway (so that block resizes nothing).
    ``stem_pool``: ResNet's whole stem, a 3x3 stride-2 max pooling after it, so the blocks
    work at half the stem's size and below (``FrameMaxPool``)."""
    x = Conv2Plus1D(filters[0], (3, 7, 7), padding="same", strides=stem_stride)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    if stem_pool:
        x = FrameMaxPool(3, 2)(x)
        height, width = height // 2, width // 2
    for i, f in enumerate(filters, start=1):
        if x.shape[2:4] != (height // 2**i, width // 2**i):
            x = ResizeVideo(height // 2**i, width // 2**i)(x)
        x = add_residual_block(x, f, (3, 3, 3), norm)
    x = layers.GlobalAveragePooling3D()(x)
    x = layers.Flatten()(x)
    return FeatureDropout(dropout)(x) if dropout else x


def _motion(x, height: int, width: int, filters: Sequence[int], norm: str, dropout: float,
            scale: int, downscale: str = "mean"):
    """The motion body: frame differences, seen at ``1 / scale`` of the frame size, so that
    frames stored at the appearance's detail cost the motion body no more than frames
    ``scale`` times smaller would. ``downscale``: ``mean`` averages them over ``scale x scale``
    pixels first (an exact box filter, ``BlockMean``; the differences are linear, so their
    block means are the block means' differences); ``stem``: the stem's convolution reads
    every pixel and computes at every ``scale``-th one (a learned filter, as ResNet's
    stride-2 stem), the rest of the body unchanged."""
    x = FrameDifference()(x)
    if scale > 1 and downscale == "stem":
        return _pathway(x, height // scale, width // scale, filters, norm, dropout,
                        stem_stride=scale)
    if scale > 1:
        x = BlockMean(scale)(x)
    return _pathway(x, height // scale, width // scale, filters, norm, dropout)


def build_model(n_frames: int, height: int, width: int, num_classes: int,
                filters: Sequence[int] = (16, 32, 64, 128), input_kind: str = "rgb",
                norm: str = "layer", appearance_stride: int = 4,
                pathway_dropout: float = 0.0, dropout: float = 0.0,
                appearance_filters: Sequence[int] | None = None,
                motion_scale: int = 1, appearance_stem_stride: int = 1,
                fusion: str = "features", motion_downscale: str = "mean") -> keras.Model:
    """The tutorial's network for uint8 clips ``(n_frames, height, width, 3)``; logits out.

    Inputs are rescaled to [0, 1] inside the model, so callers feed the stored uint8 frames.
    ``input_kind``: ``rgb`` (the tutorial), ``diff`` (frame differences only), ``rgb_diff``
    (both, 6 channels, one body) or ``two_pathway``: an appearance pathway on the RGB of every
    ``appearance_stride``-th frame and a motion pathway on the frame differences, each its own
    stem, normalisation and blocks, fused late (``PathwayDropout``). The difference is
    computed inside the model, so inference, export and predict feed plain clips whatever the
    choice. ``dropout``: the share of each pathway's pooled features dropped in training.
    ``appearance_filters``: the appearance pathway's widths (``filters`` if None).
    ``motion_scale``: the frame differences of ``two_pathway`` and ``diff`` are seen at
    ``1 / motion_scale`` of the frame size, by ``motion_downscale`` (``_motion``).
    ``appearance_stem_stride`` 2: the appearance pathway's stem reads every pixel and
    computes at every second one; 4: then max-pools to every fourth (``_pathway``).
    ``fusion`` (``two_pathway``): ``features``, one classifier over both pathways' pooled
    features, or ``scores``, that classifier and one on each pathway, fused by
    ``ScoreFusion``. The classifiers are float32 so logits and loss stay float32 under mixed
    precision.
    """
    if input_kind not in INPUTS:
        raise ValueError(f"input_kind must be one of {INPUTS}, got {input_kind!r}")
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    if motion_downscale not in MOTION_DOWNSCALES:
        raise ValueError(f"motion_downscale must be one of {MOTION_DOWNSCALES}, "
                         f"got {motion_downscale!r}")
    if input_kind not in MOTION_SCALED:
        motion_scale = 1
    if height % motion_scale or width % motion_scale:
        raise ValueError(f"motion_scale {motion_scale} must divide {height}x{width}")
    inputs = keras.Input(shape=(n_frames, height, width, 3), dtype="uint8", name="frames")
    x = layers.Rescaling(1.0 / 255)(inputs)
    if input_kind == "two_pathway":
        motion = _motion(x, height, width, filters, norm, dropout, motion_scale,
                         motion_downscale)
        appearance = _pathway(TemporalStride(appearance_stride)(x), height, width,
                              appearance_filters or filters, norm, dropout,
                              min(appearance_stem_stride, 2), appearance_stem_stride == 4)
        features = PathwayDropout(pathway_dropout)([appearance, motion])
        if fusion == "scores":
            heads = [layers.Dense(num_classes, dtype="float32", name=name)(f)
                     for name, f in (("logits", features), ("appearance_logits", appearance),
                                     ("motion_logits", motion))]
            outputs = ScoreFusion(name="score_fusion")(heads)
            return keras.Model(inputs, outputs, name="r2plus1d")
    elif input_kind == "diff":
        features = _motion(x, height, width, filters, norm, dropout, motion_scale,
                           motion_downscale)
    else:
        if input_kind == "rgb_diff":
            x = layers.Concatenate(axis=-1)([x, FrameDifference()(x)])
        features = _pathway(x, height, width, filters, norm, dropout)
    outputs = layers.Dense(num_classes, dtype="float32", name="logits")(features)
    return keras.Model(inputs, outputs, name="r2plus1d")


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


def build_from_params(model_params: ModelParams, sampling: Sampling,
                      num_classes: int) -> keras.Model:
    """The network ``model.*`` asks for, for clips sampled as ``sampling``."""
    return build_model(sampling.n_frames, sampling.height, sampling.width, num_classes,
                       model_params.filters, model_params.input, norm=model_params.norm,
                       appearance_stride=model_params.appearance_stride,
                       pathway_dropout=model_params.pathway_dropout,
                       dropout=model_params.dropout,
                       appearance_filters=model_params.appearance_filters,
                       motion_scale=model_params.motion_scale,
                       appearance_stem_stride=model_params.appearance_stem_stride,
                       fusion=model_params.fusion,
                       motion_downscale=model_params.motion_downscale)


def is_classifier(layer: layers.Layer) -> bool:
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
        settings = None
        if isinstance(layer, own):
            settings = {k: v for k, v in layer.get_config().items()
                        if k not in ("name", "dtype", "trainable", "seed", "rate")}
        shapes = [tuple(w.shape) for w in layer.weights]
        if not classes and is_classifier(layer):
            shapes, settings = [shapes[0][:1]], "classifier"
        arch.append((type(layer).__name__, shapes, settings))
    return arch
