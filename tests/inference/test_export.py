"""Exports serve without this package: SavedModel and ONNX agree with the Keras model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT, without_tensorflow


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
    # Each clip's answer is its own, whatever else is in the batch (BatchNorm on its moving
    # statistics in the exported graph too).
    alone = _softmax(session.run(None, {inp.name: clips[:1]})[0])
    assert np.abs(alone - got_onnx[:1]).max() < 1e-5
    for name in ("labels.json", "sampling.json", "inference.json"):
        assert (exported / name).read_bytes() == (tiny_model / name).read_bytes()


def test_predict_with_onnx_runs_without_tensorflow(exported, tiny_model, tmp_path):
    """Same output as the Keras model, with TensorFlow made impossible to import."""
    clip = ROOT / "tests" / "footage" / "h264_carphone.mp4"
    base = [sys.executable, "-m", "videoclf", "predict", str(clip), "--json", "--workers", "1",
            "--top-k", "3"]
    env = without_tensorflow(tmp_path / "no_tf")
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
    from videoclf.inference.predictors import load_predictor
    from videoclf.training.modelio import RUN_KEY

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


def test_tflite_models_match_keras_and_are_smaller(exported, tiny_model, tiny_manifest,
                                                   tiny_videos, tmp_path):
    """float16 within 1e-2 of Keras' probabilities; int8 on average within 0.05 and with the
    same top-1 wherever Keras' is clear (on real test clips; int8 rounds activations, so a
    single probability can move more); the float16 file about half the float32 weights;
    compare_formats writes every format's row."""
    from videoclf.artifacts import TFLITE_FILES
    from videoclf.inference.export_report import compare_formats
    from videoclf.inference.predictors import load_predictor
    from videoclf.inference.scoring import sample_videos

    keras_predict, info = load_predictor(tiny_model)
    paths = [tiny_videos / v for v in tiny_manifest[tiny_manifest.split == "test"].video]
    clips = np.concatenate([c for _, c, _ in sample_videos(paths, info.sampling, 2, workers=1)])
    want = _softmax(keras_predict(clips))
    got = {}
    for kind, name in TFLITE_FILES.items():
        predict, tinfo = load_predictor(exported / name)
        assert tinfo.labels == info.labels
        got[kind] = _softmax(predict(clips))
        np.testing.assert_allclose(predict(clips[:1]), predict(clips)[:1], atol=1e-5)
    assert np.abs(got["float16"] - want).max() < 1e-2
    # 0.032 measured with the appearance pathway's pooled stem, whose last blocks work at 1x1
    # on the tiny 32x32 clips (an int8 activation range from one position); 0.041 with its 4
    # frames of 8 (model.appearance_stride: 2). A wrong graph or scale is off by far more.
    assert np.abs(got["int8"] - want).mean() < 0.05
    # The same top-1 wherever Keras' is clear (its top two over 0.2 apart): the one-epoch tiny
    # model has near ties (0.45 against 0.44), which int8's rounding may turn either way.
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.2
    assert clear.sum() >= 3
    assert (got["int8"].argmax(1) == want.argmax(1))[clear].all()
    f16 = (exported / TFLITE_FILES["float16"]).stat().st_size
    assert f16 < 0.6 * (tiny_model / "model.keras").stat().st_size
    table = compare_formats(tiny_model, exported, tiny_manifest, tiny_videos,
                            tmp_path / "export.json")
    assert set(table) == {"keras", "onnx", "tflite_float16", "tflite_int8"}
    assert json.loads((tmp_path / "export.json").read_text()) == table
    assert json.loads((exported / "formats.json").read_text()) == table  # predict reads it
    assert table["keras"]["agrees_with_keras"] == 1.0 and table["onnx"]["agrees_with_keras"] == 1.0
    assert all(row["batch_16_clips_per_s"] > 0 and 0 <= row["test_accuracy"] <= 1
               for row in table.values())


def test_predict_with_tflite_runs_without_tensorflow_and_warns_of_a_lossy_int8(exported,
                                                                               tmp_path):
    """An int8 file whose export table (formats.json beside it) scored it more than 2 points
    below Keras makes predict say so on stderr; the float16 file of that table does not."""
    from videoclf.inference.predictors import accuracy_warning

    folder = tmp_path / "export"
    shutil.copytree(exported, folder)
    table = {"keras": {"test_accuracy": 0.9}, "tflite_float16": {"test_accuracy": 0.89},
             "tflite_int8": {"test_accuracy": 0.8}}
    (folder / "formats.json").write_text(json.dumps(table))
    assert accuracy_warning(folder / "model_float16.tflite") is None
    assert accuracy_warning(folder / "model.onnx") is None  # no row: nothing to say
    clip = ROOT / "tests" / "footage" / "h264_carphone.mp4"
    r = subprocess.run([sys.executable, "-m", "videoclf", "predict", str(clip), "--json",
                        "--workers", "1", "--model", str(folder / "model_int8.tflite")],
                       capture_output=True, text=True, timeout=300,
                       env=without_tensorflow(tmp_path / "no_tf"))
    assert r.returncode == 0, r.stderr[-3000:]
    top = json.loads(r.stdout.strip().splitlines()[-1])["top_k"]
    assert abs(sum(t["probability"] for t in top) - 1) < 1e-3
    assert "scored 0.80 on the test set at export against the Keras model's 0.90 (10 points " \
        "below)" in r.stderr
