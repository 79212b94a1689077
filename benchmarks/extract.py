"""Extract speed: the tutorial's per-clip decoding against the extract stage, on the same videos.

    python benchmarks/extract.py [--videos 500] [--size 224] [--n-frames 10] [--frame-step 15]
                                 [--engine ray]

Uses data/videos when the pipeline has run (else generates built-in clips). Prints, each
measured in this run (compare ratios, never figures from another machine):
- the tutorial's per-clip decoding (one process, seek + read() of every frame);
- the extract stage with 1 and with 2 workers (1 clip per video), and the ratios;
- what the decoding checks cost: the download stage's full-length count of every video, and
  a straight decode from frame 0 against a seek to the clip (the old, unchecked way);
- one clip from the middle of a long video (``--long-minutes``, 25 fps, XVID as the built-in
  set) against the same clip from a 10-second one, by the extract stage's reader (a verified
  seek on the long one), the straight decode from frame 0 it replaced, and whether the frames
  are byte-identical;
- the start-up of a fresh interpreter importing the extract stage;
- with ``--engine ray``: the extract stage on Ray (started here, as many CPUs as the pool has
  workers) beside the local pool, the ratio, Ray's overhead per video, the driver's peak RSS
  while Ray runs, whether the bytes are the same, and the CPUs that would extract UCF101 and
  Kinetics-400 in one hour at the measured cost per video (these videos, not theirs).
The last line is JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _common import project_params, tutorial_frames_from_video_file, videos_for_benchmark  # noqa: E402
from videoclf.data.extract import extract  # noqa: E402
from videoclf.pool import map_videos  # noqa: E402
from videoclf.video import (  # noqa: E402
    Sampling,
    clip_indices,
    eval_starts,
    letterbox,
    measure,
    open_video,
    read_clips,
    read_frames,
)


def _seek_clip(path: Path, s: Sampling) -> np.ndarray:
    """The previous decoder: header count trusted, seek to the clip, decode forward."""
    cap = open_video(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    start = eval_starts(n, 1, s)[0]
    wanted = set(clip_indices(n, start, s))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    got, i = [], start
    while i <= max(wanted) and cap.grab():
        if i in wanted:
            got.append(letterbox(cap.retrieve()[1], s.height, s.width))
        i += 1
    cap.release()
    return np.stack(got)


def _write_video(path: Path, frames: int) -> None:
    """A moving 320x240 picture, frame numbers drawn in, 25 fps XVID (the built-in set's)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"XVID"), 25, (320, 240))
    base = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    for i in range(frames):
        frame = np.roll(base, 3 * i, axis=1)
        cv2.putText(frame, str(i), (10, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
        writer.write(frame)
    writer.release()


def _best_of(rounds: int, fn) -> tuple[float, object]:
    """The fastest of ``rounds`` calls (seconds) and the last result."""
    best, res = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t0)
    return best, res


def _long_video(tmp: Path, s: Sampling, minutes: float) -> dict:
    """The centre clip of a long video against a 10-second one, seeking against straight."""
    res: dict = {"long_video_frames": int(minutes * 60 * 25)}
    times: dict[str, float] = {}
    clips = {}
    for name, frames in (("short", 250), ("long", res["long_video_frames"])):
        path = tmp / f"{name}.avi"
        _write_video(path, frames)
        n = measure(path).decoded
        times[name], got = _best_of(3, partial(
            read_clips, path, partial(eval_starts, k=1, sampling=s), s, length=n))
        clips[name] = got.array[0]
    start = eval_starts(n, 1, s)[0]
    wanted = {f for f in clip_indices(n, start, s) if f is not None}
    times["straight"], straight = _best_of(1, lambda: read_frames(path, wanted, s))
    res["long_same_frames_as_straight"] = bool(np.array_equal(
        clips["long"], np.stack([straight[f] for f in sorted(wanted)])))
    res.update(short_clip_s=times["short"], long_clip_s=times["long"],
               long_straight_clip_s=times["straight"],
               long_vs_short=times["long"] / times["short"],
               straight_vs_seek=times["straight"] / times["long"])
    print(f"centre clip of a {minutes:g}-minute video: {times['long'] * 1000:.0f} ms, of a "
          f"10-second one {times['short'] * 1000:.0f} ms ({res['long_vs_short']:.2f}x); a "
          f"straight decode from frame 0 {times['straight'] * 1000:.0f} ms "
          f"({res['straight_vs_seek']:.0f}x the seek); same frames: "
          f"{res['long_same_frames_as_straight']}")
    return res


def _rate(n: int, fn) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


class _PeakRSS:
    """The peak resident memory of this process while the block runs (VmRSS sampled)."""

    def __enter__(self):
        import threading

        self.peak, self._stop = 0, threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.02):
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# Videos in each set (UCF101: 13,320; Kinetics-400: about 240,000 train + val).
SETS = {"ucf101": 13_320, "kinetics400": 240_000}


def _ray_beside_local(manifest, videos_dir: Path, tmp: Path, frames, classes, out: dict) -> dict:
    from videoclf.engine import open_engine
    from videoclf.params import EngineParams

    cpus = 2
    res: dict = {}
    t0 = time.perf_counter()
    with open_engine(EngineParams("ray", ""), "extract", workers=cpus) as engine:
        res["ray_start_s"] = time.perf_counter() - t0
        with _PeakRSS() as rss:
            t0 = time.perf_counter()
            index = extract(manifest, videos_dir, tmp / "frames_ray", frames, classes, engine)
            res["extract_ray_clips_per_s"] = len(index) / (time.perf_counter() - t0)
    res["ray_driver_peak_rss_mb"] = rss.peak / 2**20
    local = out[f"extract_{cpus}w_clips_per_s"]
    res["ratio_ray_vs_local"] = res["extract_ray_clips_per_s"] / local
    # CPU-seconds per video on each backend; the difference is what Ray adds to a video.
    res["ray_overhead_ms_per_video"] = 1000 * cpus * (1 / res["extract_ray_clips_per_s"]
                                                      - 1 / local)
    res["same_bytes_ray_local"] = all((tmp / "frames_ray" / f.name).read_bytes() == f.read_bytes()
                                      for f in (tmp / "frames2").iterdir())
    per_video_cpu_s = cpus / res["extract_ray_clips_per_s"]
    for name, n in SETS.items():
        res[f"cpus_for_{name}_in_1h"] = int(np.ceil(n * per_video_cpu_s / 3600))
    print(f"extract stage on Ray ({cpus} CPUs, started in {res['ray_start_s']:.1f} s): "
          f"{res['extract_ray_clips_per_s']:.1f} clips/s, {res['ratio_ray_vs_local']:.2f}x the "
          f"local pool, {res['ray_overhead_ms_per_video']:.1f} ms per video added; driver peak "
          f"RSS {res['ray_driver_peak_rss_mb']:.0f} MB; same bytes: {res['same_bytes_ray_local']}")
    print(f"at {per_video_cpu_s * 1000:.0f} CPU-ms per video: UCF101 in one hour on "
          f"{res['cpus_for_ucf101_in_1h']} CPUs, Kinetics-400 on "
          f"{res['cpus_for_kinetics400_in_1h']}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=500)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--n-frames", type=int, default=10)
    ap.add_argument("--frame-step", type=int, default=15)
    ap.add_argument("--engine", choices=("local", "ray"), default="local",
                    help="ray: also the extract stage on Ray beside the local pool")
    ap.add_argument("--tutorial-videos", type=int, default=100,
                    help="videos timed for the (slow) tutorial path; its rate is per clip")
    ap.add_argument("--long-minutes", type=float, default=10.0,
                    help="length of the long video for the seek case (0: skip it)")
    args = ap.parse_args()
    out: dict = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, videos_dir = videos_for_benchmark(args.videos, tmp)
        paths = [videos_dir / v for v in manifest.video]
        out["videos"] = len(paths)
        random.seed(0)
        sample = paths[: args.tutorial_videos]
        out["tutorial_clips_per_s"] = _rate(len(sample), lambda: [
            tutorial_frames_from_video_file(str(p), args.n_frames, (args.size, args.size),
                                            args.frame_step) for p in sample])
        print(f"tutorial per-clip decoding: {out['tutorial_clips_per_s']:.1f} clips/s "
              f"({len(sample)} videos, 1 process)")

        frames = project_params({"frames": {
            "n_frames": args.n_frames, "frame_step": args.frame_step, "height": args.size,
            "width": args.size, "train_clips_per_video": 1}}).frames
        classes = sorted(manifest["class"].unique())
        for workers in (1, 2):
            frames = dataclasses.replace(frames, workers=workers)
            t0 = time.perf_counter()
            index = extract(manifest, videos_dir, tmp / f"frames{workers}", frames, classes)
            out[f"extract_{workers}w_clips_per_s"] = len(index) / (time.perf_counter() - t0)
            print(f"extract stage, {workers} worker(s): "
                  f"{out[f'extract_{workers}w_clips_per_s']:.1f} clips/s ({len(index)} clips)")
        a = (tmp / "frames1").iterdir()
        out["same_bytes_1w_2w"] = all((tmp / "frames2" / f.name).read_bytes() == f.read_bytes()
                                      for f in a)
        out["ratio_vs_tutorial"] = out["extract_2w_clips_per_s"] / out["tutorial_clips_per_s"]
        out["ratio_2w_vs_1w"] = out["extract_2w_clips_per_s"] / out["extract_1w_clips_per_s"]
        print(f"speed-up over the tutorial: {out['ratio_vs_tutorial']:.1f}x; second core: "
              f"{out['ratio_2w_vs_1w']:.2f}x; same bytes: {out['same_bytes_1w_2w']}")

        if args.engine == "ray":
            out.update(_ray_beside_local(manifest, videos_dir, tmp, frames, classes, out))
        # What the checks cost, one process each.
        s = frames.sampling
        sub = paths[:200]
        out["count_videos_per_s"] = _rate(len(sub), lambda: [measure(p) for p in sub])
        out["count_2w_videos_per_s"] = _rate(len(paths), lambda: list(
            map_videos(measure, paths, 2, "count")))
        out["straight_clips_per_s"] = _rate(len(sub), lambda: [
            read_clips(p, partial(eval_starts, k=1, sampling=s), s, length=int(n))
            for p, n in zip(sub, manifest.frames)])
        out["seek_clips_per_s"] = _rate(len(sub), lambda: [_seek_clip(p, s) for p in sub])
        print(f"download's full count: {out['count_videos_per_s']:.0f} videos/s "
              f"(1 process), {out['count_2w_videos_per_s']:.0f} videos/s (2 workers)")
        print(f"one clip, straight decode from frame 0: {out['straight_clips_per_s']:.1f} "
              f"clips/s; seek to the clip (unchecked): {out['seek_clips_per_s']:.1f} clips/s")
        if args.long_minutes > 0:
            out.update(_long_video(tmp, s, args.long_minutes))

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import videoclf.data.extract, videoclf.stage"],
                   check=True)
    out["extract_import_s"] = time.perf_counter() - t0
    tf = subprocess.run([sys.executable, "-c", "import sys, videoclf.data.extract, videoclf.stage; "
                         "print('tensorflow' in sys.modules)"], capture_output=True, text=True)
    out["extract_imports_tensorflow"] = tf.stdout.strip() == "True"
    print(f"extract stage imports in {out['extract_import_s']:.2f} s "
          f"(TensorFlow loaded: {out['extract_imports_tensorflow']})")
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
