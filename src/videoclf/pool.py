"""The one process pool of the project: decode-bound work (probing, extracting, scoring)."""

from __future__ import annotations

import gc
import multiprocessing as mp
import signal
from collections.abc import Callable, Iterator

from tqdm import tqdm


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; the parent alone reports it and stops the pool,
    # instead of every worker printing a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def map_videos(func: Callable, jobs: list, workers: int, desc: str, chunksize: int = 4
               ) -> Iterator:
    """Yield ``func(job)`` in job order, over a process pool when ``workers`` > 1."""
    if workers <= 1 or len(jobs) <= 1:
        yield from tqdm(map(func, jobs), total=len(jobs), desc=desc, unit="video", leave=False,
                        disable=None)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    # Forked children share the parent's heap copy-on-write; frozen objects are never
    # visited by the children's garbage collector, so the pages stay shared.
    gc.freeze()
    try:
        with ctx.Pool(min(workers, len(jobs)), initializer=_ignore_sigint) as pool:
            yield from tqdm(pool.imap(func, jobs, chunksize=chunksize), total=len(jobs), desc=desc,
                            unit="video", leave=False, disable=None)
    finally:
        gc.unfreeze()
