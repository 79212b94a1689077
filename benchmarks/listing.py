"""Everything download does before it fetches or decodes a byte, at 1x, 4x and 16x a
UCF101-sized listing (101 classes x 25 groups x 4-7 clips = about 13,320 members; more
classes for the larger sizes): layout, grouping, class choice, the group split by fraction,
the manifest and the extract stage's plan of shards. Prints seconds and peak Python memory
per size, so that the growth can be read as linear (time and memory per member flat).

    python benchmarks/listing.py [--sizes 1 4 16]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from videoclf.artifacts import MANIFEST_COLUMNS, SPLITS, clips_per_video  # noqa: E402
from videoclf.data.shards import plan_shards  # noqa: E402
from videoclf.data.splits import parse_members, select_classes, split_videos  # noqa: E402


def listing(scale: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    names = []
    for c in range(101 * scale):
        for g in range(1, 26):
            names += [f"UCF101/v_Class{c:05d}_g{g:02d}_c{k:02d}.avi"
                      for k in range(1, int(rng.integers(4, 8)) + 1)]
    return names


def run(names: list[str]) -> dict[str, float]:
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    parsed = parse_members(names, "auto")
    t["layout and groups"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    classes = select_classes(parsed.videos, 0)
    splits = split_videos(parsed.videos, classes, {"train": "all", "val": 0.15, "test": 0.15},
                          "group", 42)
    t["classes and split"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    label = {c: i for i, c in enumerate(classes)}
    rows = [{"video": f"{s}/{v.cls}/{v.filename}", "member": v.member, "class": v.cls,
             "label": label[v.cls], "group": v.group_id, "clip": v.clip, "split": s,
             "frames": 200} for s in SPLITS for v in splits[s]]
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    t["manifest"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    plan_shards(list(manifest.split), {s: clips_per_video(s, 3) for s in SPLITS},
                8 * 64 * 64 * 3, 256 << 20)
    t["plan of shards"] = time.perf_counter() - t0
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    args = ap.parse_args()
    print("| size | members | layout and groups s | classes and split s | manifest s | "
          "plan of shards s | total s | us per member | peak MB | bytes per member |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for scale in args.sizes:
        names = listing(scale)
        tracemalloc.start()
        t = run(names)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        total = sum(t.values())
        print(f"| {scale}x | {len(names)} | " + " | ".join(f"{v:.2f}" for v in t.values())
              + f" | {total:.2f} | {1e6 * total / len(names):.1f} | {peak / 2**20:.0f} | "
              f"{peak / len(names):.0f} |", flush=True)


if __name__ == "__main__":
    main()
