"""Where videos come from: the built-in generator, a local folder, a local zip, or a zip over
HTTP(S) (``http_range``).

All of them list member names first and then fetch only the members selected, each into a
staging folder as a temp file renamed when complete (a local folder is read in place), so an
interrupted download resumes without fetching again what it already has.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from tqdm import tqdm

from ..choices import BuiltinStyle
from ..params import DataParams
from ..pool import map_videos
from .builtin import generator
from .http_range import (
    CHUNK,
    TRANSFER_ERRORS,
    RangeClient,
    Refused,
    Unreachable,
    check_compression,
    raise_if_local,
    short,
)
from .retry import DeadlineExceeded, GaveUp, Retry, with_retries
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

    def refused(self) -> list[dict]:
        """Members listed but never offered as videos (a duplicate name), with why."""
        ...

    def declared_bytes(self, videos: list[Video]) -> int | None:
        """What fetching ``videos`` will write, as declared before fetching (None: unknown)."""
        ...

    def expected_frames(self, member: str) -> int | None:
        """The frames a member must decode to, when the source knows (None: unknown)."""
        ...


class SourceUnreachable(DatasetError):
    """The source cannot be read at all (a dead server): staging is kept for a rerun."""


def staged_name(member: str) -> str:
    """The staging file of a member: keyed on its whole path, so two members with one file
    name in different folders never share a file; the real extension is kept."""
    suffix = Path(member.replace("\\", "/")).suffix.lower()
    return hashlib.sha1(member.encode()).hexdigest()[:20] + suffix


# A small text member (groups.csv) is read whole: refused past this size (13,320 UCF101
# videos take 0.5 MB), so a member that lies about its size cannot fill memory.
TEXT_MAX_BYTES = 16 * 2**20


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


class ZipSource:
    """A zip archive: local (``zipfile``) or remote (``http_range``: Range requests)."""

    def __init__(self, location: str, max_member_mb: int = 1024, stall_seconds: int = 60,
                 deadline: float | None = None):
        self.location = location
        self.max_bytes = max_member_mb * 2**20
        parsed = urlparse(location)
        self.remote = parsed.scheme in ("http", "https")
        self.path = unquote(parsed.path) if parsed.scheme == "file" else location
        if not self.remote:
            self.path = str(Path(self.path).expanduser())
        self._zip: zipfile.ZipFile | None = None
        self.duplicates: list[dict] = []
        self._client = (RangeClient(self.path, stall_seconds, deadline) if self.remote
                        else None)

    def describe(self) -> str:
        return f"{'remote' if self.remote else 'local'} zip {self.location}"

    def _open(self) -> zipfile.ZipFile:
        if self._zip is None:
            try:
                self._zip = self._client.listing() if self._client else zipfile.ZipFile(self.path)
            except (Unreachable, DeadlineExceeded) as e:
                raise SourceUnreachable(f"data.url: cannot read {self.location}: {e}") from None
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
        """Member names, each once: an archive may list one name twice (``zip`` appending to
        an archive does), and then its last copy is the one read, as ``unzip`` does; the
        duplicate is reported (``refused``)."""
        names = self._open().namelist()
        seen: set[str] = set()
        for name in names:
            if name in seen:
                self.duplicates.append({"member": name, "reason": (
                    "the archive lists this name more than once; its last copy is used")})
            seen.add(name)
        return list(dict.fromkeys(names))

    def refused(self) -> list[dict]:
        return self.duplicates

    def declared_bytes(self, videos: list[Video]) -> int | None:
        zf = self._open()
        return sum(zf.getinfo(v.member).file_size for v in videos)

    def expected_frames(self, member: str) -> int | None:
        return None

    def read_text(self, member: str) -> str | None:
        try:
            info = self._open().getinfo(member)
        except KeyError:
            return None
        if info.file_size > TEXT_MAX_BYTES:
            raise DatasetError(f"data.url: {member} declares {info.file_size} bytes, over the "
                               f"{TEXT_MAX_BYTES // 2**20} MB a list of groups may take")
        try:
            with self._open().open(info) as f:
                data = f.read(TEXT_MAX_BYTES + 1)
            return data.decode("utf-8-sig")
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
            check_compression(info)
            if self._client:
                self._client.fetch_member(info, dest, bar, self.max_bytes)
            else:
                self._fetch_local(info, dest, bar)
        except GaveUp as e:
            return str(e)
        except Refused as e:
            return f"refused: {e}"
        except (Unreachable, DeadlineExceeded) as e:
            raise SourceUnreachable(f"data.url: {self.location}: {e}") from None
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
                # A local file reads the same bytes every time: a bad CRC is final.
                bar.update(-done)
                tmp.unlink(missing_ok=True)
                raise Refused(f"corrupt member: {e}") from None
            except TRANSFER_ERRORS as e:
                bar.update(-done)
                tmp.unlink(missing_ok=True)
                raise_if_local(e)
                raise Retry(short(e)) from None

        with_retries(attempt, info.filename, between=self._reset)


class BuiltinSource:
    """The generated motion dataset; members are rendered on demand, in parallel."""

    def __init__(self, seed: int, style: BuiltinStyle, workers: int = 0):
        self.seed, self.style = seed, style
        self.workers = workers or os.cpu_count() or 1

    def describe(self) -> str:
        return f"built-in motion dataset ({self.style}, seed {self.seed})"

    def names(self) -> list[str]:
        return generator.member_names(self.seed, self.style)

    def read_text(self, member: str) -> str | None:
        return None

    def refused(self) -> list[dict]:
        return []

    def declared_bytes(self, videos: list[Video]) -> int | None:
        return None  # rendered here, a few hundred KB a clip

    def expected_frames(self, member: str) -> int | None:
        return generator.frame_count(member, self.seed)

    def fetch(self, videos: list[Video], staging: Path) -> tuple[dict[str, Path], list[dict]]:
        todo = [(v.member, self.seed, staging / staged_name(v.member), self.style) for v in videos
                if not (staging / staged_name(v.member)).exists()]
        for _ in map_videos(_render_to, todo, self.workers, "generate", chunksize=1):
            pass
        return {v.member: staging / staged_name(v.member) for v in videos}, []


def walk_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every file below ``root`` (its path below the root, its stat), following links to
    folders (users link data in), each real folder once. A folder that cannot be read is an
    error naming it: skipping it would silently drop a class, and the next class would take
    its place."""
    seen: set[tuple[int, int]] = set()
    unreadable: list[str] = []

    def note(e: OSError) -> None:
        unreadable.append(f"{e.filename}: {e.strerror or type(e).__name__}")

    for top, dirs, files in os.walk(root, onerror=note, followlinks=True):
        st = os.stat(top)
        if (st.st_dev, st.st_ino) in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        rel = Path(top).relative_to(root)
        dirs.sort()
        for f in sorted(files):
            try:
                fst = os.stat(Path(top) / f)
            except OSError:
                continue  # a dangling link
            if stat.S_ISREG(fst.st_mode):
                yield (rel / f).as_posix(), fst
    if unreadable:
        raise DatasetError(f"data.url: cannot read folder {unreadable[0]}"
                           + (f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1
                              else "") + "; fix its permissions or move it out")


