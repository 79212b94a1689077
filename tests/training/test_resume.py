"""The train stage killed with SIGKILL: nothing that looks like a result is left, and the same
command resumes to the bytes of an uninterrupted run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import ROOT, body_records, train_stage, write_project

pytestmark = pytest.mark.slow  # real train processes, killed and rerun


def _kill_after_checkpoint(cmd: list[str], cwd, env: dict, epoch: int) -> None:
    """Start train, wait until the checkpoint of ``epoch`` (0-based) is complete, SIGKILL."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    backup = cwd / "data" / ".train-backup"
    deadline = time.time() + 300
    while time.time() < deadline and not list(backup.glob(f"*/epoch-{epoch:05d}")):
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=60)


def test_a_killed_train_leaves_no_metrics_that_look_like_results(tiny_frames, tmp_path,
                                                                 venv_env):
    """SIGKILL after the first epoch: dvclive's per-epoch files exist only in the hidden
    folder, so `dvc metrics show` has no epoch-1 numbers to display as results."""
    p = write_project(tmp_path, {"train": {"epochs": 50}})
    proc = subprocess.Popen(train_stage(tiny_frames, p), cwd=p, env=venv_env,
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
    changes = {"train": {"epochs": 4, "patience": 3}}
    (tmp_path / "whole").mkdir()
    whole = write_project(tmp_path / "whole", changes)
    cmd = train_stage(tiny_frames, whole)
    r = subprocess.run(cmd, cwd=whole, env=venv_env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]

    (tmp_path / "killed").mkdir()
    killed = write_project(tmp_path / "killed", changes)
    train_stage(tiny_frames, killed)
    backup = killed / "data" / ".train-backup"
    _kill_after_checkpoint(cmd, killed, venv_env, epoch=1)
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


def test_pretrain_killed_mid_run_resumes_to_the_same_bytes_and_train_starts_from_it(
        tiny_videos, tiny_frames, tmp_path, venv_env):
    """The pretrain stage killed after its first epoch reruns to the bytes of an unbroken run
    (its pretext set rebuilt the same, its fit resumed); train then starts from its body
    and records the pretrained model's hash."""
    import hashlib

    cmd = [sys.executable, str(ROOT / "stages" / "pretrain.py"), str(tiny_videos),
           str(tiny_videos / "manifest.parquet"), "data/pretrained", "metrics/pretrain"]
    runs = {}
    for name in ("whole", "killed"):
        (tmp_path / name).mkdir()
        # the one-body network: about twice as fast at this size, and not what is tested
        runs[name] = write_project(tmp_path / name, {"pretrain": {"epochs": 2},
                                                     "model": {"input": "diff"}})
    whole, killed = runs["whole"], runs["killed"]
    r = subprocess.run(cmd, cwd=whole, env=venv_env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    _kill_after_checkpoint(cmd, killed, venv_env, epoch=0)
    assert list((killed / "data" / ".pretext").glob("*/index.parquet")), "no pretext set kept"
    r = subprocess.run(cmd, cwd=killed, env=venv_env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"train: resuming after epoch 1 of 2", r.stderr), r.stderr[-3000:]
    for rel in ("data/pretrained/model.keras", "data/pretrained/train.json",
                "data/pretrained/pretrain.json", "metrics/pretrain/metrics.json"):
        assert (killed / rel).read_bytes() == (whole / rel).read_bytes(), rel
    assert not (killed / "data" / ".pretext").exists()
    assert not list((killed / "data" / ".train-backup").glob("*"))

    body_records(tiny_frames, killed)
    train = [sys.executable, str(ROOT / "stages" / "train.py"), str(tiny_frames),
             "data/pretrained", "data/weights", "data/features", "data/model", "metrics/train",
             "metrics/train_throughput.json"]
    r = subprocess.run(train, cwd=killed, env=venv_env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "train: pretrained body from data/pretrained/model.keras (classifier fresh" \
        in r.stderr, r.stderr[-3000:]
    summary = json.loads((killed / "data" / "model" / "train.json").read_text())
    model = (killed / "data" / "pretrained" / "model.keras").read_bytes()
    assert summary["pretrained_sha256"] == hashlib.sha256(model).hexdigest()


def test_a_checkpoint_is_never_resumed_on_other_pixels_under_the_same_names(tiny_frames,
                                                                           tmp_path, venv_env):
    """Killed on frames A; the same names, index and frame counts with other pixels (B):
    training starts over instead of resuming A's checkpoint."""
    frames = tmp_path / "frames"
    shutil.copytree(tiny_frames, frames)
    p = write_project(tmp_path, {"train": {"epochs": 50}})
    cmd = train_stage(frames, p)
    backup = p / "data" / ".train-backup"
    _kill_after_checkpoint(cmd, p, venv_env, epoch=0)
    assert list(backup.glob("*/epoch-*")), "no checkpoint to resume from"
    for shard in frames.glob("train-*.npy"):  # B: other pixels, same shapes and names
        arr = np.load(shard, mmap_mode="r+")
        arr[:] = 255 - arr
        arr.flush()
        del arr
    # The same command: the log says whether it resumes before the first epoch starts.
    proc = subprocess.Popen(cmd, cwd=p, env=venv_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "val videos" in line:
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert any("val videos" in line for line in lines), "".join(lines)[-3000:]
    assert not any("resuming" in line for line in lines), "".join(lines)[-3000:]


def test_wall_clock_figures_stay_out_of_the_folder_plot_reads(tmp_path, tiny_frames, venv_env):
    """train's clips/s go to their own output (metrics/train_throughput.json): a forced
    rerun with the same results leaves metrics/train, which plot depends on, byte-identical."""
    p = write_project(tmp_path, {"model": {"input": "diff"}})  # one body: faster
    cmd = train_stage(tiny_frames, p)
    runs = []
    for _ in range(2):
        r = subprocess.run(cmd, cwd=p, env=venv_env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        live = p / "metrics" / "train"
        runs.append({f.relative_to(live).as_posix(): f.read_bytes()
                     for f in sorted(live.rglob("*")) if f.is_file()})
    assert "throughput.json" not in runs[0] and runs[0] == runs[1]
    speed = json.loads((p / "metrics" / "train_throughput.json").read_text())
    assert speed["train"]["train_clips_per_s"] > 0
