"""Load and validate ``params.yaml`` before any stage does work.

Every key is checked against one schema, so a typo, a missing key, a wrong type or an
out-of-range value fails at once with a message that names the key
(``ParamsError: frames.height: ...``). ``params.yaml`` is the only place values are set.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import VideoclfError



class ParamsError(VideoclfError, ValueError):
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


def _optional_str(key: str, v: Any) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise ParamsError(f"{key}: expected a path or nothing, got {v!r}")
    return v


def _filters(key: str, v: Any) -> list[int]:
    if not isinstance(v, list) or not v:
        raise ParamsError(f"{key}: expected a non-empty list of integers, got {v!r}")
    for i, f in enumerate(v):
        _int(1, 4096)(f"{key}[{i}]", f)
    return v


def _pairs(key: str, v: Any) -> list[list[str]]:
    if not isinstance(v, list):
        raise ParamsError(f"{key}: expected a list of [ClassA, ClassB] pairs, got {v!r}")
    seen: set[str] = set()
    for i, pair in enumerate(v):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(c, str) and c for c in pair) or pair[0] == pair[1]):
            raise ParamsError(f"{key}[{i}]: expected [ClassA, ClassB] (two different class "
                              f"names), got {pair!r}")
        twice = seen & set(pair)
        if twice:
            raise ParamsError(f"{key}[{i}]: {sorted(twice)[0]} is already in another pair")
        seen |= set(pair)
    return v


# Nested dicts mirror params.yaml; leaves check one value. There are no defaults here:
# params.yaml is the one place a value is set, and every key must be in it.
SCHEMA: dict[str, Any] = {
    "data": {
        "source": _choice("builtin", "url"),
        "builtin_style": _choice("scene", "camera", "object"),
        "url": _str,
        "num_classes": _int(2, 101),
        "per_class": {
            "train": _int(1),
            "val": _int(1),
            "test": _int(1),
        },
        "split_by": _choice("group", "file"),
        "layout": _choice("auto", "ucf101", "folders"),
        "min_decodable": _float(0.0, 1.0),
        "max_member_mb": _int(1, 1 << 20),
        "stall_seconds": _int(1, 3600),
        "seed": _int(0),
    },
    "frames": {
        "n_frames": _int(1, 512),
        "frame_step": _int(1, 100),
        "height": _int(16, 1024, multiple=16),
        "width": _int(16, 1024, multiple=16),
        "short_video": _choice("loop", "pad"),
        "train_clips_per_video": _int(1, 32),
        "seed": _int(0),
        "workers": _int(0, 256),
        "shard_mb": _int(1, 65536),
    },
    "model": {
        "filters": _filters,
        "input": _choice("rgb", "diff", "rgb_diff"),
        "norm": _choice("layer", "batch"),
        "init": _optional_str,
    },
    "train": {
        "epochs": _int(1, 10000),
        "batch_size": _int(1, 4096),
        "learning_rate": _float(0.0, 1.0),
        "lr_schedule": _choice("constant", "cosine"),
        "seed": _int(0),
        "augment": {"flip": _bool, "flip_pairs": _pairs, "color": _bool},
        "mixed_precision": _choice("auto", True, False),
        "jit_compile": _choice("auto", True, False),
        "distribute": _choice("auto", "none", "mirrored", "multi_worker"),
        "precise_bn_batches": _int(0, 100000),
        "restore_best": _bool,
        "early_stopping_patience": _int(0, 10000),
        "deterministic": _bool,
    },
    "evaluate": {
        "clips_per_video": _int(1, 32),
        "bootstrap": _int(100, 1_000_000),
        "seed": _int(0),
    },
}


def _validate(schema: dict, given: Any, prefix: str) -> dict:
    if not isinstance(given, dict):
        raise ParamsError(f"{prefix or 'params'}: expected a mapping, got {given!r}")
    unknown = sorted(set(given) - set(schema))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ParamsError(f"{where}: unknown key (known: {', '.join(sorted(schema))})")
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in given:
            raise ParamsError(f"{key}: missing (params.yaml must set every key; "
                              "see the README's params table)")
        if isinstance(spec, dict):
            if given[name] is None or not isinstance(given[name], dict):
                raise ParamsError(f"{key}: expected a mapping, got {given[name]!r}")
            out[name] = _validate(spec, given[name], key)
        else:
            out[name] = spec(key, copy.deepcopy(given[name]))
    return out


def validate(raw: Any) -> dict:
    """Return the checked params, or raise ParamsError naming the missing or bad key."""
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


def override(base: dict, changes: dict) -> dict:
    """``base`` with the (nested) keys of ``changes`` replaced, as ``dvc exp run -S`` does."""
    out = copy.deepcopy(base)
    for k, v in changes.items():
        out[k] = override(out.get(k) or {}, v) if isinstance(v, dict) else copy.deepcopy(v)
    return out


def load(path: str | Path = "params.yaml", changes: dict | None = None) -> dict:
    """Read a params file, apply ``changes`` (tests and benchmarks), and validate."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    except OSError as e:
        raise ParamsError(f"{path}: cannot read: {e.strerror}") from None
    if changes:
        raw = override(raw if isinstance(raw, dict) else {}, changes)
    return validate(raw)
