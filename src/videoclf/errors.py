"""The base of every failure a user can cause (params, data, network, video, model folder).

Stages and ``predict`` turn a ``VideoclfError`` into one line and a non-zero exit; anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class VideoclfError(Exception):
    """Something the user can fix: the message names it in one line."""


class EngineError(VideoclfError):
    """The engine of decode-bound work failed (no Ray cluster at the address, a node lost)."""
