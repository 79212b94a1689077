
import matplotlib.image as mpimg
import pytest

from videoclf.artifacts import read_model_info
from videoclf.engine import LocalEngine
from videoclf.inference.evaluate import evaluate
from videoclf.report.plot import make_plots, read_history


def test_plots_are_written(tiny_model, tiny_frames, tiny_videos, tiny_manifest, tmp_path,
                           tiny_params):
    from videoclf.inference.predictors import load_predictor

    predict, info = load_predictor(tiny_model)
    evaluate(predict, info, tiny_manifest, tiny_videos, tmp_path, tiny_params.evaluate,
             LocalEngine(1))
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
    # where pretrain ran, its curves are drawn beside train's (here: the same numbers again)
    plain = paths[0].read_bytes()
    make_plots(live, tmp_path, tiny_model, tmp_path / "plots", tiny_videos, pretrain_live=live)
    assert paths[0].read_bytes() != plain


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


@pytest.mark.parametrize("name, text, words", [
    ("eval/predictions.json", '{"not": "a list"}', "predictions.json: expected a list"),
    ("eval/predictions.json", '[{"video": 1}]', "predictions.json: expected a list"),
    ("per_class.json", '["a"]', "per_class.json: expected {class"),
])
def test_a_foreign_metrics_file_is_one_line(tiny_model, tiny_frames, tiny_videos, tmp_path,
                                            name, text, words):
    from videoclf.artifacts import ArtifactError

    metrics = tmp_path / "metrics"
    (metrics / "eval").mkdir(parents=True)
    (metrics / "eval" / "predictions.json").write_text('[{"video": "v", "actual": "Dim", '
                                                       '"predicted": "Dim"}]')
    (metrics / "per_class.json").write_text('{"Dim": {"precision": 1, "recall": 1, "f1": 1}}')
    (metrics / name).write_text(text)
    with pytest.raises(ArtifactError, match=words.replace("{", r"\{")):
        make_plots(tiny_frames.parent / "live", metrics, tiny_model, tmp_path / "plots",
                   tiny_videos)


def test_the_committed_offline_page_is_what_the_pinned_package_gives():
    """.dvc/plots/offline.html is in git (so `dvc plots show` works on any checkout); it must
    stay what `python -m videoclf.report.offline_page` writes."""
    from videoclf.report.offline_page import page

    from helpers import ROOT

    committed = (ROOT / ".dvc" / "plots" / "offline.html").read_text()
    assert committed == page() and "{plot_divs}" in committed


def test_plots_stay_readable_with_many_classes(tmp_path):
    """120 classes: no numbers in 14,400 cells, a bounded figure, the worst confusions named,
    and the bars of the classes of lowest F1 only."""
    import numpy as np
    import pandas as pd

    from videoclf.report.plot import confusion_heatmaps, per_class_bars, top_confusions

    classes = [f"Class{i:03d}" for i in range(120)]
    rng = np.random.default_rng(0)
    predictions = []
    for i, c in enumerate(classes):
        for _ in range(5):
            wrong = i == 7 or rng.random() < 0.2
            predictions.append({"video": f"{c}/v.avi", "actual": c,
                                "predicted": classes[(i + 1) % 120] if wrong else c})
    confusion_heatmaps(predictions, classes, tmp_path / "cm.png")
    h, w = mpimg.imread(tmp_path / "cm.png").shape[:2]
    assert h < 2400 and w < 4200
    cm = pd.crosstab(pd.Categorical([p["actual"] for p in predictions], categories=classes),
                     pd.Categorical([p["predicted"] for p in predictions], categories=classes),
                     dropna=False)
    assert top_confusions(cm, 1) == [("Class007", "Class008", 5)]
    per_class = {c: {"precision": 1.0, "recall": 1.0, "f1": 1.0 - (i == 7), "support": 5}
                 for i, c in enumerate(classes)}
    per_class_bars(per_class, tmp_path / "bars.png")
    assert mpimg.imread(tmp_path / "bars.png").shape[0] < 1800
