"""Shared fixtures: a tiny real dataset, its shards and a model trained on it, built once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from videoclf import params as params_mod  # noqa: E402

TINY = {
    "data": {"num_classes": 3, "per_class": {"train": 4, "val": 2, "test": 2}},
    "frames": {"n_frames": 4, "frame_step": 4, "height": 32, "width": 32, "workers": 2},
    "train": {"epochs": 1, "batch_size": 4},
}


def project_params(changes: dict | None = None) -> dict:
    """The project's params.yaml (the one source of defaults) with ``changes``, validated."""
    return params_mod.load(ROOT / "params.yaml", changes)


@pytest.fixture(scope="session")
def tiny_params() -> dict:
    """Validated params of the tiny config (3 classes, 4/2/2 clips, 32x32x4, 1 epoch)."""
    return project_params(TINY)


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory, tiny_params) -> Path:
    from videoclf.download import download

    root = tmp_path_factory.mktemp("tiny")
    download(tiny_params["data"], root / "videos", root / "staging")
    return root / "videos"


@pytest.fixture(scope="session")
def tiny_manifest(tiny_videos) -> pd.DataFrame:
    return pd.read_parquet(tiny_videos / "manifest.parquet")


@pytest.fixture(scope="session")
def tiny_frames(tiny_videos, tiny_params, tiny_manifest) -> Path:
    import json

    from videoclf.shards import extract

    out = tiny_videos.parent / "frames"
    classes = json.loads((tiny_videos / "report.json").read_text())["classes"]
    extract(tiny_manifest, tiny_videos, out, tiny_params["frames"], classes)
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_frames, tiny_params) -> Path:
    from videoclf.train import train

    out = tiny_frames.parent / "model"
    train(tiny_frames, out, tiny_frames.parent / "live", tiny_params["model"],
          tiny_params["train"], clips_per_video=tiny_params["evaluate"]["clips_per_video"])
    return out


@pytest.fixture
def venv_env() -> dict:
    """Environment where ``python`` and ``dvc`` are this interpreter's."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("TF_CONFIG", None)
    return env
