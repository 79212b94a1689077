"""The (2+1)D ResNet body of the TensorFlow tutorial (Tran et al. 2018, "A Closer Look at
Spatiotemporal Convolutions"): a (2+1)D stem, one residual block per width, global average
pooling. ``body`` builds it on a Keras tensor; ``network.build_model`` puts one (or one per
pathway) between the inputs and the classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import einops

from ..._tf import keras
from ...choices import Norm, options
from ..layers import FeatureDropout, per_frame, serializable

layers = keras.layers


class _Nested(keras.layers.Layer):
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


@serializable
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
        k = lambda layer: ops.cast(layer.kernel, x.dtype)  # the compute dtype (mixed precision)
        b = lambda layer: ops.cast(layer.bias, x.dtype)
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


def _norm(kind: Norm) -> keras.layers.Layer:
    """``layer``: LayerNormalization over the channels of each position (the tutorial);
    ``batch``: BatchNormalization (the R(2+1)D paper's ResNets)."""
    if kind not in options(Norm):
        raise ValueError(f"norm must be one of {options(Norm)}, got {kind!r}")
    return layers.LayerNormalization() if kind == "layer" else layers.BatchNormalization()


@serializable
class ResidualMain(_Nested):
    """Main branch of a residual block: conv, norm, ReLU, conv, norm."""

    def __init__(self, filters: int, kernel_size: tuple[int, int, int], norm: Norm = "layer",
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


@serializable
class Project(_Nested):
    """Dense + norm on the shortcut when the number of channels changes."""

    def __init__(self, units: int, norm: Norm = "layer", **kwargs):
        super().__init__(**kwargs)
        self.units, self.norm = units, norm
        self.seq = keras.Sequential([layers.Dense(units), _norm(norm)])

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "norm": self.norm}


@serializable
class ResizeVideo(keras.layers.Layer):
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


@serializable
class FrameMaxPool(keras.layers.Layer):
    """ResNet's stem pooling on every frame of a ``(b, t, h, w, c)`` video: the maximum of
    each ``size x size`` window, every ``stride``-th one ("same" padding), as 2D pooling over
    the frames for the reason ``BlockMean`` gives."""

    def __init__(self, size: int = 3, stride: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.size, self.stride = int(size), int(stride)

    def build(self, input_shape):
        pass  # no weights

    def call(self, video):
        return per_frame(video, lambda images: keras.ops.max_pool(
            images, self.size, self.stride, padding="same"))

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "stride": self.stride}


def add_residual_block(x, filters: int, kernel_size: tuple[int, int, int], norm: Norm):
    """Residual block; the shortcut is projected when the channel count changes."""
    out = ResidualMain(filters, kernel_size, norm)(x)
    res = x
    if out.shape[-1] != x.shape[-1]:
        res = Project(out.shape[-1], norm)(res)
    return layers.add([res, out])


def body(x, height: int, width: int, filters: Sequence[int], *, norm: Norm, dropout: float,
         stem_stride: int, stem_pool: bool):
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
