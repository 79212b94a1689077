"""Precise BatchNorm statistics: what they are set to, when, and that the model still saves."""

import json

import numpy as np
import pytest

from helpers import project_params, tutorial_net


def _model_and_batches(n_batches=4, batch=3):
    import tensorflow as tf

    model = tutorial_net(4, 32, 32, 3, [8, 8, 16, 16], "diff", norm="batch")
    rng = np.random.default_rng(0)
    xs = rng.integers(0, 255, (n_batches, batch, 4, 32, 32, 3), dtype=np.uint8)
    ys = rng.integers(0, 3, (n_batches, batch)).astype("int32")
    return model, xs, tf.data.Dataset.from_tensor_slices((xs, ys))


def _garble(bns):
    for bn in bns:
        bn.moving_mean.assign(np.full(bn.moving_mean.shape, 5.0, "float32"))
        bn.moving_variance.assign(np.full(bn.moving_variance.shape, 9.0, "float32"))


def test_statistics_are_the_average_of_the_batch_statistics(tmp_path):
    import keras

    from videoclf.training.precise_bn import PreciseBatchNorm, batchnorm_layers

    model, xs, ds = _model_and_batches()
    bns = batchnorm_layers(model)
    _garble(bns)
    cb = PreciseBatchNorm(ds)
    cb.set_model(model)
    cb.recompute()
    # The stem's BatchNorm: its input is computed by layers without a training mode.
    stem = bns[0]
    feats = keras.Model(model.inputs, stem.input).predict(xs.reshape(-1, *xs.shape[2:]),
                                                          batch_size=xs.shape[1], verbose=0)
    feats = feats.reshape(xs.shape[0], -1, feats.shape[-1])  # per batch, all positions
    np.testing.assert_allclose(stem.moving_mean.numpy(), feats.mean(axis=1).mean(axis=0),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stem.moving_variance.numpy(), feats.var(axis=1).mean(axis=0),
                               rtol=1e-4, atol=1e-6)
    for bn in bns:  # every layer, nested ones too, was recomputed
        assert not np.allclose(bn.moving_mean.numpy(), 5.0)
        assert not np.allclose(bn.moving_variance.numpy(), 9.0)
        assert isinstance(bn.momentum, float) and bn.momentum == 0.99
    first = [bn.moving_variance.numpy().copy() for bn in bns]
    cb.recompute()  # same weights, same batches: the same statistics
    for bn, v in zip(bns, first):
        np.testing.assert_array_equal(bn.moving_variance.numpy(), v)
    model.save(tmp_path / "m.keras")  # the config holds the float momentum again
    back = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(back.predict_on_batch(xs[0]), model.predict_on_batch(xs[0]),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_recomputed_before_validation_in_fit_only():
    import keras

    from videoclf.training.precise_bn import PreciseBatchNorm, batchnorm_layers

    model, xs, ds = _model_and_batches()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    bns = batchnorm_layers(model)
    cb = PreciseBatchNorm(ds)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            seen.append(float(bns[0].moving_mean.numpy()[0]))

    _garble(bns)
    model.fit(ds, validation_data=ds, epochs=1, verbose=0, callbacks=[cb, Spy()])
    assert seen and seen[0] != 5.0  # validation saw recomputed statistics
    _garble(bns)
    model.evaluate(ds, verbose=0, callbacks=[cb])  # outside fit: left as they are
    assert np.allclose(bns[0].moving_mean.numpy(), 5.0)


@pytest.mark.slow
def test_trained_model_carries_the_precise_statistics_of_its_weights(tiny_frames, tmp_path):
    """The saved model's BatchNorm statistics are those of its own weights over the fixed
    training batches (recomputing them changes nothing); with precise_bn_batches 0 they are
    Keras' moving averages, which differ."""
    from videoclf.artifacts import read_index
    from videoclf.training.inputs import Stream, make_dataset
    from videoclf.training.modelio import load_model_dir
    from videoclf.training.precise_bn import PreciseBatchNorm, batchnorm_layers
    from videoclf.training.train import train

    stats = {}
    for n in (2, 0):
        p = project_params({"model": {"norm": "batch", "input": "diff"},  # one body: faster
                            "train": {"epochs": 2, "batch_size": 2, "precise_bn_batches": n}})
        train(tiny_frames, tmp_path / f"m{n}", tmp_path / f"live{n}", p.model, p.train,
              clips_per_video=1)
        model, _ = load_model_dir(tmp_path / f"m{n}")
        stats[n] = [bn.moving_variance.numpy().copy() for bn in batchnorm_layers(model)]
    assert json.loads((tmp_path / "m2" / "train.json").read_text())["epochs_run"] == 2
    index, _ = read_index(tiny_frames)
    ds = make_dataset(tiny_frames, index, "train", batch_size=2,
                      stream=Stream(seed=p.train.seed, flip=False, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=1)).take(2)
    cb = PreciseBatchNorm(ds)
    cb.set_model(model)  # the precise_bn_batches 0 model, recomputed as a 2-batch run does
    cb.recompute()
    again = [bn.moving_variance.numpy() for bn in batchnorm_layers(model)]
    assert any(not np.allclose(a, b, rtol=1e-3) for a, b in zip(again, stats[0]))
    model2, _ = load_model_dir(tmp_path / "m2")
    cb.set_model(model2)
    cb.recompute()
    for bn, v in zip(batchnorm_layers(model2), stats[2]):
        np.testing.assert_allclose(bn.moving_variance.numpy(), v, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("bad", [-1, 1.5, "all"])
def test_precise_bn_batches_is_checked(bad):
    from videoclf.params import ParamsError

    with pytest.raises(ParamsError, match="train.precise_bn_batches"):
        project_params({"train": {"precise_bn_batches": bad}})
