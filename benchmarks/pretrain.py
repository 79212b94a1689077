"""Self-supervised pretraining against training from scratch, in the low-label regime: per
built-in style, ``--labelled`` training videos per class (val and test as params.yaml), and
as unlabeled pool ``--pool`` other videos of the style's listing (never a val or test
video; anonymous names), rendered into a folder given as ``data.unlabeled_url``.

Prints one Markdown row per style: test top-1 (95% interval) from scratch and pretrained,
the pretext task's validation accuracy, and the minutes of pretrain and of each train; all
rows in one run on one machine. ``--full`` adds the params.yaml regime (30 per class).

    python benchmarks/pretrain.py --styles scene camera object context
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import project_params, videos_and_frames  # noqa: E402
from videoclf.data.builtin.styles import STYLES  # noqa: E402
from videoclf.stage import setup_logging  # noqa: E402


def unlabeled_pool(style: str, seed: int, manifest, out: Path, n: int) -> Path:
    """``n`` videos of the listing outside ``manifest`` (seeded), rendered under anonymous names."""
    from videoclf.data.builtin import generator

    taken = set(manifest.member)
    rest = [m for m in generator.member_names(seed, style) if m not in taken]
    pick = np.random.default_rng(seed).permutation(len(rest))[:n]
    out.mkdir(parents=True, exist_ok=True)
    for i in sorted(pick):
        dest = out / f"{hashlib.sha1(rest[i].encode()).hexdigest()[:12]}.avi"
        if not dest.exists():
            generator.write_clip(rest[i], seed, dest, style)
    return out


def _row(m) -> str:
    return f"{m['accuracy']:.2f} ({m['accuracy_ci95_low']:.2f}-{m['accuracy_ci95_high']:.2f})"


def run_style(style: str, args) -> str:
    from videoclf.data import pretext
    from videoclf.inference.evaluate import evaluate
    from videoclf.inference.predictors import load_predictor
    from videoclf.training.pretrain import fit_pretext
    from videoclf.training.train import train

    work = args.work / f"{style}-{args.labelled}"
    per_class = {"train": args.labelled} if args.labelled else {}
    base: dict = {"data": {"builtin_style": style, "per_class": per_class}}
    if args.epochs:
        base["train"] = {"epochs": args.epochs}
    p = project_params(base)
    manifest, videos, frames = videos_and_frames(p, work)
    pool = unlabeled_pool(style, p.data.seed, manifest, work / "unlabeled", args.pool)
    q = project_params({**base, "data": {**base["data"], "unlabeled_url": str(pool)},
                        "pretrain": {"epochs": args.pretrain_epochs, "task": args.task}})
    t0 = time.perf_counter()
    if not (work / "pretrained" / "pretrain.json").exists():
        work_dir, report = pretext.prepare(videos, q, work)
        fit_pretext(work_dir, work / "pretrained", work / "pretrain-live", q, report)
    pre_min = (time.perf_counter() - t0) / 60
    info = __import__("json").loads((work / "pretrained" / "pretrain.json").read_text())
    cells = []
    for name, start in (("scratch", None), ("pretrained", work / "pretrained" / "model.keras")):
        run = work / name
        t0 = time.perf_counter()
        train(frames, run / "model", run / "live", p.model, p.train,
              clips_per_video=p.evaluate.clips_per_video, flip_test=p.evaluate.flip,
              pretrained=start)
        minutes = (time.perf_counter() - t0) / 60
        predict, model_info = load_predictor(run / "model")
        m = evaluate(predict, model_info, manifest, videos, run / "metrics", p.evaluate)
        cells.append((m, minutes))
    (s, s_min), (t, t_min) = cells
    return (f"| {style} | {args.labelled or 'params.yaml'} | {info['train_videos']} + "
            f"{info['unlabeled_videos']} | {_row(s)} | {_row(t)} | "
            f"{t['accuracy'] - s['accuracy']:+.2f} | {info['best_val_accuracy']:.2f} | "
            f"{pre_min:.1f} | {s_min:.1f} / {t_min:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--styles", nargs="+", default=sorted(STYLES), choices=sorted(STYLES))
    ap.add_argument("--labelled", type=int, default=5, help="train videos per class (0: "
                    "params.yaml's)")
    ap.add_argument("--pool", type=int, default=300, help="unlabeled videos")
    ap.add_argument("--pretrain-epochs", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=0, help="train epochs (0: params.yaml's)")
    ap.add_argument("--task", default="pace", choices=["pace", "arrow"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/videoclf-pretrain"))
    args = ap.parse_args()
    setup_logging(logging.WARNING)
    print(f"task {args.task}, {args.pretrain_epochs} pretext epochs, pool {args.pool}")
    print("| style | labelled / class | pool (train + unlabeled) | scratch: test top-1 | "
          "pretrained: test top-1 | gain | pretext val acc | pretrain min | train min "
          "(scratch / pretrained) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for style in args.styles:
        print(run_style(style, args), flush=True)


if __name__ == "__main__":
    main()
