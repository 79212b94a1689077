"""Stage extract: sampled frames of every video, once, into NPY shards under data/frames."""

import json
from pathlib import Path

import pandas as pd

from videoclf.shards import extract
from videoclf.stage import run


def main(p: dict) -> None:
    videos = Path("data/videos")
    classes = json.loads((videos / "report.json").read_text())["classes"]
    extract(pd.read_parquet(videos / "manifest.parquet"), videos, Path("data/frames"),
            p["frames"], classes)


if __name__ == "__main__":
    run("extract", main)
