"""Load and validate ``params.yaml`` before any stage does work.

Every key is checked against one schema, so a typo, a wrong type or an out-of-range
value fails at once with a message that names the key (``ParamsError: frames.height: ...``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import yaml

UCF101_URL = "https://storage.googleapis.com/thumos14_files/UCF101_videos.zip"


class ParamsError(ValueError):
    """A value in params.yaml is missing, of the wrong type or out of range."""


def _int(lo: int | None = None, hi: int | None = None, multiple: int | None = None) -> Callable:
    def check(key: str, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ParamsError(f"{key}: expected an integer, got {v!r}")
        if lo is not None and v < lo:
            raise ParamsError(f"{key}: must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise ParamsError(f"{key}: must be <= {hi}, got {v}")
        if multiple and v % multiple:
            raise ParamsError(f"{key}: must be divisible by {multiple}, got {v}")
        return v

    return check


def _float(lo: float, hi: float) -> Callable:
    def check(key: str, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {v!r}")
        if not lo < v <= hi:
            raise ParamsError(f"{key}: must be in ({lo}, {hi}], got {v}")
        return float(v)

    return check


def _choice(*options: Any) -> Callable:
    def check(key: str, v: Any) -> Any:
        if v not in options:
            raise ParamsError(f"{key}: must be one of {', '.join(map(str, options))}; got {v!r}")
        return v

    return check


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ParamsError(f"{key}: expected true or false, got {v!r}")
    return v


def _str(key: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ParamsError(f"{key}: expected a non-empty string, got {v!r}")
    return v


def _filters(key: str, v: Any) -> list[int]:
    if not isinstance(v, list) or not v:
        raise ParamsError(f"{key}: expected a non-empty list of integers, got {v!r}")
    for i, f in enumerate(v):
        _int(1, 4096)(f"{key}[{i}]", f)
    return v


# Nested dicts mirror params.yaml; leaves are (checker, default).
SCHEMA: dict[str, Any] = {
    "data": {
        "source": (_choice("builtin", "url"), "builtin"),
        "url": (_str, UCF101_URL),
        "num_classes": (_int(2, 101), 10),
        "per_class": {
            "train": (_int(1), 30),
            "val": (_int(1), 10),
            "test": (_int(1), 10),
        },
        "split_by": (_choice("group", "file"), "group"),
        "layout": (_choice("auto", "ucf101", "folders"), "auto"),
        "min_decodable": (_float(0.0, 1.0), 0.5),
        "max_member_mb": (_int(1, 1 << 20), 1024),
        "stall_seconds": (_int(1, 3600), 60),
        "seed": (_int(0), 42),
    },
    "frames": {
        "n_frames": (_int(1, 512), 8),
        "frame_step": (_int(1, 100), 5),
        "height": (_int(16, 1024, multiple=16), 64),
        "width": (_int(16, 1024, multiple=16), 64),
        "short_video": (_choice("loop", "pad"), "loop"),
        "train_clips_per_video": (_int(1, 32), 1),
        "seed": (_int(0), 0),
        "workers": (_int(0, 256), 0),
        "shard_mb": (_int(1, 65536), 256),
    },
    "model": {
        "filters": (_filters, [16, 32, 64, 128]),
    },
    "train": {
        "epochs": (_int(1, 10000), 30),
        "batch_size": (_int(1, 4096), 8),
        "learning_rate": (_float(0.0, 1.0), 1e-3),
        "lr_schedule": (_choice("constant", "cosine"), "cosine"),
        "seed": (_int(0), 42),
        "augment": {"flip": (_bool, True)},
        "mixed_precision": (_choice("auto", True, False), "auto"),
        "jit_compile": (_choice("auto", True, False), "auto"),
        "distribute": (_choice("auto", "none", "mirrored", "multi_worker"), "auto"),
        "restore_best": (_bool, True),
        "early_stopping_patience": (_int(0, 10000), 0),
        "deterministic": (_bool, True),
    },
    "evaluate": {
        "clips_per_video": (_int(1, 32), 1),
    },
}


def _validate(schema: dict, given: Any, prefix: str) -> dict:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ParamsError(f"{prefix or 'params'}: expected a mapping, got {given!r}")
    unknown = sorted(set(given) - set(schema))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ParamsError(f"{where}: unknown key (known: {', '.join(sorted(schema))})")
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(spec, dict):
            out[name] = _validate(spec, given.get(name), key)
        else:
            check, default = spec
            out[name] = check(key, given[name]) if name in given else copy.deepcopy(default)
    return out


def validate(raw: Any) -> dict:
    """Return params with defaults filled in, or raise ParamsError naming the bad key."""
    params = _validate(SCHEMA, raw, "")
    n_blocks = len(params["model"]["filters"])
    div = 2**n_blocks
    for dim in ("height", "width"):
        if params["frames"][dim] % div:
            raise ParamsError(
                f"frames.{dim}: must be divisible by {div} (the model halves it {n_blocks} times), "
                f"got {params['frames'][dim]}"
            )
    return params


def load(path: str | Path = "params.yaml") -> dict:
    """Read and validate a params file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    return validate(raw)
