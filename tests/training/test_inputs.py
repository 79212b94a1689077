import numpy as np

from videoclf.artifacts import read_index as load_index
from videoclf.data.extract import extract
from videoclf.training.inputs import Stream, make_dataset

from helpers import project_params


def _epoch(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_eval_dataset_is_the_index_in_order(tiny_frames):
    index, meta = load_index(tiny_frames)
    ds = make_dataset(tiny_frames, index, "val", batch_size=4, stream=None)
    x, y = _epoch(ds)
    val = index[index.split == "val"].sort_values(["shard", "row"])
    assert x.dtype == np.uint8 and x.shape == (len(val), 4, 32, 32, 3)
    assert list(y) == list(val.label)
    shard = np.load(tiny_frames / val.shard.iloc[0])
    assert np.array_equal(x, shard[val.row.to_numpy()])
    assert np.array_equal(_epoch(ds)[0], x)


def _epochs(ds, n):
    x, y = _epoch(ds)
    return [(a, b) for a, b in zip(np.split(x, n), np.split(y, n))]


def test_training_reshuffles_flips_and_is_reproducible(tiny_frames):
    index, _ = load_index(tiny_frames)
    ds = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=3, flip=True, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=2))
    e1, e2 = _epochs(ds, 2)
    heads = index[(index.split == "train") & (index["clip"] == 0)]  # one clip per video an epoch
    n = len(heads)
    assert e1[0].shape[0] == n and sorted(e1[1]) == sorted(heads.label)
    assert not np.array_equal(e1[1], e2[1]) or not np.array_equal(e1[0], e2[0])
    # Every training clip comes out as itself or mirrored, never anything else.
    shard = np.load(tiny_frames / "train-00000.npy")
    originals = {c.tobytes() for c in shard} | {c[:, :, ::-1].tobytes() for c in shard}
    assert all(c.tobytes() in originals for c in e1[0])
    flipped = sum(c.tobytes() not in {s.tobytes() for s in shard} for c in e1[0])
    assert 0 < flipped < n
    again = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=3, flip=True, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=2))
    a1, a2 = _epochs(again, 2)
    assert np.array_equal(a1[0], e1[0]) and np.array_equal(a2[0], e2[0])
    # An epoch depends on (seed, epoch) alone: epoch 1 on its own, as a resumed run makes it.
    resumed = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=3, flip=True, color=False, crop_area=1.0,
                                    first_epoch=1, epochs=1))
    r1 = _epoch(resumed)
    assert np.array_equal(r1[0], e2[0]) and np.array_equal(r1[1], e2[1])


def test_random_pick_among_k_clips(tiny_videos, tiny_manifest, tmp_path):
    p = project_params({"frames": {"n_frames": 4, "frame_step": 4, "height": 32, "width": 32,
                             "train_clips_per_video": 3, "workers": 1}}).frames
    out = tmp_path / "f"
    extract(tiny_manifest, tiny_videos, out, p, sorted(tiny_manifest["class"].unique()))
    index, _ = load_index(out)
    ds = make_dataset(out, index, "train", batch_size=64,
                      stream=Stream(seed=0, flip=False, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=4))
    shard = np.load(out / "train-00000.npy")
    row_of = {c.tobytes(): i for i, c in enumerate(shard)}
    seen = set()
    for x, _ in _epochs(ds, 4):
        rows = [row_of[c.tobytes()] for c in x]
        assert len(rows) == len(index[index.split == "train"]) // 3  # one clip per video
        seen.update(r % 3 for r in rows)
    assert seen == {0, 1, 2}


