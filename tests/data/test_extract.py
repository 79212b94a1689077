import json
import shutil

import numpy as np
import pandas as pd
import pytest

from videoclf.data.extract import extract
from videoclf.data.splits import DatasetError

from helpers import project_params


def test_shards_and_index(tiny_frames, tiny_manifest, tiny_params):
    index = pd.read_parquet(tiny_frames / "index.parquet")
    meta = json.loads((tiny_frames / "meta.json").read_text())
    f = tiny_params.frames
    assert meta["sampling"] == {"n_frames": f.n_frames, "frame_step": f.frame_step,
                                "height": f.height, "width": f.width,
                                "short_video": f.short_video}
    assert list(index.columns) == ["video", "class", "label", "group", "split", "clip", "start",
                                   "shard", "row", "real_frames"]
    k = f.train_clips_per_video
    assert meta["train_clips_per_video"] == k
    n_train = int((tiny_manifest.split == "train").sum())
    assert len(index) == len(tiny_manifest) + (k - 1) * n_train  # K train clips, 1 otherwise
    for shard, rows in index.groupby("shard"):
        arr = np.load(tiny_frames / shard, mmap_mode="r")
        assert arr.dtype == np.uint8 and arr.shape[1:] == (4, 32, 32, 3)
        assert sorted(rows.row) == list(range(len(arr)))
        assert shard.startswith(rows.split.iloc[0] + "-")
        assert arr.any()  # real pixels, not zeros


def _run(manifest, videos, out, **frames):
    p = project_params({"frames": frames}).frames
    classes = sorted(manifest["class"].unique())
    return extract(manifest, videos, out, p, classes)


def test_byte_identical_whatever_the_worker_count(tiny_videos, tiny_manifest, tmp_path):
    kw = dict(n_frames=4, frame_step=4, height=32, width=32, train_clips_per_video=2,
              shard_mb=1)
    _run(tiny_manifest, tiny_videos, tmp_path / "one", workers=1, **kw)
    _run(tiny_manifest, tiny_videos, tmp_path / "two", workers=2, **kw)
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_k_clips_and_bounded_shards(tiny_videos, tiny_manifest, tmp_path):
    index = _run(tiny_manifest, tiny_videos, tmp_path / "f", n_frames=4, frame_step=4,
                 height=64, width=64, train_clips_per_video=3, shard_mb=1, workers=2)
    train = index[index.split == "train"]
    assert (train.groupby("video").size() == 3).all()
    assert (index[index.split != "train"].groupby("video").size() == 1).all()
    # A video's clips share a shard and are consecutive rows.
    for _, rows in train.groupby("video"):
        assert rows.shard.nunique() == 1 and list(rows.row) == list(range(rows.row.min(),
                                                                           rows.row.min() + 3))
    # 1 MB shards of 3 x 48 KB clips per video: several shards, none over the bound, every
    # row of every shard indexed exactly once.
    shards = sorted((tmp_path / "f").glob("train-*.npy"))
    assert len(shards) >= 2
    for s in shards:
        assert s.stat().st_size <= 2**20 + 128
        rows = sorted(index[index.shard == s.name].row)
        assert rows == list(range(len(np.load(s, mmap_mode="r"))))
    # The starts recorded are the stratified ones, distinct within a video.
    assert (train.groupby("video").start.nunique() == 3).all()
    # Different starts give different clips.
    arr = np.load(shards[0])
    assert not np.array_equal(arr[0], arr[1])


def test_broken_video_is_skipped_and_reported(tiny_videos, tiny_manifest, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(tiny_videos, videos)
    victim = tiny_manifest[tiny_manifest.split == "train"].video.iloc[0]
    (videos / victim).write_bytes(b"\x00" * 1000)
    index = _run(tiny_manifest, videos, tmp_path / "f", n_frames=4, frame_step=4, height=32,
                 width=32, workers=2, train_clips_per_video=1)
    report = json.loads((tmp_path / "f" / "report.json").read_text())
    assert [s["video"] for s in report["skipped"]] == [victim]
    assert victim not in set(index.video) and len(index) == len(tiny_manifest) - 1


def test_fails_when_a_class_has_no_clip_left(tiny_videos, tiny_manifest, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(tiny_videos, videos)
    cls = tiny_manifest["class"].iloc[0]
    for v in tiny_manifest[(tiny_manifest.split == "test")
                           & (tiny_manifest["class"] == cls)].video:
        (videos / v).write_text("broken")
    with pytest.raises(DatasetError, match=f"test/{cls}"):
        _run(tiny_manifest, videos, tmp_path / "f", n_frames=4, frame_step=4, height=32,
             width=32, workers=1)
    assert not (tmp_path / "f").exists()  # no half-written output left behind


def test_a_foreign_report_or_meta_is_one_line(tiny_videos, tiny_frames, tmp_path):
    from videoclf.artifacts import ArtifactError, read_classes, read_index

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "report.json").write_text('{"skipped": []}')  # a report of another tool
    with pytest.raises(ArtifactError, match="report.json: no list of classes"):
        read_classes(videos)
    frames = tmp_path / "frames"
    shutil.copytree(tiny_frames, frames)
    meta = json.loads((frames / "meta.json").read_text())
    meta["sampling"]["frame_step"] = "15"
    (frames / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="frame_step must be a whole number"):
        read_index(frames)
