"""What the stages promise by construction: complete deps, no TensorFlow where no model runs,
paths from dvc.yaml, and one line (never a traceback) for every failure a user can cause."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from videoclf.artifacts import DEFAULT_MODEL_DIR
from videoclf.closure import closure, module_closure

from helpers import ROOT, assert_one_error_line, run_python, tmpfs, write_project

STAGES = ("source", "download", "extract", "train", "evaluate", "plot", "export")


def _dvc_yaml() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_every_stage_depends_on_exactly_the_code_it_runs():
    """The import closure of each stage script within src/videoclf (lazy imports included)
    is its list of code deps in dvc.yaml: change a module, and exactly the stages running it
    rerun. Each dep is listed once (a second copy of a list is easy to paste and hard to
    read)."""
    stages = _dvc_yaml()["stages"]
    for name in STAGES:
        script = ROOT / "stages" / f"{name}.py"
        code = {p.relative_to(ROOT).as_posix() for p in closure(script)}
        listed = stages[name]["deps"]
        assert len(listed) == len(set(listed)), name
        deps = {d for d in listed if d.endswith(".py")}
        assert deps == code | {f"stages/{name}.py"}, name
    assert "src/videoclf/_tf.py" in {d for d in stages["evaluate"]["deps"]}


def test_the_checkpoint_key_hashes_the_code_dvc_yaml_lists_for_train():
    """backup_key hashes the closure of the train stage: the files dvc.yaml makes train
    depend on, so a code change that reruns train never resumes an old checkpoint."""
    from videoclf.training import train as train_module

    deps = {d for d in _dvc_yaml()["stages"]["train"]["deps"] if d.endswith(".py")}
    hashed = {p.relative_to(ROOT).as_posix()
              for p in module_closure(["videoclf.stage", train_module.__name__])}
    assert hashed == deps - {"stages/train.py"}
    text = (ROOT / "stages" / "train.py").read_text()
    # what backup_key starts its closure from (artifacts is in training.train's closure)
    assert set(re.findall(r"from (videoclf[\w.]*) import", text)) == {
        "videoclf.stage", "videoclf.artifacts", train_module.__name__}


def test_closure_sees_lazy_and_relative_imports(tmp_path):
    closure_of_predict = {p.name for p in closure(ROOT / "src" / "videoclf" / "__main__.py")}
    # predict imports the model I/O inside a function: still part of what it runs
    assert {"modelio.py", "scoring.py", "video.py", "artifacts.py", "_tf.py"} <= \
        closure_of_predict


def test_paths_are_written_once_in_dvc_yaml():
    d = _dvc_yaml()
    paths = d["vars"][0]["paths"]
    assert Path(paths["model"]) == DEFAULT_MODEL_DIR  # predict's default is the train output
    for name in STAGES:
        stage = d["stages"][name]
        assert stage["cmd"].startswith(f"python stages/{name}.py ${{paths.")
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]]
        assert all(o.startswith("${paths.") for o in outs), name
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


def test_download_extract_plot_and_predict_help_run_without_tensorflow(
        no_tf, tiny_model, tiny_frames, tmp_path):
    p = write_project(tmp_path)
    r = run_python([ROOT / "stages" / "download.py", "data/videos"], p, no_tf)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_python([ROOT / "stages" / "extract.py", "data/videos", "data/frames"], p, no_tf)
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
    # pretrain off: its outputs say so, and nothing is loaded
    r = run_python([ROOT / "stages" / "pretrain.py", "data/videos", "data/unlabeled.json",
                    "data/pretrained", "metrics/pretrain"], p, no_tf)
    assert r.returncode == 0 and "pretrain: off" in r.stderr, r.stderr[-2000:]
    assert json.loads((p / "data" / "pretrained" / "pretrain.json").read_text()) == {"epochs": 0}
    r = run_python([ROOT / "stages" / "plot.py", p / "data" / "videos", tiny_model,
                    tiny_frames.parent / "live", metrics, p / "metrics" / "pretrain",
                    metrics / "plots"], p, no_tf)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(list((metrics / "plots").glob("*.png"))) == 4
    r = run_python(["-m", "videoclf", "predict", "--help"], p, no_tf)
    assert r.returncode == 0 and "--model" in r.stdout, r.stderr[-2000:]
    # a params check fails fast, without TensorFlow
    (tmp_path / "bad").mkdir()
    bad = write_project(tmp_path / "bad", {"train": {"epochs": 0}})
    r = run_python([ROOT / "stages" / "train.py", "data/frames", "data/pretrained",
                    "data/weights", "data/features", "data/model", "metrics/train",
                    "metrics/train_throughput.json"], bad, no_tf)
    assert r.returncode == 2 and "train.epochs: must be >= 1" in r.stderr
    assert "Traceback" not in r.stderr
    # fractions that do not sum to 1 stop any stage, before it reads anything
    odd = write_project(tmp_path / "bad", {"data": {"per_class": {"train": 0.5, "val": 0.4,
                                                                  "test": 0.3}}})
    r = run_python([ROOT / "stages" / "extract.py", "data/videos", "data/frames"], odd, no_tf)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if "bad params" in line] == [
        "extract: bad params: data.per_class: the fractions train 0.5/val 0.4/test 0.3 sum to "
        "1.2; they must sum to 1 (or give train: all)"]
    r = run_python(["-m", "videoclf", "--help"], p, no_tf)
    assert r.returncode == 0 and "predict" in r.stdout


def test_missing_inputs_and_an_output_that_is_a_file_are_one_line(tmp_path, venv_env):
    p = write_project(tmp_path)
    r = run_python([ROOT / "stages" / "extract.py", "data/videos", "data/frames"], p, venv_env)
    assert_one_error_line(r, 1, "data/videos/manifest.parquet: missing")
    (p / "data").mkdir()
    (p / "data" / "videos").write_text("a file where the stage writes a folder")
    r = run_python([ROOT / "stages" / "download.py", "data/videos"], p, venv_env)
    assert_one_error_line(r, 1, "data/videos exists and is not a folder")
    # evaluate refuses before loading anything, not after scoring every video
    (p / "metrics").write_text("not a folder")
    t0 = time.perf_counter()
    r = run_python([ROOT / "stages" / "evaluate.py", "data/videos", "data/model", "metrics"], p,
             venv_env)
    assert_one_error_line(r, 1, "metrics exists and is not a folder")
    assert "evaluate: done" not in r.stderr and time.perf_counter() - t0 < 60


def test_a_stage_interrupted_with_ctrl_c_says_so_and_leaves_no_output(tmp_path, venv_env):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: the parent reports it in one
    line, the workers print nothing, and no half-written output is left."""
    p = write_project(tmp_path, {"data": {"per_class": {"train": 30, "val": 10, "test": 10}}})
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
    assert stderr.strip().splitlines()[-1].startswith(
        "download: interrupted; no new output was written (under dvc repro, the old outputs")
    assert not (p / "data" / "videos").exists()
    assert not list((p / "data").glob(".videos.tmp*"))


