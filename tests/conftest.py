"""Shared fixtures: a tiny real dataset, its shards and a model trained on it, built once per
session and reused by every wing's tests (helpers that are not fixtures: ``helpers.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from videoclf.params import Params  # noqa: E402

from helpers import TINY, project_params, venv_environ  # noqa: E402


@pytest.fixture(scope="session")
def tiny_params() -> Params:
    """Validated params of the tiny config (3 classes, 4/2/2 clips, 32x32x4, 1 epoch)."""
    return project_params(TINY)


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory, tiny_params) -> Path:
    from videoclf.data.download import download

    root = tmp_path_factory.mktemp("tiny")
    download(tiny_params.data, root / "videos", root / "staging")
    return root / "videos"


@pytest.fixture(scope="session")
def tiny_manifest(tiny_videos) -> pd.DataFrame:
    return pd.read_parquet(tiny_videos / "manifest.parquet")


@pytest.fixture(scope="session")
def tiny_frames(tiny_videos, tiny_params, tiny_manifest) -> Path:
    from videoclf.artifacts import read_classes
    from videoclf.data.extract import extract

    out = tiny_videos.parent / "frames"
    extract(tiny_manifest, tiny_videos, out, tiny_params.frames, read_classes(tiny_videos))
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_frames, tiny_params) -> Path:
    from videoclf.training.train import train

    out = tiny_frames.parent / "model"
    train(tiny_frames, out, tiny_frames.parent / "live", tiny_params.model,
          tiny_params.train, clips_per_video=tiny_params.evaluate.clips_per_video,
          flip_test=tiny_params.evaluate.flip)
    return out


@pytest.fixture(scope="session")
def exported(tiny_model, tiny_frames, tmp_path_factory) -> Path:
    """The tiny model through the export stage: SavedModel, ONNX, TFLite and the JSON files."""
    from videoclf.inference.export import export

    out = tmp_path_factory.mktemp("export") / "export"
    export(tiny_model, out, tiny_frames)
    return out


@pytest.fixture
def venv_env() -> dict:
    """Environment where ``python`` and ``dvc`` are this interpreter's."""
    return venv_environ()


# `make test` runs two workers, a file each at a time (--dist loadfile --no-loadscope-reorder),
# in this order: the longest files first, so that no long file is left to run alone at the
# end (with xdist's own order, by number of tests, tests/training ran last and alone: 48 min for
# the suite beside a benchmark; in this order, 23.5 min on a fresh clone). Longest per file,
# measured: the dvc pipeline (~30% of the suite), then train, resume, precise BN, predict
# CLI, service, export. Files not named keep pytest's order after these.
LONGEST_FIRST = [
    "tests/pipeline/test_dvc_pipeline.py",
    "tests/training/test_train.py",
    "tests/training/test_resume.py",
    "tests/training/test_precise_bn.py",
    "tests/inference/test_predict_cli.py",
    "tests/inference/test_service.py",
    "tests/inference/test_export.py",
    "tests/training/test_backbones.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.nodeid.split("::")[0], len(rank)),
                                 order[id(item)]))
