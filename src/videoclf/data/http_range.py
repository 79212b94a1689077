"""The HTTP range client: a zip archive's central directory and members read over HTTP(S)
with explicit Range requests, resumable, bounded against stalls and trickles.

A member's raw (compressed) bytes are fetched into ``<staging>/<name>.raw``, appended to
across attempts, so a cut transfer resumes where it stopped; then inflated locally (stored or
deflate) with the output capped at the declared size and checked against the central
directory's CRC. The body is read with ``read1``, so progress is seen as it arrives: a socket
timeout catches a stall, the ``MIN_PROGRESS``-per-``stall_seconds`` window a trickle.
"""

from __future__ import annotations

import http.client
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path

import requests
import urllib3
from remotezip import RemoteZip, RemoteZipError
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry as Urllib3Retry

from . import retry
from .retry import GaveUp, Retry, with_retries

CONNECT_TIMEOUT = 10         # seconds
MIN_PROGRESS = 16 * 1024     # bytes a transfer must make in every data.stall_seconds window
CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header, 30 bytes
# Everything a broken transfer can raise: requests' and urllib3's own errors (a body cut
# mid-way raises urllib3's ProtocolError, which is neither), sockets, http.client.
TRANSFER_ERRORS = (RemoteZipError, requests.RequestException, urllib3.exceptions.HTTPError,
                   http.client.HTTPException, OSError, EOFError)


class Refused(Exception):
    """A member that is never fetched (too large, or inflating past its declared size)."""


class Unreachable(Exception):
    """The archive cannot be read over HTTP (a final answer, or every attempt failed)."""


class _Corrupt(Retry):
    """Bytes that do not check out: the next attempt starts the member over."""


def short(e: BaseException) -> str:
    """``TypeName: first line`` of an exception, for one-line reports."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def retrying_session() -> requests.Session:
    """HTTP session that retries connection errors, timeouts and 5xx answers with backoff."""
    n = retry.ATTEMPTS
    policy = Urllib3Retry(
        total=n, connect=n, read=n, status=n, other=n,
        backoff_factor=retry.BACKOFF_SECONDS, status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "videoclf (remotezip)"
    return session


class RangeClient:
    """One zip archive at ``url``, read with Range requests."""

    def __init__(self, url: str, stall_seconds: int):
        self.url, self.stall_seconds = url, stall_seconds
        self.session = retrying_session()

    def listing(self) -> RemoteZip:
        """The central directory, retried with backoff like every transfer."""
        def attempt() -> RemoteZip:
            try:
                return RemoteZip(self.url, session=self.session,
                                 timeout=(CONNECT_TIMEOUT, self.stall_seconds))
            except zipfile.BadZipFile:
                raise
            except RemoteZipError as e:
                if "404" in str(e) or "403" in str(e) or "not support" in str(e).lower():
                    raise Unreachable(short(e)) from None  # retrying will not help
                raise Retry(short(e)) from None
            except TRANSFER_ERRORS as e:
                raise Retry(short(e)) from None

        try:
            return with_retries(attempt, f"the central directory of {self.url}")
        except GaveUp as e:
            raise Unreachable(str(e)) from None

    def fetch_member(self, info: zipfile.ZipInfo, dest: Path, bar: tqdm, max_bytes: int) -> None:
        """A member's raw bytes into ``<dest>.raw``, resuming from what is already there after
        any failure, then inflated into ``dest`` and checked against the central directory's
        size and CRC. Raises ``GaveUp`` when every attempt failed, ``Refused`` at once."""
        raw = dest.with_name(dest.name + ".raw")

        def attempt() -> None:
            try:
                start = self._data_offset(info)
                raw.touch()
                have = raw.stat().st_size
                if have > info.compress_size:
                    raw.unlink()
                    have = 0
                if have < info.compress_size:
                    self._get_range(start + have, start + info.compress_size - 1, raw, bar)
                inflate_to(raw, info, dest, max_bytes)
                raw.unlink(missing_ok=True)
            except _Corrupt:
                raw.unlink(missing_ok=True)  # bad bytes: the next attempt starts over
                raise
            except TRANSFER_ERRORS as e:
                raise Retry(short(e)) from None

        with_retries(attempt, info.filename)

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        """Where a member's data starts: after its local header, whose name and extra field
        lengths may differ from the central directory's."""
        buf = bytearray()
        self._get_range(info.header_offset, info.header_offset + _LOCAL_HEADER.size - 1, buf,
                        None)
        fields = _LOCAL_HEADER.unpack(bytes(buf))
        if fields[0] != b"PK\x03\x04":
            raise _Corrupt("bad local file header")
        return info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]

    def _get_range(self, first: int, last: int, out: Path | bytearray, bar: tqdm | None) -> None:
        """Append bytes ``first..last`` of the archive to ``out``; abort on a stall (nothing
        for data.stall_seconds) or a trickle (under MIN_PROGRESS bytes in such a window)."""
        want = last - first + 1
        resp = self.session.get(self.url, headers={"Range": f"bytes={first}-{last}"},
                                stream=True, timeout=(CONNECT_TIMEOUT, self.stall_seconds))
        try:
            if resp.status_code != 206:
                raise Retry(f"HTTP {resp.status_code} for a range request")
            sink = open(out, "ab") if isinstance(out, Path) else None
            try:
                self._read_body(resp, want, sink if sink else out, bar)
            finally:
                if sink:
                    sink.close()
        finally:
            resp.close()

    def _read_body(self, resp: requests.Response, want: int, out, bar: tqdm | None) -> None:
        got = 0
        window_start, window_bytes = time.monotonic(), 0
        while got < want:
            chunk = resp.raw.read1(min(CHUNK, want - got))
            if not chunk:
                raise Retry(f"short read: the server sent {got} of {want} bytes")
            if isinstance(out, bytearray):
                out += chunk
            else:
                out.write(chunk)
            got += len(chunk)
            window_bytes += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
            now = time.monotonic()
            if window_bytes >= MIN_PROGRESS:
                window_start, window_bytes = now, 0
            elif now - window_start > self.stall_seconds:
                raise Retry(f"stalled: under {MIN_PROGRESS // 1024} KB in "
                            f"{self.stall_seconds} s (data.stall_seconds)")


def inflate_to(raw: Path, info: zipfile.ZipInfo, dest: Path, max_bytes: int) -> None:
    """Inflate a member's raw bytes into ``dest`` (renamed into place when complete), refusing
    it as soon as it grows past its declared size, and checking the CRC."""
    tmp = dest.with_name(dest.name + ".part")
    if info.compress_type == zipfile.ZIP_STORED:
        inflater = None
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
    else:
        raise Refused(f"compression method {info.compress_type} is not supported")
    crc, size = 0, 0
    limit = min(info.file_size, max_bytes)
    try:
        with open(raw, "rb") as src, open(tmp, "wb") as out:
            while block := src.read(CHUNK):
                data = inflater.decompress(block, limit - size + 1) if inflater else block
                if inflater and inflater.unconsumed_tail:
                    raise Refused(f"inflates past its declared {info.file_size} bytes")
                size += len(data)
                if size > limit:
                    raise Refused(f"inflates past its declared {info.file_size} bytes")
                crc = zlib.crc32(data, crc)
                out.write(data)
            if inflater:
                tail = inflater.flush()
                size += len(tail)
                crc = zlib.crc32(tail, crc)
                out.write(tail)
        if size != info.file_size or crc != info.CRC:
            raise _Corrupt(f"CRC or size mismatch (got {size} of {info.file_size} bytes): "
                           "corrupt member")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
