"""The README's timeline: test videos of known classes put end to end, run through
``predict --timeline`` with the pipeline's model, segments printed against the known parts.

    python benchmarks/timeline_demo.py [--model data/model] [--png docs/timeline.png]

The parts are test-split videos of ``data/videos`` (groups the model never trained on), one
per class of a few classes, decoded and written again as one XVID file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from videoclf.artifacts import read_manifest, read_model_info  # noqa: E402
from videoclf.data.builtin import generator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("data/model"))
    ap.add_argument("--videos", type=Path, default=Path("data/videos"))
    ap.add_argument("--png", type=Path, default=None, help="copy timeline.png here")
    ap.add_argument("--parts", type=int, default=5)
    args = ap.parse_args()
    manifest = read_manifest(args.videos)
    test = manifest[manifest.split == "test"]
    labels = read_model_info(args.model).labels
    rng = np.random.default_rng(0)
    classes = [labels[i] for i in rng.permutation(len(labels))[: args.parts]]
    frames, bounds = [], [0]
    for cls in classes:
        cap = cv2.VideoCapture(str(args.videos / test[test["class"] == cls].video.iloc[0]))
        clip = []
        while (got := cap.read())[0]:
            clip.append(got[1])
        frames.append(np.stack(clip))
        bounds.append(bounds[-1] + len(clip))
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "built_in_parts.avi"
        out = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"XVID"), generator.FPS,
                              (generator.WIDTH, generator.HEIGHT))
        for f in np.concatenate(frames):
            out.write(f)
        out.release()
        r = subprocess.run([sys.executable, "-m", "videoclf", "predict", str(video), "--model",
                            str(args.model), "--timeline", "--json", "--out", tmp],
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr)
        segs = [json.loads(line) for line in r.stdout.splitlines()
                if json.loads(line)["kind"] == "segment"]
        if args.png:
            shutil.copy(Path(tmp) / video.stem / "timeline.png", args.png)
    print("| part | class | true start-end (s) | found |")
    print("| --- | --- | --- | --- |")
    for i, cls in enumerate(classes):
        a, b = bounds[i] / generator.FPS, bounds[i + 1] / generator.FPS
        found = [f"{s['label']} {s['start_s']:.1f}-{s['end_s']:.1f}" for s in segs
                 if s["end_s"] > a and s["start_s"] < b]
        print(f"| {i + 1} | {cls} | {a:.1f}-{b:.1f} | {'; '.join(found)} |")


if __name__ == "__main__":
    main()
