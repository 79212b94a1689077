"""The data contract between stages, in one place: what each stage's output folder holds, and
the readers that check it on the way in.

Folder locations come from ``dvc.yaml`` (its ``vars: paths``), passed to each stage script on
its command line; this module only knows what lies inside them. Readers raise one
``ArtifactError`` line naming the folder and the file, never a ``KeyError`` three calls later.
No TensorFlow here: plots and ``predict --help`` read the model folder's JSON without it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd

from .choices import ShortVideo, options
from .errors import VideoclfError
from .outputs import write_json
from .video import Sampling

# predict's default; equals dvc.yaml's vars paths.model (tested).
DEFAULT_MODEL_DIR = Path("data/model")

SPLITS: tuple[str, ...] = ("train", "val", "test")

# download -> data/videos
MANIFEST = "manifest.parquet"
VIDEOS_REPORT = "report.json"
MANIFEST_COLUMNS = ["video", "member", "class", "label", "group", "clip", "split", "frames"]
STAGING = ".staging"  # beside the videos folder: fetched members survive an interrupted run

# extract -> data/frames
INDEX = "index.parquet"
FRAMES_META = "meta.json"
FRAMES_REPORT = "report.json"
INDEX_COLUMNS = ["video", "class", "label", "group", "split", "clip", "start", "shard", "row",
                 "real_frames"]


def clips_per_video(split: str, train_clips: int) -> int:
    """Clips extract stores per video: ``frames.train_clips_per_video`` for train (the input
    picks one of them per epoch), one (the centre clip) for val and test."""
    return train_clips if split == "train" else 1

# weights -> data/weights: the image backbone's weights file (``model.appearance_weights``)
# and what it is; no file for ``none`` or the (2+1)D body.
WEIGHTS_INFO = "weights.json"
# features -> data/features: a frozen image backbone's per-frame features of every clip, one
# float16 shard per frames shard under the same name, rows in the same order.
FEATURES_INFO = "features.json"


@dataclass(frozen=True)
class WeightsInfo:
    """What the weights stage wrote: ``source`` as params give it (``imagenet``, a path or
    a URL), ``origin`` fetched from, ``file`` (its name in the folder) and ``sha256``."""

    backbone: str
    source: str
    origin: str | None = None
    file: str | None = None
    sha256: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def read_features_record(features_dir: Path) -> dict:
    """The features stage's ``features.json`` (``training.features.FeaturesInfo``'s fields)."""
    where = Path(features_dir) / FEATURES_INFO
    raw = _json(where, "written by the features stage")
    if not isinstance(raw, dict):
        raise ArtifactError(f"{where}: not the features stage's record (rerun features)")
    return raw


def read_weights(weights_dir: Path) -> tuple[WeightsInfo, Path | None]:
    """The weights stage's record and its file (None: random initial weights)."""
    where = Path(weights_dir) / WEIGHTS_INFO
    raw = _json(where, "written by the weights stage")
    try:
        info = WeightsInfo(**raw)
    except TypeError:
        raise ArtifactError(f"{where}: not the weights stage's record (rerun weights)") from None
    if info.file is None:
        return info, None
    path = Path(weights_dir) / info.file
    if not path.is_file():
        raise ArtifactError(f"{weights_dir}: {WEIGHTS_INFO} names {info.file}, which is not "
                            "there (dvc pull, or rerun the weights stage)")
    return info, path


# train -> data/model: everything inference needs travels with the model.
MODEL_FILE = "model.keras"
LABELS = "labels.json"
SAMPLING = "sampling.json"
INFERENCE = "inference.json"
TRAIN_INFO = "train.json"
PRETRAIN_INFO = "pretrain.json"  # pretrain -> data/pretrained: {"epochs": 0} when off
TRAIN_BACKUP = ".train-backup"  # beside the model folder: checkpoints of an interrupted run

