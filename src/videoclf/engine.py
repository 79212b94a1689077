"""Where decode-bound work runs (``engine.*``): this machine's process pool (``pool.py``) or a
Ray cluster (``ray_engine.py``), behind one ``Engine.map``.

Every job a stage hands an engine names one video file by its ``path`` field, and results come
back in job order, so what the driver writes is the same bytes on either backend and for any
number of workers (tests/core/test_engine.py). On Ray the workers share no disk with the
driver: the engine ships each file's bytes through the object store and the job runs on a
copy of the file under the same name; ``shares_disk`` tells a stage whether a worker can
write the driver's files (local) or must send its result back (Ray).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from .errors import EngineError
from .params import EngineParams
from .pool import map_videos

__all__ = ["Engine", "EngineError", "LocalEngine", "open_engine"]


class Engine(Protocol):
    @property
    def shares_disk(self) -> bool:
        """Whether a job's worker can write the driver's files (the local pool)."""
        ...

    def describe(self) -> str:
        """What runs the work, for the stage's log line."""
        ...

    def map(self, func: Callable, jobs: Sequence, desc: str, chunksize: int = 4) -> Iterator:
        """Yield ``func(job)`` for every job, in job order."""
        ...


@dataclass(frozen=True)
class LocalEngine:
    """This machine's process pool of ``workers`` processes (0: one per core)."""

    workers: int = 0
    shares_disk: bool = True

    def describe(self) -> str:
        n = self.workers or os.cpu_count() or 1
        return f"{n} worker{'s' * (n != 1)}"

    def map(self, func: Callable, jobs: Sequence, desc: str, chunksize: int = 4) -> Iterator:
        return map_videos(func, list(jobs), self.workers or os.cpu_count() or 1, desc,
                          chunksize)


@contextmanager
def open_engine(params: EngineParams, stage: str, workers: int = 0) -> Iterator[Engine]:
    """The engine ``engine.*`` names, for one stage (named in its log lines). ``workers``:
    the local pool's size, and the CPUs of a Ray started on this machine."""
    if params.backend == "local":
        yield LocalEngine(workers)
        return
    from .ray_engine import RayEngine  # Ray is an extra: the local backend never imports it

    with RayEngine.connect(params.address, stage, workers) as engine:
        yield engine
