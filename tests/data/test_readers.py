"""Sources as a hostile but fair user finds them: links, unreadable folders, odd zips, odd
URLs, full disks and servers that never answer. Members are small stand-in files here:
listing and fetching never decode."""

from __future__ import annotations

import dataclasses
import errno
import os
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from videoclf.data import http_range, readers, retry
from videoclf.data.splits import DatasetError, Video

from helpers import project_params, tmpfs
from rangeserver import RangeServer


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(retry, "BACKOFF_SECONDS", 0.01)


def _data(url: str, **kw):
    return project_params({"data": {"source": "url", "url": url, **kw}}).data


def _video(member: str) -> Video:
    return Video(member, member.split("/")[0], "g01", 1)


def _folders(root: Path, classes=("A", "B", "C", "D"), n=2) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            (root / c / f"v{i}.avi").write_bytes(b"stand-in")
    return root


def test_a_linked_class_folder_is_listed(tmp_path):
    root = _folders(tmp_path / "data", ("A", "C"))
    _folders(tmp_path / "elsewhere", ("B",))
    (root / "B").symlink_to(tmp_path / "elsewhere" / "B")
    (root / "C" / "loop").symlink_to(root)  # a link back up the tree is walked once
    names = readers.open_source(_data(str(root))).names()
    assert [n for n in names if n.startswith("B/")] == ["B/v0.avi", "B/v1.avi"]
    assert sorted({n.split("/")[0] for n in names}) == ["A", "B", "C"]


def test_an_unreadable_class_folder_is_an_error_not_the_next_class():
    """Listed as an unprivileged user (root reads everything, so a root run switches its
    effective user for the listing): the folder is named, instead of class B being dropped
    and D taking its place."""
    base = Path("/tmp") / f"videoclf-perm-{os.getpid()}"
    root = _folders(base / "data")
    base.chmod(0o755)
    (root / "B").chmod(0)
    as_root = os.geteuid() == 0
    try:
        if as_root:
            os.setegid(65534)
            os.seteuid(65534)
        with pytest.raises(DatasetError) as e:
            readers.DirSource("data", root).names()
    finally:
        if as_root:
            os.seteuid(0)
            os.setegid(0)
        (root / "B").chmod(0o755)
        subprocess.run(["rm", "-rf", str(base)], check=True)
    assert str(e.value).startswith(f"data.url: cannot read folder {root / 'B'}: Permission "
                                   "denied; fix its permissions")


@pytest.mark.parametrize("url", ["ftp://example.org/ucf.zip", "s3://bucket/ucf.zip"])
def test_an_unsupported_scheme_says_so(url):
    with pytest.raises(DatasetError, match=r"data.url: (ftp|s3):// is not supported"):
        readers.open_source(_data(url))


def test_a_zip_path_with_a_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with zipfile.ZipFile(tmp_path / "ucf.zip", "w") as z:
        z.writestr("A/v0.avi", b"stand-in")
    assert readers.open_source(_data("~/ucf.zip")).names() == ["A/v0.avi"]


def test_a_name_listed_twice_is_one_video_the_last_copy_and_reported(tmp_path):
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("A/v0.avi", b"first copy")
        z.writestr("A/v0.avi", b"last copy")
    src = readers.open_source(_data(str(path)))
    assert src.names() == ["A/v0.avi"]
    assert src.refused() == [{"member": "A/v0.avi", "reason": (
        "the archive lists this name more than once; its last copy is used")}]
    (tmp_path / "staging").mkdir()
    paths, failures = src.fetch([_video("A/v0.avi")], tmp_path / "staging")
    assert not failures and paths["A/v0.avi"].read_bytes() == b"last copy"


@pytest.mark.parametrize("remote", [False, True])
@pytest.mark.parametrize("method", [zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2])
def test_lzma_and_bzip2_members_are_refused_alike_locally_and_over_http(tmp_path, remote,
                                                                       method):
    path = tmp_path / "packed.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("A/v0.avi", b"stand-in" * 100, compress_type=method)
        z.writestr("A/v1.avi", b"stand-in" * 100, compress_type=zipfile.ZIP_DEFLATED)
    videos = [_video("A/v0.avi"), _video("A/v1.avi")]
    name = {zipfile.ZIP_LZMA: "LZMA", zipfile.ZIP_BZIP2: "BZIP2"}[method]
    (tmp_path / "staging").mkdir()
    if remote:
        with RangeServer(path) as server:
            paths, failures = readers.ZipSource(server.url).fetch(videos, tmp_path / "staging")
    else:
        paths, failures = readers.ZipSource(str(path)).fetch(videos, tmp_path / "staging")
    assert list(paths) == ["A/v1.avi"]
    assert failures == [{"member": "A/v0.avi", "reason": (
        f"refused: compressed with {name}, which is not supported (only stored or deflate "
        "members: re-zip with `zip -r`)")}]


def test_a_groups_csv_larger_than_the_cap_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "TEXT_MAX_BYTES", 1024)
    path = tmp_path / "g.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("A/v0.avi", b"stand-in")
        z.writestr("groups.csv", "video,group\n" + "A/v0.avi,1\n" * 1000)
    with pytest.raises(DatasetError, match="groups.csv declares 11012 bytes, over the 0 MB"):
        readers.open_source(_data(str(path))).read_text("groups.csv")


