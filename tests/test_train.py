import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd

from conftest import ROOT


def test_trained_model_outputs(tiny_model, tiny_frames):
    assert (tiny_model / "model.keras").is_file()
    labels = json.loads((tiny_model / "labels.json").read_text())
    assert labels == ["Dim", "Flicker", "PanDown"]
    sampling = json.loads((tiny_model / "sampling.json").read_text())
    assert sampling["height"] == 32 and sampling["n_frames"] == 4
    info = json.loads((tiny_model / "train.json").read_text())
    assert info["epochs_run"] == 1 and "CPU" in info["runtime"]
    live = tiny_frames.parent / "live"
    for split in ("train", "eval"):
        for metric in ("loss", "accuracy"):
            tsv = pd.read_csv(live / "plots" / "metrics" / split / f"{metric}.tsv", sep="\t")
            assert list(tsv.step) == [0] and np.isfinite(tsv[metric]).all()
    summary = json.loads((live / "metrics.json").read_text())
    assert {"train", "eval", "best"} <= set(summary)


def test_same_params_same_weights(tiny_frames, tiny_params, tmp_path):
    from videoclf.params import validate
    from videoclf.train import load_trained, train

    p = validate({"train": {"epochs": 2, "batch_size": 4}})
    weights = []
    for run in ("a", "b"):
        summary = train(tiny_frames, tmp_path / run, tmp_path / f"live-{run}", p["model"], p["train"])
        model, _, _ = load_trained(tmp_path / run)
        weights.append(model.get_weights())
        assert summary["epochs_run"] == 2
    for a, b in zip(*weights):
        assert np.array_equal(a, b)
    for name in ("model.keras", "train.json", "labels.json", "sampling.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert json.loads((tmp_path / "live-a" / "metrics.json").read_text()) == \
        json.loads((tmp_path / "live-b" / "metrics.json").read_text())


def test_mirrored_strategy_on_two_logical_cpus(tiny_frames, tiny_videos, tmp_path):
    """Distribution is tested for real: two logical CPU devices, one MirroredStrategy epoch."""
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from videoclf._tf import tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import pandas as pd
        from videoclf.params import validate
        from videoclf.train import train, load_trained
        from videoclf.evaluate import evaluate
        p = validate({{"train": {{"epochs": 1, "batch_size": 2, "distribute": "mirrored"}}}})
        out = Path(r"{tmp_path}")
        s = train(Path(r"{tiny_frames}"), out / "model", out / "live", p["model"], p["train"])
        model, classes, sampling = load_trained(out / "model")
        videos = Path(r"{tiny_videos}")
        m = evaluate(model, classes, sampling, pd.read_parquet(videos / "manifest.parquet"),
                     videos, out / "metrics", 1, workers=1)
        print(json.dumps({{"runtime": s["runtime"], "accuracy": m["accuracy"]}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["runtime"].startswith("MirroredStrategy x2")
    assert 0.0 <= out["accuracy"] <= 1.0
    assert (tmp_path / "metrics" / "metrics.json").is_file()
