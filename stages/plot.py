"""Stage plot: learning curves and confusion matrices as PNGs under metrics/plots."""

from pathlib import Path

from videoclf.plots import make_plots
from videoclf.stage import run

if __name__ == "__main__":
    run("plot", lambda p: make_plots(Path("metrics/train"), Path("metrics"), Path("data/model"),
                                     Path("metrics/plots")))
