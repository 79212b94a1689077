"""Every format a trained model comes in, as one ``uint8 clips [B, T, H, W, 3] -> logits``
function with its ModelInfo: the model folder (Keras), an exported ``.onnx`` (onnxruntime)
or ``.tflite`` (LiteRT), the last two without TensorFlow. Evaluate, predict, the timeline
and the service all score through ``load_predictor``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..artifacts import (
    TOLERATED_LOSS,
    ArtifactError,
    ModelInfo,
    read_export_accuracy,
    read_model_info,
)
from ..training.modelio import RUN_KEY, check_run, check_shapes, load_model_dir
from .scoring import softmax

Predictor = Callable[[np.ndarray], np.ndarray]
EXPORTED_SUFFIXES = (".onnx", ".tflite")  # a file of the export folder, its JSON files beside it


def read_info(path: Path) -> ModelInfo:
    """The ModelInfo of a model folder or of an exported file (from the folder it is in),
    without loading the model: a wrong path is one line before any framework loads."""
    path = Path(path)
    return read_model_info(path.parent if path.suffix.lower() in EXPORTED_SUFFIXES else path)


def accuracy_warning(path: Path, tolerated: float = TOLERATED_LOSS) -> str | None:
    """One line when ``path`` is an exported file that scored more than ``tolerated`` below
    the Keras model on the test set at export (``formats.json``), else None."""
    scores = read_export_accuracy(path) if Path(path).suffix.lower() in EXPORTED_SUFFIXES \
        else None
    if scores is None or scores[0] >= scores[1] - tolerated:
        return None
    return (f"warning: {path} scored {scores[0]:.2f} on the test set at export against the "
            f"Keras model's {scores[1]:.2f} ({100 * (scores[1] - scores[0]):.0f} points "
            f"below): model.onnx or model_float16.tflite keep the float accuracy")


def load_onnx(path: Path) -> tuple[Predictor, ModelInfo]:
    """An exported ``model.onnx`` run by onnxruntime (no TensorFlow), with the ModelInfo
    written beside it by the export stage."""
    path = Path(path)
    info = read_model_info(path.parent)
    try:
        import onnxruntime as ort
    except ImportError:
        raise ArtifactError("predicting with an .onnx model needs onnxruntime "
                            "(pip install onnxruntime)") from None
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (run `dvc repro export`)")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for a damaged file
        raise ArtifactError(f"{path}: onnxruntime cannot load it: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    inp = session.get_inputs()[0]
    check_shapes(path, info, inp.shape[1:], session.get_outputs()[0].shape[-1])
    check_run(path, info, session.get_modelmeta().custom_metadata_map.get(RUN_KEY, ""))

    def predict(clips: np.ndarray) -> np.ndarray:
        return session.run(None, {inp.name: clips})[0]

    return predict, info


def load_predictor(path: Path) -> tuple[Predictor, ModelInfo]:
    """``uint8 clips [B, T, H, W, 3] -> logits [B, C]`` and the ModelInfo, from a model folder
    (Keras), a ``.onnx`` file (onnxruntime) or a ``.tflite`` file (LiteRT); with the
    test-time flip the folder records (``with_flip``)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        predict, info = load_onnx(path)
    elif path.suffix.lower() == ".tflite":
        predict, info = load_tflite(path)
    else:
        model, info = load_model_dir(path)
        predict = lambda clips: np.asarray(model.predict_on_batch(clips))
    return with_flip(predict, info.mirror()), info


def with_flip(predict: Predictor, mirror: list[int] | None) -> Predictor:
    """Test-time flip (``evaluate.flip``; the flip of MMAction2's and TSN's test crops):
    each clip is scored as it is and mirrored left-right, in one batch, and the mirror's
    class probabilities, the classes a mirror swaps put back (``mirror``: the class each
    class becomes), are averaged with the clip's. Out: the log of that mean, logits whose
    softmax is the mean. Why: a bias of the network for one class of a pair is cancelled.
    On the ``object`` style the same trained networks gave 0.91 against 0.87, 0.78 against
    0.76 and 0.91 against 0.83 (`SpinCW` clips of the arrow-shaped actor had been read as
    `SpinCCW`: 7 of 10 errors), the same on ``scene`` and ``camera``, and 0-2 videos fewer
    right of 100 on ``context`` (docs/RECIPES.md). ``mirror`` None: ``predict`` itself."""
    if mirror is None:
        return predict
    order = np.asarray(mirror)

    def predict_flipped(clips: np.ndarray) -> np.ndarray:
        both = softmax(predict(np.concatenate([clips, clips[:, :, :, ::-1]])))
        n = len(clips)
        mean = (both[:n] + both[n:][:, order]) / 2
        return np.log(np.maximum(mean, np.finfo(np.float32).tiny))  # no -inf from underflow

    return predict_flipped


def _interpreter(path: Path):
    """LiteRT's interpreter (``ai-edge-litert``, no TensorFlow) if installed, else
    TensorFlow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite import Interpreter
        except ImportError:
            raise ArtifactError("predicting with a .tflite model needs ai-edge-litert "
                                "(pip install ai-edge-litert) or tensorflow") from None
    import os

    try:
        return Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
    except (ValueError, RuntimeError) as e:
        raise ArtifactError(f"{path}: LiteRT cannot load it: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def load_tflite(path: Path) -> tuple[Predictor, ModelInfo]:
    """An exported ``.tflite`` model (float16 or int8 weights; uint8 clips in, float logits
    out, as the other formats), with the ModelInfo written beside it by the export stage.
    Calls are serialised (an interpreter is not thread-safe); the input is resized when the
    batch size changes."""
    import threading

    path = Path(path)
    info = read_model_info(path.parent)
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (run `dvc repro export`)")
    interp = _interpreter(path)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    check_shapes(path, info, tuple(int(d) for d in inp["shape_signature"][1:]),
                 int(out["shape_signature"][-1]))
    lock = threading.Lock()
    shape: list[tuple[int, ...] | None] = [None]  # the input shape the tensors are sized for

    def predict(clips: np.ndarray) -> np.ndarray:
        with lock:
            if shape[0] != clips.shape:
                interp.resize_tensor_input(inp["index"], clips.shape)
                interp.allocate_tensors()
                shape[0] = clips.shape
            interp.set_tensor(inp["index"], np.ascontiguousarray(clips, np.uint8))
            interp.invoke()
            return np.array(interp.get_tensor(out["index"]), np.float32)

    return predict, info
