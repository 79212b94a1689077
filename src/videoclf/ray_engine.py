"""The Ray backend of ``engine.py``: each job a Ray task, the video's bytes shipped through the
object store, a fixed window of tasks in flight, results yielded in job order.

Workers share no disk with the driver: the driver reads each job's file and ``ray.put``s its
bytes; the task writes them under the same file name into a temporary folder of its own node
and runs the job on that copy (names matter: training clips' offsets are seeded by the video's
name), so a worker's decode failure is the same report as on the local pool. At most
``2 x CPUs`` tasks are in flight (their files and results, never the whole data set, in the
object store); the driver alone writes the stage's outputs. Tasks are spread over the nodes
(``SPREAD``), and Ray retries a task whose worker or node died.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .errors import EngineError

log = logging.getLogger(__name__)

CONNECT_SECONDS = 10  # an address that accepts no TCP connection in this long is no cluster
WINDOW = 2  # tasks in flight per CPU


def _run_on_worker(func: Callable, jobs: list, *data: bytes | None) -> tuple[list, str]:
    """The task: ``func`` on a node-local copy of each job's file (none where the driver could
    not read it: the job then reports the missing file as it would locally)."""
    import ray

    results = []
    with tempfile.TemporaryDirectory(prefix="videoclf-") as folder:
        for i, (job, blob) in enumerate(zip(jobs, data)):
            copy = Path(folder) / str(i) / Path(job.path).name
            copy.parent.mkdir()
            if blob is not None:
                copy.write_bytes(blob)
            results.append(func(replace(job, path=copy)))
            copy.unlink(missing_ok=True)
    return results, ray.get_runtime_context().get_node_id()


def _warm() -> str:
    """Start a worker and load the decoder in it before the first job is timed or queued."""
    import ray

    from . import video  # noqa: F401  (OpenCV, NumPy)

    return ray.get_runtime_context().get_node_id()


def _read(path: Path) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _check_reachable(address: str) -> None:
    """Fail in one line, at once, where nothing listens at ``host:port`` (ray.init would wait
    a minute or more inside its GCS client)."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as e:
        raise EngineError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one "
                          "with `ray start --head` or set engine.address") from None


def _init(address: str, workers: int) -> None:
    import ray

    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, **quiet)
        else:  # "local": a new Ray on this machine, even where another one runs
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1,
                     include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as e:
        hint = ("; a cluster that `ray start --head` began with token authentication (Ray's "
                "default) also needs RAY_AUTH_MODE=token here" if address
                and os.environ.get("RAY_AUTH_MODE") != "token" else "")
        raise EngineError(f"cannot connect to Ray at {address or 'this machine'}: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
                          f"{hint}") from None


@dataclass
class RayEngine:
    """Ray tasks on the cluster at ``address`` (``""``: a Ray started here and stopped after)."""

    address: str
    stage: str
    cpus: int
    shares_disk: bool = False
    nodes_used: Counter = field(default_factory=Counter)

    @classmethod
    @contextmanager
    def connect(cls, address: str, stage: str, workers: int = 0) -> Iterator[RayEngine]:
        import ray

        _init(address, workers)
        try:
            where = ray.get_runtime_context().gcs_address
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            cpus = int(ray.cluster_resources().get("CPU", 0))
            log.info("%s: Ray at %s, %d node%s, %d CPUs", stage, where, len(nodes),
                     "s" * (len(nodes) != 1), cpus)
            engine = cls(address or where, stage, max(cpus, 1))
            warm = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_warm)
            ray.get([warm.remote() for _ in range(engine.cpus)])
            yield engine
            if engine.nodes_used:
                log.info("%s: Ray ran %d job(s) on %d node(s)", stage,
                         sum(engine.nodes_used.values()), len(engine.nodes_used))
        finally:
            ray.shutdown()

    def describe(self) -> str:
        return f"Ray tasks on {self.cpus} CPUs"

    def map(self, func: Callable, jobs: Sequence, desc: str, chunksize: int = 4) -> Iterator:
        import ray
        from ray.exceptions import RayError, RayTaskError

        task = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_run_on_worker)
        chunks = [list(jobs[i : i + chunksize]) for i in range(0, len(jobs), chunksize)]
        todo = iter(chunks)
        pending: deque = deque()

        def submit(n: int) -> None:
            for chunk in (c for _, c in zip(range(n), todo)):
                data = [ray.put(_read(job.path)) for job in chunk]
                pending.append(task.remote(func, chunk, *data))

        try:
            submit(WINDOW * self.cpus)
            with tqdm(total=len(jobs), desc=desc, unit="video", leave=False, disable=None) as bar:
                for _ in chunks:
                    results, node = ray.get(pending.popleft())
                    self.nodes_used[node] += len(results)
                    submit(1)
                    bar.update(len(results))
                    yield from results
        except RayTaskError:
            raise  # the job's own exception (also an instance of its cause): as locally
        except RayError as e:
            raise EngineError(f"the Ray cluster at {self.address} failed: "
                              f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
        finally:
            for ref in pending:  # Ctrl-C, an error, or a consumer that stopped early
                if ray.is_initialized():
                    ray.cancel(ref, force=True)
