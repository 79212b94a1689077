"""The download stage against real zips: local, file://, and HTTP range requests on 127.0.0.1."""

import dataclasses
import errno
import json
import shutil
import zipfile
from pathlib import Path

import cv2
import pandas as pd
import pytest

from videoclf.data import readers, retry
from videoclf.data.builtin import generator, styles
from videoclf.data.download import download
from videoclf.data.splits import DatasetError, parse_members
from videoclf.params import DataParams

from helpers import project_params, tmpfs
from rangeserver import RangeServer

CLASSES = styles.CLASSES  # 10 classes
PER_CLASS = {"train": 4, "val": 2, "test": 2}  # = every clip of a class: 4 groups x 2 clips
FIRST = CLASSES[0]  # the class that carries the bad members; always selected
BROKEN = {f"UCF101/v_{FIRST}_g01_c02.avi": "empty", f"UCF101/v_{FIRST}_g02_c02.avi": "text"}
SLIP = f"../v_{FIRST}_g09_c01.avi"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(retry, "BACKOFF_SECONDS", 0.01)


def _short_clip(path: Path) -> bytes:
    """A real 30-frame XVID clip written to ``path``; its bytes."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"XVID"), 25, (320, 240))
    for f in generator.render_clip("UCF101/v_Still_g01_c01.avi", 1)[:30]:
        w.write(f)
    w.release()
    return path.read_bytes()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A 10-class UCF101-layout zip of short real XVID clips, with bad members mixed in."""
    root = tmp_path_factory.mktemp("archive")
    # One real clip's bytes behind every name: classes weigh the same, so the share of bytes
    # fetched measures the reader, not how well each class happens to compress.
    clip = _short_clip(root / "clip.avi")
    clip_bytes = {cls: clip for cls in CLASSES}
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


