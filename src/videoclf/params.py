"""Load and validate ``params.yaml`` before any stage does work, into typed params.

Every key is checked against one schema, so a typo, a missing key, a wrong type or an
out-of-range value fails at once with a message that names the key
(``ParamsError: frames.height: ...``). ``params.yaml`` is the only place values are set: the
dataclasses below have no defaults. Each block becomes one frozen dataclass (``DataParams``,
``FramesParams``, ...), so a function's signature says which block it reads. The choices a
key offers are ``Literal`` types declared once in ``videoclf.choices``, which the modules
acting on them annotate with too; this module imports nothing of the wings.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import yaml

from .choices import (
    MOTION_SCALED,
    WITH_APPEARANCE,
    AppearanceBackbone,
    AutoOrBool,
    Backend,
    Balance,
    BuiltinStyle,
    Distribute,
    Fingerprint,
    Fusion,
    InputKind,
    Layout,
    LrSchedule,
    Monitor,
    MotionDownscale,
    Norm,
    PretextTask,
    ShortVideo,
    Source,
    SplitBy,
    StemStride,
    options,
)
from .errors import VideoclfError
from .video import Sampling

Check = Callable[[str, Any], Any]


class ParamsError(VideoclfError, ValueError):
    """A value in params.yaml is missing, of the wrong type or out of range."""


def _int(lo: int | None = None, hi: int | None = None, multiple: int | None = None) -> Check:
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


def _float(lo: float, hi: float, *, with_lo: bool = False) -> Check:
    def check(key: str, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {v!r}")
        if not (lo <= v if with_lo else lo < v) or v > hi:
            raise ParamsError(f"{key}: must be in {'[' if with_lo else '('}{lo}, {hi}], got {v}")
        return float(v)

    return check


def _pathway_rate(key: str, v: Any) -> float:
    """A dropout rate per pathway: both dropped at once must stay impossible (<= 0.5)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 0.5:
        raise ParamsError(f"{key}: must be a number in [0, 0.5], got {v!r}")
    return float(v)


def _dropout_rate(key: str, v: Any) -> float:
    """A share of features dropped: 1 would drop them all."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        raise ParamsError(f"{key}: must be a number in [0, 1), got {v!r}")
    return float(v)


def _choice(choice: Any) -> Check:
    """One of the values of a ``Literal`` choice (``videoclf.choices``)."""
    allowed = options(choice)

    def check(key: str, v: Any) -> Any:
        # `in` alone would take 1 for True and 1.0 for 1: the type must match too.
        if not any(v == a and type(v) is type(a) for a in allowed):
            raise ParamsError(f"{key}: must be one of {', '.join(map(str, allowed))}; got {v!r}")
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


def _sha256(key: str, v: Any) -> str:
    if v is None or v == "":
        return ""
    if not isinstance(v, str) or not re.fullmatch(r"[0-9a-f]{64}", v.lower()):
        raise ParamsError(f"{key}: expected 64 hex digits (a SHA-256) or nothing, got {v!r}")
    return v.lower()


def _filters(key: str, v: Any) -> tuple[int, ...]:
    if not isinstance(v, list) or not v:
        raise ParamsError(f"{key}: expected a non-empty list of integers, got {v!r}")
    for i, f in enumerate(v):
        _int(1, 4096)(f"{key}[{i}]", f)
    return tuple(v)


def _pairs(key: str, v: Any) -> tuple[tuple[str, str], ...]:
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
    return tuple((a, b) for a, b in v)


def _target(allow_all: bool = False) -> Check:
    """A per-class split target: a count (an integer >= 1), a fraction of the class's usable
    videos (a number strictly between 0 and 1), or, for train, ``all`` (what val and test
    leave)."""
    def check(key: str, v: Any) -> Any:
        if allow_all and v == "all":
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParamsError(f"{key}: expected a count (1, 2, ...), a fraction (0 < f < 1)"
                              f"{' or all' if allow_all else ''}, got {v!r}")
        if isinstance(v, float) and not 0 < v < 1:
            raise ParamsError(f"{key}: a fraction must be strictly between 0 and 1, got {v}")
        if isinstance(v, int) and v < 1:
            raise ParamsError(f"{key}: must be >= 1 (a count) or a fraction, got {v}")
        return v

    return check


def _num_classes(key: str, v: Any) -> int:
    _int(0)(key, v)
    if v == 1:
        raise ParamsError(f"{key}: a classifier needs 2 classes or more (0: every class)")
    return v


def _class_names(key: str, v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(c, str) and c for c in v):
        raise ParamsError(f"{key}: expected a list of class names, got {v!r}")
    twice = sorted({c for c in v if v.count(c) > 1})
    if twice:
        raise ParamsError(f"{key}: {twice[0]} is listed twice")
    if len(v) == 1:
        raise ParamsError(f"{key}: a classifier needs 2 classes or more")
    return tuple(v)


def _frame_steps(key: str, v: Any) -> tuple[int, ...]:
    """The pace task's classes: distinct frame steps, slowest first."""
    if not isinstance(v, list) or len(v) < 2:
        raise ParamsError(f"{key}: expected a list of two or more frame steps, got {v!r}")
    for i, s in enumerate(v):
        _int(1, 100)(f"{key}[{i}]", s)
    if sorted(set(v)) != v:
        raise ParamsError(f"{key}: frame steps must be distinct and increasing, got {v!r}")
    return tuple(v)


