"""Uneven classes: plain training against ``train.balance: sample``, ``sqrt`` and ``weight``, on a
built-in style made uneven (the largest class has ``--ratio`` times the videos of the
smallest, in train, val and test alike, the counts falling linearly over the sorted classes).

Prints one Markdown row per option: test top-1 and mean-class accuracy with their bootstrap
95% intervals, and the train time; all rows in one run on one machine.

    python benchmarks/uneven.py --style object --ratio 5 [--options none sqrt] [--seed 1]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import project_params  # noqa: E402
from videoclf.artifacts import read_classes, read_manifest  # noqa: E402
from videoclf.data.builtin.styles import STYLES  # noqa: E402
from videoclf.stage import setup_logging  # noqa: E402


def uneven(manifest, classes: list[str], ratio: float):
    """The manifest with class i keeping a share falling linearly from 1 to 1/ratio."""
    keep = []
    for i, cls in enumerate(classes):
        share = 1 - (1 - 1 / ratio) * i / max(1, len(classes) - 1)
        for split in ("train", "val", "test"):
            rows = manifest[(manifest["class"] == cls) & (manifest.split == split)]
            keep.append(rows.sort_values("video").head(max(2, round(len(rows) * share))))
    import pandas as pd

    return pd.concat(keep).sort_values("video").reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", default="object", choices=sorted(STYLES))
    ap.add_argument("--ratio", type=float, default=5.0)
    ap.add_argument("--epochs", type=int, default=0, help="0: params.yaml's")
    ap.add_argument("--seed", type=int, default=None, help="train.seed (default: params.yaml's)")
    ap.add_argument("--options", nargs="+", default=["none", "sample", "sqrt", "weight"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/videoclf-uneven"))
    args = ap.parse_args()
    setup_logging(logging.WARNING)
    from videoclf.data.download import download
    from videoclf.data.extract import extract
    from videoclf.inference.evaluate import evaluate
    from videoclf.inference.predictors import load_predictor
    from videoclf.training.train import train

    changes = {"data": {"builtin_style": args.style}}
    if args.epochs:
        changes["train"] = {"epochs": args.epochs}
    if args.seed is not None:
        changes["train"] = {**changes.get("train", {}), "seed": args.seed}
    p = project_params(changes)
    work = args.work / args.style
    videos = work / "videos"
    if not (videos / "manifest.parquet").exists():
        download(p.data, videos, work / ".staging")
    classes = read_classes(videos)
    manifest = uneven(read_manifest(videos), classes, args.ratio)
    frames = work / f"frames-{args.ratio:g}"
    if not (frames / "index.parquet").exists():
        extract(manifest, videos, frames, p.frames, classes)
    counts = manifest[manifest.split == "train"].groupby("class").size()
    print(f"{args.style}, train.seed {p.train.seed}, train videos per class "
          f"{counts.min()}-{counts.max()} ({len(manifest[manifest.split == 'test'])} test videos)")
    print("| train.balance | test top-1 (95% CI) | mean class (95% CI) | train min |")
    print("| --- | --- | --- | --- |")
    for balance in args.options:
        q = project_params({**changes, "train": {**changes.get("train", {}),
                                                 "balance": balance}})
        run = work / f"run-{args.ratio:g}-{balance}-seed{q.train.seed}"
        t0 = time.perf_counter()
        train(frames, run / "model", run / "live", q.model, q.train,
              clips_per_video=q.evaluate.clips_per_video, flip_test=q.evaluate.flip)
        minutes = (time.perf_counter() - t0) / 60
        predict, info = load_predictor(run / "model")
        m = evaluate(predict, info, manifest, videos, run / "metrics", q.evaluate)
        print(f"| {balance} | {m['accuracy']:.2f} ({m['accuracy_ci95_low']:.2f}-"
              f"{m['accuracy_ci95_high']:.2f}) | {m['mean_class_accuracy']:.2f} "
              f"({m['mean_class_accuracy_ci95_low']:.2f}-{m['mean_class_accuracy_ci95_high']:.2f})"
              f" | {minutes:.1f} |", flush=True)


if __name__ == "__main__":
    main()
