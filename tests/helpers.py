"""What several tests share that is not a fixture: the project root, the tiny config, the
project's params with changes, and small process helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from videoclf import params as params_mod

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "data": {"num_classes": 3, "per_class": {"train": 4, "val": 2, "test": 2}},
    "frames": {"n_frames": 4, "frame_step": 4, "height": 32, "width": 32, "workers": 2},
    "train": {"epochs": 1, "batch_size": 4},
}


def project_params(changes: dict | None = None) -> params_mod.Params:
    """The project's params.yaml (the one source of defaults) with ``changes``, validated."""
    return params_mod.load(ROOT / "params.yaml", changes)


def write_project(folder: Path, changes: dict | None = None) -> Path:
    """``folder/params.yaml``: the project's params with the tiny config and ``changes``."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw = params_mod.override(params_mod.override(raw, TINY), changes or {})
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    return folder


def train_stage(frames: Path, *projects: Path) -> list[str]:
    """The train stage's command line in a project folder made by ``write_project``, with
    pretraining off (the pretrain stage's ``{"epochs": 0}`` in each project's data/) and the
    (2+1)D body (the weights and features stages' records for it)."""
    for project in projects:
        (project / "data" / "pretrained").mkdir(parents=True, exist_ok=True)
        (project / "data" / "pretrained" / "pretrain.json").write_text('{"epochs": 0}')
        body_records(frames, project)
    return [sys.executable, str(ROOT / "stages" / "train.py"), str(frames), "data/pretrained",
            "data/weights", "data/features", "data/model", "metrics/train",
            "metrics/train_throughput.json"]


def body_records(frames: Path, project: Path) -> None:
    """The weights and features stages' records for the (2+1)D body in ``project/data``."""
    from videoclf.training.backbones.weights import prepare_weights
    from videoclf.training.features import write_features

    p = project_params()
    prepare_weights(project / "data" / "weights", "r2plus1d", "none", "", 60)
    write_features(frames, project / "data" / "weights", project / "data" / "features",
                   p.model, p.train)


def run_python(args, cwd, env, timeout=300, **kw) -> subprocess.CompletedProcess:
    """This interpreter on ``args`` (a script and its arguments, or ``-m``/``-c``)."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, **kw)


def venv_environ() -> dict:
    """The environment where ``python`` and ``dvc`` are this interpreter's."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("TF_CONFIG", None)
    return env


def assert_one_error_line(r: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Exit ``code``, no traceback, and exactly one line with "error" naming every word."""
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, r.stderr
    for w in words:
        assert w in errors[0], (w, errors[0])


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """``folder`` as a file system of ``size`` (``"2m"``): a full disk for real. Mounting
    needs root, as CI runs; elsewhere the test is skipped."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                       str(folder)]).returncode:
        pytest.skip("this machine does not let root mount a tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def without_tensorflow(folder: Path) -> dict:
    """An environment where ``import tensorflow`` (and keras) fails: packages of those names
    under ``folder`` that raise ImportError, first on PYTHONPATH."""
    for mod in ("tensorflow", "keras"):
        (folder / mod).mkdir(parents=True, exist_ok=True)
        (folder / mod / "__init__.py").write_text(f"raise ImportError('{mod} is absent')\n")
    return dict(os.environ, PYTHONPATH=f"{folder}{os.pathsep}{ROOT / 'src'}")


# Real footage no one here made (tests/footage/README.md).
FOOTAGE = ROOT / "tests" / "footage"
DAMAGED = "theora_damaged.ogv"
SHORT_HEADER = "cinepak_tree.avi"   # claims 444 frames, 68 decode
GOOD = sorted(p.name for p in FOOTAGE.iterdir()
              if p.suffix.lower() not in (".sh", ".md", ".py")
              and p.name not in (DAMAGED, SHORT_HEADER))


def class_folders(root: Path) -> Path:
    """Two classes of mixed containers, sub-folders and a damaged file."""
    names = GOOD + [DAMAGED]
    for i, name in enumerate(names):
        cls = "Bike" if i % 2 else "Phone"
        sub = root / "my data" / cls / ("day1" if i % 3 else "")
        sub.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FOOTAGE / name, sub / name)
    (root / "my data" / "Phone" / "notes.txt").write_text("not a video")
    return root / "my data"


# The tutorial's network (rgb, LayerNorm, one body) for tests that build models directly:
# every ModelParams field is set here, and `change` replaces any of them.
TUTORIAL_MODEL = dict(filters=(16, 32, 64, 128), input="rgb", norm="layer", appearance_stride=4,
                      appearance_filters=None, appearance_stem_stride=1, motion_scale=1,
                      motion_downscale="mean", pathway_dropout=0.0, pathway_loss=0.0,
                      fusion="features", dropout=0.0, init="", appearance_backbone="r2plus1d",
                      appearance_weights="none", appearance_weights_sha256="")


def tutorial_net(n_frames: int, height: int, width: int, classes: int, filters=None,
                 input_kind: str | None = None, **change):
    """``network.build_model`` for ``(n_frames, height, width, 3)`` clips and ``classes``
    classes, with TUTORIAL_MODEL's settings but ``filters``, ``input_kind`` and ``change``
    (``appearance_filters`` follows ``filters`` unless given)."""
    from videoclf.training.network import build_model
    from videoclf.video import Sampling

    fields = {**TUTORIAL_MODEL, **change}
    if filters is not None:
        fields["filters"] = tuple(filters)
    if input_kind is not None:
        fields["input"] = input_kind
    fields["appearance_filters"] = tuple(fields["appearance_filters"] or fields["filters"])
    model = params_mod.ModelParams(**fields)
    return build_model(model, Sampling(n_frames, 1, height, width, "loop"), classes)
