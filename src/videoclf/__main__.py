"""``python -m videoclf predict PATH... [--model data/model] [--top-k 5] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from .artifacts import DEFAULT_MODEL_DIR
from .errors import VideoclfError
from .video import is_video


class _NoVideo(VideoclfError):
    pass


# Clips per video are held in memory together (8x64x64 RGB: 98 KB a clip; 224x224: 1.2 MB):
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


def _expand(paths: list[str]) -> list[Path]:
    """Files as given; folders searched recursively for video files. A folder holding no
    video is an error, not silence, and the files of a folder left out are said, one line."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            found = [f for f in files if is_video(f.name)]
            if not found:
                raise _NoVideo(f"{p}: no video file in this folder (looked for "
                               ".avi .mp4 .mkv .webm .mov .mpg ... in any case)")
            other = Counter(f.suffix.lower() or "no suffix" for f in files if not is_video(f.name))
            if other:
                print(f"note: {p}: {sum(other.values())} file(s) left out, not videos: "
                      + ", ".join(f"{k} {n}" for k, n in other.most_common()), file=sys.stderr)
            out += found
        else:
            out.append(p)
    return out


def predict_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m videoclf predict",
                                 description="Top-k classes of each video, with probabilities.")
    ap.add_argument("paths", nargs="+", help="video files or folders (searched recursively)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR,
                    help=f"folder written by the train stage (default {DEFAULT_MODEL_DIR}), or "
                         "an exported model.onnx (run with onnxruntime, no TensorFlow needed)")
    ap.add_argument("--top-k", type=_at_least(1), default=5)
    ap.add_argument("--json", action="store_true", help="one JSON object per line and video")
    ap.add_argument("--clips", type=_at_least(1, MAX_CLIPS), default=None,
                    help="clips per video (default: the model folder's inference.json, i.e. "
                         "evaluate.clips_per_video when it was trained)")
    ap.add_argument("--workers", type=_at_least(0), default=0,
                    help="decoding processes (0 = all cores)")
    ap.add_argument("--min-decodable", type=float, default=0.5,
                    help="a video decoding less than this share of the frames its header "
                         "declares is reported as damaged, not predicted (default 0.5)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.min_decodable <= 1.0:
        ap.error("--min-decodable must be between 0 and 1")
    try:
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
    from .artifacts import read_model_info

    videos = _expand(args.paths)
    # a wrong folder is one line, before TensorFlow (or onnxruntime) loads
    read_model_info(args.model.parent if args.model.suffix.lower() == ".onnx" else args.model)

    from .serve.inference import score_videos, top_k, video_probs
    from .training.modelio import load_predictor

    predict, info = load_predictor(args.model)
    labels = info.labels
    clips = args.clips or info.clips_per_video
    failed = 0
    for path, clip_probs, error in score_videos(predict, videos, info.sampling, clips, args.workers,
                                                min_decodable=args.min_decodable):
        if error or clip_probs is None:
            failed += 1
            print(f"error: {path}: {error}", file=sys.stderr)
            continue
        best = top_k(video_probs(clip_probs), labels, args.top_k)
        if args.json:
            print(json.dumps({"video": str(path), "top_k": best}), flush=True)
        else:
            print(f"{path}")
            for rank, b in enumerate(best, 1):
                print(f"  {rank}. {b['label']:<24} {b['probability']:.3f}")
    if failed:
        print(f"{failed} of {len(videos)} video(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("predict",):
        print("usage: python -m videoclf predict PATH... [--model data/model] [--top-k 5] "
              "[--json]", file=sys.stderr)
        return 2
    from .stage import setup_logging

    setup_logging()
    return predict_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
