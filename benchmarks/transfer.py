"""Transfer of an image backbone's weights (``model.appearance_weights``) between data sets,
and what cached features save per epoch; all in one run on one machine.

ImageNet weights cannot be fetched here, so this measures the mechanism itself: MobileNetV3
(``model.appearance_backbone``) is trained end to end with many labels on one built-in style
(``--source``), its backbone saved as a weights file; then, on another style (``--target``)
with ``--labelled`` videos per class, three arms are trained per seed: ``none`` (random
weights, end to end), ``frozen`` (the source's weights frozen, the head fitted on the
features stage's cached features) and ``fine-tune`` (the source's weights, end to end).
The weights go through the weights stage's code (a local path, hash recorded) and the
features through the features stage's. Each seed draws its own labelled videos
(``data.seed``) and its own initial weights and order (``train.seed``).

Prints a Markdown table: test top-1 per arm and labels per class (mean over seeds, with a
95% t-interval), the gain over ``none`` (paired by seed), then seconds per epoch of the
frozen head on cached features against the same frozen network on pixels; the last line
is JSON.

    python benchmarks/transfer.py --labelled 5 10 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import T975, project_params, videos_and_frames  # noqa: E402
from videoclf.stage import setup_logging  # noqa: E402


def _params(args, style: str, train_videos: int, seed: int, freeze: bool = False,
            data_seed: int | None = None, **model):
    changes = {
        "data": {"builtin_style": style, "seed": seed if data_seed is None else data_seed,
                 "per_class": {"train": train_videos, "val": args.val, "test": args.test}},
        "frames": {"height": args.size, "width": args.size},
        "model": {"input": args.input, "appearance_backbone": "mobilenet_v3_small", **model},
        "train": {"epochs": args.epochs, "seed": seed, "freeze_backbone": freeze},
    }
    return project_params(changes)


def _fit(p, frames: Path, run: Path, weights: Path | None, cache: bool):
    """Train (the weights and features stages first, as dvc runs them): the summary, the
    median seconds of an epoch after the first (train and validation: the train stage's
    throughput figures) and the wall seconds of the whole fit."""
    from videoclf.training.backbones.weights import prepare_weights
    from videoclf.training.features import write_features
    from videoclf.training.train import train

    m = p.model
    prepare_weights(run / "weights", m.appearance_backbone,
                    str(weights) if weights else "none", "", 60)
    features = None
    if cache:
        write_features(frames, run / "weights", run / "features", m, p.train)
        features = run / "features"
    t0 = time.perf_counter()
    summary = train(frames, run / "model", run / "live", m, p.train,
                    clips_per_video=p.evaluate.clips_per_video, flip_test=p.evaluate.flip,
                    throughput_file=run / "throughput.json", weights_dir=run / "weights",
                    features_dir=features)
    seconds = time.perf_counter() - t0
    epoch = json.loads((run / "throughput.json").read_text())["train"]["epoch_seconds"]
    return summary, epoch, seconds


def _test(p, run: Path, manifest, videos: Path) -> float:
    from videoclf.engine import LocalEngine
    from videoclf.inference.evaluate import evaluate
    from videoclf.inference.predictors import load_predictor

    predict, info = load_predictor(run / "model")
    metrics = evaluate(predict, info, manifest, videos, run / "metrics", p.evaluate,
                       LocalEngine(0))
    return float(metrics["accuracy"])


def source_weights(args) -> Path:
    """The source style's backbone, trained end to end with many labels, as a weights file."""
    from videoclf.training.backbones.applications import backbone_of
    from videoclf.training.modelio import load_model_dir

    work = args.work / f"source-{args.source}-{args.source_seed}-{args.source_videos}-{args.input}"
    out = work / "source.weights.h5"
    if out.exists():
        return out
    p = _params(args, args.source, args.source_videos, 1, data_seed=args.source_seed)
    manifest, videos, frames = videos_and_frames(p, work)
    _fit(p, frames, work / "run", None, cache=False)
    acc = _test(p, work / "run", manifest, videos)
    print(f"source {args.source} (data.seed {args.source_seed}), {args.source_videos} "
          f"videos/class, {args.input}: test top-1 {acc:.2f}", flush=True)
    model, _ = load_model_dir(work / "run" / "model")
    backbone_of(model).save_weights(out)
    return out


