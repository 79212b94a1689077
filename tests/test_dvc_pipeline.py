"""The real ``dvc`` on a temp git copy of the project with a tiny config.

Tests in this module run in order and share one project: repro, then experiments, metrics
diff, plots, the queue and a remote, as a user would.
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

import pytest
import yaml

from conftest import ROOT, TINY, merge

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


def ran(out: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", out))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project") / "videoclf"
    root.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(ROOT / name, root / name)
    for d in ("stages", "src"):
        shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (root / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copy2(ROOT / ".dvc" / ".gitignore", root / ".dvc" / ".gitignore")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(merge(params, TINY), sort_keys=False))
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "project")
    return root


def test_repro_end_to_end(project):
    out = sh(project, "dvc", "repro")
    assert ran(out) == {"download", "extract", "train", "evaluate", "plot"}
    metrics = json.loads((project / "metrics" / "metrics.json").read_text())
    assert {"accuracy", "precision", "recall"} <= set(metrics)
    assert all(0 <= metrics[k] <= 1 for k in ("accuracy", "precision", "recall"))
    for png in ("learning_curves", "confusion_matrix", "per_class"):
        assert (project / "metrics" / "plots" / f"{png}.png").stat().st_size > 10_000
    assert "up to date" in sh(project, "dvc", "status")
    again = sh(project, "dvc", "repro")
    assert ran(again) == set()
    # No DVC output is left for git to pick up.
    status = sh(project, "git", "status", "--porcelain")
    assert not re.search(r"^\?\? (data/(videos|frames|model)|metrics/(train|eval|plots))", status,
                         re.M), status
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-qm", "baseline")


def test_changing_train_params_skips_download_and_extract(project):
    out = sh(project, "dvc", "exp", "run", "-n", "lr", "-S", "train.learning_rate=0.003")
    assert ran(out) == {"train", "evaluate", "plot"}
    assert "'download' didn't change" in out and "'extract' didn't change" in out


def test_exp_show_and_metrics_diff(project):
    rows = json.loads(sh(project, "dvc", "exp", "show", "--json"))
    text = json.dumps(rows)
    assert '"accuracy"' in text and '"learning_rate"' in text and '"epochs"' in text
    assert '"lr"' in text
    diff = sh(project, "dvc", "metrics", "diff", "--all", "--json")
    d = json.loads(diff)
    top = d["metrics/metrics.json"]
    assert {"accuracy", "precision", "recall"} <= set(top)
    assert {"old", "new"} <= set(top["accuracy"])
    per = d["metrics/per_class.json"]
    assert any(k.endswith(".precision") for k in per) and any(k.endswith(".recall") for k in per)


def test_plots_show_writes_one_page(project):
    out = sh(project, "dvc", "plots", "show", "-o", "plots_html")
    page = (project / "plots_html" / "index.html").read_text()
    assert "Confusion matrix (test)" in page and "Loss" in page
    assert "learning_curves.png" in page or "learning_curves" in page
    diff = sh(project, "dvc", "plots", "diff", "HEAD", "-o", "plots_diff")
    assert (project / "plots_diff" / "index.html").is_file(), out + diff


def test_frames_params_rerun_extract_onwards_only(project):
    out = sh(project, "dvc", "exp", "run", "-n", "h48", "-S", "frames.height=48")
    assert ran(out) == {"extract", "train", "evaluate", "plot"}
    assert "'download' didn't change" in out


def test_data_params_rerun_everything(project):
    out = sh(project, "dvc", "exp", "run", "-n", "two", "-S", "data.num_classes=2")
    assert ran(out) == {"download", "extract", "train", "evaluate", "plot"}
    per = json.loads((project / "metrics" / "per_class.json").read_text())
    assert list(per) == ["Dim", "Flicker"]


def test_your_own_class_folders_of_mixed_real_videos(project, tmp_path):
    from test_footage import DAMAGED, _class_folders

    src = _class_folders(tmp_path / "mine")
    out = sh(project, "dvc", "exp", "run", "-n", "mine", "-S", "data.source=url",
             "-S", f"data.url={src}", "-S", "data.num_classes=2",
             "-S", "data.per_class.train=3")
    assert ran(out) == {"download", "extract", "train", "evaluate", "plot"}
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


def test_queue_runs_two_experiments_and_apply_restores_one(project):
    sh(project, "git", "checkout", "-q", "--", ".")
    sh(project, "dvc", "checkout", "-q", check=False)
    for name, lr in (("q1", "0.004"), ("q2", "0.005")):
        sh(project, "dvc", "exp", "run", "--queue", "-n", name, "-S", f"train.learning_rate={lr}")
    sh(project, "dvc", "queue", "start", "-j", "1")
    deadline = time.time() + 600
    while time.time() < deadline:
        status = sh(project, "dvc", "queue", "status")
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(5)
    assert "Success" in status and "Failed" not in status, status
    rows = json.loads(sh(project, "dvc", "exp", "show", "--json"))
    found = {}

    def walk(o):
        if isinstance(o, dict):
            if o.get("name") in ("q1", "q2") and o.get("data"):
                found[o["name"]] = o["data"]
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(rows)
    assert set(found) == {"q1", "q2"}
    q1 = found["q1"]["metrics"]["metrics/metrics.json"]["data"]
    sh(project, "dvc", "exp", "apply", "q1")
    applied = json.loads((project / "metrics" / "metrics.json").read_text())
    assert applied["accuracy"] == q1["accuracy"] and applied["loss"] == q1["loss"]
    assert yaml.safe_load((project / "params.yaml").read_text())["train"]["learning_rate"] == 0.004


def test_push_then_pull_in_a_fresh_clone_reruns_nothing(project, tmp_path):
    sh(project, "git", "checkout", "-q", "--", ".")
    sh(project, "dvc", "checkout", "-q", "--force", check=False)
    sh(project, "dvc", "remote", "add", "-d", "local", str(tmp_path / "remote"))
    sh(project, "git", "commit", "-qam", "remote")
    sh(project, "dvc", "push")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(project), str(clone))
    sh(clone, "dvc", "pull")
    assert (clone / "data" / "model" / "model.keras").is_file()
    assert json.loads((clone / "metrics" / "metrics.json").read_text()) == \
        json.loads((project / "metrics" / "metrics.json").read_text())
    assert "up to date" in sh(clone, "dvc", "status")
    assert ran(sh(clone, "dvc", "repro")) == set()
