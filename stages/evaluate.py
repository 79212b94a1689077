"""Stage evaluate: test-split metrics into metrics/ (accuracy, precision, recall, per class)."""

from pathlib import Path

import pandas as pd

from videoclf.evaluate import evaluate
from videoclf.stage import run
from videoclf.train import load_trained


def main(p: dict) -> None:
    model, classes, sampling = load_trained(Path("data/model"))
    videos = Path("data/videos")
    evaluate(model, classes, sampling, pd.read_parquet(videos / "manifest.parquet"), videos,
             Path("metrics"), p["evaluate"]["clips_per_video"])


if __name__ == "__main__":
    run("evaluate", main)
