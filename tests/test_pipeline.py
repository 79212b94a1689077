import numpy as np

from videoclf.pipeline import load_index, make_dataset
from videoclf.params import validate
from videoclf.shards import extract


def _epoch(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_eval_dataset_is_the_index_in_order(tiny_frames):
    index, meta = load_index(tiny_frames)
    ds = make_dataset(tiny_frames, index, "val", batch_size=4, training=False)
    x, y = _epoch(ds)
    val = index[index.split == "val"].sort_values(["shard", "row"])
    assert x.dtype == np.uint8 and x.shape == (len(val), 4, 32, 32, 3)
    assert list(y) == list(val.label)
    shard = np.load(tiny_frames / val.shard.iloc[0])
    assert np.array_equal(x, shard[val.row.to_numpy()])
    assert np.array_equal(_epoch(ds)[0], x)


def test_training_reshuffles_flips_and_is_reproducible(tiny_frames):
    index, _ = load_index(tiny_frames)
    ds = make_dataset(tiny_frames, index, "train", batch_size=4, training=True, seed=3, flip=True)
    e1, e2 = _epoch(ds), _epoch(ds)
    n = int((index.split == "train").sum())
    assert e1[0].shape[0] == n and sorted(e1[1]) == sorted(index[index.split == "train"].label)
    assert not np.array_equal(e1[1], e2[1]) or not np.array_equal(e1[0], e2[0])
    # Every training clip comes out as itself or mirrored, never anything else.
    shard = np.load(tiny_frames / "train-00000.npy")
    originals = {c.tobytes() for c in shard} | {c[:, :, ::-1].tobytes() for c in shard}
    assert all(c.tobytes() in originals for c in e1[0])
    flipped = sum(c.tobytes() not in {s.tobytes() for s in shard} for c in e1[0])
    assert 0 < flipped < n
    again = make_dataset(tiny_frames, index, "train", batch_size=4, training=True, seed=3,
                         flip=True)
    a1, a2 = _epoch(again), _epoch(again)
    assert np.array_equal(a1[0], e1[0]) and np.array_equal(a2[0], e2[0])


def test_random_pick_among_k_clips(tiny_videos, tiny_manifest, tmp_path):
    p = validate({"frames": {"n_frames": 4, "frame_step": 4, "height": 32, "width": 32,
                             "train_clips_per_video": 3, "workers": 1}})["frames"]
    out = tmp_path / "f"
    extract(tiny_manifest, tiny_videos, out, p, sorted(tiny_manifest["class"].unique()))
    index, _ = load_index(out)
    ds = make_dataset(out, index, "train", batch_size=64, training=True, seed=0, flip=False)
    shard = np.load(out / "train-00000.npy")
    row_of = {c.tobytes(): i for i, c in enumerate(shard)}
    seen = set()
    for _ in range(4):
        x, _ = _epoch(ds)
        rows = [row_of[c.tobytes()] for c in x]
        assert len(rows) == len(index[index.split == "train"]) // 3  # one clip per video
        seen.update(r % 3 for r in rows)
    assert seen == {0, 1, 2}
