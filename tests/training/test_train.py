import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from helpers import ROOT, project_params


def test_trained_model_outputs(tiny_model, tiny_frames):
    assert (tiny_model / "model.keras").is_file()
    labels = json.loads((tiny_model / "labels.json").read_text())
    assert labels == ["Dim", "Flicker", "PanDown"]
    sampling = json.loads((tiny_model / "sampling.json").read_text())
    assert sampling["height"] == 32 and sampling["n_frames"] == 4
    info = json.loads((tiny_model / "train.json").read_text())
    assert info["epochs_run"] == 1 and info["runtime"]
    inference = json.loads((tiny_model / "inference.json").read_text())
    assert inference["clips_per_video"] == 5
    # One run id ties the folder's files together, the model's own metadata included.
    from videoclf.training.modelio import keras_run

    assert len(inference["run"]) == 16 and sampling["run"] == inference["run"]
    assert keras_run(tiny_model / "model.keras") == inference["run"]
    live = tiny_frames.parent / "live"
    for split in ("train", "eval"):
        for metric in ("loss", "accuracy"):
            tsv = pd.read_csv(live / "plots" / "metrics" / split / f"{metric}.tsv", sep="\t")
            assert list(tsv.step) == [0] and np.isfinite(tsv[metric]).all()
    summary = json.loads((live / "metrics.json").read_text())
    assert {"train", "eval", "best"} <= set(summary)


