"""``predict --timeline``: each video scanned window by window; records to stdout (``--json``:
one object per line) and files under ``--out/<video stem>/``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from ...video import VideoError


def _stride_frames(stride: tuple[float, str] | None, need: int, fps: float) -> int:
    if stride is None:
        return max(1, need // 2)
    value, unit = stride
    return max(1, round(value * fps) if unit == "s" else int(value))


def _one(path: Path, predict, info, args: argparse.Namespace, out_dir: Path) -> None:
    from .files import segment_record, timeline_png, window_record, write_tables
    from .windows import WindowStream, header, scan, segments

    fps, declared = header(path)  # the frame rate (and a clear error) before the bar starts
    stream = WindowStream(path, info.sampling, _stride_frames(args.stride, info.sampling.need,
                                                              fps))
    total = declared / fps if declared else None
    with tqdm(total=round(total, 1) if total else None, unit="s", desc=path.name,
              leave=False, bar_format="{desc}: {n:.1f}/{total} s of video {bar} "
                                      "[{elapsed}<{remaining}]") as bar:
        def progress(seconds: float) -> None:
            bar.update(seconds - bar.n)

        windows = list(scan(predict, stream, progress=progress))
    duration = stream.frames / stream.fps
    segs = segments(windows, info.labels, args.threshold, duration)
    w_rec = [window_record(str(path), w, info.labels, args.top_k) for w in windows]
    s_rec = [segment_record(str(path), s) for s in segs]
    dest = out_dir / path.stem
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


def run_timeline(args: argparse.Namespace, videos: list[Path]) -> int:
    from ..predictors import load_predictor, read_info

    read_info(args.model)

    predict, info = load_predictor(args.model)
    failed = 0
    for path in videos:
        try:
            _one(path, predict, info, args, args.out)
        except VideoError as e:
            failed += 1
            print(f"error: {path}: {e}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(videos)} video(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
