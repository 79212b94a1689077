"""Stage plot: learning curves, confusion matrices and test-clip filmstrips as PNGs into PLOTS."""

from videoclf.report.plot import make_plots
from videoclf.stage import run

if __name__ == "__main__":
    run("plot", lambda p, a: make_plots(a.live, a.metrics, a.model, a.plots, a.videos),
        inputs=["videos", "model", "live", "metrics"], outputs=["plots"])
