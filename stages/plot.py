"""Stage plot: learning curves (with PRETRAIN_LIVE's where pretrain ran), confusion matrices
and test-clip filmstrips as PNGs into PLOTS."""

from videoclf.report.plot import make_plots
from videoclf.stage import run

if __name__ == "__main__":
    run("plot", lambda p, a: make_plots(a.live, a.metrics, a.model, a.plots, a.videos,
                                        a.pretrain_live),
        inputs=["videos", "model", "live", "metrics", "pretrain_live"], outputs=["plots"])
