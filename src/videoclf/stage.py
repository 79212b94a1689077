"""What every stage script shares: logging, params validated before any work, clean errors."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Callable

from .dataset import DatasetError
from .params import ParamsError, load


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    for noisy in ("absl", "tensorflow", "urllib3", "matplotlib", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(name: str, body: Callable[[dict], object], params_file: str | Path = "params.yaml") -> None:
    """Run one stage: load and check params, call ``body(params)``, exit 1 with one line on error."""
    setup_logging()
    log = logging.getLogger(f"videoclf.{name}")
    try:
        params = load(params_file)
    except ParamsError as e:
        log.error("%s: bad params: %s", name, e)
        sys.exit(2)
    t0 = time.perf_counter()
    try:
        body(params)
    except (DatasetError, FileNotFoundError) as e:
        log.error("%s: error: %s", name, e)
        sys.exit(1)
    log.info("%s: done in %.1f s", name, time.perf_counter() - t0)
