"""The network's own Keras layers that are no backbone's: the inputs each pathway reads
(``FrameDifference``, ``TemporalStride``, ``BlockMean``), the fusion of the pathways
(``PathwayDropout``, ``ScoreFusion``) and dropout on pooled features (``FeatureDropout``).

Every layer of the package is registered through ``serializable``: Keras then saves it as
``videoclf>Name`` and ``keras.models.load_model(..., safe_mode=True)`` finds it in a fresh
process after ``import videoclf.training.network``, the one import that registers them all.
"""

from __future__ import annotations

import einops

from .._tf import keras

layers = keras.layers
# What a saved model's config.json names as each layer's module: the documented import that
# registers every layer (and re-exports it), wherever the class is defined. Keras loads by
# the registered name; the module is only recorded, but it is part of model.keras's bytes,
# which the same params must reproduce whatever room a layer lives in.
PUBLIC_MODULE = "videoclf.training.network"


def serializable(cls: type) -> type:
    """Register ``cls`` with Keras as ``videoclf>{cls.__name__}``, recorded under
    ``PUBLIC_MODULE``."""
    cls.__module__ = PUBLIC_MODULE
    return keras.saving.register_keras_serializable(package="videoclf")(cls)


def per_frame(video, op):
    """``op`` on the frames of a ``(b, t, h, w, c)`` video as one batch of images."""
    t = einops.parse_shape(video, "b t h w c")["t"]
    images = op(einops.rearrange(video, "b t h w c -> (b t) h w c"))
    return einops.rearrange(images, "(b t) h w c -> b t h w c", t=t)



@serializable
class BlockMean(keras.layers.Layer):
    """The mean of every ``scale x scale`` block of each frame of a ``(b, t, h, w, c)`` video:
    an exact box filter and subsampling, as 2D average pooling over the frames (LiteRT has no
    3D pooling kernel: ``AveragePooling3D`` made the TFLite conversion fail)."""

    def __init__(self, scale: int, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def build(self, input_shape):
        pass  # no weights

    def call(self, video):
        return per_frame(video, lambda images: keras.ops.average_pool(
            images, self.scale, self.scale, padding="valid"))

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


@serializable
class FrameDifference(keras.layers.Layer):
    """TSN's "RGB difference" (Wang et al. 2016): frame t minus frame t-1 of a
    ``(b, t, h, w, c)`` clip, the first frame's difference zero. A still background cancels
    out, so what moves is what the network sees, whatever the scene."""

    def call(self, video):
        diff = video[:, 1:] - video[:, :-1]
        return keras.ops.concatenate([keras.ops.zeros_like(video[:, :1]), diff], axis=1)


@serializable
class TemporalStride(keras.layers.Layer):
    """Every ``stride``-th frame of a ``(b, t, h, w, c)`` clip, from the first: the appearance
    pathway's input (SlowFast's Slow pathway: appearance changes slowly, so few frames do)."""

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, video):
        return video[:, ::self.stride]

    def get_config(self) -> dict:
        return {**super().get_config(), "stride": self.stride}


class _SavesSeedState(keras.layers.Layer):
    """A layer with a ``seed_generator`` whose state is saved with the layer (Keras saves only
    weights): a training run resumed from a checkpoint then draws the masks the unbroken run
    draws, and the final model's bytes are the same (tests/training/test_resume.py)."""

    seed_generator: keras.random.SeedGenerator

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["seed_state"] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if "seed_state" in keys:
            self.seed_generator.state.assign(store["seed_state"])
        super().load_own_variables({k: store[k] for k in keys if k != "seed_state"})


@serializable
class FeatureDropout(_SavesSeedState, keras.layers.Dropout):
    """Dropout on a pathway's pooled features, before the classifiers (``model.dropout``: the
    heads of TSN, I3D and SlowFast drop 0.4-0.8 of them), with its seed state saved."""


@serializable
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


@serializable
class ScoreFusion(keras.layers.Layer):
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
