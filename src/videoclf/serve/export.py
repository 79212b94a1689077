"""The export stage: the trained model as a TensorFlow SavedModel and as ONNX, for serving
without this package (TF Serving, Triton, onnxruntime), with what inference needs beside them.

Both take uint8 clips ``[batch, frames, height, width, 3]`` (RGB, letterboxed as in
``sampling.json``) and return logits in the order of ``labels.json``; the softmax, averaged
over ``inference.json``'s clips per video, is the video's prediction. Rescaling (and the
frame difference, for ``model.input: diff | rgb_diff``) happens inside the graph.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..artifacts import ONNX_FILE, SAVED_MODEL, write_model_info
from ..outputs import staged_dir
from ..training.modelio import RUN_KEY, load_model_dir

log = logging.getLogger(__name__)


def export(model_dir: Path, out_dir: Path) -> list[Path]:
    """Write ``out_dir/saved_model/`` (signature ``serving_default``), ``out_dir/model.onnx``
    and the model folder's labels, sampling and inference JSON."""
    model, info = load_model_dir(model_dir)
    with staged_dir(out_dir) as tmp:
        model.export(str(tmp / SAVED_MODEL), format="tf_saved_model", verbose=False)
        model.export(str(tmp / ONNX_FILE), format="onnx", verbose=False)
        _stamp_onnx(tmp / ONNX_FILE, info.run)
        write_model_info(tmp, info)
    out = [out_dir / SAVED_MODEL, out_dir / ONNX_FILE]
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
