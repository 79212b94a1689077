"""Where videos come from: the built-in generator, a local folder, a local zip, or a zip over
HTTP(S) (``http_range``).

All of them list member names first and then fetch only the members selected, each into a
staging folder as a temp file renamed when complete (a local folder is read in place), so an
interrupted download resumes without fetching again what it already has.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from tqdm import tqdm

from ..params import DataParams
from ..pool import map_videos
from . import builtin
from .http_range import CHUNK, TRANSFER_ERRORS, RangeClient, Refused, Unreachable, short
from .retry import GaveUp, Retry, with_retries
from .splits import DatasetError, Video


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
        while chunk := f.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


class ZipSource:
    """A zip archive: local (``zipfile``) or remote (``http_range``: Range requests)."""

    def __init__(self, location: str, max_member_mb: int = 1024, stall_seconds: int = 60):
        self.location = location
        self.max_bytes = max_member_mb * 2**20
        parsed = urlparse(location)
        self.remote = parsed.scheme in ("http", "https")
        self.path = unquote(parsed.path) if parsed.scheme == "file" else location
        self._zip: zipfile.ZipFile | None = None
        self._client = RangeClient(self.path, stall_seconds) if self.remote else None

    def describe(self) -> str:
        return f"{'remote' if self.remote else 'local'} zip {self.location}"

    def _open(self) -> zipfile.ZipFile:
        if self._zip is None:
            try:
                self._zip = self._client.listing() if self._client else zipfile.ZipFile(self.path)
            except Unreachable as e:
                raise DatasetError(f"data.url: cannot read {self.location}: {e}") from None
            except zipfile.BadZipFile:
                raise DatasetError(f"data.url: {self.location} is not a zip archive") from None
            except FileNotFoundError:
                raise DatasetError(f"data.url: {self.location}: no such file") from None
        return self._zip

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
            raise DatasetError(f"data.url: cannot read {member}: {short(e)}") from None
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
                problem = self._fetch(infos[v.member], staging / staged_name(v.member), bar)
                if problem:
                    failures.append({"member": v.member, "reason": problem})
                else:
                    paths[v.member] = staging / staged_name(v.member)
        return paths, failures

    def _fetch(self, info: zipfile.ZipInfo, dest: Path, bar: tqdm) -> str | None:
        """Fetch one member into ``dest`` unless it is already there whole; the reason it
        could not be, or None."""
        if max(info.file_size, info.compress_size) > self.max_bytes:
            bar.update(info.file_size)
            return (f"refused: declares {info.file_size / 2**20:.0f} MB, over "
                    f"data.max_member_mb ({self.max_bytes // 2**20})")
        if dest.exists() and dest.stat().st_size == info.file_size and _crc32(dest) == info.CRC:
            bar.update(info.file_size)
            return None
        try:
            if self._client:
                self._client.fetch_member(info, dest, bar, self.max_bytes)
            else:
                self._fetch_local(info, dest, bar)
        except GaveUp as e:
            return str(e)
        except Refused as e:
            return f"refused: {e}"
        return None

    def _fetch_local(self, info: zipfile.ZipInfo, dest: Path, bar: tqdm) -> None:
        tmp = dest.with_name(dest.name + ".part")

        def attempt() -> None:
            done = 0
            try:
                # ZipExtFile checks the CRC against the central directory at the end of the
                # read, and stops at the declared size, so a zip bomb never fills the disk.
                with self._open().open(info) as src, open(tmp, "wb") as out:
                    while chunk := src.read(CHUNK):
                        done += len(chunk)
                        out.write(chunk)
                        bar.update(len(chunk))
                os.replace(tmp, dest)
                return
            except zipfile.BadZipFile as e:
                reason = f"corrupt member: {e}"
            except TRANSFER_ERRORS as e:
                reason = short(e)
            bar.update(-done)
            tmp.unlink(missing_ok=True)
            raise Retry(reason)

        with_retries(attempt, info.filename, between=self._reset)


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
            raise DatasetError(f"data.url: cannot list {self.location}: {short(e)}") from None

    def read_text(self, member: str) -> str | None:
        f = self.path / member
        try:
            return f.read_text(encoding="utf-8-sig") if f.is_file() else None
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"data.url: cannot read {f}: {short(e)}") from None

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


def open_source(data: DataParams, workers: int = 0) -> Source:
    """The source named by the ``data`` params block."""
    if data.source == "builtin":
        return BuiltinSource(data.seed, data.builtin_style, workers)
    url = data.url
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path) if parsed.scheme == "file" else url).expanduser()
        if local.is_dir():
            return DirSource(url, local)
    return ZipSource(url, data.max_member_mb, data.stall_seconds)


def staging_key(data: DataParams) -> str:
    """A folder name for the staging area of one source, so two sources never mix files."""
    if data.source == "builtin":
        # Clips staged by another version of the generator must not be reused.
        code = hashlib.sha1(Path(builtin.__file__).read_bytes()).hexdigest()
        what = f"builtin-{data.builtin_style}-{data.seed}-{code}"
    else:
        what = data.url
    return hashlib.sha1(what.encode()).hexdigest()[:12]
