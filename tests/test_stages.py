"""What the stages promise by construction: complete deps, no TensorFlow where no model runs,
paths from dvc.yaml, and one line (never a traceback) for every failure a user can cause."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from closure import closure
from conftest import ROOT, TINY
from videoclf.artifacts import DEFAULT_MODEL_DIR
from videoclf.params import override

STAGES = ("download", "extract", "train", "evaluate", "plot", "export")


def _dvc_yaml() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_every_stage_depends_on_exactly_the_code_it_runs():
    """The import closure of each stage script within src/videoclf (lazy imports included)
    is its list of code deps in dvc.yaml: change a module, and exactly the stages running it
    rerun."""
    stages = _dvc_yaml()["stages"]
    for name in STAGES:
        script = ROOT / "stages" / f"{name}.py"
        code = {p.relative_to(ROOT).as_posix() for p in closure(script)}
        deps = {d for d in stages[name]["deps"] if d.endswith(".py")}
        assert deps == code | {f"stages/{name}.py"}, name
    assert "src/videoclf/_tf.py" in {d for d in stages["evaluate"]["deps"]}


def test_closure_sees_lazy_and_relative_imports(tmp_path):
    closure_of_predict = {p.name for p in closure(ROOT / "src" / "videoclf" / "__main__.py")}
    # predict imports the model I/O inside a function: still part of what it runs
    assert {"modelio.py", "inference.py", "frames.py", "artifacts.py", "_tf.py"} <= \
        closure_of_predict


def test_paths_are_written_once_in_dvc_yaml():
    d = _dvc_yaml()
    paths = d["vars"][0]["paths"]
    assert Path(paths["model"]) == DEFAULT_MODEL_DIR  # predict's default is the train output
    for name in STAGES:
        stage = d["stages"][name]
        assert stage["cmd"].startswith(f"python stages/{name}.py ${{paths.")
        assert all(o.startswith("${paths.") for o in stage["outs"]), name
    for name in STAGES:
        text = (ROOT / "stages" / f"{name}.py").read_text()
        assert '"data/' not in text and '"metrics/' not in text and "Path(" not in text, name


@pytest.fixture(scope="module")
def no_tf(tmp_path_factory) -> dict:
    """An environment where ``import tensorflow`` (and keras) fails."""
    fake = tmp_path_factory.mktemp("no_tf")
    for mod in ("tensorflow", "keras"):
        (fake / mod).mkdir()
        (fake / mod / "__init__.py").write_text(
            f"raise ImportError('{mod} is absent in this test')\n")
    env = dict(os.environ, PYTHONPATH=f"{fake}{os.pathsep}{ROOT / 'src'}")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(args, cwd, env, timeout=300, **kw):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, **kw)


def _project(tmp_path: Path, changes: dict | None = None) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(override(override(raw, TINY), changes or {})))
    return tmp_path


def test_download_extract_plot_and_predict_help_run_without_tensorflow(
        no_tf, tiny_model, tiny_frames, tmp_path):
    p = _project(tmp_path)
    r = _run([ROOT / "stages" / "download.py", "data/videos"], p, no_tf)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _run([ROOT / "stages" / "extract.py", "data/videos", "data/frames"], p, no_tf)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (p / "data" / "frames" / "index.parquet").is_file()
    # plot reads the tiny model's folder and a metrics folder; no model is loaded
    metrics = tmp_path / "metrics"
    (metrics / "eval").mkdir(parents=True)
    labels = json.loads((tiny_model / "labels.json").read_text())
    tests = sorted((p / "data" / "videos" / "test").rglob("*.avi"))
    (metrics / "eval" / "predictions.json").write_text(json.dumps(
        [{"video": v.relative_to(p / "data" / "videos").as_posix(), "actual": v.parent.name,
          "predicted": labels[0]} for v in tests]))
    (metrics / "per_class.json").write_text(json.dumps(
        {c: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 1} for c in labels}))
    r = _run([ROOT / "stages" / "plot.py", p / "data" / "videos", tiny_model,
              tiny_frames.parent / "live", metrics, metrics / "plots"], p, no_tf)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(list((metrics / "plots").glob("*.png"))) == 4
    r = _run(["-m", "videoclf", "predict", "--help"], p, no_tf)
    assert r.returncode == 0 and "--model" in r.stdout, r.stderr[-2000:]
    # a params check fails fast, without TensorFlow
    (tmp_path / "bad").mkdir()
    bad = _project(tmp_path / "bad", {"train": {"epochs": 0}})
    r = _run([ROOT / "stages" / "train.py", "data/frames", "data/model", "metrics/train"], bad,
             no_tf)
    assert r.returncode == 2 and "train.epochs: must be >= 1" in r.stderr
    assert "Traceback" not in r.stderr


def _one_error_line(r, code: int, *words: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, r.stderr
    for w in words:
        assert w in errors[0], (w, errors[0])


def test_missing_inputs_and_an_output_that_is_a_file_are_one_line(tmp_path, venv_env):
    p = _project(tmp_path)
    r = _run([ROOT / "stages" / "extract.py", "data/videos", "data/frames"], p, venv_env)
    _one_error_line(r, 1, "data/videos/manifest.parquet: missing")
    (p / "data").mkdir()
    (p / "data" / "videos").write_text("a file where the stage writes a folder")
    r = _run([ROOT / "stages" / "download.py", "data/videos"], p, venv_env)
    _one_error_line(r, 1, "data/videos exists and is not a folder")
    # evaluate refuses before loading anything, not after scoring every video
    (p / "metrics").write_text("not a folder")
    t0 = time.perf_counter()
    r = _run([ROOT / "stages" / "evaluate.py", "data/videos", "data/model", "metrics"], p,
             venv_env)
    _one_error_line(r, 1, "metrics exists and is not a folder")
    assert "evaluate: done" not in r.stderr and time.perf_counter() - t0 < 60


def test_a_stage_interrupted_with_ctrl_c_says_so_and_leaves_no_output(tmp_path, venv_env):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: the parent reports it in one
    line, the workers print nothing, and no half-written output is left."""
    p = _project(tmp_path, {"data": {"per_class": {"train": 30, "val": 10, "test": 10}}})
    # SIGINT handled by default in the stage, as in a terminal's foreground job: a test run
    # started in the background by a non-interactive shell inherits SIGINT ignored, and
    # Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / "download.py"),
                             "data/videos"], cwd=p, env=venv_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    staging = p / "data" / ".staging"
    deadline = time.time() + 120
    while time.time() < deadline and not (staging.exists() and any(staging.rglob("*.avi"))):
        time.sleep(0.1)
    assert proc.poll() is None, "download ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == "download: interrupted; its outputs were not replaced"
    assert not (p / "data" / "videos").exists()
    assert not list((p / "data").glob(".videos.tmp*"))