# train -> metrics/train: dvclive's per-epoch files (Keras callback: "train" and "eval" =
# validation), read by the plot stage and named in dvc.yaml's plots.
LIVE_SPLITS: tuple[str, ...] = ("train", "eval")
LIVE_METRICS: tuple[str, ...] = ("loss", "accuracy")


def live_tsv(live_dir: Path, split: str, metric: str) -> Path:
    return Path(live_dir) / "plots" / "metrics" / split / f"{metric}.tsv"


# train -> metrics/train (dvclive's files) and evaluate -> metrics: wall-clock speed, apart
# from the results (every other metric is identical run to run; these are not).
THROUGHPUT = "throughput.json"

# evaluate -> metrics/ (metrics.json and per_class.json for `dvc metrics`, eval/ for plots)
METRICS = "metrics.json"
PER_CLASS = "per_class.json"
EVAL_DIR = "eval"
PREDICTIONS = "predictions.json"
EVAL_PER_CLASS = "per_class.json"
EVAL_REPORT = "report.json"

# plot -> metrics/plots
PLOT_FILES: tuple[str, ...] = ("learning_curves.png", "confusion_matrix.png", "per_class.png",
                               "examples.png")

# export -> data/export (beside them, the model folder's labels, sampling and inference JSON)
SAVED_MODEL = "saved_model"
ONNX_FILE = "model.onnx"
TFLITE_FILES = {"float16": "model_float16.tflite", "int8": "model_int8.tflite"}
EXPORT_METRICS = "export.json"  # -> metrics: every format's size, speed and test accuracy
# The same table in the export folder, beside the files it measures: predict reads it to warn
# of a format that scored well below Keras at export (an int8 model, measured 0.12 vs 0.57).
EXPORT_FORMATS = "formats.json"
TOLERATED_LOSS = 0.02  # test accuracy below Keras's by more than this: the format is named
# Format keys of that table by exported file name.
FORMAT_OF_FILE = {ONNX_FILE: "onnx", **{f: f"tflite_{k}" for k, f in TFLITE_FILES.items()}}


def read_export_accuracy(model_file: Path) -> tuple[float, float] | None:
    """(this exported file's test accuracy, Keras's) as the export stage measured them, from
    ``formats.json`` beside it; None where there is no such table or entry."""
    key = FORMAT_OF_FILE.get(Path(model_file).name)
    try:
        table = json.loads((Path(model_file).parent / EXPORT_FORMATS).read_text())
        return float(table[key]["test_accuracy"]), float(table["keras"]["test_accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ArtifactError(VideoclfError):
    """A stage output (or a model folder given to predict) is missing or not what it claims."""


def _json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing ({what})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: not valid JSON ({e})") from None


def _parquet(path: Path, columns: list[str], what: str) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing ({what})") from None
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise ArtifactError(f"{path}: not a Parquet table ({type(e).__name__})") from None
    lacking = [c for c in columns if c not in df.columns]
    if lacking:
        raise ArtifactError(f"{path}: lacks column(s) {', '.join(lacking)}; rerun the stage "
                            "that writes it")
    return df


def read_manifest(videos_dir: Path) -> pd.DataFrame:
    """The download stage's manifest: one row per kept video."""
    return _parquet(Path(videos_dir) / MANIFEST, MANIFEST_COLUMNS, "written by the download stage")


def _names(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, str) for x in value)


def read_classes(videos_dir: Path) -> list[str]:
    """The selected classes, in label order, as the download stage chose them."""
    where = Path(videos_dir) / VIDEOS_REPORT
    report = _json(where, "written by the download stage")
    if not isinstance(report, dict) or not _names(report.get("classes")):
        raise ArtifactError(f"{where}: no list of classes in it; not the download stage's "
                            "report (rerun download)")
    return list(report["classes"])


def read_predictions(metrics_dir: Path) -> list[dict]:
    """evaluate's per-video predictions (``eval/predictions.json``), checked."""
    where = Path(metrics_dir) / EVAL_DIR / PREDICTIONS
    rows = _json(where, "written by the evaluate stage")
    keys = ("video", "actual", "predicted")
    if not isinstance(rows, list) or not rows or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str) for k in keys) for r in rows):
        raise ArtifactError(f"{where}: expected a list of {{video, actual, predicted}}; not the "
                            "evaluate stage's (rerun evaluate)")
    return rows


