import numpy as np
import pytest

from videoclf.data.builtin import generator
from videoclf.video import (
    Sampling,
    VideoError,
    clip_indices,
    eval_starts,
    letterbox,
    probe,
    read_clips,
    train_starts,
)

S = Sampling(n_frames=10, frame_step=15, height=224, width=224, short_video="loop")


def test_need_and_start_range():
    assert S.need == 136
    for length in (136, 137, 200, 300):
        starts = train_starts(length, 3, S, seed=0, name=f"v{length}.avi")
        assert all(0 <= s <= length - S.need for s in starts)
        assert all(i is not None and i < length for s in starts for i in clip_indices(length, s, S))


def test_start_is_a_hash_of_seed_and_name():
    a = train_starts(250, 1, S, seed=0, name="a/v_X_g01_c01.avi")
    assert a == train_starts(250, 1, S, seed=0, name="b/v_X_g01_c01.avi")  # folder-independent
    starts = {train_starts(250, 1, S, seed=s, name="v.avi")[0] for s in range(20)}
    assert len(starts) > 5  # the seed matters


def test_k_train_clips_are_stratified():
    starts = train_starts(1000, 4, S, seed=3, name="v.avi")
    assert starts == sorted(starts) and len(set(starts)) == 4


def test_eval_starts_are_centred_and_even():
    assert eval_starts(237, 1, S) == [51]  # (101 + 1) / 2
    assert eval_starts(136, 1, S) == [0]
    three = eval_starts(436, 3, S)
    assert three == [50, 150, 250]


def test_short_video_loop_and_pad():
    short = Sampling(4, 10, 32, 32, "loop")
    assert clip_indices(25, 0, short) == [0, 10, 20, 5]
    pad = Sampling(4, 10, 32, 32, "pad")
    assert clip_indices(25, 0, pad) == [0, 10, 20, None]


@pytest.mark.parametrize("h, w, oh, ow", [(240, 320, 224, 224), (240, 320, 64, 64),
                                          (240, 320, 112, 160), (480, 270, 64, 64)])
def test_letterbox_matches_tf_resize_with_pad(h, w, oh, ow):
    from videoclf._tf import tf

    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([20 + 200 * yy / h, 20 + 200 * xx / w, 120 + 0 * xx], -1).astype(np.uint8)
    ours = letterbox(img, oh, ow)
    ref = tf.image.resize_with_pad(tf.image.convert_image_dtype(img, tf.float32), oh, ow).numpy()
    ref = ref[..., ::-1]  # the tutorial converts BGR to RGB after resizing
    assert ours.shape == ref.shape
    # Same geometry: the black bars are the same rows and columns...
    assert np.array_equal(ours.any(axis=(1, 2)), ref.any(axis=(1, 2)))
    assert np.array_equal(ours.any(axis=(0, 2)), ref.any(axis=(0, 2)))
    # ...and the picture inside them is the same picture.
    assert np.abs(ours / 255.0 - ref).mean() < 0.02


def test_bgr_to_rgb():
    img = np.zeros((240, 320, 3), np.uint8)
    img[..., 0] = 255  # blue in OpenCV's BGR
    out = letterbox(img, 64, 64)
    assert out[32, 32].tolist() == [0, 0, 255]


def test_read_clips_real_video(tmp_path):
    path = tmp_path / "v_Still_g01_c01.avi"
    generator.write_clip("UCF101/v_Still_g01_c01.avi", 42, path)
    s = Sampling(8, 5, 64, 64)
    clips, real, starts, length = read_clips(path, lambda n: eval_starts(n, 2, s), s)
    assert clips.shape == (2, 8, 64, 64, 3) and clips.dtype == np.uint8
    assert real == [8, 8] and length >= 150 and starts == eval_starts(length, 2, s)
    # A clip longer than the video loops instead of going black.
    long = Sampling(100, 5, 64, 64, "loop")
    clips, real, _, _ = read_clips(path, lambda n: [0], long)
    assert real[0] < 100 and clips[0, -1].any()
    pad = Sampling(100, 5, 64, 64, "pad")
    clips, _, _, _ = read_clips(path, lambda n: [0], pad)
    assert not clips[0, -1].any()


def test_broken_videos(tmp_path):
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    text = tmp_path / "text.avi"
    text.write_text("not a video at all\n" * 100)
    assert probe(empty) == "empty file"
    assert probe(tmp_path / "missing.avi") == "no such file"
    assert probe(text) is not None
    with pytest.raises(VideoError):
        read_clips(text, lambda n: [0], Sampling(4, 2, 32, 32))


def test_seeking_gives_the_frames_a_full_decode_gives(tmp_path):
    import cv2

    path = tmp_path / "v_Roll_g02_c03.avi"
    generator.write_clip("UCF101/v_Roll_g02_c03.avi", 42, path)
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(letterbox(got[1], 32, 32))
    s = Sampling(6, 7, 32, 32)
    for start in (0, 1, 13, 40, len(frames) - s.need):
        clips = read_clips(path, lambda n, st=start: [st], s).array
        assert np.array_equal(clips[0], np.stack([frames[start + 7 * j] for j in range(6)]))


@pytest.mark.parametrize("fourcc", ["XVID", "MJPG"])
def test_a_long_video_seeks_where_verified_and_gives_the_straight_frames(tmp_path, fourcc):
    """Past SEEK_BEYOND frames, clips come from verified seeks: the straight decode's bytes.
    A length one frame off is refused by the end check, and the straight decode corrects it
    (the footage tests cover the codecs whose seek lands elsewhere)."""
    import cv2

    from videoclf.seeking import SEEK_BEYOND, seek_decode

    path = tmp_path / "long.avi"
    n = SEEK_BEYOND + 150
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 25, (64, 48))
    base = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    for i in range(n):
        writer.write(np.roll(base, i, axis=1))
    writer.release()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(letterbox(got[1], 32, 32))
    assert len(frames) == n
    s = Sampling(6, 7, 32, 32)
    starts = lambda m: [5, m // 2, m - s.need]  # noqa: E731 - runs far apart: one seek each
    for length in (n, n + 1):
        clips = read_clips(path, starts, s, length=length)
        assert clips.length == n and clips.starts == starts(n)
        for clip, start in zip(clips.array, clips.starts):
            assert np.array_equal(clip, np.stack([frames[start + 7 * j] for j in range(6)]))
    for length, verified in ((n, True), (n + 1, False), (n - 1, False)):
        cap = cv2.VideoCapture(str(path))
        assert (seek_decode(cap, {n // 2}, length, lambda f: f) is not None) is verified


def test_a_video_far_wider_than_tall_is_letterboxed_to_a_strip(tmp_path):
    """16x2000: TensorFlow's geometry rounds its height to 0 pixels, which no resize makes
    (extract once failed on it without a reason); it keeps a one-pixel strip."""
    import cv2

    path = tmp_path / "strip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (2000, 16))
    for i in range(12):
        w.write(np.full((16, 2000, 3), 20 * i, np.uint8))
    w.release()
    s = Sampling(4, 2, 64, 64)
    clips = read_clips(path, lambda n: eval_starts(n, 1, s), s)
    assert clips.array.shape == (1, 4, 64, 64, 3)
    rows = np.flatnonzero(clips.array[0].any(axis=(0, 2, 3)))
    assert list(rows) == [31]  # one row of picture, centred; the rest is padding
