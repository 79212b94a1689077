"""The HTTP range client: a zip archive's central directory and members read over HTTP(S)
with explicit Range requests, resumable, bounded against stalls and trickles.

A member's raw (compressed) bytes are fetched into ``<staging>/<name>.raw``, appended to
across attempts, so a cut transfer resumes where it stopped; then inflated locally (stored or
deflate) with the output capped at the declared size and checked against the central
directory's CRC. The body is read with ``read1``, so progress is seen as it arrives: a socket
timeout catches a stall, the ``MIN_PROGRESS``-per-``stall_seconds`` window a trickle.
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import struct
import time
import zipfile
import zlib
from pathlib import Path

import requests
import urllib3
from remotezip import RangeNotSupported, RemoteZip, RemoteZipError
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry as Urllib3Retry

from . import retry
from .retry import GaveUp, Retry, with_retries

CONNECT_TIMEOUT = 10         # seconds
RETRY_AFTER_MAX_S = 10.0     # a server's Retry-After is waited for this long at most
DEAD_AFTER_MEMBERS = 2       # members in a row without one byte received: the server is dead
HTTP_RETRIES = 2             # urllib3's own retries of one request (connection errors, 5xx)
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


def raise_if_local(e: BaseException) -> None:
    """Re-raise a failure of this machine rather than of the transfer: a full disk, a quota,
    a read-only or forbidden folder. Another attempt cannot fix it, so it is never retried;
    the stage reports it in one line."""
    if isinstance(e, OSError) and e.errno in _LOCAL_ERRNOS:
        raise e


_LOCAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.ENOENT, errno.ENOTDIR}


class _Corrupt(Retry):
    """Bytes that do not check out: the next attempt starts the member over."""


def short(e: BaseException) -> str:
    """``TypeName: first line`` of an exception, for one-line reports."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


class _CappedRetry(Urllib3Retry):
    """urllib3's retry policy, waiting at most ``RETRY_AFTER_MAX_S`` whatever a server's
    ``Retry-After`` asks (``Retry-After: 3600`` would otherwise stop the stage for an hour
    per request)."""

    def get_retry_after(self, response):
        after = super().get_retry_after(response)
        return None if after is None else min(after, RETRY_AFTER_MAX_S)


def retrying_session() -> requests.Session:
    """HTTP session that retries connection errors, timeouts and 5xx answers with backoff,
    a few times per request: the member's own attempts (``retry.with_retries``) come on top,
    so the two multiply."""
    n = HTTP_RETRIES
    policy = _CappedRetry(
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


def is_final(e: RemoteZipError) -> bool:
    """A remotezip error that no retry will mend: 403/404 (requests' ``raise_for_status``
    message starts with the code) or no range support. Matched on the status line, not
    anywhere in the text: a URL's port 40459 is no 404."""
    text = str(e)
    return bool(re.match(r"(403|404) Client Error", text)) or "support" in text.lower()


class RangeClient:
    """One zip archive at ``url``, read with Range requests."""

    def __init__(self, url: str, stall_seconds: int, deadline: float | None = None):
        self.url, self.stall_seconds = url, stall_seconds
        self.deadline = deadline  # time.monotonic() past which no request starts
        self.session = retrying_session()
        self.dead_members = 0  # members in a row whose every attempt got no byte
        self._got = 0          # bytes received for the member being fetched

    def listing(self) -> RemoteZip:
        """The central directory, retried with backoff like every transfer. Attempts whose
        every request timed out without a byte (connect or response headers) end it after
        DEAD_AFTER_MEMBERS in a row: a server that accepts and never answers is dead."""
        silent = [0]

        def attempt() -> RemoteZip:
            try:
                return RemoteZip(self.url, session=self.session,
                                 timeout=(CONNECT_TIMEOUT, self.stall_seconds))
            except zipfile.BadZipFile:
                raise
            except RangeNotSupported:
                raise Unreachable("the server does not support range requests (HTTP Range), "
                                  "which reading one member of a remote zip needs; download "
                                  "the zip and set data.url to the file") from None
            except RemoteZipError as e:
                if is_final(e):
                    raise Unreachable(short(e)) from None  # retrying will not help
                self._silent(silent, e)
                raise Retry(short(e)) from None
            except TRANSFER_ERRORS as e:
                raise_if_local(e)
                self._silent(silent, e)
                raise Retry(short(e)) from None

        try:
            return with_retries(attempt, f"the central directory of {self.url}",
                                deadline=self.deadline)
        except GaveUp as e:
            raise Unreachable(str(e)) from None

    def _silent(self, count: list[int], e: BaseException) -> None:
        """Count an attempt that timed out before any answer; the second in a row ends it."""
        if "timed out" not in str(e).lower() and "timeout" not in type(e).__name__.lower():
            count[0] = 0
            return
        count[0] += 1
        if count[0] >= DEAD_AFTER_MEMBERS:
            raise Unreachable(f"the server sends nothing ({count[0]} attempts in a row timed "
                              f"out waiting for an answer, data.stall_seconds "
                              f"{self.stall_seconds})") from None

    def fetch_member(self, info: zipfile.ZipInfo, dest: Path, bar: tqdm, max_bytes: int) -> None:
        """A member's raw bytes into ``<dest>.raw``, resuming from what is already there after
        any failure, then inflated into ``dest`` and checked against the central directory's
        size and CRC. Raises ``GaveUp`` when every attempt failed, ``Refused`` at once."""
        raw = dest.with_name(dest.name + ".raw")
        self._got = 0

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
                raise_if_local(e)
                raise Retry(short(e)) from None

        try:
            with_retries(attempt, info.filename, deadline=self.deadline)
        except GaveUp as e:
            self.dead_members = self.dead_members + 1 if self._got == 0 else 0
            if self.dead_members >= DEAD_AFTER_MEMBERS:
                raise Unreachable(f"the server answers no data request ({self.dead_members} "
                                  f"members in a row, every attempt: {e})") from None
            raise
        self.dead_members = 0

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
            self._got += len(chunk)
            window_bytes += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
            now = time.monotonic()
            if window_bytes >= MIN_PROGRESS:
                window_start, window_bytes = now, 0
            elif now - window_start > self.stall_seconds:
                raise Retry(f"stalled: under {MIN_PROGRESS // 1024} KB in "
                            f"{self.stall_seconds} s (data.stall_seconds)")


_METHODS = {zipfile.ZIP_BZIP2: "BZIP2", zipfile.ZIP_LZMA: "LZMA"}


def check_compression(info: zipfile.ZipInfo) -> None:
    """Stored and deflate members only, local or remote alike (what ``zip`` writes by
    default, and what a Range client can inflate as it streams)."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        name = _METHODS.get(info.compress_type, f"method {info.compress_type}")
        raise Refused(f"compressed with {name}, which is not supported (only stored or "
                      "deflate members: re-zip with `zip -r`)")


def inflate_to(raw: Path, info: zipfile.ZipInfo, dest: Path, max_bytes: int) -> None:
    """Inflate a member's raw bytes into ``dest`` (renamed into place when complete), refusing
    it as soon as it grows past its declared size, and checking the CRC."""
    tmp = dest.with_name(dest.name + ".part")
    check_compression(info)
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
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