def test_flip_pairs_swap_the_labels_of_mirrored_clips(tiny_frames):
    """With mirror = [1, 0, 2], a mirrored clip of class 0 comes out labelled 1 and the other
    way round; class 2 keeps its label; unmirrored clips keep theirs."""
    from videoclf.training.inputs import mirror_labels

    index, meta = load_index(tiny_frames)
    classes = meta["classes"]
    mirror, ignored = mirror_labels(classes, [[classes[0], classes[1]], ["MoveLeft", "MoveRight"]])
    assert mirror == [1, 0, 2] and ignored == ["[MoveLeft, MoveRight]"]
    ds = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=3, flip=True, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=3, mirror=mirror))
    train = index[index.split == "train"]
    shard = np.load(tiny_frames / "train-00000.npy")
    label_of = {shard[r].tobytes(): int(lab) for r, lab in zip(train.row, train.label)}
    swapped = kept = 0
    for x, y in _epochs(ds, 3):
        for clip, label in zip(x, y):
            if clip.tobytes() in label_of:
                assert label == label_of[clip.tobytes()]
                kept += 1
            else:
                assert label == mirror[label_of[clip[:, :, ::-1].tobytes()]]
                swapped += label != label_of[clip[:, :, ::-1].tobytes()]
    assert kept and swapped  # both happened, and mirrored clips of classes 0 and 1 swapped


def test_a_pair_with_one_class_missing_is_an_error():
    import pytest

    from videoclf.training.inputs import mirror_labels

    with pytest.raises(ValueError, match="PanRight is not a class"):
        mirror_labels(["PanLeft", "Still"], [["PanLeft", "PanRight"]])


def test_color_changes_are_channel_orders_and_negatives_reproducibly(tiny_frames):
    """With color on, every training clip comes out as one of its 12 colour variants (6
    channel orders, each as is or negative), labels unchanged; several variants occur; the
    same seed gives the same clips, a resumed epoch too."""
    from itertools import permutations

    index, _ = load_index(tiny_frames)
    train = index[index.split == "train"]
    shard = np.load(tiny_frames / "train-00000.npy")
    variant_of = {}
    for row, label in zip(train.row, train.label):
        for v, order in enumerate(permutations(range(3))):
            clip = shard[row][..., list(order)]
            variant_of[clip.tobytes()] = (int(label), v)
            variant_of[(255 - clip).tobytes()] = (int(label), v + 6)
    ds = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=5, flip=False, color=True, crop_area=1.0,
                                    first_epoch=0, epochs=3))
    seen = set()
    for x, y in _epochs(ds, 3):
        for clip, label in zip(x, y):
            assert clip.tobytes() in variant_of
            want, v = variant_of[clip.tobytes()]
            assert label == want
            seen.add(v)
    assert len(seen) >= 4 and any(v >= 6 for v in seen) and any(v < 6 for v in seen)
    again = _epochs(make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=5, flip=False, color=True, crop_area=1.0,
                                    first_epoch=0, epochs=3)), 3)
    resumed = _epoch(make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=5, flip=False, color=True, crop_area=1.0,
                                    first_epoch=2, epochs=1)))
    first = _epochs(ds, 3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
    assert np.array_equal(resumed[0], first[2][0])


def _uneven_index(tiny_frames):
    """The tiny train split made uneven: class 0 keeps every video, the others one each."""
    index, _ = load_index(tiny_frames)
    train = index[index.split == "train"]
    first = train[train["clip"] == 0].groupby("label").video.first()
    keep = (index.split != "train") | (index.label == 0) | index.video.isin(first)
    return index[keep]


def test_balance_sample_repeats_smaller_classes_and_stays_reproducible(tiny_frames):
    from videoclf.training.inputs import class_balance, steps

    index = _uneven_index(tiny_frames)
    heads = index[(index.split == "train") & (index["clip"] == 0)]
    per_class = heads.groupby("label").size()
    repeat, weights = class_balance(index, "sample")
    assert weights is None and repeat == [1] + [int(per_class[0])] * (len(per_class) - 1)
    assert steps(index, "train", 4, repeat) == -(-int(per_class[0]) * len(per_class) // 4)
    ds = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=1, flip=False, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=2, repeat=repeat))
    (x1, y1), (x2, y2) = _epochs(ds, 2)
    assert np.bincount(y1).tolist() == [int(per_class[0])] * len(per_class)  # balanced
    again = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=1, flip=False, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=2, repeat=repeat))
    assert np.array_equal(_epoch(again)[0], np.concatenate([x1, x2]))
    resumed = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=1, flip=False, color=False, crop_area=1.0,
                                    first_epoch=1, epochs=1, repeat=repeat))
    assert np.array_equal(_epoch(resumed)[0], x2)  # epoch 1 is the same when resumed at it
    milder, _ = class_balance(index, "sqrt")  # the square-root repeat factor
    assert milder == [1] + [max(1, round(int(per_class[0]) ** 0.5))] * (len(per_class) - 1)


