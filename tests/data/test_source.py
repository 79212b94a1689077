"""The source stage's fingerprint: it changes with the source's content, and only then."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import zipfile

import pytest

from videoclf.data.source import fingerprint, write_fingerprint
from videoclf.data.splits import DatasetError

from helpers import project_params
from rangeserver import RangeServer


def _data(url: str):
    return project_params({"data": {"source": "url", "url": url, "stall_seconds": 2}}).data


def _folder(root):
    for c in ("A", "B"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            (root / c / f"v{i}.avi").write_bytes(b"x" * (10 + i))
    return root


def test_a_folder_fingerprint_follows_adds_renames_and_replacements(tmp_path):
    src = _folder(tmp_path / "src")
    data = _data(str(src))
    first = fingerprint(data)
    assert first["files"] == 6 and fingerprint(data) == first  # nothing touched
    (src / "A" / "v9.avi").write_bytes(b"new")
    added = fingerprint(data)
    (src / "A" / "v9.avi").rename(src / "A" / "w9.avi")
    renamed = fingerprint(data)
    (src / "B" / "v0.avi").write_bytes(b"y" * 10)  # same size, other bytes, newer mtime
    os.utime(src / "B" / "v0.avi", ns=(1, 10**18))
    replaced = fingerprint(data)
    assert len({json.dumps(f) for f in (first, added, renamed, replaced)}) == 4


def test_a_same_size_same_mtime_replacement_is_seen_by_stat_and_by_content(tmp_path):
    """Flip 100 kB inside a video, restore its times as ``touch -r`` would: the default
    fingerprint (stat: ctime and inode too) changes, and so does ``content``; an untouched
    folder keeps both."""
    src = _folder(tmp_path / "src")
    video = src / "A" / "v1.avi"
    video.write_bytes(bytes(300_000))
    for how in ("stat", "content"):
        data = dataclasses.replace(_data(str(src)), fingerprint=how)
        before = fingerprint(data)
        assert fingerprint(data) == before
        st = video.stat()
        time.sleep(0.01)  # a ctime tick apart, on file systems with coarse clocks
        with open(video, "r+b") as f:  # 100 kB flipped in place
            f.seek(100_000)
            flipped = bytes(b ^ 0xFF for b in f.read(100_000))
            f.seek(100_000)
            f.write(flipped)
        os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))  # touch -r the original
        assert video.stat().st_size == st.st_size and video.stat().st_mtime_ns == st.st_mtime_ns
        assert fingerprint(data) != before, how
    assert "content_sha256" in fingerprint(data) and "listing_sha256" not in fingerprint(data)


def test_a_zip_fingerprint_is_its_directory(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("A/v0.avi", b"one")
    first = fingerprint(_data(str(path)))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("A/v0.avi", b"two")  # replaced: another CRC
    assert fingerprint(_data(str(path))) != first
    with pytest.raises(DatasetError, match="no such file"):
        fingerprint(_data(str(tmp_path / "none.zip")))


def test_an_http_fingerprint_is_the_servers_headers_and_survives_going_offline(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("A/v0.avi", b"one")
    out = tmp_path / "source.json"
    with RangeServer(path) as server:
        url = server.url
        fp = write_fingerprint(_data(url), out)
    assert fp["content-length"] == str(path.stat().st_size)
    before = out.read_bytes()
    assert write_fingerprint(_data(url), out) == fp and out.read_bytes() == before  # offline
    with pytest.raises(DatasetError, match="cannot reach"):
        write_fingerprint(_data(url), tmp_path / "never.json")  # offline, and no last one


def test_the_file_is_rewritten_only_when_the_fingerprint_changes(tmp_path):
    src = _folder(tmp_path / "src")
    out = tmp_path / "source.json"
    write_fingerprint(_data(str(src)), out)
    stamp = out.stat().st_mtime_ns
    write_fingerprint(_data(str(src)), out)
    assert out.stat().st_mtime_ns == stamp
    assert json.loads(out.read_text())["source"] == "folder"


def test_the_unlabeled_fingerprint_follows_its_folder_and_is_none_without_one(tmp_path):
    from videoclf.data.source import write_unlabeled_fingerprint

    out = tmp_path / "unlabeled.json"
    none = project_params().data  # unlabeled_url ""
    assert write_unlabeled_fingerprint(none, out) == {"source": "none"}
    src = _folder(tmp_path / "pool")
    data = project_params({"data": {"unlabeled_url": str(src)}}).data
    first = write_unlabeled_fingerprint(data, out)
    assert first["files"] == 6 and json.loads(out.read_text()) == first
    (src / "A" / "v9.avi").write_bytes(b"new")
    assert write_unlabeled_fingerprint(data, out) != first
    gone = project_params({"data": {"unlabeled_url": str(tmp_path / "none.zip")}}).data
    with pytest.raises(DatasetError, match=r"^data.unlabeled_url: .*no such file"):
        write_unlabeled_fingerprint(gone, tmp_path / "other.json")
