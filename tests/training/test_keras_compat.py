"""The Keras workarounds: each is undone when its block ends, and the version they were
written for is the one pyproject.toml pins."""

from __future__ import annotations

import re

import numpy as np
import pytest

from helpers import ROOT


def test_written_for_the_pinned_keras():
    from videoclf.training import keras_compat

    pin = re.search(r'"keras==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin and pin[1] == keras_compat.TESTED_KERAS
    assert keras_compat.check_version()  # the installed one is the pinned one


def test_momentum_swap_is_restored_even_when_the_block_fails():
    from videoclf._tf import keras, tf
    from videoclf.training.keras_compat import swapped_momentum

    bns = [keras.layers.BatchNormalization(momentum=0.9), keras.layers.BatchNormalization()]
    var = tf.Variable(0.5)
    with pytest.raises(RuntimeError), swapped_momentum(bns, var):
        assert all(b.momentum is var for b in bns)
        raise RuntimeError("interrupted")
    assert [b.momentum for b in bns] == [0.9, 0.99]
    assert all(not any(w is var for w in b.weights) for b in bns)  # never tracked as a weight


def test_multi_worker_patch_is_scoped_to_its_strategy_and_block():
    from keras.src.backend.tensorflow import trainer as tf_trainer

    from videoclf._tf import keras, tf
    from videoclf.training.keras_compat import multi_worker_fit

    original = tf_trainer.reduce_per_replica
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 3), "float32"), np.zeros(4))).batch(2)
    with multi_worker_fit(model, ds):  # the default strategy: nothing is patched
        assert tf_trainer.reduce_per_replica is original
        assert "_maybe_symbolic_build" not in vars(model)
    assert tf_trainer.reduce_per_replica is original


def test_keras_zip_rewrite_fixes_the_stamps(tmp_path):
    import json
    import zipfile

    from videoclf._tf import keras
    from videoclf.training.keras_compat import reproducible_keras_zip

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.save(tmp_path / "raw.keras")
    reproducible_keras_zip(tmp_path / "raw.keras", tmp_path / "a.keras")
    model.save(tmp_path / "raw.keras")  # saved again: a new date inside, new entry times
    reproducible_keras_zip(tmp_path / "raw.keras", tmp_path / "b.keras")
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.keras") as z:
        assert json.loads(z.read("metadata.json"))["date_saved"] == "1970-01-01@00:00:00"
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
