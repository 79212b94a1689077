
import matplotlib.image as mpimg

from videoclf.evaluate import evaluate
from videoclf.plots import make_plots, read_history


def test_plots_are_written(tiny_model, tiny_frames, tiny_videos, tiny_manifest, tmp_path):
    from videoclf.train import load_trained

    model, classes, sampling = load_trained(tiny_model)
    evaluate(model, classes, sampling, tiny_manifest, tiny_videos, tmp_path, 1, workers=1)
    live = tiny_frames.parent / "live"
    history = read_history(live)
    assert set(history.split) == {"train", "val"} and set(history.metric) == {"loss", "accuracy"}
    paths = make_plots(live, tmp_path, tiny_model, tmp_path / "plots")
    for p in paths:
        img = mpimg.imread(p)
        assert img.shape[0] > 200 and img.shape[1] > 400
        assert img.std() > 0.05  # not a blank canvas
