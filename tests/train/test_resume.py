"""The train stage killed with SIGKILL: nothing that looks like a result is left, and the same
command resumes to the bytes of an uninterrupted run."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from helpers import ROOT, write_project

pytestmark = pytest.mark.slow  # real train processes, killed and rerun


def test_a_killed_train_leaves_no_metrics_that_look_like_results(tiny_frames, tmp_path,
                                                                 venv_env):
    """SIGKILL after the first epoch: dvclive's per-epoch files exist only in the hidden
    folder, so `dvc metrics show` has no epoch-1 numbers to display as results."""
    p = write_project(tmp_path, {"train": {"epochs": 50}})
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
    whole = write_project(tmp_path / "whole", changes)
    r = subprocess.run(cmd, cwd=whole, env=venv_env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]

    (tmp_path / "killed").mkdir()
    killed = write_project(tmp_path / "killed", changes)
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
