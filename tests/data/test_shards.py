"""The one frames-layout writer (data/shards.py), which extract and the pretext set share:
its files are the bytes a plain writer gives (np.save of the clips read straight, a DataFrame
of the rows), so moving the writer out of extract changed no output."""

import io
from functools import partial

import numpy as np
import pandas as pd

from videoclf.artifacts import INDEX_COLUMNS, read_index
from videoclf.data.shards import IndexRow, plan_shards
from videoclf.video import eval_starts, read_clips, train_starts


def test_extracts_shards_are_np_save_of_the_clips_read_straight(tiny_frames, tiny_videos,
                                                                 tiny_params):
    index, meta = read_index(tiny_frames)
    f = tiny_params.frames
    for shard, rows in index.groupby("shard", sort=True):
        clips = []
        for video, part in rows.sort_values("row").groupby("video", sort=False):
            starts = (partial(train_starts, k=f.train_clips_per_video, sampling=f.sampling,
                              seed=f.seed, name=video.rsplit("/", 1)[-1])
                      if part.split.iloc[0] == "train" else partial(eval_starts, k=1,
                                                                    sampling=f.sampling))
            got = read_clips(tiny_videos / video, starts, f.sampling)
            assert got.starts == list(part.start)
            clips.append(got.array)
        plain = io.BytesIO()
        np.save(plain, np.concatenate(clips))
        assert (tiny_frames / shard).read_bytes() == plain.getvalue(), shard
    rows = [IndexRow(r.video, r._2, r.label, r.group, r.split, r.clip, r.start, r.shard, r.row,
                     r.real_frames) for r in index.itertuples()]
    plain_index = pd.DataFrame([dict(zip(INDEX_COLUMNS, t)) for t in
                                index.itertuples(index=False)], columns=INDEX_COLUMNS)
    pd.testing.assert_frame_equal(pd.DataFrame([r.record() for r in rows]), plain_index)
    assert meta["classes"] == sorted(index["class"].unique())


def test_a_video_never_straddles_two_shards_and_splits_never_share_one():
    slots, rows = plan_shards(["train"] * 5 + ["val"] * 3, {"train": 3, "val": 1, "test": 1},
                              clip_bytes=10, max_bytes=70)
    assert [(s.shard, s.row) for s in slots] == [
        ("train-00000.npy", 0), ("train-00000.npy", 3), ("train-00001.npy", 0),
        ("train-00001.npy", 3), ("train-00002.npy", 0), ("val-00000.npy", 0),
        ("val-00000.npy", 1), ("val-00000.npy", 2)]
    assert rows == {"train-00000.npy": 6, "train-00001.npy": 6, "train-00002.npy": 3,
                    "val-00000.npy": 3}
    big, _ = plan_shards(["test", "test"], {"train": 1, "val": 1, "test": 20}, 10, 70)
    assert [s.shard for s in big] == ["test-00000.npy", "test-00001.npy"]  # alone, too large
