import json

import numpy as np
import pytest

from videoclf.engine import LocalEngine
from videoclf.inference.evaluate import (
    bootstrap_ci,
    classification_metrics,
    evaluate,
    top_k_accuracy,
)


def test_metrics_against_hand_computed_values():
    actual = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    s, per, cm = classification_metrics(actual, predicted, ["a", "b", "c"])
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert s["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    assert per["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3, abs=1e-6),
                        "f1": pytest.approx(0.8, abs=1e-6), "support": 3}
    assert per["b"]["precision"] == 0.5 and per["b"]["recall"] == 0.5
    assert per["c"]["precision"] == 0.5 and per["c"]["recall"] == 1.0
    assert s["precision"] == pytest.approx((1 + 0.5 + 0.5) / 3, abs=1e-6)
    assert s["recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3, abs=1e-6)
    assert s["recall_weighted"] == pytest.approx(s["accuracy"], abs=1e-6)


def test_class_never_predicted_has_zero_precision():
    s, per, _ = classification_metrics(np.array([0, 1]), np.array([0, 0]), ["a", "b"])
    assert per["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_top_k_accuracy_by_hand():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    actual = np.array([0, 1, 2, 2])
    assert top_k_accuracy(probs, actual, 1) == 0.25   # only the first row
    assert top_k_accuracy(probs, actual, 2) == 0.75   # rows 0, 1 (0.2 second), 2 (0.3 second)
    assert top_k_accuracy(probs, actual, 5) == 1.0    # k larger than the class count


def test_bootstrap_interval_is_seeded_and_shrinks_with_more_videos():
    rng = np.random.default_rng(0)
    small = (rng.random(50) < 0.8).astype(float)
    large = (rng.random(5000) < 0.8).astype(float)
    a = bootstrap_ci(small, 2000, seed=1)
    assert a == bootstrap_ci(small, 2000, seed=1) and a != bootstrap_ci(small, 2000, seed=2)
    assert a[0] < small.mean() < a[1]
    b = bootstrap_ci(large, 2000, seed=1)
    assert b[0] < large.mean() < b[1]
    assert (b[1] - b[0]) < (a[1] - a[0]) / 5  # about 1/sqrt(100) as wide
    # With 50 videos at 80%, the normal approximation gives +-11 points: the bootstrap agrees.
    assert 0.18 < a[1] - a[0] < 0.28


@pytest.mark.parametrize("k", [1, 3])
def test_evaluate_writes_metrics(tiny_model, tiny_videos, tiny_manifest, tmp_path, k,
                                 tiny_params):
    from dataclasses import replace

    from videoclf.inference.predictors import load_predictor

    predict, info = load_predictor(tiny_model)
    classes = info.labels
    s = evaluate(predict, replace(info, clips_per_video=k), tiny_manifest, tiny_videos, tmp_path,
                 tiny_params.evaluate, LocalEngine(2))
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m == s
    assert {"accuracy", "precision", "recall", "precision_weighted", "recall_weighted", "f1",
            "loss"} <= set(m)
    assert m["clips_per_video"] == k and m["test_videos"] == 6 and m["test_clips"] == 6 * k
    assert m["accuracy_ci95_low"] <= m["accuracy"] <= m["accuracy_ci95_high"]
    assert m["top5_accuracy"] == 1.0  # 3 classes: the true one is always in the top 5
    assert m["mean_class_accuracy"] == m["recall"]
    hits = m["clip_accuracy"] * 6 * k
    assert abs(hits - round(hits)) < 1e-4  # a count of clips
    if k == 1:  # one clip per video: the clip is the video
        assert m["clip_accuracy"] == m["accuracy"]
    per = json.loads((tmp_path / "per_class.json").read_text())
    assert list(per) == classes and sum(v["support"] for v in per.values()) == 6
    preds = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    assert len(preds) == 6 and {p["actual"] for p in preds} == set(classes)
    acc = np.mean([p["actual"] == p["predicted"] for p in preds])
    assert m["accuracy"] == pytest.approx(acc, abs=1e-6)
    bars = json.loads((tmp_path / "eval" / "per_class.json").read_text())
    assert [b["class"] for b in bars] == classes


def test_test_videos_of_classes_the_model_does_not_know_are_one_line(tiny_model, tiny_manifest,
                                                                   tiny_videos, tiny_params,
                                                                   tmp_path):
    """A manifest of other data (classes the model never saw): one EvaluateError, not a
    ValueError from deep inside the scoring loop."""
    import dataclasses

    from videoclf.inference.evaluate import EvaluateError
    from videoclf.inference.predictors import load_predictor

    predict, info = load_predictor(tiny_model)
    other = dataclasses.replace(info, labels=["X", "Y", "Z"])
    with pytest.raises(EvaluateError, match=r"class\(es\) .* are not among the model's 3"):
        evaluate(predict, other, tiny_manifest, tiny_videos, tmp_path, tiny_params.evaluate)


def test_a_foreign_train_summary_is_one_line(tiny_model, tmp_path):
    import shutil

    from videoclf.artifacts import ArtifactError, read_train_info

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    (folder / "train.json").write_text('{"epochs": 3}')
    with pytest.raises(ArtifactError, match="train.json: not the train stage's summary"):
        read_train_info(folder)
