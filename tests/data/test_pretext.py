"""The pretrain stage's pretext set: the pool (train split + unlabeled videos, never a val or
test video, every file used or reported) and clips that really are at their pace or
direction, the same bytes from the same params."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videoclf.data import pretext
from videoclf.data.builtin import generator
from videoclf.data.splits import DatasetError
from videoclf.video import Sampling, read_clips

from helpers import TINY, project_params


def _unlabeled(folder: Path, manifest: pd.DataFrame, videos: Path) -> Path:
    """A user's folder of unlabeled videos: two new recordings (one in a subfolder), copies of
    a val, a test and a train video, a broken file, a text file and a hidden one."""
    (folder / "day2").mkdir(parents=True)
    fresh = [m for m in generator.member_names(42, "scene") if m not in set(manifest.member)]
    generator.write_clip(fresh[0], 42, folder / "rec1.avi", "scene")
    generator.write_clip(fresh[1], 42, folder / "day2" / "rec2.avi", "scene")
    for split in ("val", "test", "train"):
        video = manifest[manifest.split == split].video.iloc[0]
        shutil.copyfile(videos / video, folder / f"copy_of_{split}.avi")
    (folder / "broken.mp4").write_bytes(b"\0" * 4096)
    (folder / "notes.txt").write_text("where I filmed")
    (folder / ".DS_Store").write_bytes(b"\0")
    return folder


@pytest.fixture(scope="module")
def pool(tiny_videos, tiny_manifest, tmp_path_factory):
    root = tmp_path_factory.mktemp("pretext")
    folder = _unlabeled(root / "mine", tiny_manifest, tiny_videos)
    p = project_params({**TINY, "data": {**TINY["data"], "unlabeled_url": str(folder)},
                        "pretrain": {"epochs": 1}})
    videos, report = pretext.gather_pool(tiny_videos, p.data, root / "staging", 2)
    return p, folder, videos, report


def test_the_pool_is_the_train_split_and_the_new_videos_never_val_or_test(pool, tiny_manifest):
    p, folder, videos, report = pool
    names = {v.name for v in videos}
    train = {f"videos/{v}" for v in tiny_manifest[tiny_manifest.split == "train"].video}
    assert train <= names
    assert names - train == {"unlabeled/rec1.avi", "unlabeled/day2/rec2.avi"}
    assert report.train_videos == len(train) and report.unlabeled_videos == 2
    # every file of the folder is in the pool or named, with why
    reasons = {r["member"]: r["reason"] for r in report.left_out + report.skipped}
    every = {f"unlabeled/{f.relative_to(folder).as_posix()}" for f in folder.rglob("*")
             if f.is_file()}
    assert every == (names - train) | set(reasons)
    assert "(val/test): never pretrained on" in reasons["unlabeled/copy_of_val.avi"]
    assert "(val/test): never pretrained on" in reasons["unlabeled/copy_of_test.avi"]
    assert "used once" in reasons["unlabeled/copy_of_train.avi"]
    assert "cannot open" in reasons["unlabeled/broken.mp4"]
    assert reasons["unlabeled/notes.txt"] == "not a video (.txt)"
    assert reasons["unlabeled/.DS_Store"] == "hidden file"


def test_the_pretext_set_is_the_same_bytes_and_holds_no_val_or_test_video(pool, tmp_path,
                                                                          tiny_manifest):
    p, _, videos, _ = pool
    a, b = tmp_path / "a", tmp_path / "b"
    index, short = pretext.build_pretext(videos, p.pretrain, p.frames, a)
    pretext.build_pretext(list(reversed(videos)), p.pretrain, p.frames, b)
    assert short == []
    for f in sorted(a.iterdir()):
        assert f.read_bytes() == (b / f.name).read_bytes(), f.name
    held_out = {f"videos/{v}" for v in tiny_manifest[tiny_manifest.split != "train"].video}
    assert not held_out & set(index.group)
    assert set(index.split) == {"train", "val"}
    assert index[index.split == "val"].group.nunique() == max(1, len(videos) // 10)
    # no pool video in both pretext splits; every video gives every pace
    assert index.groupby("group").split.nunique().max() == 1
    assert (index.drop_duplicates("video").groupby("group").size() == 4).all()


def test_a_pace_clip_is_the_video_at_its_step_and_an_arrow_clip_runs_backwards(pool, tmp_path):
    p, _, videos, _ = pool
    by_name = {v.name: v for v in videos}
    index, _ = pretext.build_pretext(videos, p.pretrain, p.frames, tmp_path / "pace")
    row = index[(index["class"] == "step8") & (index.split == "train")].iloc[0]
    clip = np.load(tmp_path / "pace" / row.shard, mmap_mode="r")[row.row]
    f = p.frames
    at8 = Sampling(f.n_frames, 8, f.height, f.width, f.short_video)
    want = read_clips(by_name[row.group].path, lambda n: [int(row.start)], at8).array[0]
    assert np.array_equal(clip, want)

    arrow = dataclasses.replace(p.pretrain, task="arrow")
    index, _ = pretext.build_pretext(videos, arrow, p.frames, tmp_path / "arrow")
    assert sorted(set(index["class"])) == ["backward", "forward"]
    back = index[(index["class"] == "backward") & (index.split == "train")].iloc[0]
    clip = np.load(tmp_path / "arrow" / back.shard, mmap_mode="r")[back.row]
    step = next(s for s in p.pretrain.frame_steps
                if np.array_equal(clip[::-1], read_clips(
                    by_name[back.group].path, lambda n: [int(back.start)],
                    Sampling(f.n_frames, s, f.height, f.width, f.short_video)).array[0]))
    assert step in p.pretrain.frame_steps


def test_a_pool_too_small_or_an_unreachable_folder_is_one_line(pool, tiny_videos, tmp_path):
    p, _, videos, _ = pool
    with pytest.raises(DatasetError, match="the pretext task needs at least 2"):
        pretext.build_pretext(videos[:1], p.pretrain, p.frames, tmp_path / "one")
    missing = dataclasses.replace(p.data, unlabeled_url=str(tmp_path / "nowhere.zip"))
    with pytest.raises(DatasetError, match="data.unlabeled_url"):
        pretext.gather_pool(tiny_videos, missing, tmp_path / "staging", 1)
    for name, files in (("empty", {}), ("no_videos", {"notes.txt": b"x", "a/b.jpg": b"y"})):
        folder = tmp_path / name
        folder.mkdir()
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        given = dataclasses.replace(p.data, unlabeled_url=str(folder))
        with pytest.raises(DatasetError, match=f"data.unlabeled_url: {folder} holds no video"):
            pretext.gather_pool(tiny_videos, given, tmp_path / "staging", 1)
