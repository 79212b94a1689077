"""``python -m videoclf predict PATH... [--model data/model] [--top-k 5] [--json]
[--timeline [--stride 2s] [--threshold 0.5] [--out data/timelines]]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .artifacts import DEFAULT_MODEL_DIR
from .choices import Backend, options
from .errors import VideoclfError
from .params import EngineParams
from .video import is_video


class _NoVideo(VideoclfError):
    pass


# Clips per video are held in memory together (8x128x128 RGB: 393 KB a clip; 224x224: 1.2 MB):
# 256 covers any sensible test-time sampling and stays far inside memory.
MAX_CLIPS = 256


def _at_least(lo: int, hi: int | None = None):
    """An argparse type: a whole number >= ``lo`` (and <= ``hi``), else one usage line naming
    the flag."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if n < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, got {n}")
        if hi is not None and n > hi:
            raise argparse.ArgumentTypeError(f"must be at most {hi}, got {n}")
        return n

    return parse


def _stride(text: str) -> tuple[float, str]:
    """``50`` (frames) or ``2s`` / ``1.5s`` (seconds), positive."""
    seconds = text.lower().endswith("s")
    try:
        v = float(text[:-1]) if seconds else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected frames (50) or seconds (2s), got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return v, "s" if seconds else "frames"


