import json

import numpy as np
import pytest

from videoclf.evaluate import classification_metrics, evaluate


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


@pytest.mark.parametrize("k", [1, 3])
def test_evaluate_writes_metrics(tiny_model, tiny_videos, tiny_manifest, tmp_path, k):
    from videoclf.train import load_trained

    model, classes, sampling = load_trained(tiny_model)
    s = evaluate(model, classes, sampling, tiny_manifest, tiny_videos, tmp_path, k, workers=2)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m == s
    assert {"accuracy", "precision", "recall", "precision_weighted", "recall_weighted", "f1",
            "loss"} <= set(m)
    assert m["clips_per_video"] == k and m["test_videos"] == 6
    per = json.loads((tmp_path / "per_class.json").read_text())
    assert list(per) == classes and sum(v["support"] for v in per.values()) == 6
    preds = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    assert len(preds) == 6 and {p["actual"] for p in preds} == set(classes)
    acc = np.mean([p["actual"] == p["predicted"] for p in preds])
    assert m["accuracy"] == pytest.approx(acc, abs=1e-6)
    bars = json.loads((tmp_path / "eval" / "per_class.json").read_text())
    assert [b["class"] for b in bars] == classes