def read_per_class(metrics_dir: Path) -> dict[str, dict]:
    """evaluate's per-class precision, recall, F1 and support (``per_class.json``), checked."""
    where = Path(metrics_dir) / PER_CLASS
    table = _json(where, "written by the evaluate stage")
    keys = ("precision", "recall", "f1")
    if not isinstance(table, dict) or not table or not all(
            isinstance(v, dict) and all(isinstance(v.get(k), (int, float)) for k in keys)
            for v in table.values()):
        raise ArtifactError(f"{where}: expected {{class: {{precision, recall, f1}}}}; not the "
                            "evaluate stage's (rerun evaluate)")
    return table


def read_index(frames_dir: Path) -> tuple[pd.DataFrame, dict]:
    """The clip index and the extraction metadata (sampling, classes, clips per video).

    Checked here because the input pipeline relies on it: every label is its class's position
    in ``meta["classes"]``, and each video's clips are numbered 0..K-1 (K =
    ``train_clips_per_video`` in train, 1 elsewhere) on consecutive rows of one shard.
    """
    frames_dir = Path(frames_dir)
    index = _parquet(frames_dir / INDEX, INDEX_COLUMNS, "written by the extract stage")
    meta = _json(frames_dir / FRAMES_META, "written by the extract stage")
    where = frames_dir / INDEX
    if not (isinstance(meta, dict) and isinstance(meta.get("classes"), list)
            and isinstance(meta.get("train_clips_per_video"), int)
            and isinstance(meta.get("sampling"), dict)):
        raise ArtifactError(f"{frames_dir / FRAMES_META}: not the extract stage's (rerun extract)")
    _sampling(frames_dir / FRAMES_META, meta["sampling"])
    classes = meta["classes"]
    if classes:
        wrong = index[index["label"] != index["class"].map({c: i for i, c in enumerate(classes)})]
        if len(wrong):
            raise ArtifactError(f"{where}: label of {wrong.video.iloc[0]} does not match "
                                f"class {wrong['class'].iloc[0]!r} in {FRAMES_META}")
    for (video, split), g in index.groupby(["video", "split"], sort=False):
        k = clips_per_video(split, meta["train_clips_per_video"]) if split in SPLITS else None
        if (k is None or g["shard"].nunique() != 1 or list(g["clip"]) != list(range(k))
                or list(g["row"]) != list(range(int(g["row"].iloc[0]),
                                                int(g["row"].iloc[0]) + k))):
            raise ArtifactError(f"{where}: clips of {video} ({split}) are not clips 0..{k}-1 on "
                                "consecutive rows of one shard; rerun extract")
    return index, meta


@dataclass(frozen=True)
class ModelInfo:
    """What inference needs beside the weights: class names, clip sampling, clips per video,
    and the id of the run that wrote them (``""`` for a folder written before run ids).

    The run id ties a model folder's files together: ``sampling.json`` and ``inference.json``
    carry it, ``inference.json`` also the SHA-256 of ``labels.json``, and the model's own
    metadata (``model.keras``, ``model.onnx``) carries it too, so files mixed from two runs
    are refused even when their shapes agree.
    """

    labels: list[str]
    sampling: Sampling
    clips_per_video: int
    run: str = ""
    # Test-time flip: None, clips are scored as they are; a tuple (maybe empty), each clip is
    # scored mirrored too, these pairs of classes swapped in the mirror's probabilities.
    flip_pairs: tuple[tuple[str, str], ...] | None = None

    def mirror(self) -> list[int] | None:
        """The class each class becomes in a mirrored clip, or None (no test-time flip)."""
        if self.flip_pairs is None:
            return None
        mirror = list(range(len(self.labels)))
        for a, b in self.flip_pairs:
            i, j = self.labels.index(a), self.labels.index(b)
            mirror[i], mirror[j] = j, i
        return mirror