def _expand(paths: list[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files as given; folders searched recursively for video files. A folder holding no
    video is an error, not silence, and every other file of a folder is returned with why it
    is left out (``_left_out`` says so)."""
    out: list[Path] = []
    left: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            found = [f for f in files if is_video(f.name)]
            if not found:
                raise _NoVideo(f"{p}: no video file in this folder (looked for "
                               ".avi .mp4 .mkv .webm .mov .mpg ... in any case)")
            left += [(f, f"not a video file ({f.suffix.lower() or 'no suffix'})")
                     for f in files if not is_video(f.name)]
            out += found
        else:
            out.append(p)
    return out, left


def _left_out(left: list[tuple[Path, str]], as_json: bool) -> None:
    """Each file of a folder that is not predicted, with why: on stderr, and with ``--json``
    as a line of its own (``{"video": ..., "left_out": why}``)."""
    for path, why in left:
        print(f"note: {path}: left out, {why}", file=sys.stderr)
        if as_json:
            print(json.dumps({"video": str(path), "left_out": why}), flush=True)
    if left:
        print(f"note: {len(left)} file(s) of the folder(s) left out", file=sys.stderr)


def predict_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m videoclf predict",
                                 description="Top-k classes of each video, with probabilities.")
    ap.add_argument("paths", nargs="+", help="video files or folders (searched recursively)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR,
                    help=f"folder written by the train stage (default {DEFAULT_MODEL_DIR}), or "
                         "an exported model.onnx or .tflite (no TensorFlow needed)")
    ap.add_argument("--top-k", type=_at_least(1), default=5)
    ap.add_argument("--json", action="store_true", help="one JSON object per line and video")
    ap.add_argument("--clips", type=_at_least(1, MAX_CLIPS), default=None,
                    help="clips per video (default: the model folder's inference.json, i.e. "
                         "evaluate.clips_per_video when it was trained)")
    ap.add_argument("--workers", type=_at_least(0), default=0,
                    help="decoding processes (0 = all cores)")
    ap.add_argument("--engine", choices=options(Backend), default="local",
                    help="where videos are decoded: local (a process pool) or ray "
                         "(Ray tasks, the same output; engine.* in params.yaml)")
    ap.add_argument("--address", default="",
                    help="--engine ray: the cluster (auto, host:6379, ray://host:10001); "
                         "default: a Ray started on this machine")
    ap.add_argument("--min-decodable", type=float, default=0.5,
                    help="a video decoding less than this share of the frames its header "
                         "declares is reported as damaged, not predicted (default 0.5)")
    t = ap.add_argument_group("timeline (what happens when, in a long video)")
    t.add_argument("--timeline", action="store_true",
                   help="score windows of one clip's span slid along each video: per-window "
                        "top-k, merged segments and a PNG under --out")
    t.add_argument("--stride", type=_stride, default=None,
                   help="between window starts: frames (50) or seconds (2s); default half a "
                        "clip's span")
    t.add_argument("--threshold", type=float, default=0.5,
                   help="a window joins a segment when its best class is at least this "
                        "likely (default 0.5)")
    t.add_argument("--out", type=Path, default=Path("data/timelines"),
                   help="folder for <video>/windows.csv, segments.csv, timeline.png ... "
                        "(default data/timelines)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.min_decodable <= 1.0:
        ap.error("--min-decodable must be between 0 and 1")
    if not 0.0 <= args.threshold <= 1.0:
        ap.error("--threshold must be between 0 and 1")
    try:
        if args.timeline:
            from .inference.timeline.cli import run_timeline

            videos, left = _expand(args.paths)
            _left_out(left, args.json)
            return run_timeline(args, videos)
        return _predict(args)
    except VideoclfError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        from .stage import os_error_line

        print(f"error: {os_error_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _predict(args: argparse.Namespace) -> int:
    from .inference.predictors import accuracy_warning, load_predictor, read_info

    videos, left = _expand(args.paths)
    _left_out(left, args.json)
    # a wrong folder is one line, before TensorFlow (or onnxruntime) loads
    read_info(args.model)
    if warning := accuracy_warning(args.model):
        print(warning, file=sys.stderr)

    from .engine import open_engine
    from .inference.scoring import score_videos

    predict, info = load_predictor(args.model)
    labels = info.labels
    clips = args.clips or info.clips_per_video
    with open_engine(EngineParams(args.engine, args.address), "predict", args.workers) as engine:
        failed = _print_scores(args, score_videos(predict, videos, info.sampling, clips,
                                                  min_decodable=args.min_decodable,
                                                  engine=engine), labels)
    if failed:
        print(f"{failed} of {len(videos)} video(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def _print_scores(args: argparse.Namespace, scored, labels: list[str]) -> int:
    """Print each video's top-k (text or JSON lines); the number that could not be read."""
    from .inference.scoring import top_k, video_probs

    failed = 0
    for path, clip_probs, error in scored:
        if error or clip_probs is None:
            failed += 1
            print(f"error: {path}: {error}", file=sys.stderr)
            if args.json:
                print(json.dumps({"video": str(path), "error": str(error)}), flush=True)
            continue
        best = top_k(video_probs(clip_probs), labels, args.top_k)
        if args.json:
            print(json.dumps({"video": str(path), "top_k": best}), flush=True)
        else:
            print(f"{path}")
            for rank, b in enumerate(best, 1):
                print(f"  {rank}. {b['label']:<24} {b['probability']:.3f}")
    return failed


def serve_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m videoclf serve",
                                 description="predict over HTTP: POST /predict with a video")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR,
                    help="a model folder (Keras) or an exported model.onnx (no TensorFlow)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    ap.add_argument("--port", type=_at_least(0, 65535), default=8080)
    ap.add_argument("--max-mb", type=_at_least(1), default=256, help="largest upload (MB)")
    ap.add_argument("--max-seconds", type=_at_least(1), default=3600,
                    help="longest video (s), by its header or, without a frame count, "
                         "counted while decoding")
    ap.add_argument("--top-k", type=_at_least(1), default=5)
    ap.add_argument("--clips", type=_at_least(1, MAX_CLIPS), default=None,
                    help="clips per video (default: the model's inference.json)")
    ap.add_argument("--workers", type=_at_least(1), default=4,
                    help="videos decoded at once (default 4)")
    ap.add_argument("--max-uploads", type=_at_least(1), default=32,
                    help="bodies received at once; the next is answered 503 (default 32)")
    ap.add_argument("--min-rate-kb", type=_at_least(0), default=16,
                    help="a body slower than this on average after its first 10 s is "
                         "answered 408 (KB/s, default 16)")
    ap.add_argument("--body-seconds", type=_at_least(1), default=600,
                    help="the longest a body may take in all (default 600)")
    ap.add_argument("--allow-paths", type=Path, default=None, metavar="DIR",
                    help='also take {"path": ...} JSON bodies naming files under DIR (off by '
                         "default)")
    args = ap.parse_args(argv)
    if args.allow_paths and not args.allow_paths.is_dir():
        ap.error(f"--allow-paths: {args.allow_paths} is not a folder")
    try:
        from .inference.predictors import read_info

        read_info(args.model)
        from .inference.service import Limits, serve

        limits = Limits(args.max_mb * 2**20, args.max_seconds, max_uploads=args.max_uploads,
                        min_rate=args.min_rate_kb * 1024, body_seconds=args.body_seconds)
        serve(args.model, args.host, args.port, limits, args.clips, args.top_k,
              args.allow_paths, args.workers)
        return 0
    except VideoclfError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the port is taken, the model unreadable
        from .stage import os_error_line

        print(f"error: {os_error_line(e)}", file=sys.stderr)
        return 1


USAGE = ("usage: python -m videoclf predict PATH... [--model data/model] [--top-k 5] [--json] "
         "[--timeline]\n       python -m videoclf serve [--model data/export/model.onnx] "
         "[--port 8080]")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"predict": predict_main, "serve": serve_main}
    if argv[:1] in (["-h"], ["--help"], ["help"]):
        print(f"{USAGE}\n\n'python -m videoclf predict --help' and 'serve --help' give every "
              "option.")
        return 0
    if not argv or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        return 2
    from .stage import setup_logging

    setup_logging()
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
