"""The plot stage: PNG learning curves, confusion matrices (seaborn) and filmstrips of test
clips with their predictions, for people to look at."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..artifacts import (  # noqa: E402
    LIVE_METRICS,
    LIVE_SPLITS,
    PLOT_FILES,
    live_tsv,
    read_model_info,
    read_per_class,
    read_predictions,
    read_train_info,
)
from ..video import Sampling, VideoError, eval_starts, read_clips  # noqa: E402

log = logging.getLogger(__name__)


def read_history(live_dir: Path) -> pd.DataFrame:
    """Per-epoch train and validation loss and accuracy from dvclive's TSV files."""
    frames = []
    for split in LIVE_SPLITS:
        name = "val" if split == "eval" else split
        for metric in LIVE_METRICS:
            f = live_tsv(live_dir, split, metric)
            if f.exists():
                df = pd.read_csv(f, sep="\t")
                frames.append(pd.DataFrame({"epoch": df["step"] + 1, "value": df[metric],
                                            "metric": metric, "split": name}))
    if not frames:
        raise FileNotFoundError(f"no dvclive metrics under {live_dir}")
    return pd.concat(frames, ignore_index=True)


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=80, bbox_inches="tight")  # fits a browser page in dvc plots show
    plt.close(fig)
    os.replace(tmp, path)


def learning_curves(history: pd.DataFrame, path: Path, best_epoch: int | None = None,
                    pretext: pd.DataFrame | None = None, stopped: int | None = None) -> None:
    """Loss and accuracy per epoch, train against validation, side by side; with the
    pretrain stage's curves (``pretext``) as two more lines where it ran, and a red line at
    the epoch early stopping (``train.patience``) ended training."""
    if pretext is not None:
        history = pd.concat([history, pretext.assign(split="pretext " + pretext.split)],
                            ignore_index=True)
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        sns.lineplot(data=history[history.metric == metric], x="epoch", y="value", hue="split",
                     marker="o", ax=ax)
        ax.set(title=metric.capitalize(), ylabel=metric, xlabel="epoch")
        if metric == "accuracy":
            ax.set_ylim(0, 1.02)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch ({best_epoch})")
        if stopped:
            ax.axvline(stopped, color="tab:red", ls=":", lw=1.5,
                       label=f"stopped early (epoch {stopped}: no better val for patience)")
        ax.legend()
    _save(fig, path)


def confusion_heatmaps(predictions: list[dict], classes: list[str], path: Path) -> None:
    """Counts and row-normalised rates, actual in rows, predicted in columns."""
    actual = pd.Categorical([p["actual"] for p in predictions], categories=classes)
    predicted = pd.Categorical([p["predicted"] for p in predictions], categories=classes)
    cm = pd.crosstab(actual, predicted, dropna=False).reindex(index=classes, columns=classes,
                                                               fill_value=0)
    rates = cm.div(cm.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    n = len(classes)
    # Numbers in the cells and every class named while they stay legible; past that the
    # colours carry the matrix and the worst confusions are listed beside it.
    annotate = n <= ANNOTATE_MAX_CLASSES
    size = min(max(6.0, 0.6 * n + 3), 24.0)
    sns.set_theme(style="white")
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size + (0 if annotate else 0.6)))
    ticks = True if n <= TICKS_MAX_CLASSES else max(1, n // 40)
    sns.heatmap(cm, annot=annotate, fmt="d", cmap="Blues", cbar=False, square=True,
                xticklabels=ticks, yticklabels=ticks, ax=axes[0])
    sns.heatmap(rates, annot=annotate, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False,
                square=True, xticklabels=ticks, yticklabels=ticks, ax=axes[1])
    acc = float(np.trace(cm.to_numpy()) / max(1, cm.to_numpy().sum()))
    for ax, title in zip(axes, ("counts", "normalised by actual class")):
        ax.set(title=f"Test confusion matrix, {title}", xlabel="Predicted", ylabel="Actual")
        ax.tick_params(axis="x", labelrotation=45 if annotate else 90)
        ax.tick_params(axis="y", labelrotation=0)
        plt.setp(ax.get_xticklabels(), ha="right")
    title = f"accuracy {acc:.3f} on {len(predictions)} test videos"
    if not annotate:
        worst = top_confusions(cm, 8)
        title += "\nmost confused: " + "; ".join(f"{a} -> {p} ({k})" for a, p, k in worst)
    fig.suptitle(title)
    _save(fig, path)


ANNOTATE_MAX_CLASSES = 30   # numbers in the cells up to this many classes
TICKS_MAX_CLASSES = 60      # every class named up to this many
BARS_MAX_CLASSES = 40       # per-class bars for every class up to this many, else the worst


def top_confusions(cm: pd.DataFrame, k: int) -> list[tuple[str, str, int]]:
    """The ``k`` most frequent (actual, predicted, count) mistakes, most first."""
    values = cm.to_numpy().copy()
    np.fill_diagonal(values, 0)
    order = np.argsort(-values, axis=None, kind="stable")[:k]
    rows, cols = np.unravel_index(order, values.shape)
    return [(cm.index[r], cm.columns[c], int(values[r, c])) for r, c in zip(rows, cols)
            if values[r, c] > 0]


def per_class_bars(per_class: dict, path: Path) -> None:
    """Precision, recall and F1 per class as grouped horizontal bars; with many classes, the
    ``BARS_MAX_CLASSES`` of lowest F1 (per_class.json has every one)."""
    table = pd.DataFrame(per_class).T
    title = "Per-class precision, recall and F1 (test)"
    if len(table) > BARS_MAX_CLASSES:
        table = table.sort_values("f1", kind="stable").head(BARS_MAX_CLASSES)
        title += f": the {BARS_MAX_CLASSES} of lowest F1 of {len(per_class)} classes"
    df = (table.reset_index(names="class")
          .melt(id_vars="class", value_vars=["precision", "recall", "f1"], var_name="metric"))
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.5))
    sns.barplot(data=df, y="class", x="value", hue="metric", ax=ax)
    ax.set(xlim=(0, 1.02), xlabel="", ylabel="", title=title)
    _save(fig, path)


