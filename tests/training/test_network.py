import json
import subprocess
import sys

import numpy as np

from helpers import tutorial_net


def test_tutorial_parameter_count():
    # The tutorial's model has 443,322 parameters for 10 classes.
    assert tutorial_net(10, 224, 224, 10).count_params() == 443_322


def test_output_shape_and_uint8_input():
    m = tutorial_net(4, 32, 32, 3, [8, 8, 16, 16])
    x = np.random.default_rng(0).integers(0, 255, (2, 4, 32, 32, 3), dtype=np.uint8)
    y = m.predict_on_batch(x)
    assert y.shape == (2, 3) and np.isfinite(y).all()
    assert m.inputs[0].dtype == "uint8"


def test_saved_model_loads_in_a_fresh_process_safely(tmp_path):
    m = tutorial_net(4, 32, 32, 3, [8, 8, 16, 16])
    m.save(tmp_path / "m.keras")
    x = np.random.default_rng(1).integers(0, 255, (1, 4, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    expected = m.predict_on_batch(x)
    code = (
        "import sys, json, numpy as np, keras, videoclf.training.network\n"
        "m = keras.models.load_model(sys.argv[1], safe_mode=True)\n"
        "print(json.dumps(m.predict_on_batch(np.load(sys.argv[2])).tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras"),
                          str(tmp_path / "x.npy")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_frame_difference_inputs_shapes_and_save_load(tmp_path):
    """diff sees only change (a still clip gives the same logits whatever its content);
    rgb_diff feeds 6 channels to the first convolution; both save and load in safe mode."""
    import keras

    rng = np.random.default_rng(2)
    x = rng.integers(0, 255, (2, 4, 32, 32, 3), dtype=np.uint8)
    rgb = tutorial_net(4, 32, 32, 3, [8, 8, 16, 16], "rgb")
    both = tutorial_net(4, 32, 32, 3, [8, 8, 16, 16], "rgb_diff")
    diff = tutorial_net(4, 32, 32, 3, [8, 8, 16, 16], "diff")
    # The first (spatial) convolution sees 6 channels instead of 3: 8 x 7 x 7 x 3 more weights.
    assert both.count_params() - rgb.count_params() == 8 * 7 * 7 * 3
    assert diff.count_params() == rgb.count_params()
    still_a = np.repeat(x[:, :1], 4, axis=1)
    still_b = np.repeat(x[:, 1:2][::-1], 4, axis=1)
    np.testing.assert_allclose(diff.predict_on_batch(still_a), diff.predict_on_batch(still_b),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(rgb.predict_on_batch(still_a), rgb.predict_on_batch(still_b))
    for m in (both, diff):
        m.save(tmp_path / "m.keras")
        back = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
        np.testing.assert_allclose(back.predict_on_batch(x), m.predict_on_batch(x), rtol=1e-5,
                                   atol=1e-5)


def test_unknown_input_kind_is_refused():
    import pytest

    with pytest.raises(ValueError, match="model.input"):
        tutorial_net(4, 32, 32, 3, [8, 8, 16, 16], "flow")


def test_batch_norm_blocks_shapes_and_save_load(tmp_path):
    """norm="batch" puts BatchNormalization where the tutorial has LayerNormalization (same
    number of normalisation layers, two weights more each for the moving statistics) and
    the model saves and loads in safe mode with those statistics."""
    import keras

    from videoclf.training.precise_bn import batchnorm_layers

    layer = tutorial_net(4, 32, 32, 3, [8, 8, 16, 16], "diff")
    batch = tutorial_net(4, 32, 32, 3, [8, 8, 16, 16], "diff", norm="batch")
    assert len(batchnorm_layers(layer)) == 1  # the tutorial's stem
    n_ln = sum(isinstance(x, keras.layers.LayerNormalization)
               for x in layer._flatten_layers(include_self=False))
    assert len(batchnorm_layers(batch)) == 1 + n_ln and n_ln == 4 * 2 + 1  # 1 projection (8->16)
    assert len(batch.weights) - len(layer.weights) == 2 * n_ln
    x = np.random.default_rng(3).integers(0, 255, (2, 4, 32, 32, 3), dtype=np.uint8)
    for bn in batchnorm_layers(batch):  # statistics that are not the initial ones
        bn.moving_mean.assign(np.full(bn.moving_mean.shape, 0.1, "float32"))
        bn.moving_variance.assign(np.full(bn.moving_variance.shape, 2.0, "float32"))
    # Called directly, the model runs in inference mode as predict does, nested layers too.
    np.testing.assert_allclose(np.asarray(batch(x)), batch.predict_on_batch(x), rtol=1e-5,
                               atol=1e-5)
    assert not np.allclose(np.asarray(batch(x, training=True)), batch.predict_on_batch(x),
                           atol=1e-2)
    batch.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(back.predict_on_batch(x), batch.predict_on_batch(x), rtol=1e-5,
                               atol=1e-5)
    assert back.layers[-1].output.shape == (None, 3)


def test_unknown_norm_is_refused():
    import pytest

    with pytest.raises(ValueError, match="norm"):
        tutorial_net(4, 32, 32, 3, [8, 8, 16, 16], norm="group")


def test_two_pathways_shapes_parameters_and_what_each_sees(tmp_path):
    """two_pathway: an RGB body on every stride-th frame and a difference body, each with its
    own stem and BatchNorm, one classifier over both: twice a body's parameters, the head on
    twice the features. A still clip reaches the appearance pathway only; a frame between
    the appearance pathway's frames reaches the motion pathway only."""
    import keras

    from videoclf.training.network import TemporalStride
    from videoclf.training.precise_bn import batchnorm_layers

    one = tutorial_net(8, 32, 32, 3, [8, 8, 16, 16], "rgb", norm="batch")
    two = tutorial_net(8, 32, 32, 3, [8, 8, 16, 16], "two_pathway", norm="batch",
                      appearance_stride=4)
    # 2 bodies + Dense(2F -> C) = 2 x (body + Dense(F -> C)) - C.
    assert two.count_params() == 2 * one.count_params() - 3
    assert len(batchnorm_layers(two)) == 2 * len(batchnorm_layers(one))
    x = np.random.default_rng(4).integers(0, 255, (2, 8, 32, 32, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(TemporalStride(4)(x)), x[:, ::4])
    y = two.predict_on_batch(x)
    assert y.shape == (2, 3) and np.isfinite(y).all()
    still_a, still_b = np.repeat(x[:, :1], 8, axis=1), np.repeat(x[:, 1:2], 8, axis=1)
    assert not np.allclose(two.predict_on_batch(still_a), two.predict_on_batch(still_b))
    # Frame 2 is not an appearance frame (0 and 4 are): only the motion pathway sees it.
    moved = x.copy()
    moved[:, 2] = 255 - moved[:, 2]
    assert not np.allclose(two.predict_on_batch(moved), y)
    # Called directly, it is predict (inference mode, both pathways, no dropout).
    np.testing.assert_allclose(np.asarray(two(x)), y, rtol=1e-5, atol=1e-5)
    two.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(back.predict_on_batch(x), y, rtol=1e-5, atol=1e-5)
    assert back.get_layer(index=2).__class__.__name__ in ("FrameDifference", "TemporalStride")


def test_pathway_dropout_drops_one_pathway_per_clip_in_training_only():
    import keras

    from videoclf.training.network import PathwayDropout

    keras.utils.set_random_seed(0)
    layer = PathwayDropout(0.25)
    a, m = np.ones((4000, 2), "float32"), np.full((4000, 3), 2.0, "float32")
    out = np.asarray(layer([a, m], training=True))
    kept_a, kept_m = out[:, 0] > 0, out[:, 2] > 0
    assert (kept_a | kept_m).all()                     # never both dropped
    assert abs((~kept_a).mean() - 0.25) < 0.03 and abs((~kept_m).mean() - 0.25) < 0.03
    np.testing.assert_allclose(out[kept_a, :2], 1 / 0.75, rtol=1e-6)  # kept ones scaled up
    np.testing.assert_allclose(np.asarray(layer([a, m])), np.concatenate([a, m], 1))
    import pytest

    half = np.asarray(PathwayDropout(0.5)([a, m], training=True))
    assert ((half[:, 0] > 0) != (half[:, 2] > 0)).all()  # at 0.5, exactly one pathway a clip
    with pytest.raises(ValueError, match="0.5"):
        PathwayDropout(0.51)


def test_a_clips_logits_do_not_depend_on_the_rest_of_the_batch():
    """Called directly (no training flag, as exporters trace it), every BatchNorm runs on
    its moving statistics: a preprocessing layer's training=True default once leaked into
    the layers after it."""
    x = np.random.default_rng(5).integers(0, 255, (4, 8, 32, 32, 3), dtype=np.uint8)
    for kind in ("diff", "two_pathway"):
        m = tutorial_net(8, 32, 32, 3, [8, 8, 16, 16], kind, norm="batch")
        np.testing.assert_allclose(np.asarray(m(x))[:1], np.asarray(m(x[:1])), atol=1e-5)


def test_pathway_heads_share_the_network_and_add_each_pathways_loss():
    """Training-only classifiers on each pathway: the fused third of the output is the saved
    network's logits, every layer is shared, and the loss is the fused cross-entropy plus
    the weighted sum of the pathways' own."""
    import pytest

    from videoclf.training.network import pathway_loss, with_pathway_heads

    model = tutorial_net(8, 32, 32, 3, [8, 8, 16, 16], "two_pathway", norm="batch")
    heads = with_pathway_heads(model)
    x = np.random.default_rng(6).integers(0, 255, (2, 8, 32, 32, 3), dtype=np.uint8)
    out = np.asarray(heads(x))
    assert out.shape == (2, 9)
    np.testing.assert_allclose(out[:, :3], np.asarray(model(x)), atol=1e-6)
    assert {id(w) for w in model.weights} < {id(w) for w in heads.weights}
    # a Dense of 3 classes on each pathway's 16 pooled features
    assert heads.count_params() - model.count_params() == 2 * (16 + 1) * 3
    loss, accuracy = pathway_loss(3, 0.5)
    y = np.array([2, 0])

    def ce(logits):
        z = logits - logits.max(1, keepdims=True)
        return -(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(2), y]

    np.testing.assert_allclose(np.asarray(loss(y, out)),
                               ce(out[:, :3]) + 0.5 * (ce(out[:, 3:6]) + ce(out[:, 6:])),
                               rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(accuracy(y, out)), out[:, :3].argmax(1) == y)
    with pytest.raises(ValueError, match="two_pathway"):
        with_pathway_heads(tutorial_net(8, 32, 32, 3, [8, 8, 16, 16], "diff"))


def test_score_fusion_multiplies_the_three_classifiers_probabilities(tmp_path):
    """fusion: scores: the saved network's output is the sum of the log-probabilities of the
    joint classifier and of each pathway's (their product, renormalised by the softmax); the
    heads are its own, so training sees them through with_pathway_heads; it saves and loads
    with safe_mode, and it is another network than the feature-fused one."""
    import keras
    import pytest

    from videoclf.training.network import architecture, with_pathway_heads

    kw = dict(filters=[8, 8, 16, 16], input_kind="two_pathway", norm="batch")
    model = tutorial_net(8, 32, 32, 3, fusion="scores", **kw)
    features = tutorial_net(8, 32, 32, 3, **kw)
    assert model.count_params() - features.count_params() == 2 * (16 + 1) * 3
    x = np.random.default_rng(7).integers(0, 255, (2, 8, 32, 32, 3), dtype=np.uint8)
    out = np.asarray(model.predict_on_batch(x))
    heads = np.asarray(with_pathway_heads(model).predict_on_batch(x))
    assert heads.shape == (2, 9)

    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    np.testing.assert_allclose(out, sum(log_softmax(heads[:, i:i + 3]) for i in (0, 3, 6)),
                               atol=1e-5)
    probs = np.exp(out) / np.exp(out).sum(1, keepdims=True)
    product = np.prod([np.exp(log_softmax(heads[:, i:i + 3])) for i in (0, 3, 6)], axis=0)
    np.testing.assert_allclose(probs, product / product.sum(1, keepdims=True), rtol=1e-4)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(x)), out, atol=1e-6)
    assert architecture(loaded) == architecture(model) != architecture(features)
    with pytest.raises(ValueError, match="model.fusion must be one of"):
        tutorial_net(8, 32, 32, 3, fusion="vote", **kw)


def test_appearance_in_detail_and_motion_at_a_scale(tmp_path):
    """``appearance_filters``, ``appearance_stem_stride`` and ``motion_scale``: the two bodies'
    parameters are those of an RGB network of the appearance widths and a difference network
    of ``filters``; the appearance stem at stride 2 computes at half the size; the motion
    body on 32x32 frames at scale 2 is the 16x16 difference network (the same weights give
    the same logits on a clip whose pixels come in 2x2 blocks), and it sees 2x2 block means
    only (a pattern that averages out in every block, put on a frame the appearance pathway
    does not see, changes nothing); saved and reloaded safely."""
    import keras

    from videoclf.training.network import Conv2Plus1D

    app, mot = [4, 4, 8, 8], [8, 8, 16, 16]
    two = tutorial_net(8, 32, 32, 3, mot, "two_pathway", norm="batch", appearance_filters=app,
                      motion_scale=2, appearance_stem_stride=2)
    # The appearance stem reads the 32x32 frames and computes at 16x16 (its 2D form is the
    # Conv3D layers' own arithmetic); the motion stem gets 16x16 block means.
    stems = [layer for layer in two.layers if isinstance(layer, Conv2Plus1D)]
    assert sorted(tuple(stem.output.shape[1:4]) for stem in stems) == [(2, 16, 16), (8, 16, 16)]
    strided = next(stem for stem in stems if stem.strides == 2)
    clip = np.random.default_rng(9).uniform(size=(2, 2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(strided(clip)), np.asarray(strided.seq(clip)),
                               rtol=1e-4, atol=1e-4)
    rgb = tutorial_net(8, 32, 32, 3, app, "rgb", norm="batch")
    diff_small = tutorial_net(8, 16, 16, 3, mot, "diff", norm="batch")
    # 2 bodies + Dense(F_a + F_m -> C) = (body_a + Dense(F_a -> C)) + (body_m + ...) - C.
    assert two.count_params() == rgb.count_params() + diff_small.count_params() - 3
    diff = tutorial_net(8, 32, 32, 3, mot, "diff", norm="batch", motion_scale=2)
    diff.set_weights(diff_small.get_weights())
    rng = np.random.default_rng(7)
    small = rng.integers(40, 215, (2, 8, 16, 16, 3), dtype=np.uint8)
    big = small.repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_allclose(diff.predict_on_batch(big), diff_small.predict_on_batch(small),
                               rtol=1e-4, atol=1e-4)
    checker = np.where((np.indices((32, 32)).sum(0) % 2)[..., None], 20, -20)
    moved = big.astype(int)
    moved[:, 2] += checker  # frame 2: not one of the appearance frames (0 and 4)
    y = two.predict_on_batch(big)
    np.testing.assert_allclose(two.predict_on_batch(moved.astype(np.uint8)), y, atol=1e-5)
    moved[:, 2, :, :16] += 30  # a change that does not average out
    assert not np.allclose(two.predict_on_batch(np.clip(moved, 0, 255).astype(np.uint8)), y,
                           atol=1e-5)
    two.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(back.predict_on_batch(big), y, rtol=1e-5, atol=1e-5)


def test_appearance_stem_with_resnet_pooling(tmp_path):
    """``appearance_stem_stride`` 4, ResNet's whole stem: the stride-2 stem, then a 3x3
    stride-2 max pooling of every frame (the numbers of Keras' 3D pooling, as 2D pooling
    LiteRT can run), so the appearance blocks work at 8x8 down to 1x1 of 32x32 frames; no
    more parameters than stride 2, another architecture; saved and reloaded safely."""
    import keras

    from videoclf.training.network import FrameMaxPool, ResizeVideo, architecture

    kw = dict(filters=[8, 8, 16, 16], input_kind="two_pathway", norm="batch",
              appearance_filters=[4, 4, 8, 8], motion_scale=2)
    pooled = tutorial_net(8, 32, 32, 3, appearance_stem_stride=4, **kw)
    strided = tutorial_net(8, 32, 32, 3, appearance_stem_stride=2, **kw)
    assert pooled.count_params() == strided.count_params()
    assert architecture(pooled) != architecture(strided)
    pool = next(layer for layer in pooled.layers if isinstance(layer, FrameMaxPool))
    assert tuple(pool.input.shape[1:4]) == (2, 16, 16)
    assert tuple(pool.output.shape[1:4]) == (2, 8, 8)
    # The pooling feeds the first block at its size; each later block halves the size:
    # the appearance pathway resizes to 4, 2, 1, the motion one to 8 (its stem's 16x16
    # block means to the first block), 4, 2, 1.
    sizes = [layer.output.shape[2] for layer in pooled.layers if isinstance(layer, ResizeVideo)]
    assert sorted(sizes) == [1, 1, 2, 2, 4, 4, 8]
    x = np.random.default_rng(4).normal(size=(2, 3, 16, 16, 5)).astype("float32")
    reference = keras.layers.MaxPooling3D((1, 3, 3), strides=(1, 2, 2), padding="same")(x)
    np.testing.assert_array_equal(np.asarray(pool(x)), np.asarray(reference))
    clip = np.random.default_rng(5).integers(0, 255, (2, 8, 32, 32, 3), dtype=np.uint8)
    y = pooled.predict_on_batch(clip)
    np.testing.assert_allclose(np.asarray(pooled(clip)), y, rtol=1e-5, atol=1e-5)
    pooled.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(back.predict_on_batch(clip), y, rtol=1e-5, atol=1e-5)
    assert architecture(back) == architecture(pooled)


def test_motion_downscaled_by_a_strided_stem_sees_every_pixel():
    """``motion_downscale: stem``: no block means; the motion stem reads the 32x32 differences
    at stride 2 (16x16 out, as the block means' stem), with the same parameters, so a pattern
    that averages out in every 2x2 block, unseen by the appearance pathway, is seen now."""
    import pytest

    from videoclf.training.network import BlockMean, Conv2Plus1D, architecture

    kw = dict(filters=[8, 8, 16, 16], input_kind="two_pathway", norm="batch",
              appearance_filters=[4, 4, 8, 8], motion_scale=2, appearance_stem_stride=2)
    stem = tutorial_net(8, 32, 32, 3, motion_downscale="stem", **kw)
    mean = tutorial_net(8, 32, 32, 3, **kw)
    assert stem.count_params() == mean.count_params()
    assert not any(isinstance(layer, BlockMean) for layer in stem.layers)
    assert architecture(stem) != architecture(mean)
    stems = [layer for layer in stem.layers if isinstance(layer, Conv2Plus1D)
             and layer.strides == 2]
    assert sorted(tuple(s.output.shape[1:5]) for s in stems) == [(2, 16, 16, 4), (8, 16, 16, 8)]
    clip = np.random.default_rng(3).integers(40, 215, (1, 8, 32, 32, 3)).astype(int)
    moved = clip.copy()
    moved[:, 2] += np.where((np.indices((32, 32)).sum(0) % 2)[..., None], 20, -20)
    y = stem.predict_on_batch(clip.astype(np.uint8))
    assert not np.allclose(stem.predict_on_batch(moved.astype(np.uint8)), y, atol=1e-5)
    with pytest.raises(ValueError, match="model.motion_downscale must be one of"):
        tutorial_net(8, 32, 32, 3, **{**kw, "motion_downscale": "max"})


def test_feature_dropout_acts_in_training_only_and_is_not_part_of_the_architecture():
    """``model.dropout``: pooled features dropped in training (two calls differ), none at
    inference (``model(x)`` is ``predict``); a network with it is the same network for warm
    starts as one without (the rate, like the pathway dropout's, is a training setting)."""
    from videoclf.training.network import FeatureDropout, architecture

    with_dropout = tutorial_net(8, 32, 32, 3, [8, 8, 16, 16], "two_pathway", norm="batch",
                               dropout=0.5)
    plain = tutorial_net(8, 32, 32, 3, [8, 8, 16, 16], "two_pathway", norm="batch")
    assert sum(isinstance(layer, FeatureDropout) for layer in with_dropout.layers) == 2
    assert architecture(with_dropout) == architecture(plain)
    x = np.random.default_rng(8).integers(0, 255, (2, 8, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(np.asarray(with_dropout(x)), with_dropout.predict_on_batch(x),
                               rtol=1e-5, atol=1e-5)
    a, b = (np.asarray(with_dropout(x, training=True)) for _ in range(2))
    assert not np.allclose(a, b)


def test_weight_decay_is_adamw_and_zero_is_adam():
    from videoclf.training.train import optimizer

    decayed = optimizer(1e-3, 0.05)
    assert type(decayed).__name__ == "AdamW" and np.isclose(decayed.weight_decay, 0.05)
    assert type(optimizer(1e-3, 0.0)).__name__ == "Adam"
