"""Inference speed on this CPU: the Keras model against its exports (onnxruntime, LiteRT).

Scores the same random uint8 clips with every format at batch 1 and batch 16, after a warm-up
call, and prints clips/s of each, measured in one run on one machine (compare the ratios, not
the figures across machines). Uses ``data/model`` and ``data/export/`` when the pipeline ran
(and ``--pipeline`` is given), else builds and exports an untrained model of the params' shape
(speed does not depend on the weights; int8 calibration then uses random clips).

    python benchmarks/inference.py [--json] [--pipeline]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import project_params  # noqa: E402

FORMATS = ("keras", "onnx", "tflite")  # tflite: the int8 model, the one made for CPUs


def _build(tmp: Path) -> tuple[Path, Path]:
    """An untrained model of the params' shape, exported (random clips calibrate int8)."""
    from videoclf.artifacts import TFLITE_FILES, ModelInfo
    from videoclf.inference.export import export
    from videoclf.inference.litert import convert
    from videoclf.training.modelio import save_model_dir
    from videoclf.training.network import build_model

    p = project_params()
    model_dir = tmp / "model"
    model_dir.mkdir()
    s = p.frames.sampling
    model = build_model(p.model, s, 10)
    save_model_dir(model, model_dir, ModelInfo([f"c{i}" for i in range(10)], s, 1))
    export(model_dir, tmp / "export")
    calibration = np.random.default_rng(1).integers(
        0, 256, (16, s.n_frames, s.height, s.width, 3), dtype=np.uint8)
    for kind, name in TFLITE_FILES.items():
        (tmp / "export" / name).write_bytes(convert(tmp / "export" / "saved_model", kind,
                                                    calibration))
    return model_dir, tmp / "export"


def measure(model_dir: Path, export_dir: Path) -> dict:
    """The export stage's own speed_table (same warm-up, turns, rounds and seconds) on the
    same 16 clips for every format."""
    from videoclf.artifacts import ONNX_FILE, TFLITE_FILES
    from videoclf.inference.export_report import BATCHES, speed_table
    from videoclf.inference.predictors import load_predictor

    paths = {"keras": model_dir, "onnx": export_dir / ONNX_FILE,
             "tflite": export_dir / TFLITE_FILES["int8"],
             "tflite_float16": export_dir / TFLITE_FILES["float16"]}
    predictors = {k: load_predictor(v)[0] for k, v in paths.items()}
    s = load_predictor(paths["onnx"])[1].sampling
    clips = np.random.default_rng(0).integers(0, 256, (16, s.n_frames, s.height, s.width, 3),
                                              dtype=np.uint8)
    table = speed_table(predictors, clips)
    out: dict = {"clip": f"{s.n_frames}x{s.height}x{s.width}"}
    for batch in BATCHES:
        key = f"batch_{batch}_clips_per_s"
        row = {f"{k}_clips_per_s": table[k][key] for k in predictors}
        row["onnx_over_keras"] = round(row["onnx_clips_per_s"] / row["keras_clips_per_s"], 2)
        out[f"batch_{batch}"] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON line")
    ap.add_argument("--pipeline", action="store_true",
                    help="the pipeline's data/model and data/export instead of a built model")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.pipeline:
            model_dir, export_dir = Path("data/model"), Path("data/export")
        else:
            model_dir, export_dir = _build(Path(tmp))
        result = measure(model_dir, export_dir)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['clip']} clips, clips/s on this CPU:")
    for batch in (1, 16):
        row = result[f"batch_{batch}"]
        print(f"  batch {batch:>2}: " + ", ".join(f"{k.removesuffix('_clips_per_s')} {v}"
                                                  for k, v in row.items()))


if __name__ == "__main__":
    main()
