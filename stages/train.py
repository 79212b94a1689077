"""Stage train: the (2+1)D ResNet on data/frames; model to data/model, curves to metrics/train."""

from pathlib import Path

from videoclf.stage import run
from videoclf.train import train

if __name__ == "__main__":
    run("train", lambda p: train(Path("data/frames"), Path("data/model"), Path("metrics/train"),
                                 p["model"], p["train"]))
