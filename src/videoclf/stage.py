"""What every stage script shares: its paths from the command line (as ``dvc.yaml`` writes
them), params checked before any work, outputs checked writable before any work, and every
failure a user can cause turned into one line and a non-zero exit.

Exit codes: 0 done, 1 an error named in one line, 2 bad params or arguments, 130 interrupted
(Ctrl-C). A traceback means a bug in videoclf.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import VideoclfError
from .params import Params, ParamsError, load

log = logging.getLogger("videoclf")


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    for noisy in ("absl", "tensorflow", "matplotlib", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # urllib3 warns on every retry ("Retrying (Retry(total=4...)) after connection broken");
    # the download stage reports what its retries came to, once per member.
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def os_error_line(e: OSError) -> str:
    """``Permission denied: data/videos`` rather than ``[Errno 13] ...`` and a traceback."""
    what = e.strerror or type(e).__name__
    where = e.filename if e.filename is not None else ""
    return f"{what}: {where}" if where else str(e) or what


def unwritable(path: Path, folder: bool = True) -> str | None:
    """Why ``path`` (a folder, or a file with ``folder=False``) cannot be (re)written, or
    None. Outputs are staged beside ``path`` and renamed, so its parent folder (the nearest
    one that exists) must be writable."""
    path = Path(path)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write in {parent} (permission denied)"
    if folder and path.exists() and not path.is_dir():
        return f"{path} exists and is not a folder"
    if not folder and path.is_dir():
        return f"{path} is a folder where a file is written"
    if path.exists() and not os.access(path, os.W_OK | (os.X_OK if folder else 0)):
        return f"cannot replace {path} (permission denied)"
    return None


def run(name: str, body: Callable[[Params, argparse.Namespace], object], *,
        inputs: Sequence[str] = (), outputs: Sequence[str] = (),
        params_file: str | Path = "params.yaml", argv: Sequence[str] | None = None) -> None:
    """Run one stage: ``stages/<name>.py INPUT... OUTPUT...`` (paths in that order, as named),
    then ``body(params, args)`` with each path as ``args.<name>``. Outputs are folders, but
    for a name with a suffix (``throughput.json``): a file."""
    ap = argparse.ArgumentParser(prog=f"stages/{name}.py",
                                 description=f"The {name} stage (run it with `dvc repro`).")
    for arg in (*inputs, *outputs):
        ap.add_argument(arg, type=Path)
    args = ap.parse_args(argv)
    setup_logging()
    try:
        params = load(params_file)
    except ParamsError as e:
        log.error("%s: bad params: %s", name, e)
        sys.exit(2)
    for arg in outputs:
        path = getattr(args, arg)
        why = unwritable(path, folder=not path.suffix)
        if why:
            log.error("%s: error: %s", name, why)
            sys.exit(1)
    t0 = time.perf_counter()
    try:
        body(params, args)
    except VideoclfError as e:
        log.error("%s: error: %s", name, e)
        sys.exit(1)
    except OSError as e:  # disk full, permissions changed mid-run, a path that is a folder
        log.error("%s: error: %s", name, os_error_line(e))
        sys.exit(1)
    except KeyboardInterrupt:
        # Under `dvc repro` the old outputs were removed before the stage started (DVC does
        # that); outside DVC they are left as they were.
        log.error("%s: interrupted; no new output was written (under dvc repro, the old "
                  "outputs were removed before the stage ran: `dvc checkout` restores them)",
                  name)
        sys.exit(130)
    log.info("%s: done in %.1f s", name, time.perf_counter() - t0)
