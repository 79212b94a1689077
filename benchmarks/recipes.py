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

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from _common import project_params  # noqa: E402
from videoclf.artifacts import read_classes, read_manifest  # noqa: E402
from videoclf.data.styles import STYLES  # noqa: E402
from videoclf.params import as_dict  # noqa: E402
from videoclf.stage import setup_logging  # noqa: E402


def _set(changes: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = changes
    for k in parents:
        node = node.setdefault(k, {})
    node[last] = value


def _key(*blocks) -> str:
    """A folder name for params blocks (data, frames, evaluate), so reruns reuse them."""
    text = json.dumps([as_dict(b) for b in blocks], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _kept_val_accuracy(summary: dict, run: Path) -> float:
    """The validation accuracy of the weights the model keeps (train's ``kept_val_accuracy``;
    runs cached before it existed: the lowest-loss epoch's, or the last row of dvclive's
    table when the last epoch was kept)."""
    if "kept_val_accuracy" in summary:
        return summary["kept_val_accuracy"]
    if summary.get("restored_best", True):
        return summary["best_val_accuracy"]
    rows = (run / "live" / "plots" / "metrics" / "eval" / "accuracy.tsv").read_text().split()
    return float(rows[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", required=True, choices=sorted(STYLES))
    ap.add_argument("--name", default="", help="a label for the row")
    ap.add_argument("-S", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a params override, YAML value (repeatable)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/videoclf-recipes"))
    args = ap.parse_args()
    setup_logging(logging.WARNING)
    changes: dict = {"data": {"builtin_style": args.style}}
    for s in args.sets:
        k, _, v = s.partition("=")
        _set(changes, k, yaml.safe_load(v))
    p = project_params(changes)

    from videoclf.data.download import download
    from videoclf.data.extract import extract

    t0 = time.perf_counter()
    data_dir = args.work / f"data-{_key(p.data)}"
    videos = data_dir / "videos"
    if not (videos / "manifest.parquet").exists():
        download(p.data, videos, data_dir / ".staging")
    frames = data_dir / f"frames-{_key(p.frames)}"
    if not (frames / "index.parquet").exists():
        extract(read_manifest(videos), videos, frames, p.frames, read_classes(videos))
    t_data = time.perf_counter() - t0

    from videoclf.serve.evaluate import evaluate
    from videoclf.serve.predictors import load_predictor
    from videoclf.training.train import backup_key, train

    # A trained model is reused when the clips, the params and the training code are the
    # same (train's own resume key), so a rerun only evaluates.
    run = args.work / f"run-{backup_key(frames, p.model, p.train)}-{_key(p.evaluate)}"
    done = run / "done.json"
    if done.exists():
        summary, t_train = json.loads(done.read_text())
    else:
        t1 = time.perf_counter()
        summary = train(frames, run / "model", run / "live", p.model, p.train,
                        clips_per_video=p.evaluate.clips_per_video)
        t_train = time.perf_counter() - t1
        done.write_text(json.dumps([summary, t_train]))
    # As the evaluate stage does: the predictor (predict_on_batch), not the model called
    # directly, which runs BatchNorm on the batch's statistics.
    predict, info = load_predictor(run / "model")
    m = evaluate(predict, info, read_manifest(videos), videos, run / "metrics", p.evaluate)
    sets = " ".join(f"-S {s}" for s in args.sets) or "(defaults)"
    print(f"| {args.style} | {args.name or sets} | {_kept_val_accuracy(summary, run):.2f} | "
          f"{m['accuracy']:.2f} | {t_train / 60:.1f} | {t_data / 60:.1f} | `{sets}` |",
          flush=True)


if __name__ == "__main__":
    main()
