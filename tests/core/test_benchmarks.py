"""Every script in benchmarks/ keeps running: each imports what it names (a renamed module or
function fails here, not in a user's hands), and the two whose defaults users run first run
for real at their smallest settings and end with their JSON line (with patience.py, whose
record of a run is what train.patience's default rests on)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from helpers import ROOT, run_python

BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_every_benchmark_imports_what_it_uses(script, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(f"_bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # top-level imports only: main() runs under __main__
    assert callable(getattr(module, "main", None)) or script.name == "_common.py"
    sys.modules.pop(spec.name, None)


@pytest.mark.slow
@pytest.mark.parametrize("script, args", [
    ("input_pipeline.py", ["--videos", "12", "--size", "32", "--n-frames", "4"]),
    ("extract.py", ["--videos", "30", "--size", "32", "--n-frames", "4",
                    "--tutorial-videos", "2", "--long-minutes", "0.5"]),
    ("patience.py", ["--styles", "scene", "--seeds", "1", "--patience", "1", "--work", "work",
                     "-S", "train.epochs=3", "-S", "frames.height=32", "-S", "frames.width=32",
                     "-S", "frames.n_frames=4", "-S", "data.num_classes=3",
                     "-S", "data.per_class.train=2", "-S", "data.per_class.val=1",
                     "-S", "data.per_class.test=1"]),
])
def test_a_benchmark_runs_at_its_smallest_and_ends_with_json(script, args, tmp_path, venv_env):
    r = run_python([ROOT / "benchmarks" / script, *args], tmp_path, venv_env)
    assert r.returncode == 0, r.stderr[-3000:]
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert isinstance(last, dict) and all(isinstance(k, str) for k in last)
    if script == "extract.py":  # 750 frames: past SEEK_BEYOND, so the seek path ran
        assert last["long_same_frames_as_straight"] is True
    if script == "patience.py":  # every epoch recorded; each candidate ends within them
        assert [r["epoch"] for r in last["runs"]["scene/1"]] == [1, 2, 3]
        assert last["candidates"] and all(
            1 <= k <= s <= 3 for c in last["candidates"] for s, k in zip(c["stopped"], c["kept"]))
