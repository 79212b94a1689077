"""Where videos come from: the built-in generator, a local folder, a local zip, or a zip over
HTTP(S).

All of them list member names first and then fetch only the members selected, each into a
staging folder as a temp file renamed when complete (a local folder is read in place), so an
interrupted download resumes without fetching again what it already has.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import requests
import urllib3
from remotezip import RemoteZip, RemoteZipError
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

from . import builtin
from .dataset import DatasetError, Video
from .pool import map_videos

log = logging.getLogger(__name__)

MEMBER_ATTEMPTS = 5          # a member whose transfer breaks mid-way is fetched again this often
BACKOFF_SECONDS = 0.5        # first pause between attempts, doubled each time
CONNECT_TIMEOUT = 10         # seconds
MIN_PROGRESS = 16 * 1024     # bytes a transfer must make in every data.stall_seconds window
_CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header, 30 bytes
# Everything a broken transfer can raise: requests' and urllib3's own errors (a body cut
# mid-way raises urllib3's ProtocolError, which is neither), sockets, http.client.
TRANSFER_ERRORS = (RemoteZipError, requests.RequestException, urllib3.exceptions.HTTPError,
                   http.client.HTTPException, OSError, EOFError)


class _Transfer(Exception):
    """A transfer failed in a way that another attempt may fix."""


class _Refused(Exception):
    """A member that is never fetched (too large, or inflating past its declared size)."""


class Source(Protocol):
    """A data set: UCF101-named videos or class folders."""

    def names(self) -> list[str]: ...

    def read_text(self, member: str) -> str | None:
        """A small text member (``groups.csv``), or None if there is none."""
        ...

    def fetch(self, videos: list[Video], staging: Path) -> tuple[dict[str, Path], list[dict]]:
        """Fetch members into ``staging``; return paths by member and failures (member, reason)."""
        ...

    def describe(self) -> str: ...


def staged_name(member: str) -> str:
    """The staging file of a member: keyed on its whole path, so two members with one file
    name in different folders never share a file; the real extension is kept."""
    suffix = Path(member.replace("\\", "/")).suffix.lower()
    return hashlib.sha1(member.encode()).hexdigest()[:20] + suffix


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def _retrying_session() -> requests.Session:
    """HTTP session that retries connection errors, timeouts and 5xx answers with backoff."""
    retry = Retry(
        total=MEMBER_ATTEMPTS, connect=MEMBER_ATTEMPTS, read=MEMBER_ATTEMPTS,
        status=MEMBER_ATTEMPTS, other=MEMBER_ATTEMPTS,
        backoff_factor=BACKOFF_SECONDS, status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "videoclf (remotezip)"
    return session


class ZipSource:
    """A zip archive: local (``zipfile``) or remote (``remotezip`` range requests)."""

    def __init__(self, location: str, max_member_mb: int = 1024, stall_seconds: int = 60):
        self.location = location
        self.max_bytes = max_member_mb * 2**20
        self.stall_seconds = stall_seconds
        parsed = urlparse(location)
        self.remote = parsed.scheme in ("http", "https")
        if parsed.scheme == "file":
            self.path: str = unquote(parsed.path)
        else:
            self.path = location
        self._zip: zipfile.ZipFile | None = None
        self._session = _retrying_session() if self.remote else None

    def describe(self) -> str:
        return f"{'remote' if self.remote else 'local'} zip {self.location}"

    def _open(self) -> zipfile.ZipFile:
        if self._zip is None:
            try:
                if self.remote:
                    self._zip = self._remote_listing()
                else:
                    self._zip = zipfile.ZipFile(self.path)
            except _Transfer as e:
                raise DatasetError(f"data.url: cannot read {self.location}: {e}") from None
            except zipfile.BadZipFile:
                raise DatasetError(f"data.url: {self.location} is not a zip archive") from None
            except FileNotFoundError:
                raise DatasetError(f"data.url: {self.location}: no such file") from None
        return self._zip

    def _remote_listing(self) -> RemoteZip:
        """The central directory over HTTP, retried with backoff like every transfer."""
        reason = ""
        for attempt in range(1, MEMBER_ATTEMPTS + 1):
            try:
                return RemoteZip(self.path, session=self._session,
                                 timeout=(CONNECT_TIMEOUT, self.stall_seconds))
            except zipfile.BadZipFile:
                raise
            except RemoteZipError as e:
                if "404" in str(e) or "403" in str(e) or "not support" in str(e).lower():
                    raise _Transfer(_short(e)) from None  # retrying will not help
                reason = _short(e)
            except TRANSFER_ERRORS as e:
                reason = _short(e)
            log.debug("retrying the central directory of %s (%s)", self.location, reason)
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        raise _Transfer(f"failed after {MEMBER_ATTEMPTS} attempts: {reason}")

    def _reset(self) -> None:
        if self._zip is not None:
            try:
                self._zip.close()
            except Exception:  # a broken connection may fail to close; it is dropped anyway
                pass
        self._zip = None

    def names(self) -> list[str]:
        return self._open().namelist()

    def read_text(self, member: str) -> str | None:
        try:
            return self._open().read(member).decode("utf-8-sig")
        except KeyError:
            return None
        except (*TRANSFER_ERRORS, zipfile.BadZipFile) as e:
            raise DatasetError(f"data.url: cannot read {member}: {_short(e)}") from None
        except UnicodeDecodeError:
            raise DatasetError(f"data.url: {member} is not UTF-8 text") from None

    def fetch(self, videos: list[Video], staging: Path) -> tuple[dict[str, Path], list[dict]]:
        zf = self._open()
        infos = {v.member: zf.getinfo(v.member) for v in videos}
        paths: dict[str, Path] = {}
        failures: list[dict] = []
        total = sum(i.file_size for i in infos.values())
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                  desc="download", leave=False, disable=None) as bar:
            for v in videos:
                info = infos[v.member]
                dest = staging / staged_name(v.member)
                if max(info.file_size, info.compress_size) > self.max_bytes:
                    failures.append({"member": v.member, "reason": (
                        f"refused: declares {info.file_size / 2**20:.0f} MB, over "
                        f"data.max_member_mb ({self.max_bytes // 2**20})")})
                    bar.update(info.file_size)
                    continue
                if dest.exists() and dest.stat().st_size == info.file_size and _crc32(dest) == info.CRC:
                    bar.update(info.file_size)
                    paths[v.member] = dest
                    continue
                try:
                    if self.remote:
                        self._fetch_remote(info, dest, bar)
                    else:
                        self._fetch_one(info, dest, bar)
                    paths[v.member] = dest
                except _MemberFailed as e:
                    failures.append({"member": v.member, "reason": str(e)})
                except _Refused as e:
                    failures.append({"member": v.member, "reason": f"refused: {e}"})
        return paths, failures

    def _fetch_remote(self, info: zipfile.ZipInfo, dest: Path, bar: tqdm) -> None:
        """Fetch a member's raw (compressed) bytes with Range requests into ``<dest>.raw``,
        resuming from what is already there after any failure, then inflate and check them
        against the central directory's size and CRC. Every failure is retried with backoff
        up to MEMBER_ATTEMPTS times; the last reason is reported."""
        raw = dest.with_name(dest.name + ".raw")
        reason = ""
        for attempt in range(1, MEMBER_ATTEMPTS + 1):
            try:
                start = self._data_offset(info)
                raw.touch()
                have = raw.stat().st_size
                if have > info.compress_size:
                    raw.unlink()
                    have = 0
                if have < info.compress_size:
                    self._get_range(start + have, start + info.compress_size - 1, raw, bar)
                _inflate_to(raw, info, dest, self.max_bytes)
                raw.unlink(missing_ok=True)
                return
            except _Corrupt as e:
                raw.unlink(missing_ok=True)  # bad bytes: the next attempt starts over
                reason = str(e)
            except _Transfer as e:
                reason = str(e)
            except TRANSFER_ERRORS as e:
                reason = _short(e)
            if attempt == MEMBER_ATTEMPTS:
                raise _MemberFailed(f"failed after {attempt} attempts: {reason}")
            log.debug("retrying %s (%s)", info.filename, reason)
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))

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
        resp = self._session.get(self.path, headers={"Range": f"bytes={first}-{last}"},
                                 stream=True, timeout=(CONNECT_TIMEOUT, self.stall_seconds))
        try:
            if resp.status_code != 206:
                raise _Transfer(f"HTTP {resp.status_code} for a range request")
            got = 0
            window_start, window_bytes = time.monotonic(), 0
            sink = open(out, "ab") if isinstance(out, Path) else None
            try:
                while got < want:
                    chunk = resp.raw.read1(min(_CHUNK, want - got))
                    if not chunk:
                        raise _Transfer(f"short read: the server sent {got} of {want} bytes")
                    if sink:
                        sink.write(chunk)
                    else:
                        out += chunk
                    got += len(chunk)
                    window_bytes += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                    now = time.monotonic()
                    if window_bytes >= MIN_PROGRESS:
                        window_start, window_bytes = now, 0
                    elif now - window_start > self.stall_seconds:
                        raise _Transfer(f"stalled: under {MIN_PROGRESS // 1024} KB in "
                                        f"{self.stall_seconds} s (data.stall_seconds)")
            finally:
                if sink:
                    sink.close()
        finally:
            resp.close()

    def _fetch_one(self, info: zipfile.ZipInfo, dest: Path, bar: tqdm) -> None:
        tmp = dest.with_name(dest.name + ".part")
        for attempt in range(1, MEMBER_ATTEMPTS + 1):
            done = 0
            try:
                # ZipExtFile checks the CRC against the central directory at the end of the read.
                with self._open().open(info) as src, open(tmp, "wb") as out:
                    # ZipExtFile stops at the declared size, so a zip bomb never fills the
                    # disk; its CRC check then fails.
                    while chunk := src.read(_CHUNK):
                        done += len(chunk)
                        out.write(chunk)
                        bar.update(len(chunk))
                os.replace(tmp, dest)
                return
            except zipfile.BadZipFile as e:
                reason = f"corrupt member: {e}"
            except TRANSFER_ERRORS as e:
                reason = _short(e)
            bar.update(-done)
            tmp.unlink(missing_ok=True)
            if attempt == MEMBER_ATTEMPTS:
                raise _MemberFailed(f"failed after {attempt} attempts: {reason}")
            log.debug("retrying %s (%s)", info.filename, reason)
            self._reset()
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))


class BuiltinSource:
    """The generated motion dataset; members are rendered on demand, in parallel."""

    def __init__(self, seed: int, style: str, workers: int = 0):
        self.seed, self.style = seed, style
        self.workers = workers or os.cpu_count() or 1

    def describe(self) -> str:
        return f"built-in motion dataset ({self.style}, seed {self.seed})"

    def names(self) -> list[str]:
        return builtin.member_names(self.seed, self.style)

    def read_text(self, member: str) -> str | None:
        return None

    def fetch(self, videos: list[Video], staging: Path) -> tuple[dict[str, Path], list[dict]]:
        todo = [(v.member, self.seed, staging / staged_name(v.member), self.style) for v in videos
                if not (staging / staged_name(v.member)).exists()]
        for _ in map_videos(_render_to, todo, self.workers, "generate", chunksize=1):
            pass
        return {v.member: staging / staged_name(v.member) for v in videos}, []


class DirSource:
    """A local folder of videos (class folders or UCF101 names), read in place."""

    def __init__(self, location: str, path: Path):
        self.location, self.path = location, path

    def describe(self) -> str:
        return f"local folder {self.location}"

    def names(self) -> list[str]:
        try:
            return sorted(p.relative_to(self.path).as_posix()
                          for p in self.path.rglob("*") if p.is_file())
        except OSError as e:
            raise DatasetError(f"data.url: cannot list {self.location}: {_short(e)}") from None

    def read_text(self, member: str) -> str | None:
        f = self.path / member
        try:
            return f.read_text(encoding="utf-8-sig") if f.is_file() else None
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"data.url: cannot read {f}: {_short(e)}") from None

    def fetch(self, videos: list[Video], staging: Path) -> tuple[dict[str, Path], list[dict]]:
        paths, failures = {}, []
        for v in videos:
            f = self.path / v.member
            if os.access(f, os.R_OK):
                paths[v.member] = f
            else:
                failures.append({"member": v.member, "reason": "cannot read the file"})
        return paths, failures


def _render_to(job: tuple[str, int, Path, str]) -> None:
    member, seed, dest, style = job
    tmp = dest.with_name(dest.stem + ".part.avi")  # OpenCV picks the container from the suffix
    builtin.write_clip(member, seed, tmp, style)
    os.replace(tmp, dest)


class _MemberFailed(Exception):
    pass


class _Corrupt(Exception):
    pass


def _inflate_to(raw: Path, info: zipfile.ZipInfo, dest: Path, max_bytes: int) -> None:
    """Inflate a member's raw bytes into ``dest`` (renamed into place when complete), refusing
    it as soon as it grows past its declared size, and checking the CRC."""
    tmp = dest.with_name(dest.name + ".part")
    if info.compress_type == zipfile.ZIP_STORED:
        inflater = None
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
    else:
        raise _Refused(f"compression method {info.compress_type} is not supported")
    crc, size = 0, 0
    limit = min(info.file_size, max_bytes)
    try:
        with open(raw, "rb") as src, open(tmp, "wb") as out:
            while block := src.read(_CHUNK):
                data = inflater.decompress(block, limit - size + 1) if inflater else block
                if inflater and inflater.unconsumed_tail:
                    raise _Refused(f"inflates past its declared {info.file_size} bytes")
                size += len(data)
                if size > limit:
                    raise _Refused(f"inflates past its declared {info.file_size} bytes")
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


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def open_source(data: dict, workers: int = 0) -> Source:
    """The source named by the ``data`` params block."""
    if data["source"] == "builtin":
        return BuiltinSource(data["seed"], data["builtin_style"], workers)
    url = data["url"]
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path) if parsed.scheme == "file" else url).expanduser()
        if local.is_dir():
            return DirSource(url, local)
    return ZipSource(url, data["max_member_mb"], data["stall_seconds"])


def staging_key(data: dict) -> str:
    """A folder name for the staging area of one source, so two sources never mix files."""
    if data["source"] == "builtin":
        # Clips staged by another version of the generator must not be reused.
        code = hashlib.sha1(Path(builtin.__file__).read_bytes()).hexdigest()
        what = f"builtin-{data['builtin_style']}-{data['seed']}-{code}"
    else:
        what = data["url"]
    return hashlib.sha1(what.encode()).hexdigest()[:12]
