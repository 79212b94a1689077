"""The real ``dvc`` on a temp git copy of the project with a tiny config.

One project is reproduced once per module (the baseline commit); every test starts from that
baseline, restored by git and ``dvc checkout``, so the tests pass in any order or alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from videoclf.params import override

from helpers import DAMAGED, ROOT, TINY, class_folders

pytestmark = pytest.mark.slow


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    env.pop("TF_CONFIG", None)
    return env


def sh(cwd: Path, *cmd: str, check: bool = True, timeout: int = 900) -> str:
    if cmd[0] == "dvc":
        cmd = (sys.executable, "-m", "dvc", *cmd[1:])
    r = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{out[-4000:]}")
    return out


ALWAYS = {"source", "weights"}  # always_changed: cheap checks whose outputs decide the rest


def ran(out: str) -> set[str]:
    """The stages a command ran, but source and weights, which DVC runs every time
    (always_changed: a cheap fingerprint of data.url, a hash check of the weights file; what
    follows reruns only when their outputs changed)."""
    return set(re.findall(r"Running stage '(\w+)'", out)) - ALWAYS


def settled(root: Path) -> bool:
    """`dvc status` says nothing changed but source and weights, which it always lists."""
    return sh(root, "dvc", "status").split() == ["source:", "always", "changed",
                                                 "weights:", "always", "changed"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A git repo with the project's code and the tiny params; nothing reproduced yet."""
    root = tmp_path_factory.mktemp("project") / "videoclf"
    root.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(ROOT / name, root / name)
    for d in ("stages", "src"):
        shutil.copytree(ROOT / d, root / d,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (root / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copy2(ROOT / ".dvc" / ".gitignore", root / ".dvc" / ".gitignore")
    shutil.copytree(ROOT / ".dvc" / "plots", root / ".dvc" / "plots")  # committed
    params = override(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    # These tests check what DVC reruns, caches and reports, not the network: the one-body
    # network trains about twice as fast as two pathways at the tiny size (the session's
    # tiny_model, exported and served elsewhere, keeps the default).
    params = override(params, {"model": {"input": "diff"}})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "project")
    return root


@pytest.fixture(scope="module")
def baseline(fresh) -> tuple[Path, str]:
    """The first ``dvc repro`` of the project, committed as the baseline; its output."""
    out = sh(fresh, "dvc", "repro")
    sh(fresh, "git", "add", "-A")
    sh(fresh, "git", "commit", "-qm", "baseline")
    return fresh, out


@pytest.fixture
def project(baseline) -> Path:
    """The reproduced project as the baseline commit left it (params, lock and outputs)."""
    root, _ = baseline
    sh(root, "git", "checkout", "-q", "-f", "main")
    sh(root, "git", "reset", "-q", "--hard", "HEAD")
    sh(root, "dvc", "checkout", "-q", "--force", check=False)
    assert settled(root)
    return root


def test_repro_end_to_end(baseline):
    project, out = baseline
    assert ran(out) == {"download", "extract", "features", "pretrain", "train", "evaluate",
                        "plot", "export"}
    metrics = json.loads((project / "metrics" / "metrics.json").read_text())
    assert {"accuracy", "precision", "recall"} <= set(metrics)
    assert all(0 <= metrics[k] <= 1 for k in ("accuracy", "precision", "recall"))
    for png in ("learning_curves", "confusion_matrix", "per_class"):
        assert (project / "metrics" / "plots" / f"{png}.png").stat().st_size > 10_000
    assert settled(project)
    again = sh(project, "dvc", "repro")
    assert ran(again) == set()
    # No DVC output is left for git to pick up.
    status = sh(project, "git", "status", "--porcelain")
    assert not re.search(r"^\?\? (data/(videos|frames|model)|metrics/(train|eval|plots))", status,
                         re.M), status


def _scripts_need_no_network(page: str) -> None:
    """No script is loaded from anywhere: every <script> is inline, and Vega is defined."""
    tags = re.findall(r"<script\b[^>]*>", page)
    assert tags and all("src=" not in t for t in tags), tags
    assert "cdn.jsdelivr" not in page and "window.vegaEmbed=" in page


def test_plots_show_writes_one_page_that_draws_offline(project):
    out = sh(project, "dvc", "plots", "show", "-o", "plots_html")
    page = (project / "plots_html" / "index.html").read_text()
    assert "Confusion matrix (test)" in page and "Loss" in page
    assert "learning_curves.png" in page or "learning_curves" in page
    assert "examples.png" in page
    _scripts_need_no_network(page)
    # one vegaEmbed call per vega plot of dvc.yaml (Loss, Accuracy, 2 confusion, 2 bars)
    assert len(re.findall(r"vegaEmbed\('#", page)) == 6
    diff = sh(project, "dvc", "plots", "diff", "HEAD", "-o", "plots_diff")
    assert (project / "plots_diff" / "index.html").is_file(), out + diff
    _scripts_need_no_network((project / "plots_diff" / "index.html").read_text())


def test_frames_params_rerun_extract_onwards_only(project):
    out = sh(project, "dvc", "exp", "run", "-n", "step3", "-S", "frames.frame_step=3")
    # pretrain (off here: a file written, nothing loaded) reads the frame sampling too
    assert ran(out) == {"extract", "features", "pretrain", "train", "evaluate", "plot",
                        "export"}
    assert "'download' didn't change" in out


def test_your_own_class_folders_of_mixed_real_videos(project, tmp_path):
    """data.* changed (another source, 2 classes): everything reruns, on the user's files."""
    src = class_folders(tmp_path / "mine")
    out = sh(project, "dvc", "exp", "run", "-n", "mine", "-S", "data.source=url",
             "-S", f"data.url={src}", "-S", "data.num_classes=2",
             "-S", "data.per_class.train=3")
    assert ran(out) == {"download", "extract", "features", "pretrain", "train", "evaluate",
                        "plot", "export"}
    assert "leakage across splits cannot be ruled out" in out
    report = json.loads((project / "data" / "videos" / "report.json").read_text())
    assert report["classes"] == ["Bike", "Phone"] and report["layout"] == "folders"
    assert any(s["member"].endswith(DAMAGED) and s["declared_frames"] == 120
               for s in report["skipped"])
    suffixes = {Path(v).suffix for v in
                json.loads((project / "metrics" / "eval" / "predictions.json").read_text())
                for v in [v["video"]]}
    assert len(suffixes) >= 3  # test videos of several containers were scored
    assert set(json.loads((project / "metrics" / "per_class.json").read_text())) == {
        "Bike", "Phone"}


def _named_rows(rows, names: set[str]) -> dict:
    """The ``data`` of the experiments named ``names`` in ``dvc exp show --json``."""
    found = {}

    def walk(o):
        if isinstance(o, dict):
            if o.get("name") in names and o.get("data"):
                found[o["name"]] = o["data"]
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(rows)
    return found


def test_queue_runs_two_experiments_then_show_apply_and_metrics_diff(project):
    """Two queued experiments: q1 changes train.* (train onwards reruns, download and
    extract do not), q2 what evaluate alone reads (one train between them); `dvc exp show`
    lists both with params and metrics; `dvc exp apply q1` restores its params and metrics,
    and `dvc metrics diff` compares them with the baseline's."""
    for name, change in (("q1", "train.learning_rate=0.004"), ("q2", "evaluate.bootstrap=200")):
        sh(project, "dvc", "exp", "run", "--queue", "-n", name, "-S", change)
    sh(project, "dvc", "queue", "start", "-j", "1")
    deadline = time.time() + 600
    while time.time() < deadline:
        status = sh(project, "dvc", "queue", "status")
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(5)
    assert "Success" in status and "Failed" not in status, status
    log = sh(project, "dvc", "queue", "logs", "q1")
    assert ran(log) == {"train", "evaluate", "plot", "export"}, log[-3000:]
    assert "'download' didn't change" in log and "'extract' didn't change" in log
    rows = json.loads(sh(project, "dvc", "exp", "show", "--json"))
    text = json.dumps(rows)
    assert '"accuracy"' in text and '"learning_rate"' in text and '"epochs"' in text
    found = _named_rows(rows, {"q1", "q2"})
    assert set(found) == {"q1", "q2"}
    q1 = found["q1"]["metrics"]["metrics/metrics.json"]["data"]
    sh(project, "dvc", "exp", "apply", "q1")
    applied = json.loads((project / "metrics" / "metrics.json").read_text())
    assert applied["accuracy"] == q1["accuracy"] and applied["loss"] == q1["loss"]
    assert yaml.safe_load((project / "params.yaml").read_text())["train"]["learning_rate"] == 0.004
    d = json.loads(sh(project, "dvc", "metrics", "diff", "--all", "--json"))
    top = d["metrics/metrics.json"]
    assert {"accuracy", "precision", "recall"} <= set(top)
    assert {"old", "new"} <= set(top["accuracy"]) and top["accuracy"]["new"] == q1["accuracy"]
    per = d["metrics/per_class.json"]
    assert any(k.endswith(".precision") for k in per) and any(k.endswith(".recall") for k in per)


def test_pretrain_on_reruns_pretrain_onwards_and_a_train_change_does_not(project):
    """`dvc exp run -S pretrain.epochs=1` on the built-in data: pretrain and what follows
    rerun, train starts from the pretrained body (its hash in train.json), `dvc exp show`
    has the pretext curves' figures; a train.* change then leaves pretrain alone (a dry
    run says what would run)."""
    import hashlib

    out = sh(project, "dvc", "exp", "run", "-n", "pre", "-S", "pretrain.epochs=1")
    assert ran(out) == {"pretrain", "train", "evaluate", "plot", "export"}
    assert "'extract' didn't change" in out
    model = (project / "data" / "pretrained" / "model.keras").read_bytes()
    summary = json.loads((project / "data" / "model" / "train.json").read_text())
    assert summary["pretrained_sha256"] == hashlib.sha256(model).hexdigest()
    shown = json.dumps(json.loads(sh(project, "dvc", "exp", "show", "--json")))
    assert "metrics/pretrain/metrics.json" in shown and '"pretrain"' in shown
    pretext = json.loads((project / "metrics" / "pretrain" / "metrics.json").read_text())
    assert 0 <= pretext["eval"]["accuracy"] <= 1
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["pretrain"]["epochs"] == 1  # the experiment's workspace
    params["train"]["learning_rate"] = 0.002
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh(project, "dvc", "repro", "--dry")
    assert ran(out) == {"train"} and "'pretrain' didn't change" in out


def test_a_frozen_pretrained_backbone_runs_every_stage_and_a_train_change_reuses_features(
        project, tmp_path):
    """MobileNetV3 from a local weights file (made here), frozen: `dvc exp run` copies the
    weights into data/weights with their hash, caches the features, trains, evaluates,
    plots and exports; then a train.* change reruns
    train alone (features cached: a dry run says so), and the unchanged weights file is not
    copied again."""
    import hashlib

    from videoclf._tf import keras

    weights = tmp_path / "mnv3.weights.h5"
    keras.applications.MobileNetV3Small(include_top=False, weights=None,
                                        input_shape=(32, 32, 3)).save_weights(weights)
    out = sh(project, "dvc", "exp", "run", "-n", "mnv3", "-S", "model.input=rgb",
             "-S", "model.appearance_backbone=mobilenet_v3_small",
             "-S", f"model.appearance_weights={weights}", "-S", "train.freeze_backbone=true")
    # pretrain reads model.* (a file written, nothing loaded: it is off)
    assert ran(out) == {"features", "pretrain", "train", "evaluate", "plot", "export"}, \
        out[-3000:]
    assert "'extract' didn't change" in out
    record = json.loads((project / "data" / "weights" / "weights.json").read_text())
    assert record["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert (project / "data" / "weights" / "mnv3.weights.h5").read_bytes() == weights.read_bytes()
    assert "fitting what follows its cached features" in out
    metrics = json.loads((project / "metrics" / "metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["learning_rate"] = 0.002
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh(project, "dvc", "repro", "--dry")
    assert ran(out) == {"train"} and "'features' didn't change" in out, out[-3000:]
    out = sh(project, "dvc", "repro", "weights")
    assert "unchanged" in out and ran(out) == set()


def test_push_then_pull_in_a_fresh_clone_reruns_nothing(project, tmp_path):
    remote = str(tmp_path / "remote")  # --local: the baseline commit stays as it is
    sh(project, "dvc", "remote", "add", "--local", "-f", "tmp", remote)
    sh(project, "dvc", "push", "-r", "tmp")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(project), str(clone))
    sh(clone, "dvc", "remote", "add", "--local", "tmp", remote)
    sh(clone, "dvc", "pull", "-r", "tmp")
    assert (clone / "data" / "model" / "model.keras").is_file()
    assert json.loads((clone / "metrics" / "metrics.json").read_text()) == \
        json.loads((project / "metrics" / "metrics.json").read_text())
    assert settled(clone)
    assert ran(sh(clone, "dvc", "repro")) == set()
    # The model registry entry: a version registered as GTO (DVC Studio) does it, with an
    # annotated tag, then the model folder fetched by name from the repo.
    sh(project, "git", "tag", "-a", "r2plus1d-video-classifier@v0.1.0", "-m",
       "Registering artifact r2plus1d-video-classifier version v0.1.0")
    got = tmp_path / "got"
    sh(tmp_path, "dvc", "artifacts", "get", str(project), "r2plus1d-video-classifier",
       "-o", str(got))
    assert sorted(f.name for f in got.iterdir()) == [
        "inference.json", "labels.json", "model.keras", "sampling.json", "train.json"]
    assert (got / "model.keras").read_bytes() == \
        (project / "data" / "model" / "model.keras").read_bytes()


def _repro_download(project: Path) -> set[str]:
    out = sh(project, "dvc", "repro", "download")
    assert "Running stage 'source'" in out  # always, and cheap
    return ran(out)


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_a_changed_local_source_reruns_download_and_an_unchanged_one_does_not(project,
                                                                             tmp_path, kind):
    """data.url on the user's own folder (or zip): a video added, one renamed (or a member
    replaced) reruns download; touching nothing skips it."""
    import zipfile

    src = tmp_path / "mine"
    footage = ROOT / "tests" / "footage" / "h264_carphone.mp4"
    for cls in ("A", "B", "C"):
        (src / cls).mkdir(parents=True)
        for g in range(1, 5):
            shutil.copyfile(footage, src / cls / f"x_g{g:02d}_c01.mp4")

    def as_zip() -> Path:
        path = tmp_path / "mine.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            for f in sorted(src.rglob("*.mp4")):
                z.write(f, f.relative_to(src).as_posix())
        return path

    url = str(src) if kind == "folder" else str(as_zip())
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"].update(source="url", url=url, num_classes=3,
                          per_class={"train": 2, "val": 1, "test": 1})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _repro_download(project) == {"download"}
    assert _repro_download(project) == set()  # nothing touched
    shutil.copyfile(footage, src / "A" / "x_g05_c01.mp4")  # a video added
    if kind == "zip":
        as_zip()
    assert _repro_download(project) == {"download"}
    assert _repro_download(project) == set()
    (src / "B" / "x_g01_c01.mp4").rename(src / "B" / "y_g01_c01.mp4")  # one renamed
    if kind == "zip":
        as_zip()
    assert _repro_download(project) == {"download"}
    listed = json.loads((project / "data" / "videos" / "report.json").read_text())
    members = {r["member"] for r in listed["left_out"]} | set(
        pd.read_parquet(project / "data" / "videos" / "manifest.parquet").member)
    assert "B/y_g01_c01.mp4" in members and "B/x_g01_c01.mp4" not in members
