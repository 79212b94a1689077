"""Exports serve without this package: SavedModel and ONNX agree with the Keras model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    from videoclf.serve.export import export

    out = tmp_path_factory.mktemp("export") / "export"
    export(tiny_model, out)
    return out


def _softmax(z):
    z = np.asarray(z, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def test_saved_model_and_onnx_match_keras(exported, tiny_model):
    import onnxruntime as ort
    import tensorflow as tf

    from videoclf.training.modelio import load_model_dir

    model, info = load_model_dir(tiny_model)
    s = info.sampling
    clips = np.random.default_rng(0).integers(
        0, 256, (5, s.n_frames, s.height, s.width, 3), dtype=np.uint8)
    want = _softmax(model.predict_on_batch(clips))

    served = tf.saved_model.load(str(exported / "saved_model"))
    fn = served.signatures["serving_default"]
    spec = fn.structured_input_signature[1]
    (name, tensor_spec), = spec.items()
    assert tensor_spec.dtype == tf.uint8 and tensor_spec.shape.as_list() == [
        None, s.n_frames, s.height, s.width, 3]
    got_tf = _softmax(next(iter(fn(**{name: tf.constant(clips)}).values())).numpy())

    session = ort.InferenceSession(str(exported / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    assert inp.type == "tensor(uint8)"
    got_onnx = _softmax(session.run(None, {inp.name: clips})[0])
    assert np.abs(got_tf - want).max() < 1e-4
    assert np.abs(got_onnx - want).max() < 1e-4
    for name in ("labels.json", "sampling.json", "inference.json"):
        assert (exported / name).read_bytes() == (tiny_model / name).read_bytes()


def test_predict_with_onnx_runs_without_tensorflow(exported, tiny_model, tmp_path):
    """Same output as the Keras model, with TensorFlow made impossible to import."""
    import os

    fake = tmp_path / "no_tf"
    for mod in ("tensorflow", "keras"):
        (fake / mod).mkdir(parents=True)
        (fake / mod / "__init__.py").write_text(f"raise ImportError('{mod} is absent')\n")
    clip = ROOT / "tests" / "footage" / "h264_carphone.mp4"
    base = [sys.executable, "-m", "videoclf", "predict", str(clip), "--json", "--workers", "1",
            "--top-k", "3"]
    env = dict(os.environ, PYTHONPATH=f"{fake}{os.pathsep}{ROOT / 'src'}")
    onnx = subprocess.run(base + ["--model", str(exported / "model.onnx")], capture_output=True,
                          text=True, timeout=300, env=env)
    assert onnx.returncode == 0, onnx.stderr[-3000:]
    keras_run = subprocess.run(base + ["--model", str(tiny_model)], capture_output=True,
                               text=True, timeout=300)
    assert keras_run.returncode == 0, keras_run.stderr[-3000:]
    a, b = (json.loads(r.stdout.strip().splitlines()[-1])["top_k"] for r in (onnx, keras_run))
    assert [x["label"] for x in a] == [x["label"] for x in b]
    assert max(abs(x["probability"] - y["probability"]) for x, y in zip(a, b)) < 1e-4


def test_the_onnx_file_carries_the_run_id_and_any_case_of_its_suffix_works(exported,
                                                                          tmp_path):
    """ONNX beside JSON files of another run is refused; MODEL.ONNX is an ONNX file too."""
    import onnx

    from videoclf.artifacts import ArtifactError, read_model_info
    from videoclf.training.modelio import RUN_KEY, load_predictor

    run = read_model_info(exported).run
    meta = {p.key: p.value for p in onnx.load(str(exported / "model.onnx")).metadata_props}
    assert meta[RUN_KEY] == run and run
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    (folder / "model.onnx").rename(folder / "MODEL.ONNX")
    predict, info = load_predictor(folder / "MODEL.ONNX")
    assert info.run == run
    proto = onnx.load(str(folder / "MODEL.ONNX"))
    for p in proto.metadata_props:
        if p.key == RUN_KEY:
            p.value = "0123456789abcdef"  # another run's export
    onnx.save(proto, str(folder / "MODEL.ONNX"))
    with pytest.raises(ArtifactError, match="from another training run than the JSON files"):
        load_predictor(folder / "MODEL.ONNX")
