import json
import shutil
import subprocess
import sys

from videoclf.data.builtin import generator

from helpers import ROOT


def test_predict_json_table_and_a_broken_file(tiny_model, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for cls in ("Flicker", "PanDown"):
        generator.write_clip(f"UCF101/v_{cls}_g24_c07.avi", 123, clips / f"v_{cls}_g24_c07.avi")
    broken = tmp_path / "broken.avi"
    broken.write_text("this is not a video")
    missing = tmp_path / "missing.avi"
    (clips / "movie.swf").write_bytes(b"FWS not a video this project reads")
    cmd = [sys.executable, "-m", "videoclf", "predict", str(clips), str(broken), str(missing),
           "--model", str(tiny_model), "--top-k", "2", "--json", "--clips", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 1  # some files failed...
    every = [json.loads(line) for line in r.stdout.splitlines()]
    # every file is accounted for in the JSON: predicted, unreadable, or left out with why
    assert {o["video"]: o["left_out"] for o in every if "left_out" in o} == {
        str(clips / "movie.swf"): "not a video file (.swf)"}
    assert {o["video"] for o in every if "error" in o} == {str(broken), str(missing)}
    lines = [o for o in every if "top_k" in o]
    assert len(lines) == 2  # ...but the others were predicted
    labels = json.loads((tiny_model / "labels.json").read_text())
    for obj in lines:
        assert set(obj) == {"video", "top_k"} and len(obj["top_k"]) == 2
        probs = [t["probability"] for t in obj["top_k"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
        assert all(t["label"] in labels for t in obj["top_k"])
    assert f"error: {broken}" in r.stderr and f"error: {missing}: no such file" in r.stderr
    assert "Traceback" not in r.stderr

    (clips / "notes.txt").write_text("not a video")  # left out, and said so
    (clips / "clip.m2v").write_bytes((ROOT / "tests" / "footage" / "carphone.m2v").read_bytes())
    table = subprocess.run([sys.executable, "-m", "videoclf", "predict", str(clips), "--model",
                            str(tiny_model), "--top-k", "3"], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("  1. ") == 3 and table.stdout.count("  3. ") == 3  # .m2v too
    assert f"note: {clips / 'notes.txt'}: left out, not a video file (.txt)" in table.stderr
    assert f"note: {clips / 'movie.swf'}: left out, not a video file (.swf)" in table.stderr


def test_predict_without_model_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "videoclf", "predict", "x.avi", "--model",
                        str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "labels.json: missing" in r.stderr


def test_flip_at_test_time(tiny_model, tmp_path):
    """``evaluate.flip`` (on in params.yaml, with train.augment.flip): the model folder records
    the pairs a mirror swaps; every predictor scores a clip and its mirror and averages, so
    a clip and its mirror get the same probabilities, the pair's classes swapped (the
    network alone does not); the pairs are part of the run id; a pair naming no class of
    the model is one line."""
    import dataclasses

    import numpy as np
    import pytest

    from videoclf.artifacts import ArtifactError, read_model_info, run_id
    from videoclf.inference.predictors import load_predictor, with_flip
    from videoclf.inference.scoring import softmax
    from videoclf.training.modelio import load_model_dir

    info = read_model_info(tiny_model)
    assert info.flip_pairs == () and info.mirror() == list(range(len(info.labels)))
    model, _ = load_model_dir(tiny_model)
    s = info.sampling
    clips = np.random.default_rng(1).integers(0, 256, (3, s.n_frames, s.height, s.width, 3),
                                              dtype=np.uint8)
    mirrored = clips[:, :, :, ::-1]
    raw = lambda x: np.asarray(model.predict_on_batch(x))
    assert not np.allclose(softmax(raw(clips)), softmax(raw(mirrored)), atol=1e-4)
    predict, _ = load_predictor(tiny_model)
    got = softmax(predict(clips))
    np.testing.assert_allclose(got, (softmax(raw(clips)) + softmax(raw(mirrored))) / 2,
                               atol=1e-5)
    np.testing.assert_allclose(softmax(predict(mirrored)), got, atol=1e-5)
    # A pair: the mirror's probabilities of its two classes trade places.
    swap = [1, 0, *range(2, len(info.labels))]
    paired = with_flip(raw, swap)
    np.testing.assert_allclose(softmax(paired(mirrored))[:, swap], softmax(paired(clips)),
                               atol=1e-5)
    pairs = dataclasses.replace(info, flip_pairs=((info.labels[0], info.labels[1]),))
    assert pairs.mirror() == swap
    off = dataclasses.replace(info, flip_pairs=None)
    assert len({run_id(i, b"w") for i in (info, pairs, off)}) == 3

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    inference = json.loads((folder / "inference.json").read_text())
    (folder / "inference.json").write_text(json.dumps({**inference, "flip_pairs": [["A", "B"]]}))
    with pytest.raises(ArtifactError, match="flip_pairs must be pairs of two different labels"):
        read_model_info(folder)