def local_path(url: str) -> Path | None:
    """The local file or folder ``data.url`` names, or None for a URL over the network."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file") or re.match(r"^[A-Za-z]:", url):
        return Path(unquote(parsed.path) if parsed.scheme == "file" else url).expanduser()
    return None


class DirSource:
    """A local folder of videos (class folders or UCF101 names), read in place."""

    def __init__(self, location: str, path: Path):
        self.location, self.path = location, path

    def describe(self) -> str:
        return f"local folder {self.location}"

    def names(self) -> list[str]:
        return sorted(rel for rel, _ in walk_files(self.path))

    def refused(self) -> list[dict]:
        return []

    def declared_bytes(self, videos: list[Video]) -> int | None:
        total = 0
        for v in videos:  # copied into data/videos
            try:
                total += (self.path / v.member).stat().st_size
            except OSError:
                pass  # reported when it is fetched
        return total

    def expected_frames(self, member: str) -> int | None:
        return None

    def read_text(self, member: str) -> str | None:
        f = self.path / member
        try:
            if not f.is_file():
                return None
            if f.stat().st_size > TEXT_MAX_BYTES:
                raise DatasetError(f"data.url: {f} is over the {TEXT_MAX_BYTES // 2**20} MB a "
                                   "list of groups may take")
            return f.read_text(encoding="utf-8-sig")
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


def _render_to(job: tuple[str, int, Path, BuiltinStyle]) -> None:
    member, seed, dest, style = job
    tmp = dest.with_name(dest.stem + ".part.avi")  # OpenCV picks the container from the suffix
    generator.write_clip(member, seed, tmp, style)
    os.replace(tmp, dest)


def open_source(data: DataParams, workers: int = 0) -> Source:
    """The source named by the ``data`` params block."""
    if data.source == "builtin":
        return BuiltinSource(data.seed, data.builtin_style, workers)
    url = data.url
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file", "http", "https") and not re.match(r"^[A-Za-z]:", url):
        raise DatasetError(f"data.url: {parsed.scheme}:// is not supported (a local folder or "
                           "zip, file://, http:// or https://)")
    local = local_path(url)
    if local is not None and local.is_dir():
        return DirSource(url, local)
    deadline = (time.monotonic() + 60 * data.deadline_minutes) if data.deadline_minutes else None
    return ZipSource(url, data.max_member_mb, data.stall_seconds, deadline)


def staging_key(data: DataParams) -> str:
    """A folder name for the staging area of one source, so two sources never mix files."""
    if data.source == "builtin":
        # Clips staged by another version of the generator (any file of its package: the
        # context style, the class lists) must not be reused.
        code = hashlib.sha1(b"".join(f.read_bytes() for f in
                                     sorted(Path(generator.__file__).parent.glob("*.py")))
                            ).hexdigest()
        what = f"builtin-{data.builtin_style}-{data.seed}-{code}"
    else:
        what = data.url
    return hashlib.sha1(what.encode()).hexdigest()[:12]
