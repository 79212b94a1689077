"""engine.backend: ray gives the local pool's bytes, on a Ray started here and on a real
two-node cluster (Ray's own ``cluster_utils.Cluster``: a head and a second raylet on this
machine, as Ray's tests run several nodes), and a cluster that is not there is one line."""

from __future__ import annotations

import hashlib
import logging
import shutil
import time

import numpy as np
import pytest

from videoclf.data.extract import extract
from videoclf.engine import LocalEngine, open_engine
from videoclf.errors import EngineError
from videoclf.inference.scoring import sample_videos
from videoclf.params import EngineParams

from helpers import project_params

FRAMES = dict(n_frames=4, frame_step=4, height=32, width=32, train_clips_per_video=2, shard_mb=1)


@pytest.fixture(scope="module")
def videos(tiny_videos, tiny_manifest, tmp_path_factory):
    """The tiny set with one test video replaced by bytes no codec reads (skipped and reported
    the same way wherever it is decoded)."""
    folder = tmp_path_factory.mktemp("engine") / "videos"
    shutil.copytree(tiny_videos, folder)
    broken = tiny_manifest[tiny_manifest.split == "test"].video.iloc[0]
    (folder / broken).write_bytes(b"\x00not a video" * 100)
    return folder


@pytest.fixture(scope="module")
def local_frames(videos, tiny_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "frames"
    _extract(tiny_manifest, videos, out, LocalEngine(1))
    return out


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c
    c.shutdown()


def _extract(manifest, videos, out, engine):
    p = project_params({"frames": FRAMES}).frames
    return extract(manifest, videos, out, p, sorted(manifest["class"].unique()), engine)


def _sha256s(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_ray_on_this_machine_writes_the_local_bytes_and_scores_the_same_clips(
        videos, tiny_manifest, local_frames, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    paths = sorted(videos.rglob("*.avi"))[:6]
    sampling = project_params({"frames": FRAMES}).frames.sampling
    with open_engine(EngineParams("ray", ""), "extract", workers=2) as engine:
        _extract(tiny_manifest, videos, tmp_path / "ray", engine)
        scored = list(sample_videos(paths, sampling, 2, engine=engine))
    assert _sha256s(tmp_path / "ray") == _sha256s(local_frames)
    assert "report.json" in _sha256s(local_frames)
    assert b"skipped" in (local_frames / "report.json").read_bytes()
    local = list(sample_videos(paths, sampling, 2, workers=1))
    assert [(p, e) for p, _, e in scored] == [(p, e) for p, _, e in local]
    for (_, a, _), (_, b, _) in zip(scored, local):
        np.testing.assert_array_equal(a, b)
    assert any("extract: Ray at " in r.message and ", 1 node, 2 CPUs" in r.message
               for r in caplog.records)
    assert any("Ray tasks on 2 CPUs" in r.message for r in caplog.records)


def test_a_two_node_cluster_runs_on_both_and_writes_the_local_bytes(
        cluster, videos, tiny_manifest, local_frames, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with open_engine(EngineParams("ray", cluster.address), "extract") as engine:
        _extract(tiny_manifest, videos, tmp_path / "cluster", engine)
    assert _sha256s(tmp_path / "cluster") == _sha256s(local_frames)
    lines = [r.message for r in caplog.records]
    assert f"extract: Ray at {cluster.address}, 2 nodes, 2 CPUs" in lines
    assert any(line.startswith("extract: Ray ran ") and line.endswith(" on 2 node(s)")
               for line in lines), lines


def test_no_cluster_at_the_address_is_one_line_at_once():
    t0 = time.perf_counter()
    with pytest.raises(EngineError) as e:
        with open_engine(EngineParams("ray", "127.0.0.1:9"), "extract"):
            pass
    assert time.perf_counter() - t0 < 30
    assert "no Ray cluster answers at 127.0.0.1:9" in str(e.value)
    assert "\n" not in str(e.value)
