"""Where videos come from: the built-in generator, a local folder, a local zip, or a zip over
HTTP(S).

All of them list member names first and then fetch only the members selected, each into a
staging folder as a temp file renamed when complete (a local folder is read in place), so an
interrupted download resumes without fetching again what it already has.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import requests
from remotezip import RemoteZip, RemoteZipError
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

from . import builtin
from .dataset import DatasetError, Video

log = logging.getLogger(__name__)

MEMBER_ATTEMPTS = 5          # a member whose transfer breaks mid-way is fetched again this often
BACKOFF_SECONDS = 0.5        # first pause between attempts, doubled each time
TIMEOUT = (10, 60)           # connect, read (seconds)
_CHUNK = 1 << 20


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

    def __init__(self, location: str):
        self.location = location
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
                    self._zip = RemoteZip(self.path, session=self._session, timeout=TIMEOUT)
                else:
                    self._zip = zipfile.ZipFile(self.path)
            except (RemoteZipError, requests.RequestException) as e:
                raise DatasetError(f"data.url: cannot read {self.location}: {_short(e)}") from None
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
        except (RemoteZipError, requests.RequestException, OSError, zipfile.BadZipFile) as e:
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
                if dest.exists() and dest.stat().st_size == info.file_size and _crc32(dest) == info.CRC:
                    bar.update(info.file_size)
                    paths[v.member] = dest
                    continue
                try:
                    self._fetch_one(info, dest, bar)
                    paths[v.member] = dest
                except _MemberFailed as e:
                    failures.append({"member": v.member, "reason": str(e)})
        return paths, failures

    def _fetch_one(self, info: zipfile.ZipInfo, dest: Path, bar: tqdm) -> None:
        tmp = dest.with_name(dest.name + ".part")
        for attempt in range(1, MEMBER_ATTEMPTS + 1):
            done = 0
            try:
                # ZipExtFile checks the CRC against the central directory at the end of the read.
                with self._open().open(info) as src, open(tmp, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        bar.update(len(chunk))
                os.replace(tmp, dest)
                return
            except zipfile.BadZipFile as e:
                reason = f"corrupt member: {e}"
            except (RemoteZipError, requests.RequestException, OSError, EOFError) as e:
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

    def __init__(self, seed: int, workers: int = 0):
        self.seed = seed
        self.workers = workers or os.cpu_count() or 1

    def describe(self) -> str:
        return f"built-in motion dataset (seed {self.seed})"

    def names(self) -> list[str]:
        return builtin.member_names(self.seed)

    def read_text(self, member: str) -> str | None:
        return None

    def fetch(self, videos: list[Video], staging: Path) -> tuple[dict[str, Path], list[dict]]:
        todo = [v for v in videos if not (staging / staged_name(v.member)).exists()]
        if todo:
            with ProcessPoolExecutor(self.workers) as pool, tqdm(
                total=len(todo), unit="clip", desc="generate", leave=False, disable=None
            ) as bar:
                jobs = [pool.submit(_render_to, v.member, self.seed, staging / staged_name(v.member))
                        for v in todo]
                for job in jobs:
                    job.result()
                    bar.update()
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


def _render_to(member: str, seed: int, dest: Path) -> None:
    tmp = dest.with_name(dest.stem + ".part.avi")  # OpenCV picks the container from the suffix
    builtin.write_clip(member, seed, tmp)
    os.replace(tmp, dest)


class _MemberFailed(Exception):
    pass


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def open_source(data: dict, workers: int = 0) -> Source:
    """The source named by the ``data`` params block."""
    if data["source"] == "builtin":
        return BuiltinSource(data["seed"], workers)
    url = data["url"]
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path) if parsed.scheme == "file" else url).expanduser()
        if local.is_dir():
            return DirSource(url, local)
    return ZipSource(url)


def staging_key(data: dict) -> str:
    """A folder name for the staging area of one source, so two sources never mix files."""
    if data["source"] == "builtin":
        # Clips staged by another version of the generator must not be reused.
        code = hashlib.sha1(Path(builtin.__file__).read_bytes()).hexdigest()
        what = f"builtin-{data['seed']}-{code}"
    else:
        what = data["url"]
    return hashlib.sha1(what.encode()).hexdigest()[:12]