def run_id(info: ModelInfo, weights: bytes) -> str:
    """A deterministic id of one trained model: its weights and what inference reads."""
    h = hashlib.sha256(weights)
    what = [info.labels, info.sampling.to_dict(), info.clips_per_video]
    if info.flip_pairs is not None:  # so the ids of runs before test-time flips stay the same
        what.append([list(pair) for pair in info.flip_pairs])
    h.update(json.dumps(what).encode())
    return h.hexdigest()[:16]


def _labels_hash(labels: list[str]) -> str:
    """Of the list, not of the file's bytes: a file re-indented by hand still matches."""
    return hashlib.sha256(json.dumps(labels).encode()).hexdigest()


def write_model_info(model_dir: Path, info: ModelInfo) -> None:
    write_json(Path(model_dir) / LABELS, info.labels)
    write_json(Path(model_dir) / SAMPLING, {**info.sampling.to_dict(), "run": info.run})
    flip = {} if info.flip_pairs is None else {"flip_pairs": [list(p) for p in info.flip_pairs]}
    write_json(Path(model_dir) / INFERENCE, {
        "clips_per_video": info.clips_per_video, **flip, "run": info.run,
        "labels_sha256": _labels_hash(info.labels)})


def _flip_pairs(where: Path, raw: object, labels: list[str]
                ) -> tuple[tuple[str, str], ...] | None:
    """``inference.json``'s ``flip_pairs``: absent (no test-time flip, as every folder
    written before it) or a list of pairs of two different labels, none in two pairs."""
    if raw is None:
        return None
    pairs: list[tuple[str, str]] = []
    for pair in raw if isinstance(raw, list) else [raw]:
        seen = [c for p in pairs for c in p]
        if not (isinstance(pair, list) and _names(pair) and len(pair) == 2 and pair[0] != pair[1]
                and all(c in labels and c not in seen for c in pair)):
            raise ArtifactError(f"{where}: flip_pairs must be pairs of two different labels of "
                                f"the model, each label in one pair at most; got {pair!r}")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _sampling(where: Path, raw: object) -> Sampling:
    need = {"n_frames", "frame_step", "height", "width", "short_video"}
    if not isinstance(raw, dict) or set(raw) - {"run"} != need:
        raise ArtifactError(f"{where}: expected the keys {', '.join(sorted(need))}")
    for key in ("n_frames", "frame_step", "height", "width"):
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ArtifactError(f"{where}: {key} must be a whole number >= 1, got {v!r}")
    if raw["short_video"] not in options(ShortVideo):
        raise ArtifactError(f"{where}: short_video must be one of "
                            f"{', '.join(options(ShortVideo))}")
    return Sampling(**{k: raw[k] for k in need})


