"""Clips/s of the tutorial's per-clip decoding against the extract stage, on the same videos.

    python benchmarks/extract.py [--videos 500] [--size 224] [--n-frames 10] [--frame-step 15]

Uses data/videos when the pipeline has run (else generates built-in clips). Prints both
figures and their ratio; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import tutorial_frames_from_video_file, videos_for_benchmark  # noqa: E402
from videoclf.params import validate  # noqa: E402
from videoclf.shards import extract  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=500)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--n-frames", type=int, default=10)
    ap.add_argument("--frame-step", type=int, default=15)
    ap.add_argument("--tutorial-videos", type=int, default=100,
                    help="videos timed for the (slow) tutorial path; its rate is per clip")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, videos_dir = videos_for_benchmark(args.videos, tmp)
        paths = [videos_dir / v for v in manifest.video]
        random.seed(0)
        sample = paths[: args.tutorial_videos]
        t0 = time.perf_counter()
        for p in sample:
            tutorial_frames_from_video_file(str(p), args.n_frames, (args.size, args.size),
                                            args.frame_step)
        tutorial = len(sample) / (time.perf_counter() - t0)
        print(f"tutorial per-clip decoding: {tutorial:.1f} clips/s ({len(sample)} videos, "
              f"1 process)")

        frames = validate({"frames": {"n_frames": args.n_frames, "frame_step": args.frame_step,
                                      "height": args.size, "width": args.size}})["frames"]
        classes = sorted(manifest["class"].unique())
        t0 = time.perf_counter()
        index = extract(manifest, videos_dir, tmp / "frames", frames, classes)
        stage = len(index) / (time.perf_counter() - t0)
        print(f"extract stage: {stage:.1f} clips/s ({len(index)} clips, "
              f"{os.cpu_count()} worker(s))")
    ratio = stage / tutorial
    print(f"speed-up: {ratio:.1f}x")
    print(json.dumps({"videos": len(paths), "size": args.size, "n_frames": args.n_frames,
                      "frame_step": args.frame_step, "tutorial_clips_per_s": round(tutorial, 2),
                      "extract_clips_per_s": round(stage, 2), "ratio": round(ratio, 2)}))


if __name__ == "__main__":
    main()
