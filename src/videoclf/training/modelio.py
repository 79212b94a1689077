"""Model I/O: the model folder written by train (read by evaluate, export and predict).

``save_model_dir`` writes ``model.keras`` byte-reproducibly plus the JSON files of
``artifacts.ModelInfo``; ``load_model_dir`` reads them back and checks that they fit each
other, so a wrong or damaged folder is one ``ArtifactError`` line, not a traceback.
``check_shapes`` and ``check_run`` are the checks any format's loader makes
(``serve.predictors``). TensorFlow is imported only on the Keras paths. Loading the model
alone stays one line:
``import videoclf.training.network`` (registers the layers), then
``keras.models.load_model("data/model/model.keras", safe_mode=True)``.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from ..artifacts import (
    MODEL_FILE,
    ArtifactError,
    ModelInfo,
    read_model_info,
    run_id,
    write_model_info,
)

RUN_KEY = "videoclf_run"  # in model.keras's metadata.json and model.onnx's metadata_props


def save_model(model, path: Path, run: str = "") -> None:
    """``model.save``, made byte-reproducible (``keras_compat.reproducible_keras_zip``), with
    the run id in the archive's metadata."""
    from .keras_compat import reproducible_keras_zip

    raw = Path(path).with_suffix(".raw.keras")
    model.save(raw)
    reproducible_keras_zip(raw, Path(path), {RUN_KEY: run} if run else None)
    raw.unlink()


def save_model_dir(model, model_dir: Path, info: ModelInfo) -> ModelInfo:
    """``model.keras`` and what inference needs beside it, into ``model_dir``, all carrying
    one run id (derived from the weights); returns the info with it."""
    weights = b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights())
    info = dataclasses.replace(info, run=run_id(info, weights))
    save_model(model, Path(model_dir) / MODEL_FILE, info.run)
    write_model_info(model_dir, info)
    return info


def keras_run(path: Path) -> str:
    """The run id in a ``.keras`` file's metadata (``""``: written before run ids)."""
    with zipfile.ZipFile(path) as z:
        return str(json.loads(z.read("metadata.json")).get(RUN_KEY, ""))


def check_run(where: Path, info: ModelInfo, run: str) -> None:
    if run != info.run:
        raise ArtifactError(f"{where}: from another training run than the JSON files beside it "
                            f"(run {run or 'unknown'}, they say {info.run or 'unknown'}); copy "
                            "the whole folder of one run")


def load_keras(path: Path):
    """A ``.keras`` file, loaded in safe mode; a file that is not one is an ArtifactError."""
    from .._tf import keras
    from . import network as _layers  # noqa: F401  (registers the custom layers)

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (no trained model here; run `dvc repro`)")
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path}: not a Keras model file (a .keras file is a zip archive)")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except ValueError as e:
        if "safe_mode" in str(e) or "lambda" in str(e).lower():
            raise ArtifactError(f"{path}: refused by Keras safe mode (it holds Python code, "
                                "e.g. a Lambda layer; this project never writes one)") from None
        raise ArtifactError(f"{path}: Keras cannot load it: {str(e).splitlines()[0]}") from None
    except (KeyError, TypeError, OSError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{path}: Keras cannot load it ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else 'damaged'})") from None


def check_shapes(where: Path, info: ModelInfo, clip_shape: tuple, outputs: int) -> None:
    s = info.sampling
    want = (s.n_frames, s.height, s.width, 3)
    if tuple(clip_shape) != want:
        raise ArtifactError(f"{where}: the model takes clips {tuple(clip_shape)}, but "
                            f"sampling.json describes {want}; the files come from different runs")
    if outputs != len(info.labels):
        raise ArtifactError(f"{where}: the model has {outputs} outputs but labels.json names "
                            f"{len(info.labels)} classes")


def load_model_dir(model_dir: Path):
    """The Keras model of a model folder and its ModelInfo, checked against each other."""
    info = read_model_info(model_dir)
    model = load_keras(Path(model_dir) / MODEL_FILE)
    check_shapes(Path(model_dir), info, model.input_shape[1:], model.output_shape[-1])
    check_run(Path(model_dir) / MODEL_FILE, info, keras_run(Path(model_dir) / MODEL_FILE))
    return model, info