def test_a_full_disk_while_generating_is_one_line_and_a_rerun_with_space_is_whole(tmp_path,
                                                                                venv_env):
    """OpenCV's writer says nothing when the disk fills: the stage says it (ENOSPC, one line,
    not retried), leaves no staged clip to poison the rerun, and the rerun on a disk with
    room gives every clip whole (each decodes to the frames it was generated with)."""
    p = write_project(tmp_path)
    with tmpfs(p / "data", "3m") as data:
        t0 = time.perf_counter()
        r = run_python([ROOT / "stages" / "download.py", "data/videos"], p, venv_env)
        assert_one_error_line(r, 1, "No space left on device")
        assert time.perf_counter() - t0 < 120
        assert not [f for f in data.rglob("*") if f.is_file()], "a staged clip was left"
        subprocess.run(["mount", "-o", "remount,size=64m", str(data)], check=True)
        r = run_python([ROOT / "stages" / "download.py", "data/videos"], p, venv_env)
        assert r.returncode == 0, r.stderr[-3000:]
        report = json.loads((data / "videos" / "report.json").read_text())
        assert report["skipped"] == [] and sum(sum(c.values()) for c in
                                               report["counts"].values()) == 24


def test_library_warnings_do_not_reach_the_stage_output():
    """urllib3 warns on every retry; FFmpeg and OpenCV log from C: the stages keep to their
    own lines (one per problem) unless asked (VIDEOCLF_FFMPEG_LOG=1)."""
    import logging

    from videoclf.stage import setup_logging

    setup_logging()
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.ERROR
    code = "import os, videoclf; print(os.environ['OPENCV_FFMPEG_LOGLEVEL'])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items()
                            if k not in ("OPENCV_FFMPEG_LOGLEVEL", "OPENCV_LOG_LEVEL")})
    assert r.stdout.strip() == "-8", r.stderr
