"""Image networks of ``keras.applications`` as the appearance pathway (``model.
appearance_backbone``): TSN's recipe, one 2D network with shared weights applied to every
``model.appearance_stride``-th frame, its pooled features averaged over time.

Each network keeps its own input preprocessing inside it (MobileNetV3: ``x / 127.5 - 1``;
EfficientNet: ``x / 255`` then ImageNet's mean and variance), so it is fed the stored pixels
as floats in [0, 255], which is what ImageNet weights were fitted on. Both accept any frame
of at least 32x32 (they halve it five times and pool globally); the library's ImageNet files
were fitted at 224x224 and hold the same weights whatever the size, so 128x128 frames load
them too (features then come from objects seen at 128/224 of the scale ImageNet showed).

The per-frame features of a clip (``FRAME_FEATURES``, ``(T', C)``) are a layer's output of
their own, so the features stage can cache them and train can fit what follows them
(``network.head_from_features``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._tf import keras
from ..layers import FeatureDropout, TemporalStride

layers = keras.layers

# Layer names that the weights loader, the features stage and train look up.
BACKBONE = "appearance_backbone"        # the keras.applications network (pooled output)
FRAME_FEATURES = "appearance_frames"    # TimeDistributed(BACKBONE): (B, T', C) features
PIXELS = "appearance_pixels"            # uint8 clip -> float [0, 255]


@dataclass(frozen=True)
class ImageBackbone:
    """One ``keras.applications`` network: how to build it without its classifier, and the
    library's own ImageNet "notop" file (origin and hash exactly as the library's loader
    uses them: MD5 for these files; the weights stage records their SHA-256 too)."""

    name: str          # model.appearance_backbone
    constructor: str   # keras.applications.<constructor>
    channels: int      # pooled features per frame
    imagenet_url: str
    imagenet_md5: str

    def build(self, height: int, width: int, name: str = BACKBONE) -> keras.Model:
        """The network for ``(height, width, 3)`` images in [0, 255], random weights, its
        features globally average-pooled: ``(B, channels)``."""
        make = getattr(keras.applications, self.constructor)
        return make(include_top=False, weights=None, input_shape=(height, width, 3),
                    pooling="avg", name=name)

    @property
    def imagenet_file(self) -> str:
        return self.imagenet_url.rsplit("/", 1)[-1]


_MOBILENET = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
_EFFICIENTNET = "https://storage.googleapis.com/keras-applications/"

# The library's origins and hashes (keras/src/applications/mobilenet_v3.py, efficientnet.py).
BACKBONES: dict[str, ImageBackbone] = {
    "mobilenet_v3_small": ImageBackbone(
        "mobilenet_v3_small", "MobileNetV3Small", 576,
        _MOBILENET + "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "efficientnet_b0": ImageBackbone(
        "efficientnet_b0", "EfficientNetB0", 1280,
        _EFFICIENTNET + "efficientnetb0_notop.h5", "50bc09e76180e00e4465e1a485ddc09d"),
}


def image_backbone(name: str) -> ImageBackbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"model.appearance_backbone: no image backbone {name!r} "
                         f"(one of {', '.join(BACKBONES)})") from None


def frame_features(frames, height: int, width: int, backbone: str, stride: int):
    """``(B, T, H, W, 3)`` uint8 frames -> ``(B, T // stride, C)``: the backbone's pooled
    features of every ``stride``-th frame, one network shared by all of them."""
    pixels = layers.Rescaling(1.0, name=PIXELS)(frames)  # uint8 -> float, values kept
    net = image_backbone(backbone).build(height, width)
    return layers.TimeDistributed(net, name=FRAME_FEATURES)(TemporalStride(stride)(pixels))


def pooled(features, dropout: float):
    """Per-frame features -> the clip's: their mean over time (TSN's average consensus),
    ``dropout`` of them dropped in training as the (2+1)D body's are."""
    x = layers.GlobalAveragePooling1D(name="appearance_time_pool")(features)
    return FeatureDropout(dropout)(x) if dropout else x


def backbone_of(model: keras.Model) -> keras.Model | None:
    """The image backbone inside a network built by ``network.build_model`` (None for the
    (2+1)D body)."""
    try:
        return model.get_layer(FRAME_FEATURES).layer
    except ValueError:
        return None