ARMS = {"none": (False, False), "frozen": (True, True), "fine-tune": (True, False)}


def _interval(xs: list[float]) -> str:
    x = np.asarray(xs, float)
    if len(x) < 2:
        return f"{x.mean():.2f}"
    half = T975.get(len(x), 2.0) * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():.2f} ({x.mean() - half:.2f} to {x.mean() + half:.2f})"


def _epoch_cost(args, weights: Path, n: int, seed: int) -> dict:
    """Seconds per epoch of a frozen backbone's network fitted on its cached features
    against the same network on pixels, for ``rgb`` (the head alone) and ``two_pathway``
    (the head and the motion pathway, which reads pixels either way)."""
    out = {}
    for kind in ("rgb", "two_pathway"):
        work = args.work / f"target-{args.target}-{n}-{seed}"
        p = _params(args, args.target, n, seed, True, input=kind,
                    appearance_weights=str(weights))
        _, _, frames = videos_and_frames(p, work)
        for cache in (True, False):
            _, sec, _ = _fit(p, frames, work / f"cost-{kind}-{cache}", weights, cache=cache)
            out[f"{kind} {'cached' if cache else 'pixels'}"] = sec
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="context")
    ap.add_argument("--source-seed", type=int, default=42, help="data.seed of the source set")
    ap.add_argument("--target", default="context")
    ap.add_argument("--source-videos", type=int, default=40, help="train videos per class")
    ap.add_argument("--labelled", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3],
                    help="data.seed and train.seed of the target runs")
    ap.add_argument("--val", type=int, default=5)
    ap.add_argument("--test", type=int, default=10)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--input", default="two_pathway", choices=["rgb", "two_pathway"])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--work", type=Path, default=Path("/tmp/videoclf-transfer"))
    args = ap.parse_args()
    setup_logging(logging.WARNING)
    weights = source_weights(args)
    acc: dict = {}
    for n in args.labelled:
        for seed in args.seeds:
            work = args.work / f"target-{args.target}-{n}-{seed}"
            for arm, (pretrained, frozen) in ARMS.items():
                p = _params(args, args.target, n, seed, frozen,
                            appearance_weights=str(weights) if pretrained else "none")
                manifest, videos, frames = videos_and_frames(p, work)
                _fit(p, frames, work / arm, weights if pretrained else None, cache=frozen)
                acc.setdefault((arm, n), []).append(_test(p, work / arm, manifest, videos))
            print(f"labelled {n}, seed {seed}: " + ", ".join(
                f"{arm} {acc[(arm, n)][-1]:.2f}" for arm in ARMS), flush=True)
    _report(args, acc, _epoch_cost(args, weights, args.labelled[0], args.seeds[0]))


def _report(args, acc: dict, epoch_s: dict) -> None:
    print(f"\nsource {args.source} ({args.source_videos}/class, data.seed {args.source_seed}) "
          f"-> target {args.target}, "
          f"{args.input}, {args.size}x{args.size}, {args.epochs} epochs, seeds {args.seeds}")
    print("| labelled / class | none | frozen | fine-tune | frozen - none | fine-tune - none |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in args.labelled:
        base = np.asarray(acc[("none", n)])
        cells = [_interval(acc[(arm, n)]) for arm in ARMS]
        gains = [_interval(list(np.asarray(acc[(arm, n)]) - base)) for arm in ("frozen",
                                                                             "fine-tune")]
        print(f"| {n} | " + " | ".join(cells + gains) + " |")
    print(f"\nseconds per epoch ({args.target}, {args.labelled[0]}/class, seed "
          f"{args.seeds[0]}), a frozen backbone on cached features against pixels:")
    for kind in ("rgb", "two_pathway"):
        cached, pixels = epoch_s[f"{kind} cached"], epoch_s[f"{kind} pixels"]
        print(f"- {kind}: {cached:.2f} against {pixels:.2f} ({pixels / cached:.1f}x)")
    print(json.dumps({"accuracy": {f"{a}@{n}": v for (a, n), v in acc.items()},
                      "seconds_per_epoch": epoch_s}))


if __name__ == "__main__":
    main()
