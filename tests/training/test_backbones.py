"""Image backbones (training/backbones/applications.py and weights.py) and the features stage
(training/features.py): weights files made here with keras.applications, served by a real
HTTP server on 127.0.0.1, fetched, checked and loaded; a frozen backbone fitted on its cached
features; the model it makes exported."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, assert_one_error_line, project_params, run_python, write_project

SIZE = 32  # the tiny config's frames


def _fitted_looking(constructor: str):
    """A keras.applications network with random weights whose BatchNorm statistics are one
    batch's (momentum 0, one training-mode call): unlike a fresh one (features ~1e-10, the
    same for every image), its features differ from image to image, so comparing them
    compares something."""
    from videoclf._tf import keras

    keras.utils.set_random_seed(3)
    net = getattr(keras.applications, constructor)(include_top=False, weights=None,
                                                   input_shape=(SIZE, SIZE, 3))
    for bn in net._flatten_layers():
        if isinstance(bn, keras.layers.BatchNormalization):
            bn.momentum = 0.0
    net(np.random.default_rng(0).integers(0, 256, (16, SIZE, SIZE, 3)).astype("float32"),
        training=True)
    return net


class _Site:
    """A folder served over HTTP on 127.0.0.1, counting the requests."""

    def __init__(self, root: Path):
        site = self
        self.root, self.requests = root, 0

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                site.requests += 1
                super().do_GET()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0),
                                          functools.partial(Quiet, directory=str(root)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights-site")
    _fitted_looking("MobileNetV3Small").save_weights(root / "mnv3.weights.h5")
    _fitted_looking("EfficientNetB0").save_weights(root / "effnet.weights.h5")
    whole = (root / "mnv3.weights.h5").read_bytes()
    (root / "cut.weights.h5").write_bytes(whole[:len(whole) // 2])
    s = _Site(root)
    yield s
    s.server.shutdown()


def test_weights_served_over_http_are_fetched_once_and_load_as_keras_applications_own(
        site, tmp_path):
    from videoclf._tf import keras
    from videoclf.training.backbones.applications import FRAME_FEATURES, backbone_of
    from videoclf.training.backbones.weights import load_into, prepare_weights

    from helpers import tutorial_net

    file = site.root / "mnv3.weights.h5"
    sha = hashlib.sha256(file.read_bytes()).hexdigest()
    out = tmp_path / "weights"
    info = prepare_weights(out, "mobilenet_v3_small", f"{site.url}/mnv3.weights.h5", sha, 60)
    assert (info.file, info.sha256) == ("mnv3.weights.h5", sha)
    assert (out / "mnv3.weights.h5").read_bytes() == file.read_bytes()
    assert json.loads((out / "weights.json").read_text())["origin"].startswith(site.url)
    before = site.requests
    assert prepare_weights(out, "mobilenet_v3_small", f"{site.url}/mnv3.weights.h5", sha,
                           60) == info
    assert site.requests == before, "a file already in place with its hash is fetched again"

    # The network's backbone, from that file, computes what keras.applications' own model
    # computes from it, frame by frame (every 2nd frame: model.appearance_stride).
    net = tutorial_net(4, SIZE, SIZE, 3, appearance_backbone="mobilenet_v3_small",
                       appearance_stride=2)
    load_into(backbone_of(net), out / info.file, "mobilenet_v3_small")
    own = keras.applications.MobileNetV3Small(include_top=False, weights=str(file),
                                              input_shape=(SIZE, SIZE, 3), pooling="avg")
    clips = np.random.default_rng(1).integers(0, 256, (2, 4, SIZE, SIZE, 3), dtype=np.uint8)
    got = keras.Model(net.input, net.get_layer(FRAME_FEATURES).output)(clips)
    want = own(clips[:, ::2].reshape(-1, SIZE, SIZE, 3).astype("float32"))
    got = np.asarray(got).reshape(-1, 576)
    assert np.asarray(want).std() > 0.1
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-4)


def test_a_wrong_hash_a_cut_file_another_backbone_and_no_server_are_refused_in_one_line(
        site, tmp_path):
    from videoclf.training.backbones.weights import WeightsError, prepare_weights

    url = f"{site.url}/mnv3.weights.h5"
    cases = [
        (("mobilenet_v3_small", url, "0" * 64), "hash does not match"),
        (("mobilenet_v3_small", f"{site.url}/cut.weights.h5", ""), "is not weights of"),
        (("mobilenet_v3_small", f"{site.url}/effnet.weights.h5", ""), "is not weights of"),
        (("efficientnet_b0", str(site.root / "mnv3.weights.h5"), ""), "is not weights of"),
    ]
    for (backbone, source, sha), words in cases:
        out = tmp_path / backbone / source.rsplit("/", 1)[-1]
        with pytest.raises(WeightsError) as e:
            prepare_weights(out, backbone, source, sha, 60)
        assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
        assert not [f for f in out.iterdir() if f.suffix == ".h5"], "a refused file was kept"

    # The stage: no server at the address (offline) is one line naming the URL and where
    # the file can be put instead.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/mnv3.weights.h5"
    project = write_project(tmp_path, {"model": {"appearance_backbone": "mobilenet_v3_small",
                                                 "appearance_weights": dead}})
    r = run_python([ROOT / "stages" / "weights.py", "data/weights"], project, None)
    assert_one_error_line(r, 1, "cannot fetch", dead, "data/weights/mnv3.weights.h5")


def _backbone_params(weights: Path, **model):
    return project_params({
        "data": {"num_classes": 3}, "frames": {"n_frames": 4, "height": SIZE, "width": SIZE},
        "model": {"appearance_backbone": "mobilenet_v3_small", "appearance_weights": str(weights),
                  "appearance_stride": 2, **model},
        "train": {"epochs": 2, "batch_size": 4, "freeze_backbone": True}})


@pytest.fixture(scope="module")
def frozen(site, tiny_frames, tmp_path_factory):
    """A frozen MobileNetV3 two-pathway network fitted on its cached features (flips too)."""
    from videoclf.training.backbones.weights import prepare_weights
    from videoclf.training.features import write_features
    from videoclf.training.train import train

    root = tmp_path_factory.mktemp("frozen")
    p = _backbone_params(site.root / "mnv3.weights.h5")
    m = p.model
    prepare_weights(root / "weights", m.appearance_backbone, m.appearance_weights, "", 60)
    info = write_features(tiny_frames, root / "weights", root / "features", m, p.train)
    summary = train(tiny_frames, root / "model", root / "live", m, p.train, clips_per_video=1,
                    weights_dir=root / "weights", features_dir=root / "features")
    return root, p, info, summary


def test_cached_features_are_the_networks_own_and_the_frozen_backbone_stays_the_file(
        frozen, site, tiny_frames):
    from videoclf.artifacts import read_index
    from videoclf.training.backbones.applications import backbone_of
    from videoclf.training.features import encoder
    from videoclf.training.modelio import load_model_dir
    from videoclf.video import Sampling

    root, p, info, summary = frozen
    assert info.cached and info.flips == 2 and summary.epochs_run == 2
    index, meta = read_index(tiny_frames)
    shard = sorted(info.shards)[0]
    feats = np.load(root / "features" / shard)
    clips = np.load(tiny_frames / shard)
    assert feats.dtype == np.float16 and feats.shape == (len(clips), 2, 2, 576)
    enc = encoder(p.model, Sampling(**meta["sampling"]), 3, site.root / "mnv3.weights.h5")
    want = np.asarray(enc(clips[:4]))
    mirrored = np.asarray(enc(clips[:4, :, :, ::-1]))
    np.testing.assert_allclose(feats[:4, 0], want, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(feats[:4, 1], mirrored, rtol=2e-3, atol=2e-3)
    assert np.abs(want - mirrored).max() > 1e-2  # the mirror image is another picture

    model, _ = load_model_dir(root / "model")
    saved = backbone_of(model).get_weights()
    ref = _fitted_looking("MobileNetV3Small")
    ref.load_weights(site.root / "mnv3.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(saved, ref.get_weights()))
    # what follows the backbone did train: the classifier is not its initial value
    assert np.abs(model.get_layer("logits").get_weights()[0]).sum() > 0


def test_other_weights_or_a_thawed_backbone_make_train_refuse_the_cached_features(
        frozen, tiny_frames, site):
    from videoclf.errors import VideoclfError
    from videoclf.training.features import read_features

    root, p, info, _ = frozen
    with pytest.raises(VideoclfError, match="rerun the features stage"):
        read_features(root / "features", p.model, p.train, "f" * 64)
    thawed = _backbone_params(site.root / "mnv3.weights.h5")
    import dataclasses
    thawed_train = dataclasses.replace(thawed.train, freeze_backbone=False)
    with pytest.raises(VideoclfError, match="rerun the features stage"):
        read_features(root / "features", p.model, thawed_train, info.weights_sha256)


def test_a_pretrained_backbone_exports_to_onnx_and_tflite_with_the_same_answers(
        frozen, tiny_frames, tmp_path):
    import onnxruntime as ort

    from videoclf.inference.export import export
    from videoclf.inference.predictors import load_tflite
    from videoclf.training.modelio import load_model_dir

    root, *_ = frozen
    out = tmp_path / "export"
    export(root / "model", out, tiny_frames)
    model, info = load_model_dir(root / "model")
    s = info.sampling
    clips = np.load(tiny_frames / sorted(p.name for p in tiny_frames.glob("*.npy"))[0])[:3]
    want = np.asarray(model.predict_on_batch(clips))
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: clips})[0]
    assert clips.shape[1:] == (s.n_frames, s.height, s.width, 3)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    float16, _ = load_tflite(out / "model_float16.tflite")
    np.testing.assert_allclose(float16(clips), want, rtol=0.05, atol=0.05)
    int8, _ = load_tflite(out / "model_int8.tflite")
    assert int8(clips).shape == want.shape and np.isfinite(int8(clips)).all()
