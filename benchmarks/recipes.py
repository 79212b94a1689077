"""Recipes against the built-in styles: test and best validation accuracy, and wall time.

Runs the pipeline's own functions (download, extract, train, evaluate) with params.yaml plus
``-S`` style overrides, exactly as ``dvc exp run -S ...`` would, and prints one Markdown row
per run. Downloads and extractions are cached under ``--work`` by their params, so a recipe
that changes only ``train.*`` reuses the frames.

    python benchmarks/recipes.py --style camera -S frames.frame_step=15 -S train.augment.flip=false
    python benchmarks/recipes.py --style object --name diff -S model.input=rgb_diff

Equivalent DVC command: ``dvc exp run -S data.builtin_style=camera -S frames.frame_step=15 ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import overrides, project_params  # noqa: E402
from videoclf.artifacts import TrainSummary, read_classes, read_manifest  # noqa: E402
from videoclf.data.builtin.styles import STYLES  # noqa: E402
from videoclf.params import as_dict  # noqa: E402
from videoclf.stage import setup_logging  # noqa: E402


def _key(*blocks) -> str:
    """A folder name for params blocks (data, frames, evaluate), so reruns reuse them."""
    text = json.dumps([as_dict(b) for b in blocks], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def prepare(p, work: Path) -> tuple[Path, Path]:
    """The videos and frames folders of ``p``'s data and frames params, made once under
    ``work`` and reused by every later run with the same blocks."""
    from videoclf.data.download import download
    from videoclf.data.extract import extract

    data_dir = work / f"data-{_key(p.data)}"
    videos = data_dir / "videos"
    if not (videos / "manifest.parquet").exists():
        download(p.data, videos, data_dir / ".staging")
    frames = data_dir / f"frames-{_key(p.frames)}"
    if not (frames / "index.parquet").exists():
        extract(read_manifest(videos), videos, frames, p.frames, read_classes(videos))
    return videos, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", required=True, choices=sorted(STYLES))
    ap.add_argument("--name", default="", help="a label for the row")
    ap.add_argument("-S", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a params override, YAML value (repeatable)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/videoclf-recipes"))
    args = ap.parse_args()
    setup_logging(logging.WARNING)
    p = project_params(overrides(args.sets, {"data": {"builtin_style": args.style}}))
    t0 = time.perf_counter()
    videos, frames = prepare(p, args.work)
    t_data = time.perf_counter() - t0

    from videoclf.inference.evaluate import evaluate
    from videoclf.inference.predictors import load_predictor
    from videoclf.training.train import backup_key, train

    # A trained model is reused when the clips, the params and the training code are the
    # same (train's own resume key), so a rerun only evaluates.
    run = args.work / f"run-{backup_key(frames, p.model, p.train)}-{_key(p.evaluate)}"
    done = run / "done.json"
    if done.exists():
        kept, t_train = json.loads(done.read_text())
        summary = TrainSummary(**kept)
    else:
        t1 = time.perf_counter()
        summary = train(frames, run / "model", run / "live", p.model, p.train,
                        clips_per_video=p.evaluate.clips_per_video, flip_test=p.evaluate.flip)
        t_train = time.perf_counter() - t1
        done.write_text(json.dumps([summary.to_dict(), t_train]))
    # As the evaluate stage does: the predictor (predict_on_batch), not the model called
    # directly, which runs BatchNorm on the batch's statistics.
    predict, info = load_predictor(run / "model")
    m = evaluate(predict, info, read_manifest(videos), videos, run / "metrics", p.evaluate)
    sets = " ".join(f"-S {s}" for s in args.sets) or "(defaults)"
    print(f"| {args.style} | {args.name or sets} | {summary.kept_val_accuracy:.2f} | "
          f"{m['accuracy']:.2f} | {t_train / 60:.1f} | {t_data / 60:.1f} | `{sets}` |",
          flush=True)


if __name__ == "__main__":
    main()
