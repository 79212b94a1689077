"""predict --timeline: windows of one clip's span, decoded once, merged into segments."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from videoclf.data.builtin import generator
from videoclf.inference.timeline.windows import WindowStream, scan, segments
from videoclf.video import Sampling, read_clips

from helpers import ROOT, run_python, venv_environ

LABELS = ["Flicker", "PanUp", "Still"]
SAMPLING = Sampling(8, 15, 64, 64, "loop")  # the defaults: a window spans 106 frames


def _write(frames, path: Path, size=None) -> Path:
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"XVID"), 25, size or (w, h))
    for f in frames:
        out.write(cv2.resize(f, size) if size else f)
    out.release()
    return path


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """Built-in clips of known classes one after another: Still, Flicker, PanUp, Still.
    Returns the file and the frame where each part starts."""
    parts = [generator.render_clip(f"UCF101/v_{c}_g0{g}_c01.avi", 42)
             for c, g in (("Still", 1), ("Flicker", 1), ("PanUp", 2), ("Still", 2))]
    starts = np.cumsum([0] + [len(p) for p in parts])
    path = _write(np.concatenate(parts), tmp_path_factory.mktemp("timeline") / "long.avi")
    return path, starts


def _rules(clips: np.ndarray) -> np.ndarray:
    """A classifier of the three classes from two frame statistics, each the median over the
    clip's frame pairs, as a network pools over time (a stand-in for a trained network, so
    the test checks the timeline, not how well a tiny model learned): nothing changes ->
    Still; the brightness jumps -> Flicker; the content moves -> PanUp."""
    x = clips.astype(np.float32)
    change = np.median(np.abs(np.diff(x, axis=1)).mean(axis=(2, 3, 4)), axis=1)
    jumps = np.median(np.abs(np.diff(x.mean(axis=(2, 3, 4)), axis=1)), axis=1)
    best = np.where(change < 3, 2, np.where(jumps > 8, 0, 1))
    return np.eye(3, dtype=np.float32)[best] * 8.0


def test_segments_match_the_known_boundaries_within_one_stride(long_video):
    path, starts = long_video
    stream = WindowStream(path, SAMPLING, stride=53)
    windows = list(scan(_rules, stream))
    assert stream.frames == starts[-1] and stream.stopped is None
    segs = segments(windows, LABELS, 0.5, stream.frames / stream.fps)
    assert [s.label for s in segs] == ["Still", "Flicker", "PanUp", "Still"]
    stride_s = 53 / stream.fps
    for s, begin, end in zip(segs, starts[:-1], starts[1:]):
        assert abs(s.start_s - begin / 25) <= stride_s, (s, begin)
        assert abs(s.end_s - end / 25) <= stride_s, (s, end)
    assert segs[0].start_s == 0 and segs[-1].end_s == pytest.approx(starts[-1] / 25)


def test_windows_are_the_clips_training_samples_at_those_starts(long_video):
    """One sequential decode gives, window for window, what read_clips (the training and
    evaluation sampler) gives at the same start frames."""
    path, _ = long_video
    got = list(WindowStream(path, SAMPLING, stride=40))
    starts = [s for s, _ in got]
    assert starts == list(range(0, starts[-1] + 1, 40)) and len(starts) > 10
    want = read_clips(path, lambda n: starts, SAMPLING).array
    assert np.array_equal(np.stack([c for _, c in got]), want)


def test_memory_stays_flat_in_the_video_length(tmp_path):
    """Decoding 4 times the frames keeps the same peak of frames in memory."""
    clip = generator.render_clip("UCF101/v_PanUp_g01_c01.avi", 42)
    short = _write(clip, tmp_path / "short.avi", (160, 120))
    long = _write(np.concatenate([clip] * 4), tmp_path / "long.avi", (160, 120))
    peaks = []
    for path in (short, long):
        tracemalloc.start()
        n = sum(1 for _ in WindowStream(path, SAMPLING, stride=53))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert n >= 1
    assert peaks[1] < 1.3 * peaks[0] + 200_000, peaks


def test_a_damaged_tail_gives_the_timeline_up_to_it(long_video, tmp_path):
    path, starts = long_video
    cut = tmp_path / "cut.avi"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    stream = WindowStream(cut, SAMPLING, stride=53)
    windows = list(scan(_rules, stream))
    assert 0.4 * starts[-1] < stream.frames < 0.8 * starts[-1]
    assert stream.stopped and "decoding stopped at frame" in stream.stopped
    assert windows and windows[-1].end_s <= stream.frames / stream.fps + 53 / 25


@pytest.mark.slow
def test_predict_timeline_cli_writes_json_lines_tables_and_png(long_video, tiny_model,
                                                               tmp_path):
    path, _ = long_video
    r = run_python(["-m", "videoclf", "predict", path, "--timeline", "--json", "--model",
                    tiny_model, "--stride", "2s", "--threshold", "0", "--out", tmp_path],
                   ROOT, venv_environ())
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    windows = [x for x in rows if x["kind"] == "window"]
    segs = [x for x in rows if x["kind"] == "segment"]
    assert windows and segs
    # (the first window's span starts at 0; from the second on, they are a stride apart)
    assert windows[2]["start_s"] - windows[1]["start_s"] == pytest.approx(2.0, abs=0.05)
    for s in segs:
        assert {"video", "start_s", "end_s", "label", "score"} <= s.keys()
        assert s["video"] == str(path) and 0 <= s["start_s"] < s["end_s"]
    assert segs[0]["start_s"] == 0  # threshold 0: the segments cover the video
    for a, b in zip(segs, segs[1:]):
        assert a["end_s"] == b["start_s"] and a["label"] != b["label"]
    out = tmp_path / "long"
    png = cv2.imread(str(out / "timeline.png"))
    assert png is not None and png.shape[1] > 600
    assert (out / "windows.csv").read_text().startswith("video,start_s,end_s,start_frame,label_1")
    assert len((out / "segments.jsonl").read_text().splitlines()) == len(segs)


@pytest.mark.parametrize("short_video", ["loop", "pad"])
def test_a_video_shorter_than_one_clip_gives_the_clip_predict_takes(tmp_path, short_video):
    """1, 2, 40 and 105 frames (a clip spans 106): one window, the very clip read_clips (what
    predict scores) gives for the video, looped or padded; no KeyError."""
    sampling = Sampling(8, 15, 64, 64, short_video)
    frames = generator.render_clip("UCF101/v_PanUp_g01_c01.avi", 42)
    for n in (1, 2, 40, 105):
        path = _write(frames[:n], tmp_path / f"short{n}.avi")
        stream = WindowStream(path, sampling, stride=53)
        got = list(stream)
        assert [start for start, _ in got] == [0], n
        want = read_clips(path, lambda length: [0], sampling).array[0]
        assert np.array_equal(got[0][1], want), (n, short_video)


def test_timeline_cli_names_clamps_and_checks_out_first(long_video, tiny_model, tmp_path):
    """Same-stem videos in two folders keep a timeline each (their paths in the CSVs); spans
    end with the video (a stride past the end, a 1-frame video); an --out that is a file is
    one line before any decoding."""
    import argparse

    from videoclf.errors import VideoclfError
    from videoclf.inference.timeline.cli import output_names, run_timeline

    path, _ = long_video
    folder = tmp_path / "in"
    for sub in ("a", "b"):
        (folder / sub).mkdir(parents=True)
    (folder / "a" / "clip.avi").write_bytes(path.read_bytes())
    one = generator.render_clip("UCF101/v_Still_g01_c01.avi", 42)[:1]
    _write(one, folder / "b" / "clip.avi")
    videos = sorted(folder.rglob("*.avi"))
    assert output_names(videos) == [Path("a/clip.avi"), Path("b/clip.avi")]
    assert output_names([path]) == [Path("long")]
    args = argparse.Namespace(model=tiny_model, stride=(100000, "frames"), threshold=0.0,
                              top_k=2, json=False, out=tmp_path / "out")
    assert run_timeline(args, videos) == 0
    for sub, video in zip(("a", "b"), videos):
        table = (tmp_path / "out" / sub / "clip.avi" / "windows.csv").read_text()
        assert str(video) in table
        cap = cv2.VideoCapture(str(video))
        duration = cap.get(cv2.CAP_PROP_FRAME_COUNT) / cap.get(cv2.CAP_PROP_FPS)
        segs = [json.loads(line) for line in (tmp_path / "out" / sub / "clip.avi" /
                                              "segments.jsonl").read_text().splitlines()]
        assert segs and max(s["end_s"] for s in segs) <= duration + 1e-6, (sub, segs)
        assert all(0 <= s["start_s"] <= s["end_s"] for s in segs)
    (tmp_path / "file").write_text("x")
    args.out = tmp_path / "file"
    with pytest.raises(VideoclfError, match="a file is there, not a folder"):
        run_timeline(args, videos)
