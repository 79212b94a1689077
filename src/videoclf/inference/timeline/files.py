"""A long video's timeline as files: per-window top-k (JSON lines and CSV), the merged
segments (CSV and JSON lines) and a PNG (class probabilities over time, segments shaded).
In the serving wing, beside what it draws (wings meet only through the core)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from ..scoring import top_k  # noqa: E402
from .windows import Segment, Window  # noqa: E402

WINDOWS_JSONL, WINDOWS_CSV = "windows.jsonl", "windows.csv"
SEGMENTS_JSONL, SEGMENTS_CSV = "segments.jsonl", "segments.csv"
TIMELINE_PNG = "timeline.png"
_MAX_DRAWN = 8  # classes drawn as lines: the ones that are best somewhere, most often first


def window_record(video: str, w: Window, labels: list[str], k: int) -> dict:
    return {"kind": "window", "video": video, "start_s": round(w.start_s, 3),
            "end_s": round(w.end_s, 3), "start_frame": w.start_frame,
            "top_k": top_k(w.probs, labels, k)}


def segment_record(video: str, s: Segment) -> dict:
    return {"kind": "segment", "video": video, "start_s": round(s.start_s, 3),
            "end_s": round(s.end_s, 3), "label": s.label, "score": round(s.score, 6),
            "windows": s.windows}


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def write_tables(out_dir: Path, windows: list[dict], segments: list[dict]) -> None:
    """The records as JSON lines and as CSV (a window's top-k flattened to columns)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / WINDOWS_JSONL, "".join(json.dumps(r) + "\n" for r in windows))
    _write(out_dir / SEGMENTS_JSONL, "".join(json.dumps(r) + "\n" for r in segments))
    flat = []
    for r in windows:
        row = {k: v for k, v in r.items() if k not in ("kind", "top_k")}
        for i, t in enumerate(r["top_k"], 1):
            row[f"label_{i}"], row[f"probability_{i}"] = t["label"], t["probability"]
        flat.append(row)
    _write(out_dir / WINDOWS_CSV, _csv(flat))
    _write(out_dir / SEGMENTS_CSV, _csv([{k: v for k, v in r.items() if k != "kind"}
                                         for r in segments]))


def timeline_png(windows: list[Window], segs: list[Segment], labels: list[str], path: Path,
                 title: str) -> None:
    """Probabilities of the classes that win somewhere, over time, under a band of the
    segments (one colour per class, its name written in)."""
    sns.set_theme(style="whitegrid")
    probs = np.stack([w.probs for w in windows])
    t = np.array([(w.start_s + w.end_s) / 2 for w in windows])
    wins = np.bincount(probs.argmax(axis=1), minlength=len(labels))
    drawn = [int(c) for c in np.argsort(-wins, kind="stable")[:_MAX_DRAWN] if wins[c]]
    colour = dict(zip(drawn, sns.color_palette("tab10", len(drawn))))
    fig, (band, ax) = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True,
                                   gridspec_kw={"height_ratios": [1, 4]})
    for s in segs:
        c = colour.get(labels.index(s.label), (0.6, 0.6, 0.6))
        band.axvspan(s.start_s, s.end_s, color=c, alpha=0.85)
        ax.axvspan(s.start_s, s.end_s, color=c, alpha=0.08)
        band.text((s.start_s + s.end_s) / 2, 0.5, s.label, ha="center", va="center",
                  fontsize=8, clip_on=True)
    band.set_yticks([])
    band.set_title(title, fontsize=10)
    for c in drawn:
        ax.plot(t, probs[:, c], color=colour[c], label=labels[c], lw=1.6)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, max(s.end_s for s in segs) if segs else t[-1])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=80, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