def test_balance_weight_gives_inverse_frequency_sample_weights(tiny_frames):
    from videoclf.training.inputs import class_balance

    index = _uneven_index(tiny_frames)
    heads = index[(index.split == "train") & (index["clip"] == 0)]
    repeat, weights = class_balance(index, "weight")
    assert repeat is None
    counts = np.bincount(heads.label)
    assert np.allclose(np.asarray(weights) * counts, len(heads) / len(counts))  # 1/n_c
    assert np.isclose(np.mean(np.asarray(weights)[heads.label]), 1.0)  # mean 1 per video
    ds = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=1, flip=False, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=1, weights=weights))
    for _x, y, w in ds:
        assert np.allclose(w.numpy(), np.asarray(weights)[y.numpy()])


def test_crops_zoom_into_one_box_for_the_whole_clip_reproducibly(tiny_frames):
    """``_crop``: the frame size and dtype kept; one box for every frame of a clip (frames
    that differ by a constant still differ by it, so no motion is made up); a box inside
    the frame of at least ``min_area`` of it (a horizontal ramp comes out as a steeper part
    of itself); the same seed the same crop, other seeds other boxes. Through make_dataset:
    labels kept, and a resumed epoch crops as the unbroken run did."""
    from videoclf._tf import tf
    from videoclf.training.inputs import _crop

    ramp = np.broadcast_to((np.arange(64) * 2)[None, None, :, None], (1, 48, 64, 3))
    clip = (ramp + 20 * np.arange(4)[:, None, None, None]).astype(np.uint8)
    widths = set()
    for j in range(12):
        out = _crop(tf.constant(clip), tf.constant([9, j], tf.int64), 0.4).numpy()
        assert out.shape == clip.shape and out.dtype == np.uint8
        assert all(np.array_equal(out[t].astype(int) - out[0], np.full(out[0].shape, 20 * t))
                   for t in range(4))
        row = out[0, 0, :, 0].astype(int)
        assert row.min() >= 0 and row.max() <= 126 and np.all(np.diff(row) >= 0)
        span = (row.max() - row.min()) / 126  # the share of the frame's width kept
        assert span > (0.4 * 0.75) ** 0.5 - 0.05  # area 0.4 at aspect ratio 3/4
        widths.add(round(span, 2))
        again = _crop(tf.constant(clip), tf.constant([9, j], tf.int64), 0.4).numpy()
        assert np.array_equal(out, again)
    assert len(widths) > 3 and min(widths) < 0.95

    index, _ = load_index(tiny_frames)
    ds = make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=5, flip=False, color=False, crop_area=0.5,
                                    first_epoch=0, epochs=2))
    (x1, y1), (x2, _) = _epochs(ds, 2)
    plain, plain_y = _epoch(make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=5, flip=False, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=1)))
    assert np.array_equal(y1, plain_y) and x1.shape == plain.shape
    assert sum(not np.array_equal(a, b) for a, b in zip(x1, plain)) > len(x1) // 2
    resumed = _epoch(make_dataset(tiny_frames, index, "train", batch_size=4,
                      stream=Stream(seed=5, flip=False, color=False, crop_area=0.5,
                                    first_epoch=1, epochs=1)))
    assert np.array_equal(resumed[0], x2)
