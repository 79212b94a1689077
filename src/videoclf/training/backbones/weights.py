"""The weights stage's work: the image backbone's weights file (``model.appearance_weights``)
fetched once into the weights folder, its hash checked, and the file checked to load into
the backbone it is named for; then train starts the network from it.

Weights are data: DVC caches the folder (a clean clone pulls it from a remote), and the
stage keeps a file already there whose hash says it is the one asked for, so it fetches
nothing on a rerun and nothing offline once the file is in place. ``imagenet`` is the
library's own file, fetched from the library's origin and checked against the library's
hash (``keras.utils.get_file``, as ``keras.applications`` does); a URL (``http(s)://``,
``file://``) goes through the same fetcher, checked against
``model.appearance_weights_sha256`` when given; a local path is copied.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from ...artifacts import WEIGHTS_INFO, WeightsInfo, read_weights
from ...errors import VideoclfError
from ...outputs import write_json

log = logging.getLogger(__name__)

URL_SCHEMES = ("http://", "https://", "file://")
# The size the weights are checked to load at: a conv net's weights do not depend on it.
_CHECK_SIZE = 64


class WeightsError(VideoclfError):
    """The weights asked for cannot be had, or are not the backbone's."""


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def _matches(path: Path, want: str | None) -> bool:
    """Whether ``path`` has the hash ``want`` (MD5 or SHA-256, by its length)."""
    if not path.is_file():
        return False
    return want is None or file_digest(path, "md5" if len(want) == 32 else "sha256") == want


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """urllib (which ``keras.utils.get_file`` uses) waits forever on a server that stops
    sending; a default socket timeout makes such a stall an error."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _fetch(origin: str, want: str | None, dest: Path, stall_seconds: float) -> None:
    """``origin`` to ``dest`` through ``keras.utils.get_file`` into a folder beside it, then
    renamed: a refused hash, a short transfer or a stall leaves nothing at ``dest``."""
    from ..._tf import keras

    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        try:
            with _socket_timeout(stall_seconds):
                got = keras.utils.get_file(dest.name, origin, file_hash=want, cache_dir=tmp,
                                           cache_subdir=".")
        except ValueError as e:  # the hash
            raise WeightsError(f"weights: {origin}: {e}") from None
        except Exception as e:  # urllib's errors, wrapped by get_file as plain Exceptions
            raise WeightsError(
                f"weights: cannot fetch {origin} ({str(e).splitlines()[0][:200]}); without a "
                f"network, download it elsewhere and put it at {dest}, or set "
                "model.appearance_weights to a local copy") from None
        Path(got).replace(dest)


def check_loads(path: Path, backbone: str) -> None:
    """Refuse, in one line, a file that is not weights of ``backbone`` (another network's,
    a truncated or damaged file)."""
    from .applications import image_backbone

    net = image_backbone(backbone).build(_CHECK_SIZE, _CHECK_SIZE)
    load_into(net, path, backbone)


def load_into(net, path: Path, backbone: str) -> None:
    """``net.load_weights(path)``, every failure one line naming the file."""
    with warnings.catch_warnings():  # Keras warns per layer before it raises
        warnings.simplefilter("ignore")
        try:
            net.load_weights(str(path))
        except Exception as e:
            first = (str(e).splitlines() or [type(e).__name__])[0][:160]
            raise WeightsError(f"model.appearance_weights: {path} is not weights of "
                               f"{backbone} (include_top=False): {first}") from None


def _origin(source: str, backbone: str, sha256: str) -> tuple[str, str | None, str]:
    """Where the file comes from, the hash it must have, and its file name."""
    from .applications import image_backbone  # TensorFlow loads only for a file

    spec = image_backbone(backbone)
    if source == "imagenet":
        return spec.imagenet_url, spec.imagenet_md5, spec.imagenet_file
    name = source.rstrip("/").rsplit("/", 1)[-1]
    if not name.endswith(".h5"):
        raise WeightsError(f"model.appearance_weights: {source}: expected a Keras weights "
                           "file (.weights.h5, or the library's .h5)")
    return source, sha256 or None, name


def prepare_weights(out_dir: Path, backbone: str, source: str, sha256: str,
                    stall_seconds: float) -> WeightsInfo:
    """The weights folder for ``model.appearance_backbone`` and ``appearance_weights``
    (``source``): the file and ``weights.json``; only the record for ``none``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if backbone == "r2plus1d" or source == "none":
        return _keep_only(out_dir, WeightsInfo(backbone, source))
    origin, want, name = _origin(source, backbone, sha256)
    dest = out_dir / name
    local = not origin.startswith(URL_SCHEMES)
    if local and not Path(origin).is_file():
        raise WeightsError(f"model.appearance_weights: {origin}: no such file")
    if _unchanged(out_dir, backbone, source, dest, want, Path(origin) if local else None):
        log.info("weights: %s for %s unchanged (%s)", name, backbone, dest)
        return read_weights(out_dir)[0]
    if local:
        shutil.copyfile(origin, dest.with_suffix(".part"))
        dest.with_suffix(".part").replace(dest)
        if want and not _matches(dest, want):
            dest.unlink()
            raise WeightsError(f"model.appearance_weights: {origin}: its SHA-256 is not "
                               f"model.appearance_weights_sha256 {want}")
    elif not (want and _matches(dest, want)):  # a file placed by hand with the wanted hash
        log.info("weights: fetching %s", origin)
        _fetch(origin, want, dest, stall_seconds)
    try:
        check_loads(dest, backbone)
    except WeightsError:
        dest.unlink()
        raise
    sha = file_digest(dest)
    info = WeightsInfo(backbone, source, origin, name, sha)
    log.info("weights: %s for %s, SHA-256 %s, in %s", name, backbone, sha[:12], out_dir)
    return _keep_only(out_dir, info)


def _unchanged(out_dir: Path, backbone: str, source: str, dest: Path, want: str | None,
               local: Path | None) -> bool:
    """Whether the folder already holds exactly this: the same record, the file with the
    recorded SHA-256 (and the wanted hash), and for a local source the same bytes."""
    try:
        info, path = read_weights(out_dir)
    except VideoclfError:
        return False
    if (info.backbone, info.source, path) != (backbone, source, dest) or not info.sha256:
        return False
    if not _matches(dest, info.sha256) or not _matches(dest, want):
        return False
    return local is None or file_digest(local) == info.sha256


def _keep_only(out_dir: Path, info: WeightsInfo) -> WeightsInfo:
    """Write the record; remove every other file of the folder (another backbone's)."""
    for f in out_dir.iterdir():
        if f.name not in (WEIGHTS_INFO, info.file):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    write_json(out_dir / WEIGHTS_INFO, info.to_dict())
    return info