@pytest.fixture
def model_copy(tiny_model, tmp_path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(tiny_model, d)
    return d


def _predict(model: Path, *extra, env=None, cwd=None):
    clip = ROOT / "tests" / "footage" / "h264_carphone.mp4"
    return _run(["-m", "videoclf", "predict", clip, "--model", model, "--workers", "1", *extra],
                cwd or model.parent, env)


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
    ("wrong_labels", ["labels.json names 4 classes"]),
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
        r = _run(["-c", code, model_copy / "model.keras"], model_copy, venv_env)
        assert r.returncode == 0, r.stderr[-2000:]
    elif damage == "clips":
        extra = ["--clips", "-2"]
    r = _predict(model_copy, *extra, env=venv_env)
    _one_error_line(r, 2 if damage == "clips" else 1, *words)


def test_a_killed_train_leaves_no_metrics_that_look_like_results(tiny_frames, tmp_path,
                                                                 venv_env):
    """SIGKILL after the first epoch: dvclive's per-epoch files exist only in the hidden
    folder, so `dvc metrics show` has no epoch-1 numbers to display as results."""
    p = _project(tmp_path, {"train": {"epochs": 50}})
    proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / "train.py"), tiny_frames,
                             "data/model", "metrics/train"], cwd=p, env=venv_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    live_tmp = p / "metrics" / ".train.tmp"
    deadline = time.time() + 300
    while time.time() < deadline and not (live_tmp / "metrics.json").exists():
        time.sleep(0.2)
    assert proc.poll() is None and (live_tmp / "metrics.json").exists(), \
        "train ended, or never finished an epoch"
    proc.kill()
    proc.wait(timeout=60)
    assert not (p / "metrics" / "train").exists()
    assert not (p / "data" / "model").exists()


def test_train_killed_mid_run_resumes_to_the_same_bytes(tiny_frames, tmp_path, venv_env):
    """SIGKILL after the second of four epochs, then the same command again: it resumes
    from the checkpoint (weights, optimizer, schedule, EarlyStopping, dvclive rows) and ends
    with the bytes of an uninterrupted run; the checkpoint is removed when training ends."""
    changes = {"train": {"epochs": 4, "early_stopping_patience": 3}}
    cmd = [sys.executable, str(ROOT / "stages" / "train.py"), str(tiny_frames), "data/model",
           "metrics/train"]
    (tmp_path / "whole").mkdir()
    whole = _project(tmp_path / "whole", changes)
    r = subprocess.run(cmd, cwd=whole, env=venv_env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]

    (tmp_path / "killed").mkdir()
    killed = _project(tmp_path / "killed", changes)
    backup = killed / "data" / ".train-backup"
    proc = subprocess.Popen(cmd, cwd=killed, env=venv_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(backup.glob("*/epoch-00001")):
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=60)
    assert list(backup.glob("*/epoch-0000[12]")), "no checkpoint after the second epoch"
    assert not (killed / "data" / "model").exists()
    r = subprocess.run(cmd, cwd=killed, env=venv_env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"train: resuming after epoch [23] of 4", r.stderr), r.stderr[-3000:]
    for rel in ("data/model/model.keras", "data/model/train.json", "data/model/labels.json",
                "metrics/train/metrics.json", "metrics/train/plots/metrics/train/loss.tsv",
                "metrics/train/plots/metrics/eval/accuracy.tsv"):
        assert (killed / rel).read_bytes() == (whole / rel).read_bytes(), rel
    assert not list(backup.glob("*"))
