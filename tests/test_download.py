"""The download stage against real zips: local, file://, and HTTP range requests on 127.0.0.1."""

import json
import zipfile
from pathlib import Path

import cv2
import pandas as pd
import pytest

from videoclf import builtin, sources
from videoclf.dataset import DatasetError, parse_members
from videoclf.download import download
from videoclf.params import validate
from rangeserver import RangeServer

CLASSES = builtin.CLASSES  # 10 classes
PER_CLASS = {"train": 4, "val": 2, "test": 2}  # = every clip of a class: 4 groups x 2 clips
FIRST = CLASSES[0]  # the class that carries the bad members; always selected
BROKEN = {f"UCF101/v_{FIRST}_g01_c02.avi": "empty", f"UCF101/v_{FIRST}_g02_c02.avi": "text"}
SLIP = f"../v_{FIRST}_g09_c01.avi"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(sources, "BACKOFF_SECONDS", 0.01)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A 10-class UCF101-layout zip of short real XVID clips, with bad members mixed in."""
    root = tmp_path_factory.mktemp("archive")
    # One real clip's bytes behind every name: classes weigh the same, so the share of bytes
    # fetched measures the reader, not how well each class happens to compress.
    frames = builtin.render_clip("UCF101/v_Still_g01_c01.avi", 1)[:30]
    p = root / "clip.avi"
    w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"XVID"), 25, (320, 240))
    for f in frames:
        w.write(f)
    w.release()
    clip_bytes = {cls: p.read_bytes() for cls in CLASSES}
    path = root / "UCF101.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for cls in CLASSES:
            for g in range(1, 5):
                for c in range(1, 3):
                    name = f"UCF101/v_{cls}_g{g:02d}_c{c:02d}.avi"
                    if name in BROKEN:
                        z.writestr(name, b"" if BROKEN[name] == "empty" else b"hello\n" * 500)
                    else:
                        z.writestr(name, clip_bytes[cls])
        z.writestr("UCF101/README.txt", "not a video")
        z.writestr(SLIP, clip_bytes[FIRST])
    return path


def _data(url: str, num_classes: int = 5, **kw) -> dict:
    return validate({"data": {"source": "url", "url": url, "num_classes": num_classes,
                              "per_class": PER_CLASS, **kw}})["data"]


def _check_result(out: Path, num_classes: int) -> pd.DataFrame:
    m = pd.read_parquet(out / "manifest.parquet")
    assert sorted(m["class"].unique()) == sorted(CLASSES[:num_classes])
    assert (m.groupby("group").split.nunique() == 1).all()  # no group in two splits
    report = json.loads((out / "report.json").read_text())
    reasons = {s["member"]: s["reason"] for s in report["skipped"]}
    assert reasons[f"UCF101/v_{FIRST}_g01_c02.avi"] == "empty file"
    assert "OpenCV" in reasons[f"UCF101/v_{FIRST}_g02_c02.avi"]
    assert "unsafe" in reasons[SLIP]
    assert not any(n.endswith("README.txt") for n in reasons)  # not a video: ignored
    counts = m.groupby(["split", "class"]).size()
    for cls in CLASSES[1:num_classes]:
        assert [counts[(s, cls)] for s in ("train", "val", "test")] == [4, 2, 2]
    assert counts.xs(FIRST, level="class").sum() == 6  # two broken clips skipped
    for v in m.video:
        p = out / v
        assert p.is_file() and cv2.VideoCapture(str(p)).read()[0]
    return m


def _no_slip_anywhere(root: Path) -> None:
    assert not list(root.rglob(f"v_{FIRST}_g09_c01.avi"))
    assert not (root.parent / f"v_{FIRST}_g09_c01.avi").exists()


def test_http_subset_fetches_only_what_it_needs(archive, tmp_path):
    with RangeServer(archive) as server:
        download(_data(server.url), tmp_path / "videos", tmp_path / "staging")
        served = server.bytes_served
    size = archive.stat().st_size
    with zipfile.ZipFile(archive) as z:
        members = set(pd.read_parquet(tmp_path / "videos" / "manifest.parquet").member)
        report = json.loads((tmp_path / "videos" / "report.json").read_text())
        members |= {s["member"] for s in report["skipped"] if s["member"] != SLIP}
        needed = sum(z.getinfo(m).compress_size for m in members)
    fraction = served / size
    print(f"\nfetched {served} of {size} bytes ({fraction:.1%}); selected members hold "
          f"{needed} ({needed / size:.1%})")
    assert fraction < 0.60
    assert served < needed + 200_000  # the central directory and headers, nothing more
    _check_result(tmp_path / "videos", 5)
    _no_slip_anywhere(tmp_path)
    assert not (tmp_path / "staging").exists() or not any((tmp_path / "staging").iterdir())


@pytest.mark.parametrize("drop_first, status", [(3, None), (3, 503)])
def test_http_server_that_fails_first_requests_is_survived(archive, tmp_path, drop_first, status):
    with RangeServer(archive, drop_first=drop_first, fail_first_with=status) as server:
        download(_data(server.url, num_classes=2), tmp_path / "videos", tmp_path / "staging")
        assert server.requests > drop_first
    _check_result(tmp_path / "videos", 2)


def test_local_path_file_url_and_http_agree(archive, tmp_path):
    local = download(_data(str(archive), 3), tmp_path / "a", tmp_path / "s")
    file_url = download(_data(archive.as_uri(), 3), tmp_path / "b", tmp_path / "s")
    with RangeServer(archive) as server:
        http = download(_data(server.url, 3), tmp_path / "c", tmp_path / "s")
    assert local.equals(file_url) and local.equals(http)
    for sub in ("a", "b", "c"):
        _check_result(tmp_path / sub, 3)


def test_rerun_after_interruption_fetches_only_the_rest(archive, tmp_path):
    data = _data("http://placeholder", 5)
    with RangeServer(archive) as server:
        data["url"] = server.url
        full = download(data, tmp_path / "fresh", tmp_path / "s1")
        fresh_bytes = server.bytes_served
        # An interrupted run: half of the members already complete in the staging folder.
        src = sources.ZipSource(server.url)
        videos = parse_members(src.names()).videos
        half = [v for v in videos if v.member in set(full.member)][: len(full) // 2]
        staging = tmp_path / "s2" / sources.staging_key(data)
        staging.mkdir(parents=True)
        src.fetch(half, staging)
        (staging / "v_Zoom_partial.avi.part").write_bytes(b"half")  # a torn temp file
        before = server.bytes_served
        again = download(data, tmp_path / "resumed", tmp_path / "s2")
        resumed_bytes = server.bytes_served - before
    assert again.equals(full)
    assert resumed_bytes < fresh_bytes * 0.7


def test_crc_mismatch_is_retried_then_reported(archive, tmp_path):
    bad = tmp_path / "bad.zip"
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(f"UCF101/v_{FIRST}_g03_c01.avi")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + 1000] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with RangeServer(bad) as server:
        download(_data(server.url, 2), tmp_path / "videos", tmp_path / "s")
    report = json.loads((tmp_path / "videos" / "report.json").read_text())
    reasons = {s["member"]: s["reason"] for s in report["skipped"]}
    assert "CRC" in reasons[f"UCF101/v_{FIRST}_g03_c01.avi"]


def test_404_and_not_a_zip_give_one_clear_error(archive, tmp_path):
    with RangeServer(archive) as server:
        base = server.url.rsplit("/", 1)[0]
        with pytest.raises(DatasetError, match="data.url: cannot read .*404"):
            download(_data(base + "/missing.zip"), tmp_path / "v", tmp_path / "s")
        with pytest.raises(DatasetError, match="data.url"):
            download(_data(base + "/notzip.zip"), tmp_path / "v", tmp_path / "s")
    with pytest.raises(DatasetError, match="no such file"):
        download(_data(str(tmp_path / "nope.zip")), tmp_path / "v", tmp_path / "s")
    assert not (tmp_path / "v").exists()


def test_builtin_download(tiny_videos, tiny_manifest):
    m = tiny_manifest
    assert sorted(m["class"].unique()) == list(CLASSES[:3])
    assert m.groupby(["split", "class"]).size().unstack().to_dict() == {
        c: {"test": 2, "train": 4, "val": 2} for c in CLASSES[:3]}
    assert (m.groupby("group").split.nunique() == 1).all()
    assert all((tiny_videos / v).is_file() for v in m.video)
    assert list(m.label.unique()) == [0, 1, 2]


def test_builtin_is_byte_identical_across_runs(tiny_videos, tiny_params, tmp_path):
    download(tiny_params["data"], tmp_path / "again", tmp_path / "staging")
    files = sorted(p.relative_to(tiny_videos) for p in tiny_videos.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again")
                           for p in (tmp_path / "again").rglob("*") if p.is_file())
    for f in files:
        assert (tiny_videos / f).read_bytes() == (tmp_path / "again" / f).read_bytes(), f
