"""Inference speed on this CPU: the Keras model against its ONNX export (onnxruntime).

Scores the same random uint8 clips with both, in batches, after a warm-up batch, and prints
clips/s of each and their ratio, measured in one run on one machine. Uses ``data/model`` and
``data/export/model.onnx`` when the pipeline ran, else trains nothing: it builds and exports
an untrained model of the params' shape (speed does not depend on the weights).

    python benchmarks/inference.py [--batch 16] [--clips 256]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import project_params  # noqa: E402


def _rate(predict, clips: np.ndarray, batch: int) -> float:
    predict(clips[:batch])  # warm-up: tracing, session set-up
    t0 = time.perf_counter()
    for i in range(0, len(clips), batch):
        predict(clips[i : i + batch])
    return len(clips) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--clips", type=int, default=256)
    args = ap.parse_args()
    from videoclf.training.modelio import load_onnx, load_predictor

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, onnx = Path("data/model"), Path("data/export/model.onnx")
        if not (model_dir / "model.keras").exists() or not onnx.exists():
            from videoclf.artifacts import ModelInfo
            from videoclf.serve.export import export
            from videoclf.training.modelio import save_model_dir
            from videoclf.training.network import build_model

            p = project_params()
            f = p.frames
            model_dir = Path(tmp) / "model"
            model_dir.mkdir()
            sampling = f.sampling
            model = build_model(f.n_frames, f.height, f.width, 10, p.model.filters,
                                p.model.input, norm=p.model.norm)
            save_model_dir(model, model_dir, ModelInfo([f"c{i}" for i in range(10)], sampling, 1))
            export(model_dir, Path(tmp) / "export")
            onnx = Path(tmp) / "export" / "model.onnx"
        keras_predict, info = load_predictor(model_dir)
        onnx_predict, _ = load_onnx(onnx)
        s = info.sampling
        clips = np.random.default_rng(0).integers(
            0, 256, (args.clips, s.n_frames, s.height, s.width, 3), dtype=np.uint8)
        k = _rate(keras_predict, clips, args.batch)
        o = _rate(onnx_predict, clips, args.batch)
    print(f"{s.n_frames}x{s.height}x{s.width} clips, batch {args.batch}: "
          f"Keras {k:.1f} clips/s, onnxruntime {o:.1f} clips/s ({o / k:.2f}x)")


if __name__ == "__main__":
    main()