def _key(check: Check) -> Any:
    """A params key and the check its value must pass (no default: params.yaml sets it)."""
    return field(metadata={"check": check})


def _nested() -> Any:
    """A nested block (its own dataclass, checked key by key)."""
    return field()


# One frozen dataclass per block, in params.yaml's order; nested blocks are dataclasses too.
@dataclass(frozen=True)
class PerClass:
    """Per class and split: a count, a fraction of the class's videos, or (train) ``all``."""

    train: int | float | str = _key(_target(allow_all=True))
    val: int | float = _key(_target())
    test: int | float = _key(_target())


@dataclass(frozen=True)
class DataParams:
    """The download stage's block."""

    source: Source = _key(_choice(Source))
    builtin_style: BuiltinStyle = _key(_choice(BuiltinStyle))
    url: str = _key(_str)
    unlabeled_url: str = _key(_optional_str)
    num_classes: int = _key(_num_classes)
    classes: tuple[str, ...] = _key(_class_names)
    per_class: PerClass = _nested()
    max_per_class: int = _key(_int(0))
    split_by: SplitBy = _key(_choice(SplitBy))
    layout: Layout = _key(_choice(Layout))
    min_decodable: float = _key(_float(0.0, 1.0))
    max_member_mb: int = _key(_int(1, 1 << 20))
    max_total_mb: int = _key(_int(1, 1 << 30))
    stall_seconds: int = _key(_int(1, 3600))
    deadline_minutes: int = _key(_int(0, 10**6))
    fingerprint: Fingerprint = _key(_choice(Fingerprint))
    seed: int = _key(_int(0))


@dataclass(frozen=True)
class FramesParams:
    """The extract stage's block."""

    n_frames: int = _key(_int(1, 512))
    frame_step: int = _key(_int(1, 100))
    height: int = _key(_int(16, 1024, multiple=16))
    width: int = _key(_int(16, 1024, multiple=16))
    short_video: ShortVideo = _key(_choice(ShortVideo))
    train_clips_per_video: int = _key(_int(1, 32))
    seed: int = _key(_int(0))
    workers: int = _key(_int(0, 256))
    shard_mb: int = _key(_int(1, 65536))

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.n_frames, self.frame_step, self.height, self.width,
                        self.short_video)


@dataclass(frozen=True)
class ModelParams:
    """The network's block (read by train)."""

    filters: tuple[int, ...] = _key(_filters)
    input: InputKind = _key(_choice(InputKind))
    norm: Norm = _key(_choice(Norm))
    appearance_stride: int = _key(_int(1, 512))
    appearance_filters: tuple[int, ...] = _key(_filters)
    appearance_stem_stride: StemStride = _key(_choice(StemStride))
    motion_scale: int = _key(_int(1, 16))
    motion_downscale: MotionDownscale = _key(_choice(MotionDownscale))
    pathway_dropout: float = _key(_pathway_rate)
    pathway_loss: float = _key(_float(0.0, 100.0, with_lo=True))
    fusion: Fusion = _key(_choice(Fusion))
    dropout: float = _key(_dropout_rate)
    init: str = _key(_optional_str)
    appearance_backbone: AppearanceBackbone = _key(_choice(AppearanceBackbone))
    appearance_weights: str = _key(_str)
    appearance_weights_sha256: str = _key(_sha256)


@dataclass(frozen=True)
class AugmentParams:
    flip: bool = _key(_bool)
    flip_pairs: tuple[tuple[str, str], ...] = _key(_pairs)
    color: bool = _key(_bool)
    crop_area: float = _key(_float(0.0, 1.0))