def read_model_info(model_dir: Path) -> ModelInfo:
    """The JSON files of a model folder, checked against each other (no TensorFlow)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ArtifactError(f"{model_dir}: no such model folder (run `dvc repro`, or pass "
                            "--model DIR)")
    what = "a model folder holds model.keras, labels.json, sampling.json and inference.json"
    labels = _json(model_dir / LABELS, what)
    sampling_raw = _json(model_dir / SAMPLING, what)
    inference = _json(model_dir / INFERENCE, what)
    if not _names(labels):
        raise ArtifactError(f"{model_dir / LABELS}: expected a list of class names")
    sampling = _sampling(model_dir / SAMPLING, sampling_raw)
    k = inference.get("clips_per_video") if isinstance(inference, dict) else None
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ArtifactError(f"{model_dir / INFERENCE}: expected clips_per_video >= 1")
    runs = {SAMPLING: sampling_raw.get("run", ""), INFERENCE: inference.get("run", "")}
    if len(set(runs.values())) > 1:
        raise ArtifactError(f"{model_dir}: {SAMPLING} and {INFERENCE} come from different "
                            "training runs (their run ids differ); copy the whole folder of one "
                            "run")
    want = inference.get("labels_sha256")
    if want and _labels_hash(labels) != want:
        raise ArtifactError(f"{model_dir / LABELS}: not the labels this model was trained with "
                            f"(its hash differs from the one in {INFERENCE}); the files come "
                            "from different runs")
    flip = _flip_pairs(model_dir / INFERENCE, inference.get("flip_pairs"), labels)
    return ModelInfo(labels, sampling, k, str(runs[INFERENCE]), flip)


@dataclass(frozen=True)
class TrainSummary:
    """``train.json``, the train stage's summary: the epochs run, the epoch of the lowest
    validation loss (``best_*``) and the one the model keeps (``kept_*``, what
    ``dvc metrics diff`` should compare), the runtime, and the SHA-256 of the file the
    weights started from (``model.init`` or the pretrain stage's), when one did."""

    epochs_run: int
    best_epoch: int
    best_val_loss: float
    best_val_accuracy: float
    restored_best: bool
    kept_epoch: int
    kept_val_loss: float
    kept_val_accuracy: float
    runtime: str
    init_sha256: str | None = None
    pretrained_sha256: str | None = None
    stopped_epoch: int | None = None   # train.patience ended training at this epoch
    stop_reason: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def write_train_info(model_dir: Path, summary: TrainSummary) -> None:
    write_json(Path(model_dir) / TRAIN_INFO, summary.to_dict())


def read_train_info(model_dir: Path) -> TrainSummary:
    """The train stage's summary (epochs run, best epoch, runtime), checked."""
    where = Path(model_dir) / TRAIN_INFO
    info = _json(where, "written by the train stage")
    keys = {f.name for f in fields(TrainSummary)}
    if not (isinstance(info, dict) and isinstance(info.get("best_epoch"), int)
            and isinstance(info.get("restored_best"), bool) and set(info) <= keys):
        raise ArtifactError(f"{where}: not the train stage's summary (rerun train)")
    try:
        return TrainSummary(**info)
    except TypeError:
        raise ArtifactError(f"{where}: not the train stage's summary (rerun train)") from None


@dataclass
class PoolReport:
    """What the pretrain stage's pool holds: the train split's videos, the new unlabeled
    ones, and every file left out (not a video, or a copy) or skipped (broken), with why."""

    train_videos: int
    unlabeled_videos: int = 0
    left_out: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class PretrainInfo:
    """``pretrain.json``: the pretext task's fit and its pool (``{"epochs": 0}`` when off)."""

    epochs: int
    task: str | None = None
    best_val_accuracy: float | None = None
    pool: PoolReport | None = None

    def to_dict(self) -> dict:
        head = {"epochs": self.epochs}
        if self.pool is None:
            return head
        return {**head, "task": self.task, "best_val_accuracy": self.best_val_accuracy,
                **asdict(self.pool)}


def write_pretrain_info(folder: Path, info: PretrainInfo) -> None:
    write_json(Path(folder) / PRETRAIN_INFO, info.to_dict())


def read_pretrained(pretrained_dir: Path) -> Path | None:
    """The pretrain stage's model file, or None when pretraining is off (``epochs`` 0)."""
    where = Path(pretrained_dir) / PRETRAIN_INFO
    info = _json(where, "written by the pretrain stage")
    if not isinstance(info, dict) or not isinstance(info.get("epochs"), int):
        raise ArtifactError(f"{where}: not the pretrain stage's summary (rerun pretrain)")
    if info["epochs"] == 0:
        return None
    model = Path(pretrained_dir) / MODEL_FILE
    if not model.is_file():
        raise ArtifactError(f"{pretrained_dir}: {PRETRAIN_INFO} says pretrained, but there is "
                            f"no {MODEL_FILE} (rerun pretrain)")
    return model
