"""The train stage's own Keras callbacks: wall-clock throughput, and checkpoints that let a
killed run resume to the bytes of an unbroken one."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .._tf import keras


class Throughput(keras.callbacks.Callback):
    """Clips per second of training and of validation, per epoch (wall clock).

    The first epoch pays for tracing and warm-up, so the figures are medians over the later
    epochs when there are any. On a GPU a training rate far below the validation rate points
    at an input pipeline that cannot keep up (validation runs the model forward only).
    """

    def __init__(self, train_clips: int, val_clips: int):
        super().__init__()
        self.train_clips, self.val_clips = train_clips, val_clips
        self.train_s: list[float] = []
        self.val_s: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._val_start = None

    def on_test_begin(self, logs=None):
        self._val_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        end = time.perf_counter()
        split = self._val_start or end
        self.train_s.append(split - self._t0)
        self.val_s.append(end - split)

    def summary(self) -> dict:
        def rate(n: int, seconds: list[float]) -> float:
            later = seconds[1:] or seconds
            return round(n / max(1e-9, float(np.median(later))), 1)

        return {"train_clips_per_s": rate(self.train_clips, self.train_s),
                "val_clips_per_s": rate(self.val_clips, self.val_s),
                "epoch_seconds": round(float(np.median(
                    [a + b for a, b in zip(self.train_s, self.val_s)][1:]
                    or [self.train_s[0] + self.val_s[0]])), 2)}


class Checkpoint(keras.callbacks.Callback):
    """Resume after an interruption, SIGKILL included, to the same bytes as an unbroken run.

    At the end of every epoch the weights with the optimizer state (``save_weights``: Adam's
    moments and its step, which is also the learning-rate schedule's position), the history
    so far and EarlyStopping's state with its best weights go into ``epoch-NNNNN/`` through a
    temp folder renamed when complete, so a kill at any moment leaves the last finished
    epoch whole. (Keras' BackupAndRestore writes its weights and its epoch number one after
    the other in place, and keeps neither the history nor EarlyStopping's state.) The input
    pipeline needs no state: every epoch's randomness is a function of (seed, epoch).
    """

    def __init__(self, backup_dir: Path, stopper: keras.callbacks.EarlyStopping):
        super().__init__()
        self.backup_dir, self.stopper = Path(backup_dir), stopper
        self.history: list[dict] = []
        self.stopped = False
        self._restore: Path | None = None

    @staticmethod
    def latest(backup_dir: Path) -> tuple[Path, dict] | None:
        """The newest complete checkpoint and its state, or None."""
        done = sorted(Path(backup_dir).glob("epoch-*/state.json"))
        if not done:
            return None
        return done[-1].parent, json.loads(done[-1].read_text())

    def resume_from(self, ckpt: Path, state: dict) -> None:
        """Restore at the start of ``fit`` (after EarlyStopping has reset itself)."""
        self._restore = ckpt
        self.history = state["history"]
        self.stopped = state["stopped"]

    def on_train_begin(self, logs=None):
        if self._restore is None:
            return
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self._restore / "state.weights.h5")
        st = json.loads((self._restore / "state.json").read_text())["stopper"]
        self.stopper.wait, self.stopper.best = st["wait"], st["best"]
        self.stopper.best_epoch, self.stopper.stopped_epoch = st["best_epoch"], st["stopped_epoch"]
        best = self._restore / "best.npz"
        if best.exists():
            with np.load(best) as z:
                self.stopper.best_weights = [z[f"w{i}"] for i in range(len(z.files))]

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({k: float(v) for k, v in (logs or {}).items()})
        self.stopped = bool(self.model.stop_training)
        tmp = self.backup_dir / f".epoch-{epoch:05d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.model.save_weights(tmp / "state.weights.h5")
        st = self.stopper
        if st.best_weights is not None:
            np.savez(tmp / "best.npz", **{f"w{i}": w for i, w in enumerate(st.best_weights)})
        (tmp / "state.json").write_text(json.dumps({
            "epoch": epoch, "history": self.history, "stopped": self.stopped,
            "stopper": {"wait": st.wait, "best": float(st.best), "best_epoch": st.best_epoch,
                        "stopped_epoch": st.stopped_epoch}}))
        final = self.backup_dir / f"epoch-{epoch:05d}"
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in self.backup_dir.glob("epoch-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