@dataclass(frozen=True)
class TrainParams:
    """The train stage's block."""

    epochs: int = _key(_int(1, 10000))
    batch_size: int = _key(_int(1, 4096))
    learning_rate: float = _key(_float(0.0, 1.0))
    weight_decay: float = _key(_float(0.0, 10.0, with_lo=True))
    lr_schedule: LrSchedule = _key(_choice(LrSchedule))
    # TensorFlow's and NumPy's global seeds are 32-bit; 0 is refused: with a global seed of
    # 0, tf.data's shuffle seeded by a tensor (inputs.py, per epoch) fails to trace.
    seed: int = _key(_int(1, 2**32 - 1))
    augment: AugmentParams = _nested()
    balance: Balance = _key(_choice(Balance))
    mixed_precision: AutoOrBool = _key(_choice(AutoOrBool))
    jit_compile: AutoOrBool = _key(_choice(AutoOrBool))
    distribute: Distribute = _key(_choice(Distribute))
    precise_bn_batches: int = _key(_int(0, 100000))
    restore_best: bool = _key(_bool)
    monitor: Monitor = _key(_choice(Monitor))
    patience: int = _key(_int(0, 10000))
    deterministic: bool = _key(_bool)
    freeze_backbone: bool = _key(_bool)


@dataclass(frozen=True)
class EvaluateParams:
    """The evaluate stage's block (``clips_per_video`` and ``flip`` are read by train, which
    records them in the model folder)."""

    clips_per_video: int = _key(_int(1, 32))
    flip: bool = _key(_bool)
    bootstrap: int = _key(_int(100, 1_000_000))
    seed: int = _key(_int(0))


@dataclass(frozen=True)
class PretrainParams:
    """The pretrain stage's block (self-supervised, before train; ``epochs`` 0 = off)."""

    epochs: int = _key(_int(0, 10000))
    task: PretextTask = _key(_choice(PretextTask))
    frame_steps: tuple[int, ...] = _key(_frame_steps)
    clips_per_video: int = _key(_int(1, 32))
    batch_size: int = _key(_int(1, 4096))
    learning_rate: float = _key(_float(0.0, 1.0))
    seed: int = _key(_int(1, 2**32 - 1))  # as train.seed
    weight_decay: float = _key(_float(0.0, 10.0, with_lo=True))
    lr_schedule: LrSchedule = _key(_choice(LrSchedule))
    augment: AugmentParams = _nested()
    balance: Balance = _key(_choice(Balance))
    mixed_precision: AutoOrBool = _key(_choice(AutoOrBool))
    jit_compile: AutoOrBool = _key(_choice(AutoOrBool))
    distribute: Distribute = _key(_choice(Distribute))
    precise_bn_batches: int = _key(_int(0, 100000))
    restore_best: bool = _key(_bool)
    monitor: Monitor = _key(_choice(Monitor))
    patience: int = _key(_int(0, 10000))
    deterministic: bool = _key(_bool)

    def as_train(self) -> TrainParams:
        """The fit of the pretext task as train's block: every key but ``frame_steps``,
        ``task`` and ``clips_per_video`` (the pretext set's) is the train key of its name."""
        keys = {f.name for f in dataclasses.fields(TrainParams)}
        return TrainParams(**{k: v for k, v in vars(self).items() if k in keys},
                           freeze_backbone=False)


@dataclass(frozen=True)
class EngineParams:
    """Where decode-bound work runs (download's check, extract, evaluate's scoring). Read by
    those stages but a dependency of none: the outputs are the same bytes on either backend."""

    backend: Backend = _key(_choice(Backend))
    address: str = _key(_optional_str)


@dataclass(frozen=True)
class Params:
    data: DataParams
    frames: FramesParams
    model: ModelParams
    pretrain: PretrainParams
    train: TrainParams
    evaluate: EvaluateParams
    engine: EngineParams


T = TypeVar("T")


def _block(cls: type, name: str) -> type | None:
    """The dataclass a nested key holds (``data.per_class``: PerClass), or None for a leaf."""
    sub = get_type_hints(cls)[name]
    return sub if isinstance(sub, type) and dataclasses.is_dataclass(sub) else None