def pick_examples(predictions: list[dict], classes: list[str], per_class: int) -> list[dict]:
    """Up to ``per_class`` test videos of each class, misclassified ones first (then by name);
    the misclassified of every class come before any correct one."""
    chosen = []
    for c in classes:
        mine = sorted((p for p in predictions if p["actual"] == c),
                      key=lambda p: (p["actual"] == p["predicted"], p["video"]))
        chosen += mine[:per_class]
    return sorted(chosen, key=lambda p: (p["actual"] == p["predicted"], classes.index(p["actual"]),
                                         p["video"]))


EXAMPLES_MAX = 24  # filmstrips in examples.png (misclassified first), however many classes


def examples_strip(predictions: list[dict], classes: list[str], sampling: Sampling,
                   videos_dir: Path, path: Path, per_class: int = 2) -> int:
    """A filmstrip per chosen test video: the frames the model sampled (as evaluate samples
    its first clip, drawn at twice the model's size), the true class and the top predictions;
    misclassified videos first, titled in red. Returns the number of videos drawn."""
    chosen = pick_examples(predictions, classes, per_class)[:EXAMPLES_MAX]
    s = dataclasses.replace(sampling, height=sampling.height * 2, width=sampling.width * 2)
    strips = []
    for p in chosen:
        try:
            clip = read_clips(videos_dir / p["video"], lambda n: eval_starts(n, 1, s), s).array[0]
        except VideoError:
            continue
        strips.append((p, np.concatenate(list(clip), axis=1)))
    if not strips:
        raise FileNotFoundError(f"none of the chosen test videos could be read under {videos_dir}")
    width, height = strips[0][1].shape[1], strips[0][1].shape[0]
    fig, axes = plt.subplots(len(strips), 1, squeeze=False,
                             figsize=(width / 80, len(strips) * (height / 80 + 0.45)))
    for ax, (p, strip) in zip(axes[:, 0], strips):
        ax.imshow(strip)
        ax.set_axis_off()
        wrong = p["actual"] != p["predicted"]
        top = ", ".join(f"{t['label']} {t['probability']:.2f}" for t in p.get("top", []))
        ax.set_title(f"{'WRONG' if wrong else 'right'}: {p['actual']} -> {top}  ({p['video']})",
                     fontsize=9, loc="left", color="firebrick" if wrong else "black")
    _save(fig, path)
    return len(strips)


def make_plots(live_dir: Path, metrics_dir: Path, model_dir: Path, out_dir: Path,
               videos_dir: Path, pretrain_live: Path | None = None) -> list[Path]:
    """Write every PNG of the plot stage; returns their paths. ``pretrain_live``: the
    pretrain stage's dvclive folder (no curves in it when pretraining was off)."""
    info = read_model_info(model_dir)
    classes = info.labels
    train_info = read_train_info(model_dir)
    predictions = read_predictions(metrics_dir)
    per_class = read_per_class(metrics_dir)
    out = [out_dir / name for name in PLOT_FILES]
    best = train_info.best_epoch if train_info.restored_best else None
    pretext = None
    if pretrain_live is not None and live_tsv(pretrain_live, "train", "loss").exists():
        pretext = read_history(pretrain_live)
    learning_curves(read_history(live_dir), out[0], best, pretext, train_info.stopped_epoch)
    confusion_heatmaps(predictions, classes, out[1])
    per_class_bars(per_class, out[2])
    examples_strip(predictions, classes, info.sampling, videos_dir, out[3])
    log.info("plot: %s", ", ".join(str(p) for p in out))
    return out
