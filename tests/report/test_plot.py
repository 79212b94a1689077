
import matplotlib.image as mpimg

from videoclf.artifacts import read_model_info
from videoclf.report.plot import make_plots, read_history
from videoclf.serve.evaluate import evaluate


def test_plots_are_written(tiny_model, tiny_frames, tiny_videos, tiny_manifest, tmp_path,
                           tiny_params):
    from videoclf.training.modelio import load_predictor

    predict, info = load_predictor(tiny_model)
    evaluate(predict, info, tiny_manifest, tiny_videos, tmp_path, tiny_params.evaluate, workers=1)
    live = tiny_frames.parent / "live"
    history = read_history(live)
    assert set(history.split) == {"train", "val"} and set(history.metric) == {"loss", "accuracy"}
    paths = make_plots(live, tmp_path, tiny_model, tmp_path / "plots", tiny_videos)
    assert [p.name for p in paths] == ["learning_curves.png", "confusion_matrix.png",
                                       "per_class.png", "examples.png"]
    for p in paths:
        img = mpimg.imread(p)
        assert img.shape[0] > 200 and img.shape[1] > 400
        assert img.std() > 0.05  # not a blank canvas


def test_examples_show_the_chosen_clips_misclassified_first(tiny_model, tiny_videos,
                                                           tmp_path):
    import json

    from videoclf.report.plot import examples_strip, pick_examples

    classes = json.loads((tiny_model / "labels.json").read_text())
    sampling = read_model_info(tiny_model).sampling
    test = sorted(p.relative_to(tiny_videos).as_posix() for p in
                  (tiny_videos / "test").rglob("*.avi"))
    # Two test videos per class; the first of each class predicted as the next class.
    preds = []
    for v in test:
        actual = v.split("/")[1]
        wrong = v == min(t for t in test if t.split("/")[1] == actual)
        predicted = classes[(classes.index(actual) + wrong) % len(classes)]
        preds.append({"video": v, "actual": actual, "predicted": predicted,
                      "top": [{"label": predicted, "probability": 0.9}]})
    chosen = pick_examples(preds, classes, per_class=1)
    assert len(chosen) == len(classes)
    assert all(p["actual"] != p["predicted"] for p in chosen)  # the wrong one of each class
    both = pick_examples(preds, classes, per_class=2)
    assert [p["actual"] != p["predicted"] for p in both] == [True] * 3 + [False] * 3
    n = examples_strip(preds, classes, sampling, tiny_videos, tmp_path / "ex.png", per_class=2)
    assert n == 6
    img = mpimg.imread(tmp_path / "ex.png")
    # One strip per video: n_frames frames of twice the model's width side by side.
    assert img.shape[1] >= sampling.n_frames * sampling.width * 2 * 0.95
    assert img.shape[0] >= 6 * sampling.height * 2 * 0.9
