"""The one retry loop of the data wing: an attempt that may fail in a way another attempt can
fix, repeated with exponential backoff, the last reason reported."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

ATTEMPTS = 5          # a transfer that breaks mid-way is tried this often
BACKOFF_SECONDS = 0.5  # first pause between attempts, doubled each time

T = TypeVar("T")


class Retry(Exception):
    """This attempt failed in a way that another may fix; the message is the reason."""


class GaveUp(Exception):
    """Every attempt failed: ``failed after N attempts: <last reason>``."""


class DeadlineExceeded(Exception):
    """The stage's overall deadline (``data.deadline_minutes``) passed."""


def with_retries(attempt: Callable[[], T], what: str, *,
                 between: Callable[[], None] | None = None,
                 deadline: float | None = None) -> T:
    """``attempt()`` until it returns; each ``Retry`` it raises is followed by ``between()``
    (reopen a connection, say) and a pause of ``backoff * 2**k`` seconds. Any other exception
    ends the loop at once (it is not a failure another attempt fixes). ``deadline``
    (``time.monotonic()``): no attempt starts after it (``DeadlineExceeded``)."""
    attempts, backoff = ATTEMPTS, BACKOFF_SECONDS  # read at call time (tests lower them)
    reason = ""
    for n in range(1, attempts + 1):
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceeded(f"{what}: the deadline (data.deadline_minutes) passed"
                                   + (f"; last: {reason}" if reason else ""))
        try:
            return attempt()
        except Retry as e:
            reason = str(e)
        if n == attempts:
            break
        log.debug("retrying %s (%s)", what, reason)
        if between is not None:
            between()
        time.sleep(backoff * 2 ** (n - 1))
    raise GaveUp(f"failed after {attempts} attempts: {reason}")
