"""The plot stage: PNG learning curves and confusion matrices (seaborn), for people to look at."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

log = logging.getLogger(__name__)


def read_history(live_dir: Path) -> pd.DataFrame:
    """Per-epoch train and validation loss and accuracy from dvclive's TSV files."""
    base = Path(live_dir) / "plots" / "metrics"
    frames = []
    for split, name in (("train", "train"), ("eval", "val")):
        for metric in ("loss", "accuracy"):
            f = base / split / f"{metric}.tsv"
            if f.exists():
                df = pd.read_csv(f, sep="\t")
                frames.append(pd.DataFrame({"epoch": df["step"] + 1, "value": df[metric],
                                            "metric": metric, "split": name}))
    if not frames:
        raise FileNotFoundError(f"no dvclive metrics under {base}")
    return pd.concat(frames, ignore_index=True)


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=80, bbox_inches="tight")  # fits a browser page in dvc plots show
    plt.close(fig)
    os.replace(tmp, path)


def learning_curves(history: pd.DataFrame, path: Path, best_epoch: int | None = None) -> None:
    """Loss and accuracy per epoch, train against validation, side by side."""
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
        ax.legend()
    _save(fig, path)


def confusion_heatmaps(predictions: list[dict], classes: list[str], path: Path) -> None:
    """Counts and row-normalised rates, actual in rows, predicted in columns."""
    actual = pd.Categorical([p["actual"] for p in predictions], categories=classes)
    predicted = pd.Categorical([p["predicted"] for p in predictions], categories=classes)
    cm = pd.crosstab(actual, predicted, dropna=False).reindex(index=classes, columns=classes,
                                                               fill_value=0)
    rates = cm.div(cm.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
    size = max(6.0, 0.6 * len(classes) + 3)
    sns.set_theme(style="white")
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    sns.heatmap(cm, annot=True, fmt="d", cmap="Blues", cbar=False, square=True, ax=axes[0])
    sns.heatmap(rates, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False,
                square=True, ax=axes[1])
    acc = float(np.trace(cm.to_numpy()) / max(1, cm.to_numpy().sum()))
    for ax, title in zip(axes, ("counts", "normalised by actual class")):
        ax.set(title=f"Test confusion matrix, {title}", xlabel="Predicted", ylabel="Actual")
        ax.tick_params(axis="x", labelrotation=45)
        ax.tick_params(axis="y", labelrotation=0)
        plt.setp(ax.get_xticklabels(), ha="right")
    fig.suptitle(f"accuracy {acc:.3f} on {len(predictions)} test videos")
    _save(fig, path)


def per_class_bars(per_class: dict, path: Path) -> None:
    """Precision, recall and F1 per class as grouped horizontal bars."""
    df = (pd.DataFrame(per_class).T.reset_index(names="class")
          .melt(id_vars="class", value_vars=["precision", "recall", "f1"], var_name="metric"))
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(per_class) + 1.5))
    sns.barplot(data=df, y="class", x="value", hue="metric", ax=ax)
    ax.set(xlim=(0, 1.02), xlabel="", ylabel="", title="Per-class precision, recall and F1 (test)")
    _save(fig, path)


def make_plots(live_dir: Path, metrics_dir: Path, model_dir: Path, out_dir: Path) -> list[Path]:
    """Write every PNG of the plot stage; returns their paths."""
    classes = json.loads((model_dir / "labels.json").read_text())
    train_info = json.loads((model_dir / "train.json").read_text())
    predictions = json.loads((metrics_dir / "eval" / "predictions.json").read_text())
    per_class = json.loads((metrics_dir / "per_class.json").read_text())
    out = [out_dir / "learning_curves.png", out_dir / "confusion_matrix.png",
           out_dir / "per_class.png"]
    best = train_info["best_epoch"] if train_info.get("restored_best") else None
    learning_curves(read_history(live_dir), out[0], best)
    confusion_heatmaps(predictions, classes, out[1])
    per_class_bars(per_class, out[2])
    log.info("plot: %s", ", ".join(str(p) for p in out))
    return out
