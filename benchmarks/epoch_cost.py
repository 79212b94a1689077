"""Where a training epoch's time goes, on a built-in style's real clips: the steps, precise
BatchNorm, validation and the epoch's end (dvclive, the checkpoint), for variants side by
side in alternating rounds.

    python benchmarks/epoch_cost.py --style scene "" \
        "model.input=diff frames.height=64 frames.width=64 model.motion_scale=1"

Each argument is one variant: space-separated ``KEY=VALUE`` overrides of params.yaml (""
= the defaults). A variant runs the train stage's own ``train`` for ``--epochs`` epochs in a
fresh process, on data and frames made once under ``--work`` (shared with
``benchmarks/recipes.py``). The first epoch (tracing, warm-up) is reported apart; the
phases are medians over the later epochs of every round, and the estimate of a whole run is
the first epoch plus ``train.epochs - 1`` median epochs.

Why alternating rounds: on this project's 2-core machines the speed of one process moves
by up to 2x from minute to minute (the same training step measured at 0.11 and 0.26 s), so
two trainings run one after the other can differ by that much for no reason of their own.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import overrides, project_params  # noqa: E402

PHASES = ("steps", "precise_bn", "validation", "epoch_end")


def _measure(style: str, variant: str, epochs: int, work: Path) -> dict:
    """One variant in this process: each epoch's phases, in seconds."""
    from recipes import prepare
    from videoclf._tf import keras
    from videoclf.training import train as train_module

    p = project_params(overrides([*variant.split(), f"train.epochs={epochs}"],
                                 {"data": {"builtin_style": style}}))
    _, frames = prepare(p, work)
    marks: list[dict] = []

    class First(keras.callbacks.Callback):  # called before every other callback of train
        def on_epoch_begin(self, epoch, logs=None):
            marks.append({"begin": time.perf_counter()})

        def on_test_begin(self, logs=None):
            marks[-1]["test"] = time.perf_counter()

        def on_test_end(self, logs=None):
            marks[-1]["test_end"] = time.perf_counter()

    class Last(keras.callbacks.Callback):  # after precise BatchNorm and the checkpoint
        def on_test_begin(self, logs=None):
            marks[-1]["validate"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            marks[-1]["done"] = time.perf_counter()

    # train builds its callbacks itself; these two go around them.
    make = train_module._Callbacks.make.__func__

    def observed(cls, *args, **kwargs):
        cb = make(cls, *args, **kwargs)
        cb.keras[:] = [First(), *cb.keras, Last()]
        return cb

    train_module._Callbacks.make = classmethod(observed)
    with tempfile.TemporaryDirectory() as tmp:
        train_module.train(frames, Path(tmp) / "model", Path(tmp) / "live", p.model, p.train,
                           clips_per_video=p.evaluate.clips_per_video)
    return {"epochs": [{"steps": m["test"] - m["begin"],
                        "precise_bn": m["validate"] - m["test"],
                        "validation": m["test_end"] - m["validate"],
                        "epoch_end": m["done"] - m["test_end"],
                        "epoch": m["done"] - m["begin"]} for m in marks],
            "full_epochs": project_params(overrides(variant.split())).train.epochs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+",
                    help='space-separated KEY=VALUE overrides ("" = the defaults)')
    ap.add_argument("--style", default="scene")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/videoclf-recipes"))
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child process: measure one variant
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs must be at least 2 (the first one is warm-up)")
    if args.one is not None:
        print(json.dumps(_measure(args.style, args.one, args.epochs, args.work)))
        return
    runs: dict[str, list[dict]] = {v: [] for v in args.variants}
    for _ in range(args.rounds):
        for v in args.variants:
            out = subprocess.run([sys.executable, __file__, "x", "--one", v, "--style",
                                  args.style, "--epochs", str(args.epochs), "--work",
                                  str(args.work)], capture_output=True, text=True)
            if out.returncode:
                last = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
                sys.exit(f"variant {v!r} failed: {last}")
            runs[v].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = []
    for v, rs in runs.items():
        later = [e for r in rs for e in r["epochs"][1:]]
        row = {k: round(statistics.median(e[k] for e in later), 2) for k in (*PHASES, "epoch")}
        row["first_epoch"] = round(statistics.median(r["epochs"][0]["epoch"] for r in rs), 1)
        row["run_min"] = round((row["first_epoch"]
                                + (rs[0]["full_epochs"] - 1) * row["epoch"]) / 60, 1)
        rows.append({"variant": v or "(defaults)", **row})
    first = rows[0]
    print(f"{args.style}, {args.rounds} rounds of {args.epochs} epochs; seconds, medians of the "
          "epochs after the first")
    print("| variant | steps | precise BN | validation | epoch end | epoch | / first | "
          "first epoch | est. run min |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        r["ratio"] = round(r["epoch"] / first["epoch"], 2)
        print(f"| {r['variant']} | {r['steps']:.2f} | {r['precise_bn']:.2f} | "
              f"{r['validation']:.2f} | {r['epoch_end']:.2f} | {r['epoch']:.2f} | "
              f"{r['ratio']:.2f}x | {r['first_epoch']:.1f} | {r['run_min']:.1f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
