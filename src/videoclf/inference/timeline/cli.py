"""``predict --timeline``: each video scanned window by window; records to stdout (``--json``:
one object per line) and files under ``--out/<name>/`` (``output_names``: the video's stem,
or its path where two videos share a stem)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from ...video import VideoError


def _stride_frames(stride: tuple[float, str] | None, need: int, fps: float) -> int:
    if stride is None:
        return max(1, need // 2)
    value, unit = stride
    return max(1, round(value * fps) if unit == "s" else int(value))


def _scan(path: Path, predict, info, args: argparse.Namespace):
    """Every window of ``path`` scored, with a progress bar; (stream, windows)."""
    from .windows import WindowStream, header, scan

    fps, declared = header(path)  # the frame rate (and a clear error) before the bar starts
    stream = WindowStream(path, info.sampling, _stride_frames(args.stride, info.sampling.need,
                                                              fps))
    total = round(declared / fps, 1) if declared else None
    of_total = "/{total} s of video {bar} [{elapsed}<{remaining}]" if total else \
        " s of video decoded [{elapsed}]"  # no frame count in the header: no total to show
    with tqdm(total=total, unit="s", desc=path.name, leave=False,
              bar_format="{desc}: {n:.1f}" + of_total) as bar:
        def progress(seconds: float) -> None:
            bar.update(seconds - bar.n)

        windows = list(scan(predict, stream, progress=progress))
    return stream, windows


def _one(path: Path, predict, info, args: argparse.Namespace, dest: Path) -> None:
    from .files import segment_record, timeline_png, window_record, write_tables
    from .windows import clamp, segments

    stream, windows = _scan(path, predict, info, args)
    duration = stream.frames / stream.fps
    windows = [clamp(w, duration) for w in windows]
    segs = segments(windows, info.labels, args.threshold, duration)
    w_rec = [window_record(str(path), w, info.labels, args.top_k) for w in windows]
    s_rec = [segment_record(str(path), s) for s in segs]
    write_tables(dest, w_rec, s_rec)
    timeline_png(windows, segs, info.labels, dest / "timeline.png",
                 f"{path.name}: {len(windows)} windows every "
                 f"{stream.stride / stream.fps:.2f} s, {len(segs)} segments")
    if stream.stopped:
        print(f"warning: {path}: {stream.stopped}; the timeline ends at {duration:.1f} s",
              file=sys.stderr)
    if args.json:
        for r in w_rec + s_rec:
            print(json.dumps(r), flush=True)
    else:
        print(f"{path}: {duration:.1f} s, {len(windows)} windows -> {dest}")
        for s in segs:
            print(f"  {s.start_s:8.1f} - {s.end_s:8.1f} s  {s.label:<24} {s.score:.3f}")


def output_names(videos: list[Path]) -> list[Path]:
    """A folder name under ``--out`` per video, unique: its stem where no other video shares
    it (``clip``), else its path below the deepest folder all the videos sharing that stem
    sit in, extension kept (``a/clip.avi`` and ``b/clip.avi``)."""
    stems: dict[str, list[Path]] = {}
    for v in videos:
        stems.setdefault(v.stem, []).append(v)
    names = []
    for v in videos:
        twins = stems[v.stem]
        if len(twins) == 1:
            names.append(Path(v.stem))
            continue
        full = [t.resolve() for t in twins]
        root = Path(os.path.commonpath([f.parent for f in full]))
        names.append(v.resolve().relative_to(root))
    return names


def run_timeline(args: argparse.Namespace, videos: list[Path]) -> int:
    from ..predictors import accuracy_warning, load_predictor, read_info

    out = Path(args.out)
    if out.exists() and not out.is_dir():  # before any decoding
        raise VideoError(f"--out {out}: a file is there, not a folder")
    names = output_names(videos)
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise VideoError(f"two inputs are the same file ({twice}); give each once")
    read_info(args.model)
    if warning := accuracy_warning(args.model):
        print(warning, file=sys.stderr)

    predict, info = load_predictor(args.model)
    failed = 0
    for path, name in zip(videos, names):
        try:
            _one(path, predict, info, args, out / name)
        except VideoError as e:
            failed += 1
            print(f"error: {path}: {e}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(videos)} video(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
