"""The (2+1)D ResNet of the TensorFlow tutorial (Tran et al. 2018), built from params.

The custom layers are registered Keras serialisables with ``get_config``, so
``keras.models.load_model("data/model/model.keras", safe_mode=True)`` works in a fresh
process after ``import videoclf.training.network`` (the one import that registers them; their
registered names, ``videoclf>Conv2Plus1D`` and so on, are what saved models refer to).
"""

from __future__ import annotations

from collections.abc import Sequence

import einops

from .._tf import keras
from .options import INPUTS, NORMS

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
    """A spatial (1, k, k) convolution followed by a temporal (k, 1, 1) one."""

    def __init__(self, filters: int, kernel_size: tuple[int, int, int], padding: str = "same",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.padding = filters, tuple(kernel_size), padding
        self.seq = keras.Sequential([
            layers.Conv3D(filters, (1, kernel_size[1], kernel_size[2]), padding=padding),
            layers.Conv3D(filters, (kernel_size[0], 1, 1), padding=padding),
        ])

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "padding": self.padding}


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
        self.resizing_layer = layers.Resizing(height, width)

    def build(self, input_shape):
        pass  # Resizing has no weights

    def call(self, video):
        old_shape = einops.parse_shape(video, "b t h w c")
        images = einops.rearrange(video, "b t h w c -> (b t) h w c")
        images = self.resizing_layer(images)
        return einops.rearrange(images, "(b t) h w c -> b t h w c", t=old_shape["t"])

    def get_config(self) -> dict:
        return {**super().get_config(), "height": self.height, "width": self.width}


@keras.saving.register_keras_serializable(package=_PKG)
class FrameDifference(layers.Layer):
    """TSN's "RGB difference" (Wang et al. 2016): frame t minus frame t-1 of a
    ``(b, t, h, w, c)`` clip, the first frame's difference zero. A still background cancels
    out, so what moves is what the network sees, whatever the scene."""

    def call(self, video):
        diff = video[:, 1:] - video[:, :-1]
        return keras.ops.concatenate([keras.ops.zeros_like(video[:, :1]), diff], axis=1)


def add_residual_block(x, filters: int, kernel_size: tuple[int, int, int], norm: str = "layer"):
    """Residual block; the shortcut is projected when the channel count changes."""
    out = ResidualMain(filters, kernel_size, norm)(x)
    res = x
    if out.shape[-1] != x.shape[-1]:
        res = Project(out.shape[-1], norm)(res)
    return layers.add([res, out])


def build_model(n_frames: int, height: int, width: int, num_classes: int,
                filters: Sequence[int] = (16, 32, 64, 128), input_kind: str = "rgb",
                norm: str = "layer") -> keras.Model:
    """The tutorial's network for uint8 clips ``(n_frames, height, width, 3)``; logits out.

    Inputs are rescaled to [0, 1] inside the model, so callers feed the stored uint8 frames.
    ``input_kind``: ``rgb`` (the tutorial), ``diff`` (frame differences only) or ``rgb_diff``
    (both, 6 channels); the difference is computed inside the model, so inference, export and
    predict feed plain clips whatever the choice.
    The last Dense is float32 so logits and loss stay float32 under mixed precision.
    """
    if input_kind not in INPUTS:
        raise ValueError(f"input_kind must be one of {INPUTS}, got {input_kind!r}")
    inputs = keras.Input(shape=(n_frames, height, width, 3), dtype="uint8", name="frames")
    x = layers.Rescaling(1.0 / 255)(inputs)
    if input_kind == "diff":
        x = FrameDifference()(x)
    elif input_kind == "rgb_diff":
        x = layers.Concatenate(axis=-1)([x, FrameDifference()(x)])
    x = Conv2Plus1D(filters[0], (3, 7, 7), padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for i, f in enumerate(filters, start=1):
        x = ResizeVideo(height // 2**i, width // 2**i)(x)
        x = add_residual_block(x, f, (3, 3, 3), norm)
    x = layers.GlobalAveragePooling3D()(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="r2plus1d")