@pytest.mark.slow
def test_same_params_same_weights(tiny_frames, tiny_params, tmp_path):
    from videoclf.training.modelio import load_model_dir
    from videoclf.training.train import train

    # the one-body network (twice as fast here); test_resume's same bytes hold two pathways
    p = project_params({"train": {"epochs": 2, "batch_size": 4}, "model": {"input": "diff"}})
    weights = []
    for run in ("a", "b"):
        summary = train(tiny_frames, tmp_path / run, tmp_path / f"live-{run}", p.model,
                        p.train, clips_per_video=1)
        model, _ = load_model_dir(tmp_path / run)
        weights.append(model.get_weights())
        assert summary.epochs_run == 2
    for a, b in zip(*weights):
        assert np.array_equal(a, b)
    for name in ("model.keras", "train.json", "labels.json", "sampling.json", "inference.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert json.loads((tmp_path / "live-a" / "metrics.json").read_text()) == \
        json.loads((tmp_path / "live-b" / "metrics.json").read_text())
    # train.restore_best false: the last epoch is the one kept, and the summaries say so.
    live = json.loads((tmp_path / "live-a" / "metrics.json").read_text())
    val = pd.read_csv(tmp_path / "live-a" / "plots" / "metrics" / "eval" / "accuracy.tsv",
                      sep="\t")
    assert summary.kept_epoch == 2 and live["kept"]["kept_epoch"] == 2
    assert summary.kept_val_accuracy == pytest.approx(val.accuracy.iloc[-1])
    assert live["kept"]["kept_val_loss"] == pytest.approx(summary.kept_val_loss)


@pytest.mark.slow
def test_patience_stops_when_the_monitored_value_stands_and_says_so(tiny_frames, tmp_path,
                                                                     caplog):
    """A learning rate too small to move the weights: val accuracy stands from epoch 1, so
    train.patience 1 ends a 6-epoch run after epoch 2, in the log, train.json and the plot."""
    import logging

    from videoclf.report.plot import learning_curves, read_history
    from videoclf.training.train import train

    caplog.set_level(logging.INFO)
    p = project_params({"train": {"epochs": 6, "batch_size": 4, "learning_rate": 1e-12,
                                  "patience": 1, "monitor": "val_accuracy"},
                        "model": {"input": "diff"}})
    summary = train(tiny_frames, tmp_path / "m", tmp_path / "live", p.model, p.train,
                    clips_per_video=1)
    assert summary.epochs_run == 2 and summary.stopped_epoch == 2 and summary.best_epoch == 1
    assert summary.stop_reason == ("val_accuracy not higher for 1 epochs since epoch 1 "
                                   "(train.patience 1)")
    assert "train: stopped at epoch 2 of 6: val_accuracy not higher" in caplog.text
    saved = json.loads((tmp_path / "m" / "train.json").read_text())
    assert saved["stopped_epoch"] == 2 and saved["stop_reason"] == summary.stop_reason
    learning_curves(read_history(tmp_path / "live"), tmp_path / "curves.png",
                    stopped=summary.stopped_epoch)
    assert (tmp_path / "curves.png").stat().st_size > 0


def _cpu_only_env() -> dict:
    """The same run on any host: GPUs hidden, so the replicas are the CPUs asked for."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    return env


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_on_two_processes(tiny_frames, tmp_path):
    """Two real worker processes on 127.0.0.1 (TF_CONFIG), one epoch with
    MultiWorkerMirroredStrategy: both must end with the same trainable weights (gradients
    all-reduced across the two processes)."""
    code = textwrap.dedent(f"""
        import hashlib, json, sys
        from pathlib import Path
        from videoclf.params import load
        from videoclf.training.modelio import load_model_dir
        from videoclf.training.train import train
        p = load(r"{ROOT / 'params.yaml'}",
                 {{"train": {{"epochs": 1, "batch_size": 2, "distribute": "multi_worker"}}}})
        out = Path(sys.argv[1])
        s = train(Path(r"{tiny_frames}"), out / "model", out / "live", p.model, p.train,
                  clips_per_video=1)
        model, _ = load_model_dir(out / "model")
        # Trainable weights follow the all-reduced gradients; BatchNorm's moving statistics are
        # each worker's own (Keras' BatchNormalization is not synchronised by default).
        digest = hashlib.sha256(b"".join(w.numpy().tobytes() for w in model.trainable_weights)
                                ).hexdigest()
        print(json.dumps({{"runtime": s.runtime, "weights": digest}}))
    """)
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    procs = []
    for i in range(2):
        env = _cpu_only_env()
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"w{i}")],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      cwd=ROOT, env=env))
    outs = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=600)
            errors = [line for line in stderr.splitlines() if "error" in line.lower()]
            assert proc.returncode == 0, "\n".join(errors)[-3000:]
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            proc.kill()
    assert all(o["runtime"].startswith("MultiWorkerMirroredStrategy x2 ") for o in outs), outs
    assert outs[0]["weights"] == outs[1]["weights"]
    assert (tmp_path / "w0" / "model" / "model.keras").is_file()


@pytest.mark.slow
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
        from videoclf.params import load
        from videoclf.inference.predictors import load_predictor
        from videoclf.training.train import train
        from videoclf.inference.evaluate import evaluate
        from videoclf.engine import LocalEngine
        p = load(r"{ROOT / 'params.yaml'}",
                 {{"train": {{"epochs": 1, "batch_size": 2, "distribute": "mirrored"}}}})
        out = Path(r"{tmp_path}")
        s = train(Path(r"{tiny_frames}"), out / "model", out / "live", p.model, p.train,
                  clips_per_video=1)
        predict, info = load_predictor(out / "model")
        videos = Path(r"{tiny_videos}")
        m = evaluate(predict, info, pd.read_parquet(videos / "manifest.parquet"),
                     videos, out / "metrics", p.evaluate, LocalEngine(1))
        print(json.dumps({{"runtime": s.runtime, "test_videos": m["test_videos"]}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600, cwd=ROOT, env=_cpu_only_env())
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # Two replicas on whatever devices this host has (two logical CPUs here, GPUs elsewhere).
    assert out["runtime"].startswith("MirroredStrategy x2 on ")
    assert out["test_videos"] == 6
    assert (tmp_path / "metrics" / "metrics.json").is_file()


@pytest.mark.slow
def test_warm_start_same_classes_and_new_classes(tiny_model, tiny_frames, tiny_params,
                                                 tmp_path):
    """model.init: the same network continues from the earlier weights (the first epoch starts
    where the earlier run ended); a different class count keeps all but the classifier; a
    different network is one clear error."""
    import dataclasses

    from videoclf.artifacts import read_model_info
    from videoclf.choices import InputKind, options
    from videoclf.training.modelio import load_keras
    from videoclf.training.network import build_model
    from videoclf.training.train import TrainError, train, warm_start

    old = load_keras(tiny_model / "model.keras")
    m, sampling = tiny_params.model, read_model_info(tiny_model).sampling
    net = lambda classes=3, **change: build_model(
        dataclasses.replace(m, **change), sampling, classes)
    same = net()
    assert "all layers" == warm_start(same, tiny_model / "model.keras")
    for a, b in zip(same.get_weights(), old.get_weights()):
        assert np.array_equal(a, b)
    pretext = net()  # a pretrained body: the classifier stays fresh, even at the same size
    fresh_head = pretext.layers[-1].get_weights()
    assert "3 -> 3 classes" in warm_start(pretext, tiny_model / "model.keras", head=False)
    assert np.array_equal(pretext.get_weights()[0], old.get_weights()[0])
    assert all(np.array_equal(a, b) for a, b in zip(pretext.layers[-1].get_weights(), fresh_head))
    five = net(5)
    fresh_head = five.layers[-1].get_weights()
    assert "3 -> 5 classes" in warm_start(five, tiny_model / "model.keras")
    assert np.array_equal(five.get_weights()[0], old.get_weights()[0])
    assert all(np.array_equal(a, b) for a, b in zip(five.layers[-1].get_weights(), fresh_head))
    other_inputs = [k for k in options(InputKind) if k != m.input]
    for other in ({"filters": (8, 8, 16, 16)}, {"norm": "layer" if m.norm == "batch" else "batch"},
                  *({"input": k} for k in other_inputs)):
        with pytest.raises(TrainError, match="is not this network"):
            warm_start(net(**other), tiny_model / "model.keras")
    # Same weights' shapes, another network: the appearance pathway on other frames; but
    # another pathway dropout rate is the same network, trained otherwise.
    if m.input == "two_pathway":
        assert warm_start(net(pathway_dropout=0.5), tiny_model / "model.keras") == "all layers"
        with pytest.raises(TrainError, match="is not this network"):
            warm_start(net(appearance_stride=m.appearance_stride + 1), tiny_model / "model.keras")
        other_fusion = "scores" if m.fusion == "features" else "features"
        with pytest.raises(TrainError, match="is not this network"):
            warm_start(net(fusion=other_fusion), tiny_model / "model.keras")
    # Through train(): the summary records what it started from.
    p = project_params({"train": {"epochs": 1, "batch_size": 4},
                        "model": {"init": str(tiny_model / "model.keras")}})
    s = train(tiny_frames, tmp_path / "m", tmp_path / "live", p.model, p.train,
              clips_per_video=1)
    import hashlib

    assert s.init_sha256 == hashlib.sha256((tiny_model / "model.keras").read_bytes()
                                              ).hexdigest()


def test_model_init_pointing_at_this_stages_own_output_says_what_happens(tiny_frames,
                                                                        tiny_params, tmp_path):
    """DVC deletes data/model before train runs: a model.init inside it is refused up front
    with why and what to do, not "missing, run dvc repro" after DVC deleted it."""
    from videoclf.training.train import TrainError, train

    own = tmp_path / "model" / "model.keras"
    p = project_params({"model": {"init": str(own)}})
    with pytest.raises(TrainError, match=r"inside this stage's output folder .*copy the model "
                                         "elsewhere first"):
        train(tiny_frames, tmp_path / "model", tmp_path / "live", p.model, p.train,
              clips_per_video=1)


def test_model_init_and_a_pretrained_body_together_are_one_clear_error(tiny_frames, tmp_path):
    from videoclf.training.train import TrainError, train

    p = project_params({"model": {"init": str(tmp_path / "start.keras")}})
    with pytest.raises(TrainError, match=r"model.init .* and pretrain.epochs > 0 both give"):
        train(tiny_frames, tmp_path / "model", tmp_path / "live", p.model, p.train,
              clips_per_video=1, pretrained=tmp_path / "pretrained" / "model.keras")


@pytest.mark.slow
@pytest.mark.parametrize("balance,pathway_loss,fusion", [("sample", 0.0, "features"),
                                                         ("weight", 1.0, "scores")])
def test_balanced_training_and_pathway_heads_run_through_fit(tiny_frames, tmp_path, balance,
                                                              pathway_loss, fusion):
    """Repeated videos, and loss weights (with the pathway heads' loss, which takes them
    too); the saved network is the one model.* builds (fused by scores: the heads in it)."""
    from videoclf.artifacts import read_model_info
    from videoclf.training.modelio import load_keras
    from videoclf.training.network import architecture, build_model
    from videoclf.training.train import train

    p = project_params({"train": {"epochs": 1, "batch_size": 4, "balance": balance},
                        "model": {"input": "two_pathway", "pathway_loss": pathway_loss,
                                  "fusion": fusion}})
    s = train(tiny_frames, tmp_path / "m", tmp_path / "live", p.model, p.train,
              clips_per_video=1)
    assert s.epochs_run == 1 and np.isfinite(s.best_val_loss)
    assert 0 <= s.best_val_accuracy <= 1
    saved = load_keras(tmp_path / "m" / "model.keras")
    plain = build_model(p.model, read_model_info(tmp_path / "m").sampling, 3)
    assert architecture(saved) == architecture(plain) and saved.output.shape[-1] == 3
