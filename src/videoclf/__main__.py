"""``python -m videoclf predict PATH... [--model data/model] [--top-k 5] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .dataset import is_video


class _NoVideo(Exception):
    pass


def _expand(paths: list[str]) -> list[Path]:
    """Files as given; folders searched recursively for video files. A folder holding no
    video is an error, not silence."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_video(f.name))
            if not found:
                raise _NoVideo(f"{p}: no video file in this folder (looked for "
                               ".avi .mp4 .mkv .webm .mov .mpg ... in any case)")
            out += found
        else:
            out.append(p)
    return out


def predict_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m videoclf predict",
                                 description="Top-k classes of each video, with probabilities.")
    ap.add_argument("paths", nargs="+", help="video files or folders (searched recursively)")
    ap.add_argument("--model", default="data/model", help="folder written by the train stage")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="one JSON object per line and video")
    ap.add_argument("--clips", type=int, default=None,
                    help="clips per video (default: evaluate.clips_per_video in params.yaml, else 1)")
    ap.add_argument("--workers", type=int, default=0, help="decoding processes (0 = all cores)")
    ap.add_argument("--min-decodable", type=float, default=0.5,
                    help="a video decoding less than this share of the frames its header "
                         "declares is reported as damaged, not predicted (default 0.5)")
    args = ap.parse_args(argv)
    if args.top_k < 1:
        ap.error("--top-k must be >= 1")
    if not 0.0 <= args.min_decodable <= 1.0:
        ap.error("--min-decodable must be between 0 and 1")
    try:
        videos = _expand(args.paths)
    except _NoVideo as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    from .frames import Sampling
    from .inference import score_videos, top_k
    from .train import load_trained

    model_dir = Path(args.model)
    if not (model_dir / "model.keras").is_file():
        print(f"error: no trained model in {model_dir} (run `dvc repro` first)", file=sys.stderr)
        return 2
    model, labels, sampling = load_trained(model_dir)
    clips = args.clips or _clips_from_params()
    failed = 0
    for path, probs, error in score_videos(model, videos, Sampling(**sampling), clips,
                                           args.workers, min_decodable=args.min_decodable):
        if error:
            failed += 1
            print(f"error: {path}: {error}", file=sys.stderr)
            continue
        best = top_k(probs, labels, args.top_k)
        if args.json:
            print(json.dumps({"video": str(path), "top_k": best}), flush=True)
        else:
            print(f"{path}")
            for rank, b in enumerate(best, 1):
                print(f"  {rank}. {b['label']:<24} {b['probability']:.3f}")
    if failed:
        print(f"{failed} of {len(videos)} video(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def _clips_from_params() -> int:
    from .params import ParamsError, load

    try:
        return load("params.yaml")["evaluate"]["clips_per_video"]
    except ParamsError:  # no (valid) params.yaml here: predicting outside the project
        return 1


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
