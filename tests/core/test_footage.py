"""Real footage that nobody on the project made (tests/footage/README.md): every container,
lying headers, a damaged stream, and clips that equal a straight decode frame for frame."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from videoclf.data.download import download
from videoclf.data.extract import extract
from videoclf.seeking import seek_decode
from videoclf.video import (
    Sampling,
    VideoError,
    eval_starts,
    letterbox,
    measure,
    open_video,
    read_clips,
    train_starts,
)

from helpers import DAMAGED, FOOTAGE, GOOD, SHORT_HEADER, class_folders, project_params
from rangeserver import RangeServer


def straight_decode(path: Path, h: int, w: int) -> list[np.ndarray]:
    """The reference: OpenCV's plain capture, read() frame after frame, no seek."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while (got := cap.read())[0]:
        out.append(letterbox(got[1], h, w))
    cap.release()
    return out


def _expected(ref: list[np.ndarray], start: int, s: Sampling) -> np.ndarray:
    return np.stack([ref[(start + j * s.frame_step) % len(ref)] for j in range(s.n_frames)])


@pytest.fixture(scope="module")
def references() -> dict[str, list[np.ndarray]]:
    return {name: straight_decode(FOOTAGE / name, 32, 48) for name in GOOD + [SHORT_HEADER]}


def test_the_set_has_every_container_and_the_lying_headers():
    suffixes = {Path(n).suffix.lower() for n in GOOD}
    assert {".avi", ".mp4", ".m4v", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".wmv", ".asf",
            ".flv", ".3gp", ".ogv"} <= suffixes
    declared = {n: int(cv2.VideoCapture(str(FOOTAGE / n)).get(cv2.CAP_PROP_FRAME_COUNT))
                for n in ("mpeg1_elementary.mpg", "flv_no_duration.flv", SHORT_HEADER)}
    assert declared["mpeg1_elementary.mpg"] < 10 and declared["flv_no_duration.flv"] == 119
    assert declared[SHORT_HEADER] == 444


@pytest.mark.parametrize("name", GOOD + [SHORT_HEADER])
def test_measured_length_is_the_real_one(name, references):
    probe = measure(FOOTAGE / name)
    assert probe.decoded == len(references[name]) > 0