def _schema(cls: type) -> dict[str, Any]:
    """The nested dict of the checks that ``cls`` declares."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        sub = _block(cls, f.name)
        out[f.name] = _schema(sub) if sub else f.metadata["check"]
    return out


SCHEMA: dict[str, Any] = _schema(Params)


def _validate(cls: type[T], given: Any, prefix: str) -> T:
    if not isinstance(given, dict):
        raise ParamsError(f"{prefix or 'params'}: expected a mapping, got {given!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(given) - set(fields))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ParamsError(f"{where}: unknown key (known: {', '.join(sorted(fields))})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in given:
            raise ParamsError(f"{key}: missing (params.yaml must set every key; "
                              "see the README's params table)")
        sub = _block(cls, name)
        if sub:
            if given[name] is None or not isinstance(given[name], dict):
                raise ParamsError(f"{key}: expected a mapping, got {given[name]!r}")
            values[name] = _validate(sub, given[name], key)
        else:
            values[name] = f.metadata["check"](key, copy.deepcopy(given[name]))
    return cls(**values)


def _check_fractions(per_class: PerClass) -> None:
    """Fractions of a class split it whole: all three must sum to 1, or with train ``all``
    val and test must leave train a share (the rest). Counts are targets and mix freely."""
    given = {s: getattr(per_class, s) for s in ("train", "val", "test")}
    fractions = {s: v for s, v in given.items() if isinstance(v, float)}
    shown = "/".join(f"{s} {given[s]}" for s in given)
    if len(fractions) == 3 and abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ParamsError(f"data.per_class: the fractions {shown} sum to "
                          f"{sum(fractions.values()):g}; they must sum to 1 (or give train: all)")
    if given["train"] == "all" and len(fractions) == 2 and sum(fractions.values()) >= 1.0:
        raise ParamsError(f"data.per_class: val and test take {sum(fractions.values()):g} of "
                          f"each class ({shown}), leaving train nothing; they must sum to "
                          "less than 1")


def _check_backbone(params: Params) -> None:
    """An image backbone (keras.applications) needs an appearance pathway, frames of at
    least 32x32 (what those networks accept), and weights of its own kind."""
    m = params.model
    if m.appearance_backbone == "r2plus1d":
        if m.appearance_weights not in ("none",):
            raise ParamsError(f"model.appearance_weights: {m.appearance_weights!r} needs an "
                              "image backbone (model.appearance_backbone: mobilenet_v3_small or "
                              "efficientnet_b0); the r2plus1d body takes none (model.init "
                              "starts it from an earlier run)")
        if params.train.freeze_backbone:
            raise ParamsError("train.freeze_backbone: true needs an image backbone "
                              "(model.appearance_backbone: mobilenet_v3_small or efficientnet_b0)")
        return
    if m.input not in WITH_APPEARANCE:
        raise ParamsError(f"model.appearance_backbone: {m.appearance_backbone} needs an "
                          f"appearance pathway: model.input {' or '.join(WITH_APPEARANCE)}, "
                          f"got {m.input}")
    for dim in ("height", "width"):
        if getattr(params.frames, dim) < 32:
            raise ParamsError(f"frames.{dim}: {m.appearance_backbone} needs at least 32, "
                              f"got {getattr(params.frames, dim)}")
    if m.appearance_weights_sha256 and m.appearance_weights in ("none", "imagenet"):
        raise ParamsError("model.appearance_weights_sha256: set for a weights file (a path or "
                          f"URL), not for {m.appearance_weights!r}")


def validate(raw: Any) -> Params:
    """Return the checked params, or raise ParamsError naming the missing or bad key."""
    params = _validate(Params, raw, "")
    _check_fractions(params.data.per_class)
    m = params.model
    _check_backbone(params)
    image_backbone = m.appearance_backbone != "r2plus1d"
    n_blocks = len(m.filters) if m.input != "rgb" or not image_backbone else 0
    why = f"the model halves it {n_blocks} times"
    div = 2**n_blocks
    if m.input == "two_pathway" and not image_backbone:
        n_app = len(m.appearance_filters) + (m.appearance_stem_stride == 4)
        div, why = max(div, 2**n_app), f"the model halves it {max(n_blocks, n_app)} times"
    if m.input in MOTION_SCALED and m.motion_scale > 1:
        div = max(div, 2**n_blocks * m.motion_scale)
        why = (f"model.motion_scale {m.motion_scale}, then the motion body halves it "
               f"{n_blocks} times")
    for dim in ("height", "width"):
        size = getattr(params.frames, dim)
        if size % div:
            raise ParamsError(f"frames.{dim}: must be divisible by {div} ({why}), got {size}")
    return params


def as_dict(block: Any) -> dict[str, Any]:
    """A params block as plain JSON-able values (for hashing and logging)."""
    return dataclasses.asdict(block)


def override(base: dict, changes: dict) -> dict:
    """``base`` with the (nested) keys of ``changes`` replaced, as ``dvc exp run -S`` does."""
    out = copy.deepcopy(base)
    for k, v in changes.items():
        out[k] = override(out.get(k) or {}, v) if isinstance(v, dict) else copy.deepcopy(v)
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last,
    so the first would be silently ignored)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_error(e: yaml.YAMLError) -> str:
    """One line: what is wrong and where (PyYAML's message spans several)."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f"{where}{problem}"


def load(path: str | Path = "params.yaml", changes: dict | None = None) -> Params:
    """Read a params file, apply ``changes`` (tests and benchmarks), and validate."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {_yaml_error(e)}") from None
    except OSError as e:
        raise ParamsError(f"{path}: cannot read: {e.strerror}") from None
    if changes:
        raw = override(raw if isinstance(raw, dict) else {}, changes)
    return validate(raw)