def test_a_local_crc_error_is_final_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(retry, "BACKOFF_SECONDS", 5.0)  # a retry would take seconds
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("A/v0.avi", b"x" * 5000)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    (tmp_path / "staging").mkdir()
    t0 = time.perf_counter()
    paths, failures = readers.ZipSource(str(path)).fetch([_video("A/v0.avi")],
                                                         tmp_path / "staging")
    assert time.perf_counter() - t0 < 2
    assert not paths and failures[0]["reason"].startswith("refused: corrupt member: Bad CRC")


def test_a_server_without_range_support_is_one_line_at_once(tmp_path, monkeypatch):
    from remotezip import RangeNotSupported

    def refuse(*a, **k):
        raise RangeNotSupported("The server doesn't support range requests")

    calls = []
    monkeypatch.setattr(http_range, "RemoteZip", lambda *a, **k: calls.append(1) or refuse())
    with pytest.raises(DatasetError, match="does not support range requests"):
        readers.ZipSource("http://127.0.0.1:9/ucf.zip").names()
    assert len(calls) == 1  # not retried


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB file system."""
    with tmpfs(tmp_path / "small", "1m") as mnt:
        yield mnt


@pytest.mark.parametrize("remote", [False, True])
def test_a_full_disk_is_reported_at_once_not_retried(small_disk, tmp_path, monkeypatch,
                                                     remote):
    monkeypatch.setattr(retry, "BACKOFF_SECONDS", 5.0)
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("A/v0.avi", os.urandom(2 * 2**20))
    t0 = time.perf_counter()
    with pytest.raises(OSError) as e:
        if remote:
            with RangeServer(path) as server:
                readers.ZipSource(server.url).fetch([_video("A/v0.avi")], small_disk)
        else:
            readers.ZipSource(str(path)).fetch([_video("A/v0.avi")], small_disk)
    assert e.value.errno == errno.ENOSPC and time.perf_counter() - t0 < 4


@pytest.mark.parametrize("how", [dict(dead_data=503), dict(dead_data=503, retry_after=30),
                                 dict(dead_data="stall", stall_s=3)])
def test_a_server_that_answers_no_data_request_ends_in_one_line(tmp_path, monkeypatch, how):
    """The central directory arrives, then nothing: stopped after two members' attempts, with
    Retry-After capped, not after every member's (the ten-class selection took days)."""
    monkeypatch.setattr(retry, "ATTEMPTS", 2)
    monkeypatch.setattr(http_range, "RETRY_AFTER_MAX_S", 0.5)
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(20):
            z.writestr(f"A/v{i}.avi", b"stand-in" * 200)
    videos = [_video(f"A/v{i}.avi") for i in range(20)]
    (tmp_path / "staging").mkdir()
    t0 = time.perf_counter()
    with RangeServer(path, **how) as server:
        src = readers.ZipSource(server.url, stall_seconds=1)
        src.names()
        with pytest.raises(readers.SourceUnreachable, match="the server answers no data request"):
            src.fetch(videos, tmp_path / "staging")
    per_member = retry.ATTEMPTS * (http_range.HTTP_RETRIES + 1)
    assert server.requests_dead <= http_range.DEAD_AFTER_MEMBERS * per_member
    assert time.perf_counter() - t0 < 40


def test_unknown_data_params_stay_frozen():
    data = _data("x.zip")
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.url = "y.zip"  # type: ignore[misc]


def test_only_a_403_or_404_status_is_final_not_a_port_that_contains_404():
    """A dropped connection to port 40459 was once taken for an HTTP 404 (and not retried)."""
    from remotezip import RemoteIOError

    from videoclf.data.http_range import is_final

    assert is_final(RemoteIOError("404 Client Error: Not Found for url: http://h:1/a.zip"))
    assert is_final(RemoteIOError("403 Client Error: Forbidden for url: http://h:1/a.zip"))
    assert not is_final(RemoteIOError(
        "HTTPConnectionPool(host='127.0.0.1', port=40459): Max retries exceeded with url: "
        "/archive.zip (Caused by ProtocolError('Connection aborted.'))"))
    assert not is_final(RemoteIOError("503 Server Error: for url: http://h:4040/a.zip"))


@pytest.fixture
def silent_server():
    """A server on 127.0.0.1 that accepts every connection and never sends a byte."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/a.zip", held
    stop.set()
    thread.join(5)
    for c in held:
        c.close()
    srv.close()


def test_a_server_that_never_answers_is_given_up_in_two_silent_attempts(silent_server):
    """Every request times out waiting for the response headers: two attempts of three
    requests each, not five (the stall timer covers the wait for an answer too)."""
    url, held = silent_server
    t0 = time.perf_counter()
    with pytest.raises(readers.SourceUnreachable, match="the server sends nothing"):
        readers.ZipSource(url, stall_seconds=1).names()
    assert len(held) == 2 * (http_range.HTTP_RETRIES + 1)
    assert time.perf_counter() - t0 < 20


def test_the_stage_deadline_stops_retrying_with_one_line(silent_server):
    url, held = silent_server
    past = time.monotonic() - 1
    with pytest.raises(readers.SourceUnreachable, match=r"deadline \(data.deadline_minutes\)"):
        readers.ZipSource(url, stall_seconds=1, deadline=past).names()
    assert not held  # no request started past the deadline
