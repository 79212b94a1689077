"""The export stage: the trained model as a TensorFlow SavedModel, as ONNX and as TFLite
(float16 and int8, ``litert``), for serving without this package (TF Serving, Triton,
onnxruntime, LiteRT on phones), with what inference needs beside them.

Both take uint8 clips ``[batch, frames, height, width, 3]`` (RGB, letterboxed as in
``sampling.json``) and return logits in the order of ``labels.json``; the softmax, averaged
over ``inference.json``'s clips per video, is the video's prediction. Rescaling (and the
frame difference, for ``model.input: diff | rgb_diff``) happens inside the graph.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..artifacts import ONNX_FILE, SAVED_MODEL, TFLITE_FILES, write_model_info
from ..outputs import staged_dir
from ..training.modelio import RUN_KEY, load_model_dir

log = logging.getLogger(__name__)


def export(model_dir: Path, out_dir: Path, frames_dir: Path | None = None) -> list[Path]:
    """Write ``out_dir/saved_model/`` (signature ``serving_default``), ``out_dir/model.onnx``,
    with ``frames_dir`` (int8 calibration clips) the TFLite models, and the model folder's
    labels, sampling and inference JSON."""
    from .litert import convert, representative_clips

    model, info = load_model_dir(model_dir)
    tflite = list(TFLITE_FILES.items()) if frames_dir is not None else []
    with staged_dir(out_dir) as tmp:
        model.export(str(tmp / SAVED_MODEL), format="tf_saved_model", verbose=False)
        model.export(str(tmp / ONNX_FILE), format="onnx", verbose=False)
        _stamp_onnx(tmp / ONNX_FILE, info.run)
        if frames_dir is not None:
            calibration = representative_clips(Path(frames_dir))
            for kind, name in tflite:
                (tmp / name).write_bytes(convert(tmp / SAVED_MODEL, kind, calibration))
        write_model_info(tmp, info)
    out = [out_dir / SAVED_MODEL, out_dir / ONNX_FILE] + [out_dir / n for _, n in tflite]
    log.info("export: %s", ", ".join(str(p) for p in out))
    return out


def _stamp_onnx(path: Path, run: str) -> None:
    """The model folder's run id in the ONNX model's metadata, as in model.keras's: predict
    refuses an ONNX file beside JSON files of another run."""
    import onnx

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = RUN_KEY, run
    onnx.save(proto, str(path))
