"""``train.patience``'s default, chosen by measurement: what early stopping keeps of the
defaults' test accuracy, and what share of their train time it needs.

For each built-in style (``--styles``) and seed (``--seeds``, ``train.seed``), one run of
the defaults with every epoch (patience 0) records each epoch's val loss, val accuracy,
test accuracy and seconds. Training is deterministic, and early stopping changes nothing
but where a run ends (the cosine schedule spans ``train.epochs`` either way), so the run
with patience P *is* this run's first epochs: each candidate (``train.patience``,
``train.monitor``, ``train.restore_best``) is read off the same record by Keras's own
``EarlyStopping`` fed the recorded values, all candidates side by side on the same runs.
Test accuracy here is the test videos' centre clips (what validation scores on val), the
same measure for every epoch; the evaluate stage's K clips and flips come on top of it.

Prints one row per run (its epochs, the best val epochs, the full run's test accuracy), then
one per candidate: the epoch it stops at, the epoch whose weights it keeps, its test
accuracy (mean over runs, 95% t-interval), the change against the full run (paired by run)
and its share of the full run's train time; the last line is JSON.

    python benchmarks/patience.py                           # 4 styles x 2 seeds, about 3 h
    python benchmarks/patience.py --styles scene --seeds 42 -S frames.height=64 -S frames.width=64
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import T975, overrides, project_params, videos_and_frames  # noqa: E402
from videoclf.stage import setup_logging  # noqa: E402


def _epoch_recorder(test_ds):
    """A Keras callback recording each epoch's logs, its seconds (train and validation, not
    this callback's own test pass) and the test accuracy of the weights at its end."""
    from videoclf._tf import keras

    class EpochRecord(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rows: list[dict] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self._t0
            test = self.model.evaluate(test_ds, verbose=0, return_dict=True)
            self.rows.append({"epoch": epoch + 1, "seconds": seconds,
                              "val_loss": float(logs["val_loss"]),
                              "val_accuracy": float(logs["val_accuracy"]),
                              "test_accuracy": float(test["accuracy"])})

    return EpochRecord()


def _key(*blocks) -> str:
    from videoclf.params import as_dict

    text = json.dumps([as_dict(b) for b in blocks], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _record(p, work: Path) -> list[dict]:
    """One run of ``p`` with every epoch: a row per epoch, kept under ``work`` by the params
    it ran with (a later call with more styles or seeds trains only what is new)."""
    from videoclf.artifacts import read_index
    from videoclf.training.inputs import make_dataset
    from videoclf.training.train import train

    data = work / _key(p.data)
    frames_dir = data / f"frames-{_key(p.frames)}"
    done = frames_dir / f"record-{_key(p.model, p.train)}.json"
    if done.exists():
        return json.loads(done.read_text())
    _, _, frames = videos_and_frames(p, data, frames_dir / "frames")
    index, _ = read_index(frames)
    test_ds = make_dataset(frames, index, "test", batch_size=p.train.batch_size, stream=None)
    recorder = _epoch_recorder(test_ds)
    run = frames_dir / "run"
    shutil.rmtree(run, ignore_errors=True)  # no checkpoint to resume from: every epoch recorded
    train(frames, run / "model", run / "live", p.model, p.train,
          clips_per_video=p.evaluate.clips_per_video, callbacks=[recorder])
    done.write_text(json.dumps(recorder.rows))
    return recorder.rows


def early_stop(rows: list[dict], patience: int, monitor: str, restore_best: bool
               ) -> tuple[int, int]:
    """Where a run with these settings ends (epochs run) and the epoch whose weights it
    keeps, from the full run's ``rows``: Keras's EarlyStopping, fed the recorded values."""
    from types import SimpleNamespace

    from videoclf._tf import keras

    # The mode train's "auto" resolves to on the compiled model (which this stand-in lacks).
    mode = "min" if monitor == "val_loss" else "max"
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, mode=mode)
    model = SimpleNamespace(stop_training=False)
    stopper.set_model(model)
    stopper.on_train_begin()
    for row in rows:
        stopper.on_epoch_end(row["epoch"] - 1, {monitor: row[monitor]})
        if model.stop_training:
            break
    ran = row["epoch"]
    return ran, (stopper.best_epoch + 1 if restore_best else ran)


def _interval(values: list[float]) -> tuple[float, float]:
    """Mean and 95% t half-width (0 for one value)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), 0.0
    t = T975.get(len(v), 2.0)
    return float(v.mean()), float(t * v.std(ddof=1) / np.sqrt(len(v)))


def candidates(runs: dict[str, list[dict]], patiences: list[int]) -> list[dict]:
    """Each (patience, monitor, restore_best) read off every run: one summary row each."""
    out = []
    for monitor in ("val_loss", "val_accuracy"):
        for restore in (False, True):
            for patience in patiences:
                stops = {name: early_stop(rows, patience, monitor, restore)
                         for name, rows in runs.items()}
                acc = [runs[n][kept - 1]["test_accuracy"] for n, (_, kept) in stops.items()]
                change = [a - runs[n][-1]["test_accuracy"] for a, n in zip(acc, stops)]
                share = [sum(r["seconds"] for r in runs[n][:ran])
                         / sum(r["seconds"] for r in runs[n]) for n, (ran, _) in stops.items()]
                out.append({"patience": patience, "monitor": monitor, "restore_best": restore,
                            "stopped": [ran for ran, _ in stops.values()],
                            "kept": [kept for _, kept in stops.values()],
                            "test_accuracy": _interval(acc), "change": _interval(change),
                            "time_share": float(np.mean(share))})
    return out


def _print(runs: dict[str, list[dict]], table: list[dict], epochs: int) -> None:
    print(f"\n| run | epochs | lowest val loss at | highest val acc at "
          f"| test acc (epoch {epochs}) |")
    print("|---|---|---|---|---|")
    for name, rows in runs.items():
        low = min(rows, key=lambda r: r["val_loss"])["epoch"]
        high = max(rows, key=lambda r: r["val_accuracy"])["epoch"]
        print(f"| {name} | {len(rows)} | {low} | {high} | {rows[-1]['test_accuracy']:.3f} |")
    print("\n| patience | monitor | restore best | stopped at | kept | test acc | change "
          "| train time |")
    print("|---|---|---|---|---|---|---|---|")
    for c in table:
        (acc, acc_h), (d, d_h) = c["test_accuracy"], c["change"]
        print(f"| {c['patience']} | {c['monitor']} | {c['restore_best']} "
              f"| {' '.join(map(str, c['stopped']))} | {' '.join(map(str, c['kept']))} "
              f"| {acc:.3f} ± {acc_h:.3f} | {d:+.3f} ± {d_h:.3f} | {c['time_share']:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--styles", nargs="+", default=["scene", "camera", "object", "context"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 7])
    ap.add_argument("--patience", nargs="+", type=int, default=[3, 5, 8, 10, 15])
    ap.add_argument("-S", dest="set", action="append", default=[],
                    help="a params override, KEY=VALUE as dvc exp run -S (train.epochs=4, ...)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/videoclf-patience"))
    args = ap.parse_args()
    setup_logging()
    logging.getLogger("videoclf").setLevel(logging.WARNING)

    runs: dict[str, list[dict]] = {}
    for style in args.styles:
        for seed in args.seeds:
            changes = overrides(args.set, {"data": {"builtin_style": style},
                                           "train": {"seed": seed, "patience": 0}})
            p = project_params(changes)
            t0 = time.perf_counter()
            runs[f"{style}/{seed}"] = rows = _record(p, args.work / style)
            print(f"{style} seed {seed}: {len(rows)} epochs in {time.perf_counter() - t0:.0f} s, "
                  f"test accuracy {rows[-1]['test_accuracy']:.3f}", flush=True)
    table = candidates(runs, args.patience)
    _print(runs, table, p.train.epochs)
    print(json.dumps({"runs": runs, "candidates": table}))


if __name__ == "__main__":
    main()