@pytest.mark.parametrize("name", GOOD + [SHORT_HEADER])
def test_clips_equal_a_straight_decode(name, references):
    ref = references[name]
    s = Sampling(5, 7, 32, 48)
    # The header is not trusted: no length given, as predict does.
    train = read_clips(FOOTAGE / name, partial(train_starts, k=3, sampling=s, seed=1,
                                               name=name), s)
    evals = read_clips(FOOTAGE / name, partial(eval_starts, k=2, sampling=s), s)
    assert train.length == evals.length == len(ref)
    assert train.starts == train_starts(len(ref), 3, s, 1, name)
    assert evals.starts == eval_starts(len(ref), 2, s)
    for clips in (train, evals):
        for clip, start in zip(clips.array, clips.starts):
            assert np.array_equal(clip, _expected(ref, start, s)), (name, start)
    # A clip that runs past the end loops over real frames, as a straight decode would.
    long = Sampling(40, 5, 32, 48)
    looped = read_clips(FOOTAGE / name, lambda n: [0], long)
    assert np.array_equal(looped.array[0], _expected(ref, 0, long))
    assert looped.real_frames == [min(40, -(-len(ref) // 5))]


def test_a_seek_is_taken_only_where_the_timestamps_prove_the_frame(references):
    """Every container: a verified seek gives the straight decode's frames, or declines (the
    reader then decodes straight); it declines where OpenCV's seek lands elsewhere (MJPEG and
    MPEG elementary streams on frame 0, Cinepak far off) and for a wrong length."""
    took = set()
    for name, ref in references.items():
        wanted = {n for n in (3, 10, 40, 41, 80, len(ref) - 1) if n < len(ref)}
        for length in (len(ref), len(ref) + 1, len(ref) - 1):
            cap = open_video(FOOTAGE / name)
            got = seek_decode(cap, wanted, length, lambda f: letterbox(f, 32, 48))
            cap.release()
            if got is not None:
                assert length == len(ref), name
                assert all(np.array_equal(got[n], ref[n]) for n in wanted), name
                took.add(name)
    assert {"h264_carphone.mp4", "h264.mkv", "vp9.webm", "theora.ogv", "mpeg4.m4v"} <= took
    assert not took & {"mpeg1_elementary.mpg", SHORT_HEADER}


def test_a_damaged_stream_is_reported_not_looped():
    path = FOOTAGE / DAMAGED
    with pytest.raises(VideoError) as e:
        measure(path, min_decodable=0.5)
    assert (e.value.decoded, e.value.declared) == (11, 120)
    assert e.value.report() == {"reason": str(e.value), "decoded_frames": 11,
                                "declared_frames": 120}
    with pytest.raises(VideoError, match="damaged stream: decodes 11 of the 120"):
        read_clips(path, lambda n: [0], Sampling(4, 2, 32, 32), min_decodable=0.5)
    # Below the threshold it is used as what it is: 11 frames.
    assert read_clips(path, lambda n: [0], Sampling(4, 2, 32, 32)).length == 11


def _data(url: str) -> dict:
    return project_params({"data": {"source": "url", "url": url, "num_classes": 2,
                              "per_class": {"train": 3, "val": 2, "test": 2}}}).data


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    src = class_folders(root / "src")
    manifest = download(_data(str(src)), root / "videos", root / "staging", workers=2)
    return src, root, manifest


def test_class_folders_end_to_end_clips_match_straight_decode(folder_dataset):
    src, root, manifest = folder_dataset
    report = json.loads((root / "videos" / "report.json").read_text())
    assert report["layout"] == "folders" and report["classes"] == ["Bike", "Phone"]
    assert "leakage across splits cannot be ruled out" in report["leakage_warning"]
    damaged = [s for s in report["skipped"] if s["member"].endswith(DAMAGED)]
    assert damaged and damaged[0]["decoded_frames"] == 11 and damaged[0]["declared_frames"] == 120
    assert not manifest.member.str.endswith(DAMAGED).any()
    # Files keep their real extension, and their bytes.
    for row in manifest.itertuples():
        assert Path(row.video).suffix == Path(row.member).suffix
        assert (root / "videos" / row.video).read_bytes() == (src / row.member).read_bytes()
    assert (src / "Phone" / "notes.txt").exists()  # nothing of the user's is touched

    frames = project_params({"frames": {"n_frames": 4, "frame_step": 6, "height": 32, "width": 48,
                                  "train_clips_per_video": 2, "workers": 2,
                                  "shard_mb": 1},
                             "model": {"motion_scale": 1, "appearance_stem_stride": 2}
                             }).frames  # 48 = 3 x 16, not 32
    index = extract(manifest, root / "videos", root / "frames", frames, report["classes"])
    s = frames.sampling
    assert len(index) == 2 * (manifest.split == "train").sum() + (manifest.split != "train").sum()
    lengths = dict(zip(manifest.video, manifest.frames))
    for row in index.itertuples():
        ref = straight_decode(root / "videos" / row.video, 32, 48)
        assert len(ref) == lengths[row.video]
        clip = np.load(root / "frames" / row.shard, mmap_mode="r")[row.row]
        assert np.array_equal(clip, _expected(ref, row.start, s)), (row.video, row.start)


def test_a_zip_of_class_folders_over_http_gives_the_same_videos(folder_dataset, tmp_path):
    src, root, manifest = folder_dataset
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(src.rglob("*")):
            z.write(f, Path("my data") / f.relative_to(src))
    with RangeServer(archive) as server:
        got = download(_data(server.url), tmp_path / "videos", tmp_path / "staging")
    assert got.drop(columns="member").equals(manifest.drop(columns="member"))
    assert (got.member == "my data/" + manifest.member).all()


def test_groups_csv_and_file_url(folder_dataset, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(folder_dataset[0], src)
    videos = [p for p in sorted(src.rglob("*")) if p.is_file() and p.suffix != ".txt"]
    rows = ["video,group"] + [f"{p.relative_to(src).as_posix()},take{i % 4}"
                              for i, p in enumerate(videos)]
    (src / "groups.csv").write_text("\n".join(rows) + "\n")
    manifest = download(_data(src.as_uri()), tmp_path / "videos", tmp_path / "staging")
    report = json.loads((tmp_path / "videos" / "report.json").read_text())
    assert report["leakage_warning"] is None and report["grouped_by"].get("groups.csv")
    assert (manifest.groupby("group").split.nunique() == 1).all()


def test_predict_reads_every_container_and_reports_the_damaged_one(tiny_model, tmp_path):
    clips = tmp_path / "clips"
    shutil.copytree(FOOTAGE, clips, ignore=shutil.ignore_patterns("*.sh", "*.md"))
    r = subprocess.run([sys.executable, "-m", "videoclf", "predict", str(clips), "--model",
                        str(tiny_model), "--json", "--clips", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    done = {Path(o["video"]).name for o in lines if "top_k" in o}
    assert done == set(GOOD)
    # every other file is in the JSON too: unreadable (with why) or left out (not a video)
    assert {Path(o["video"]).name for o in lines if "error" in o} == {DAMAGED, SHORT_HEADER}
    assert {Path(o["video"]).name: o["left_out"] for o in lines if "left_out" in o} == {
        "make_more_footage.py": "not a video file (.py)"}
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and any(DAMAGED in e and "damaged" in e for e in errors)
    assert any(SHORT_HEADER in e for e in errors) and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "videoclf", "predict", str(tmp_path / "empty"),
                        "--model", str(tiny_model)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and r.stderr.strip().startswith("error: ")
    assert "no video file" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_every_file_of_a_folder_is_a_video_or_named_with_why(folder_dataset, tmp_path):
    """train: all, val/test by fraction: every video is used or reported, the less common
    containers (.m1v .m2v .3g2 .mxf .ivf .mjpeg .nut .y4m) included, and every other file is
    named in report.json with why."""
    src = folder_dataset[0]
    (src / "Bike" / ".DS_Store").write_bytes(b"\0")
    data = project_params({"data": {"source": "url", "url": str(src), "num_classes": 0,
                                    "per_class": {"train": "all", "val": 0.2, "test": 0.2}}})
    manifest = download(data.data, tmp_path / "videos", tmp_path / "staging", workers=2)
    report = json.loads((tmp_path / "videos" / "report.json").read_text())
    files = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    named = {r["member"]: r["reason"] for r in report["skipped"] + report["left_out"]}
    assert files == set(manifest.member) | set(named)
    assert not set(manifest.member) & set(named)
    assert named["Phone/notes.txt"] == "not a video (.txt)"
    assert named["Bike/.DS_Store"].startswith("hidden file")
    used = {Path(m).suffix for m in manifest.member}
    assert {".m1v", ".m2v", ".3g2", ".mxf", ".ivf", ".mjpeg", ".nut", ".y4m"} <= used
    assert all(report["counts"][s][c] >= 1 for s in ("train", "val", "test")
               for c in ("Bike", "Phone"))
