"""predict from the command line: the model folder alone decides how a video is scored, and a
bad folder or argument is one line."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT, assert_one_error_line, run_python

pytestmark = pytest.mark.slow  # each case starts a Python process that loads TensorFlow


@pytest.fixture
def model_copy(tiny_model, tmp_path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(tiny_model, d)
    return d


def _predict(model: Path, *extra, env=None, cwd=None):
    clip = ROOT / "tests" / "footage" / "h264_carphone.mp4"
    return run_python(["-m", "videoclf", "predict", clip, "--model", model, "--workers", "1",
                       *extra], cwd or model.parent, env)


def test_predict_reads_clips_per_video_from_the_model_folder_anywhere(model_copy, tmp_path,
                                                                       venv_env):
    """Same numbers from any folder: nothing comes from the current folder's params.yaml."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "params.yaml").write_text("evaluate: {clips_per_video: 1}\n")
    a = _predict(model_copy, "--json", env=venv_env, cwd=ROOT)
    b = _predict(model_copy, "--json", env=venv_env, cwd=elsewhere)
    assert a.returncode == 0 and a.stdout == b.stdout, (a.stderr[-2000:], b.stderr[-2000:])
    one = _predict(model_copy, "--json", "--clips", "1", env=venv_env, cwd=elsewhere)
    assert one.returncode == 0 and one.stdout != a.stdout  # the folder's 5 clips, not 1


@pytest.mark.parametrize("damage, words", [
    ("no_labels", ["labels.json: missing"]),
    ("no_sampling", ["sampling.json: missing"]),
    ("wrong_labels", ["labels.json: not the labels this model was trained with"]),
    ("other_run_labels", ["labels.json: not the labels this model was trained with"]),
    ("other_run_sampling", ["sampling.json and inference.json come from different"]),
    ("other_run_model", ["model.keras: from another training run"]),
    ("string_frame_step", ["sampling.json: frame_step must be a whole number"]),
    ("huge_clips", ["--clips", "must be at most 256"]),
    ("wrong_sampling", ["sampling.json describes"]),
    ("not_a_zip", ["model.keras: not a Keras model file"]),
    ("lambda", ["refused by Keras safe mode"]),
    ("clips", ["--clips", "must be at least 1"]),
])
def test_predict_with_a_bad_model_folder_or_argument_is_one_line(model_copy, venv_env, damage,
                                                                  words):
    extra: list[str] = []
    if damage == "no_labels":
        (model_copy / "labels.json").unlink()
    elif damage == "no_sampling":
        (model_copy / "sampling.json").unlink()
    elif damage == "wrong_labels":
        (model_copy / "labels.json").write_text(json.dumps(["a", "b", "c", "d"]))
    elif damage == "wrong_sampling":
        s = json.loads((model_copy / "sampling.json").read_text())
        (model_copy / "sampling.json").write_text(json.dumps({**s, "height": 64}))
    elif damage == "not_a_zip":
        (model_copy / "model.keras").write_text("not a model")
    elif damage == "lambda":
        code = ("import sys, keras; from keras import layers; "
                "i = keras.Input((4, 32, 32, 3)); "
                "o = layers.Dense(3)(layers.Flatten()(layers.Lambda(lambda x: x * 2)(i))); "
                "keras.Model(i, o).save(sys.argv[1])")
        r = run_python(["-c", code, model_copy / "model.keras"], model_copy, venv_env)
        assert r.returncode == 0, r.stderr[-2000:]
    elif damage == "other_run_labels":  # as many classes, another run's names and order
        labels = json.loads((model_copy / "labels.json").read_text())
        (model_copy / "labels.json").write_text(json.dumps(labels[::-1]))
    elif damage == "other_run_sampling":  # another run's sampling.json: another frame_step
        s = json.loads((model_copy / "sampling.json").read_text())
        (model_copy / "sampling.json").write_text(json.dumps(
            {**s, "frame_step": s["frame_step"] + 1, "run": "0123456789abcdef"}))
    elif damage == "other_run_model":
        _restamp(model_copy / "model.keras", "0123456789abcdef")
    elif damage == "string_frame_step":
        s = json.loads((model_copy / "sampling.json").read_text())
        (model_copy / "sampling.json").write_text(json.dumps({**s, "frame_step": "15"}))
    elif damage == "clips":
        extra = ["--clips", "-2"]
    elif damage == "huge_clips":  # once a segfault (exit 139): every clip held in memory
        extra = ["--clips", "100000"]
    r = _predict(model_copy, *extra, env=venv_env)
    assert_one_error_line(r, 2 if damage in ("clips", "huge_clips") else 1, *words)


def _restamp(path: Path, run: str) -> None:
    """The same model file with another run id in its metadata (as another run's file)."""
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    meta = json.loads(entries["metadata.json"])
    entries["metadata.json"] = json.dumps({**meta, "videoclf_run": run}).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)




def test_a_damaged_video_is_one_line_without_ffmpegs_own(model_copy, venv_env):
    """FFmpeg prints "[ogg @ 0x...] CRC mismatch!" many times per damaged file, straight to
    stderr: predict keeps to its own one line per video."""
    damaged = ROOT / "tests" / "footage" / "theora_damaged.ogv"
    r = run_python(["-m", "videoclf", "predict", damaged, "--model", model_copy,
                    "--workers", "1"], model_copy.parent, venv_env)
    assert r.returncode == 1
    assert "[ogg @" not in r.stderr and "WARN" not in r.stderr, r.stderr[-2000:]
    assert [line for line in r.stderr.splitlines() if "error" in line] == [
        f"error: {damaged}: " + r.stderr.split(f"error: {damaged}: ", 1)[1].splitlines()[0]]


def test_a_folder_on_ray_prints_the_local_json_lines(model_copy, tmp_path, venv_env):
    """``--engine ray`` (a Ray started for the command) decodes on Ray tasks and prints the
    very lines of the local pool, a damaged file's included; Ray's own log stays out."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("h264_carphone.mp4", "carphone.y4m", "mpeg4_bframes.avi", "h264.mkv"):
        shutil.copy(ROOT / "tests" / "footage" / name, folder / name)
    (folder / "broken.mp4").write_bytes(b"\x00" * 4096)
    cmd = ["-m", "videoclf", "predict", folder, "--model", model_copy, "--json"]
    local = run_python([*cmd, "--workers", "1"], tmp_path, venv_env)
    on_ray = run_python([*cmd, "--workers", "2", "--engine", "ray"], tmp_path, venv_env)
    assert local.returncode == on_ray.returncode == 1  # the broken file
    assert on_ray.stdout == local.stdout and len(local.stdout.splitlines()) == 5
    assert "predict: Ray at " in on_ray.stderr and ", 1 node, 2 CPUs" in on_ray.stderr
    assert "worker.py" not in on_ray.stderr and "WARNING" not in on_ray.stderr, on_ray.stderr
