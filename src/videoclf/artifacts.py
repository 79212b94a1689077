"""The data contract between stages, in one place: what each stage's output folder holds, and
the readers that check it on the way in.

Folder locations come from ``dvc.yaml`` (its ``vars: paths``), passed to each stage script on
its command line; this module only knows what lies inside them. Readers raise one
``ArtifactError`` line naming the folder and the file, never a ``KeyError`` three calls later.
No TensorFlow here: plots and ``predict --help`` read the model folder's JSON without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

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

# train -> data/model: everything inference needs travels with the model.
MODEL_FILE = "model.keras"
LABELS = "labels.json"
SAMPLING = "sampling.json"
INFERENCE = "inference.json"
TRAIN_INFO = "train.json"
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


def read_classes(videos_dir: Path) -> list[str]:
    """The selected classes, in label order, as the download stage chose them."""
    report = _json(Path(videos_dir) / VIDEOS_REPORT, "written by the download stage")
    return list(report["classes"])


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
    """What inference needs beside the weights: class names, clip sampling, clips per video."""

    labels: list[str]
    sampling: Sampling
    clips_per_video: int


def write_model_info(model_dir: Path, info: ModelInfo) -> None:
    write_json(Path(model_dir) / LABELS, info.labels)
    write_json(Path(model_dir) / SAMPLING, info.sampling.to_dict())
    write_json(Path(model_dir) / INFERENCE, {"clips_per_video": info.clips_per_video})


def read_model_info(model_dir: Path) -> ModelInfo:
    """The JSON files of a model folder, checked (no TensorFlow)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ArtifactError(f"{model_dir}: no such model folder (run `dvc repro`, or pass "
                            "--model DIR)")
    what = "a model folder holds model.keras, labels.json, sampling.json and inference.json"
    labels = _json(model_dir / LABELS, what)
    sampling = _json(model_dir / SAMPLING, what)
    inference = _json(model_dir / INFERENCE, what)
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        raise ArtifactError(f"{model_dir / LABELS}: expected a list of class names")
    need = {"n_frames", "frame_step", "height", "width", "short_video"}
    if not isinstance(sampling, dict) or set(sampling) != need:
        raise ArtifactError(f"{model_dir / SAMPLING}: expected the keys {', '.join(sorted(need))}")
    k = inference.get("clips_per_video") if isinstance(inference, dict) else None
    if not isinstance(k, int) or k < 1:
        raise ArtifactError(f"{model_dir / INFERENCE}: expected clips_per_video >= 1")
    return ModelInfo(labels, Sampling(**sampling), k)


def read_train_info(model_dir: Path) -> dict:
    """The train stage's summary (epochs run, best epoch, runtime)."""
    return _json(Path(model_dir) / TRAIN_INFO, "written by the train stage")