def _data(url: str, num_classes: int = 5, **kw) -> DataParams:
    return project_params({"data": {"source": "url", "url": url, "num_classes": num_classes,
                              "per_class": PER_CLASS, **kw}}).data


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
        data = dataclasses.replace(data, url=server.url)
        full = download(data, tmp_path / "fresh", tmp_path / "s1")
        fresh_bytes = server.bytes_served
        # An interrupted run: half of the members already complete in the staging folder.
        src = readers.ZipSource(server.url)
        videos = parse_members(src.names()).videos
        half = [v for v in videos if v.member in set(full.member)][: len(full) // 2]
        staging = tmp_path / "s2" / readers.staging_key(data)
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
    download(tiny_params.data, tmp_path / "again", tmp_path / "staging")
    files = sorted(p.relative_to(tiny_videos) for p in tiny_videos.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again")
                           for p in (tmp_path / "again").rglob("*") if p.is_file())
    for f in files:
        assert (tiny_videos / f).read_bytes() == (tmp_path / "again" / f).read_bytes(), f


# --- A server that misbehaves the way real servers and links do --------------------------


def _files(out: Path) -> dict[str, bytes]:
    """Every file's bytes (report.json names the server's port, so it is left out)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "report.json"}


@pytest.fixture(scope="module")
def good_result(archive, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("good")
    with RangeServer(archive) as server:
        download(_data(server.url, 2), out / "videos", out / "staging")
    return _files(out / "videos")


@pytest.mark.parametrize("how", [dict(cut_bodies=4), dict(cut_tail=2),
                                 dict(stall_bodies=1, stall_s=4),
                                 dict(trickle_bodies=1, trickle_bytes=20, trickle_s=0.2)])
def test_broken_transfers_are_retried_and_give_the_same_bytes(archive, good_result, tmp_path,
                                                              how):
    data = _data("http://placeholder", 2, stall_seconds=1)
    with RangeServer(archive, **how) as server:
        data = dataclasses.replace(data, url=server.url)
        download(data, tmp_path / "videos", tmp_path / "staging")
        assert server.cuts == next(v for k, v in how.items() if k.endswith(("bodies", "tail")))
    assert _files(tmp_path / "videos") == good_result
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("*.raw"))


def test_a_cut_body_resumes_from_the_bytes_on_disk(archive, tmp_path):
    with RangeServer(archive) as server:
        download(_data(server.url, 2), tmp_path / "a", tmp_path / "s")
        clean = server.bytes_served
    with RangeServer(archive, cut_bodies=4) as server:
        download(_data(server.url, 2), tmp_path / "b", tmp_path / "s")
        # Each cut answer still delivered its first half, which was kept: no member was
        # fetched twice over.
        assert server.bytes_served < clean * 1.05


def test_a_member_that_keeps_failing_is_one_line_and_the_rest_go_on(archive, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(retry, "ATTEMPTS", 2)
    with RangeServer(archive, cut_bodies=2) as server:
        m = download(_data(server.url, 2), tmp_path / "videos", tmp_path / "s")
    report = json.loads((tmp_path / "videos" / "report.json").read_text())
    failed = [s for s in report["skipped"] if "failed after 2 attempts" in s["reason"]]
    assert len(failed) == 1 and "IncompleteRead" in failed[0]["reason"]
    assert failed[0]["member"] not in set(m.member) and len(m) > 10


def test_a_central_directory_that_never_arrives_is_one_clear_error(archive, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setattr(retry, "ATTEMPTS", 2)
    with RangeServer(archive, cut_tail=100) as server:
        with pytest.raises(DatasetError, match="data.url: cannot read .*failed after 2"):
            download(_data(server.url, 2), tmp_path / "videos", tmp_path / "s")
    assert not (tmp_path / "videos").exists()


def test_one_file_name_in_two_folders_never_mixes(tmp_path):
    clip = _short_clip(tmp_path / "clip.avi")
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as z:
        for cls in ("A", "B"):
            for g in range(1, 5):
                z.writestr(f"UCF101/v_{cls}_g{g:02d}_c01.avi", clip)
        z.writestr("other/v_A_g01_c01.avi", b"garbage" * 1000)
    with RangeServer(path) as server:
        m = download(_data(server.url, 2, per_class={"train": 2, "val": 1, "test": 1}),
                     tmp_path / "videos", tmp_path / "s")
    assert m.video.is_unique and "other/v_A_g01_c01.avi" not in set(m.member)
    report = json.loads((tmp_path / "videos" / "report.json").read_text())
    reason = {s["member"]: s["reason"] for s in report["skipped"]}["other/v_A_g01_c01.avi"]
    assert "another member has this file name: UCF101/v_A_g01_c01.avi" in reason
    for row in m.itertuples():
        assert (tmp_path / "videos" / row.video).read_bytes() == clip


def _zip_with_a_lying_size(path: Path) -> None:
    """Two zero runs: one declares its real 3 MB; the other's central directory declares 1000
    bytes for 8 MB (a small zip bomb), which must be caught while streaming."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("UCF101/v_A_g01_c01.avi", b"\0" * (8 << 20))
        z.writestr("UCF101/v_B_g01_c01.avi", b"\0" * (3 << 20))
    raw = bytearray(path.read_bytes())
    name = b"UCF101/v_A_g01_c01.avi"
    at = next(i - 46 for i in range(len(raw)) if raw.startswith(name, i)
              and raw[i - 46:i - 42] == b"PK\x01\x02")  # its central directory entry
    raw[at + 24:at + 28] = (1000).to_bytes(4, "little")
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("remote", [True, False])
def test_oversize_and_inflating_members_are_refused(tmp_path, remote):
    from videoclf.data.splits import Video

    path = tmp_path / "bomb.zip"
    _zip_with_a_lying_size(path)
    videos = [Video("UCF101/v_A_g01_c01.avi", "A", "g01", 1),
              Video("UCF101/v_B_g01_c01.avi", "B", "g01", 1)]
    staging = tmp_path / "staging"
    staging.mkdir()
    if remote:
        with RangeServer(path) as server:
            paths, failures = readers.ZipSource(server.url, 2, 5).fetch(videos, staging)
            served = server.bytes_served
        assert served < 200_000  # the 3 MB member was never requested
    else:
        paths, failures = readers.ZipSource(str(path), 2, 5).fetch(videos, staging)
    reasons = {f["member"]: f["reason"] for f in failures}
    assert paths == {}
    # Over HTTP the inflater stops at the declared size; zipfile (local) stops reading there
    # too and fails the CRC. Either way nothing past 1000 bytes reaches the disk.
    assert ("inflates past its declared 1000 bytes" if remote else "Bad CRC-32") in \
        reasons["UCF101/v_A_g01_c01.avi"]
    assert "declares 3 MB, over data.max_member_mb (2)" in reasons["UCF101/v_B_g01_c01.avi"]
    assert all(f.stat().st_size <= 1 << 20 for f in staging.rglob("*"))  # the disk stayed clean
    assert not list(staging.rglob("*.part"))


def test_a_selection_over_the_total_cap_is_refused_before_any_fetch(archive, tmp_path):
    with pytest.raises(DatasetError, match=r"declare \d+ MB, over data.max_total_mb \(1\)"):
        download(_data(str(archive), 5, max_total_mb=1), tmp_path / "videos", tmp_path / "s")
    assert not (tmp_path / "videos").exists() and not list((tmp_path / "s").rglob("*.avi"))


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB file system."""
    with tmpfs(tmp_path / "disk", "2m") as mnt:
        yield mnt


def test_a_selection_larger_than_the_free_space_is_refused_before_any_fetch(archive,
                                                                           small_disk):
    with pytest.raises(DatasetError, match=r"declare \d+ MB, and \d+ MB are free under"):
        download(_data(str(archive), 5), small_disk / "videos", small_disk / "s")
    assert list(small_disk.iterdir()) == []


def test_a_disk_that_fills_during_the_fetch_leaves_nothing_behind(archive, small_disk,
                                                                  monkeypatch):
    """The declared total fits the margin-free check, the disk fills anyway: one OSError
    (ENOSPC, not retried), and staging is cleaned, not left holding what it fetched."""
    from videoclf.data import download as download_module

    monkeypatch.setattr(download_module, "SPACE_MARGIN_BYTES", -(64 * 2**20))
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 200 * 1024))
    with pytest.raises(OSError) as e:
        download(_data(str(archive), 5), small_disk / "videos", small_disk / "s")
    assert e.value.errno == errno.ENOSPC
    assert not (small_disk / "videos").exists()
    assert not [p for p in (small_disk / "s").rglob("*") if p.is_file()]  # staging cleaned


def test_mirror_pairs_are_checked_against_the_classes_download_selects(tmp_path):
    """camera with 3 classes holds PanLeft but not PanRight: said by download, before any
    clip is generated, not by train after download and extract ran."""
    data = project_params({"data": {"builtin_style": "camera", "num_classes": 3}}).data
    pairs = project_params().train.augment.flip_pairs
    with pytest.raises(DatasetError, match=r"\[PanLeft, PanRight\]: PanRight is not among the "
                                           "3 classes selected"):
        download(data, tmp_path / "videos", tmp_path / "s", flip_pairs=pairs)
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").rglob("*.avi"))


def test_a_short_staged_clip_is_never_taken_as_whole(tiny_params, tmp_path):
    """A built-in clip left short in staging (a full disk under OpenCV's silent writer) is
    found by its frame count, removed, and reported; the rerun generates it again, whole."""
    data = tiny_params.data
    staging = tmp_path / "s" / readers.staging_key(data)
    staging.mkdir(parents=True)
    member = sorted(download_members(data))[0]
    short = staging / readers.staged_name(member)
    w = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"XVID"), 25, (320, 240))
    for f in generator.render_clip(member, data.seed)[:20]:  # 20 of its frames
        w.write(f)
    w.release()
    with pytest.raises(DatasetError, match=rf"{member}: decodes 20 of the \d+ frames"):
        download(data, tmp_path / "videos", tmp_path / "s")
    assert not short.exists()
    m = download(data, tmp_path / "videos", tmp_path / "s")
    assert member in set(m.member)
    assert int(m.frames[m.member == member].iloc[0]) == generator.frame_count(member, data.seed)


def download_members(data) -> set[str]:
    from videoclf.data.splits import parse_members, select_classes, split_videos

    listing = parse_members(generator.member_names(data.seed, data.builtin_style), data.layout)
    classes = select_classes(listing.videos, data.num_classes)
    splits = split_videos(listing.videos, classes, dataclasses.asdict(data.per_class),
                          data.split_by, data.seed)
    return {v.member for s in splits.values() for v in s}


def test_a_damaged_video_does_not_empty_a_split_while_the_class_has_others(tmp_path):
    """The one video val takes of class B is damaged: an unused group of B takes its place
    (seeded), instead of "no usable clip left for val/B"."""
    from videoclf.data.splits import split_videos as split

    footage = Path(__file__).resolve().parents[1] / "footage"
    src = tmp_path / "src"
    for cls in ("A", "B"):
        (src / cls).mkdir(parents=True)
        for g in range(1, 8):
            shutil.copyfile(footage / "h264_carphone.mp4", src / cls / f"x_g{g:02d}_c01.mp4")
    per_class = {"train": 2, "val": 1, "test": 1}
    data = project_params({"data": {"source": "url", "url": str(src), "num_classes": 2,
                                    "per_class": per_class}}).data
    listing = parse_members(sorted(p.relative_to(src).as_posix() for p in src.rglob("*.mp4")))
    val_b = [v.member for v in split(listing.videos, ["A", "B"], per_class, "group",
                                     data.seed)["val"] if v.cls == "B"]
    assert len(val_b) == 1
    (src / val_b[0]).write_bytes((footage / "theora_damaged.ogv").read_bytes())
    m = download(data, tmp_path / "videos", tmp_path / "s")
    got = m[(m.split == "val") & (m["class"] == "B")]
    assert len(got) == 1 and got.member.iloc[0] != val_b[0]
    report = json.loads((tmp_path / "videos" / "report.json").read_text())
    assert [s["member"] for s in report["skipped"]] == [val_b[0]]
    assert report["skipped"][0]["reason"].startswith("damaged stream")
    assert m.groupby("split").group.apply(set).pipe(
        lambda g: not (g["train"] & g["val"] or g["val"] & g["test"] or g["train"] & g["test"]))
