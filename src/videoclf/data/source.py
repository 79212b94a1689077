"""The source stage: a cheap fingerprint of what ``data.url`` holds, so that ``dvc repro``
reruns download when the videos change and skips it when they do not.

DVC runs this stage every time (``always_changed``) and reruns download only when the
fingerprint file's hash changes. What it reads, never the videos' bytes:

- a local folder (``data.fingerprint``): ``stat``, every file's path, size, modification
  time, change time and inode (``readers.walk_files``: links followed, unreadable folders an
  error), as one SHA-256: ``touch -r`` restores a replaced file's mtime but cannot set its
  ctime, and a file replaced by a rename has another inode, so a same-size, same-mtime
  replacement is seen (copying or restoring the folder elsewhere also changes them: download
  then reruns once); ``content``, the SHA-256 of every file's bytes (certain, and it reads
  everything: README gives the cost per GB);
- a local zip: its central directory (names, sizes, CRCs), as one SHA-256;
- a zip over HTTP: the server's ``ETag``, ``Last-Modified`` and ``Content-Length``; when the
  server cannot be reached, the last fingerprint is kept (with a warning), so an offline
  ``dvc repro`` of a later stage does not rerun download;
- the built-in set: nothing to read (download depends on the generator's code already).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import zipfile
from pathlib import Path
from typing import Any

from ..choices import Fingerprint
from ..outputs import write_json
from ..params import DataParams
from .http_range import CONNECT_TIMEOUT, TRANSFER_ERRORS, retrying_session, short
from .readers import local_path, walk_files
from .splits import DatasetError

log = logging.getLogger(__name__)


def fingerprint(data: DataParams) -> dict[str, Any]:
    """What identifies the content of the source ``data`` names (JSON-able)."""
    if data.source == "builtin":
        return {"source": "builtin"}
    local = local_path(data.url)
    if local is not None and local.is_dir():
        return {"source": "folder", "url": data.url, **_folder(local, data.fingerprint)}
    if local is not None:
        return {"source": "zip", "url": data.url, **_zip(local)}
    return {"source": "http", "url": data.url, **_http(data.url, data.stall_seconds)}


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _folder(root: Path, how: Fingerprint) -> dict[str, Any]:
    h = hashlib.sha256()
    n = size = 0
    for rel, st in walk_files(root):
        if how == "content":
            h.update(f"{rel}\0{st.st_size}\0{_file_sha256(root / rel)}\n".encode())
        else:
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0"
                     f"{st.st_ino}\n".encode())
        n, size = n + 1, size + st.st_size
    key = "content_sha256" if how == "content" else "listing_sha256"
    return {"files": n, "bytes": size, key: h.hexdigest()}


def _zip(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except FileNotFoundError:
        raise DatasetError(f"data.url: {path}: no such file") from None
    except zipfile.BadZipFile:
        raise DatasetError(f"data.url: {path} is not a zip archive") from None
    h = hashlib.sha256()
    for i in infos:
        h.update(f"{i.filename}\0{i.file_size}\0{i.CRC}\n".encode())
    return {"members": len(infos), "bytes": path.stat().st_size,
            "directory_sha256": h.hexdigest()}


def _http(url: str, stall_seconds: int) -> dict[str, Any]:
    session = retrying_session()
    resp = session.head(url, allow_redirects=True, timeout=(CONNECT_TIMEOUT, stall_seconds))
    if resp.status_code >= 400:
        raise OSError(f"HTTP {resp.status_code}")
    return {k.lower(): resp.headers.get(k, "") for k in ("ETag", "Last-Modified",
                                                          "Content-Length")}


def write_fingerprint(data: DataParams, out: Path) -> dict[str, Any]:
    """Write the fingerprint to ``out`` (its bytes change only when the source does)."""
    t0 = time.perf_counter()
    try:
        fp = fingerprint(data)
    except TRANSFER_ERRORS as e:
        old = _previous(out, data.url)
        if old is None:
            raise DatasetError(f"data.url: cannot reach {data.url} to see whether it changed "
                               f"({short(e)})") from None
        log.warning("source: cannot reach %s (%s); keeping its last fingerprint, so download "
                    "is not rerun", data.url, short(e))
        return old
    if _previous(out, data.url) != fp:
        write_json(out, fp)
    what = ", ".join(f"{k} {v}" for k, v in fp.items() if k in ("files", "members", "bytes"))
    log.info("source: %s%s in %.1f s", data.url if data.source == "url" else "built-in",
             f" ({what})" if what else "", time.perf_counter() - t0)
    return fp


def write_unlabeled_fingerprint(data: DataParams, out: Path) -> dict[str, Any]:
    """The same for ``data.unlabeled_url`` (the pretrain stage's videos), ``{"source": "none"}``
    when there is none: pretrain reruns when it changes, download does not."""
    if not data.unlabeled_url:
        if _previous(out, "") != {"source": "none"}:
            write_json(out, {"source": "none"})
        return {"source": "none"}
    as_source = dataclasses.replace(data, source="url", url=data.unlabeled_url)
    try:
        return write_fingerprint(as_source, out)
    except DatasetError as e:
        raise DatasetError(str(e).replace("data.url", "data.unlabeled_url")) from None


def _previous(out: Path, url: str) -> dict[str, Any] | None:
    try:
        old = json.loads(Path(out).read_text())
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) and old.get("url", url) == url else None
