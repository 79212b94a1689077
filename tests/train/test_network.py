import json
import subprocess
import sys

import numpy as np

from videoclf.training.network import build_model


def test_tutorial_parameter_count():
    # The tutorial's model has 443,322 parameters for 10 classes.
    assert build_model(10, 224, 224, 10).count_params() == 443_322


def test_output_shape_and_uint8_input():
    m = build_model(4, 32, 32, 3, [8, 8, 16, 16])
    x = np.random.default_rng(0).integers(0, 255, (2, 4, 32, 32, 3), dtype=np.uint8)
    y = m.predict_on_batch(x)
    assert y.shape == (2, 3) and np.isfinite(y).all()
    assert m.inputs[0].dtype == "uint8"


def test_saved_model_loads_in_a_fresh_process_safely(tmp_path):
    m = build_model(4, 32, 32, 3, [8, 8, 16, 16])
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
    rgb = build_model(4, 32, 32, 3, [8, 8, 16, 16], "rgb")
    both = build_model(4, 32, 32, 3, [8, 8, 16, 16], "rgb_diff")
    diff = build_model(4, 32, 32, 3, [8, 8, 16, 16], "diff")
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

    with pytest.raises(ValueError, match="input_kind"):
        build_model(4, 32, 32, 3, [8, 8, 16, 16], "flow")


def test_batch_norm_blocks_shapes_and_save_load(tmp_path):
    """norm="batch" puts BatchNormalization where the tutorial has LayerNormalization (same
    number of normalisation layers, two weights more each for the moving statistics) and
    the model saves and loads in safe mode with those statistics."""
    import keras

    from videoclf.training.precise_bn import batchnorm_layers

    layer = build_model(4, 32, 32, 3, [8, 8, 16, 16], "diff")
    batch = build_model(4, 32, 32, 3, [8, 8, 16, 16], "diff", norm="batch")
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
        build_model(4, 32, 32, 3, [8, 8, 16, 16], norm="group")
