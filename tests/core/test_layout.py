"""The package's layout holds by construction: wings import one another only through the core,
the core and the TensorFlow-free wings never reach ``_tf``, no import cycle, and the Keras
layers register on the one documented import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from videoclf.closure import PKG, closure, imports, module_file

from helpers import ROOT, venv_environ

WINGS = ("data", "training", "inference", "report")
# The one crossing between wings: inference reads and runs models through training's model I/O.
CROSSINGS = {"inference": {"videoclf.training.modelio"}}
TF = PKG / "_tf.py"


def _name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(("videoclf", *parts))


def _modules() -> dict[str, Path]:
    return {_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _wing(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in WINGS else None


def _direct(path: Path) -> set[str]:
    """The videoclf modules ``path`` imports, as module names (``from x import name`` counts
    as importing x unless name is itself a module)."""
    out = set()
    for name in imports(path):
        if module_file(name):
            out.add(_name(module_file(name)))
    return out - {"videoclf"}


def test_every_module_sits_in_a_wing_or_the_core():
    mods = _modules()
    core = sorted(n for n in mods if _wing(n) is None)
    assert core == sorted([
        "videoclf", "videoclf.__main__", "videoclf._tf", "videoclf.artifacts", "videoclf.choices",
        "videoclf.closure", "videoclf.engine", "videoclf.errors", "videoclf.outputs",
        "videoclf.params", "videoclf.pool", "videoclf.ray_engine", "videoclf.seeding",
        "videoclf.seeking",
        "videoclf.stage", "videoclf.video",
        *[f"videoclf.{w}" for w in WINGS]])


def test_every_stage_has_a_module_of_its_name():
    """A stage of dvc.yaml is found by its name: ``videoclf.<wing>.<stage>`` (or the plural),
    exactly one, and its stage script imports it."""
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    mods = _modules()
    for stage in stages:
        found = [n for n in mods if _wing(n) and n.split(".")[-1] in (stage, f"{stage}s")]
        assert len(found) == 1, (stage, found)
        script = ROOT / "stages" / f"{stage}.py"
        assert module_file(found[0]) in closure(script), (stage, found[0])


def test_wings_meet_only_through_the_core():
    for name, path in _modules().items():
        wing = _wing(name)
        for dep in _direct(path):
            other = _wing(dep)
            if wing is None:  # the core
                if name == "videoclf.__main__":  # the CLI on top: predict is inference
                    assert other in (None, "inference") or dep == "videoclf.training.modelio", dep
                else:
                    assert other is None, (name, dep)
            else:
                assert other in (None, wing) or dep in CROSSINGS.get(wing, set()), (name, dep)
    # The choices are pure declarations: they import nothing of the package.
    assert not _direct(_modules()["videoclf.choices"])


def test_core_data_and_report_never_reach_tensorflow():
    for name, path in _modules().items():
        if _wing(name) in ("training", "inference") or name in ("videoclf._tf",
                                                                "videoclf.__main__"):
            continue
        assert TF not in closure(path), name


def test_no_import_cycle():
    graph = {name: _direct(path) - {name} for name, path in _modules().items()}
    done: set[str] = set()

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert node not in stack, " -> ".join((*stack, node))
        if node in done:
            return
        for dep in graph.get(node, ()):
            visit(dep, (*stack, node))
        done.add(node)

    for node in graph:
        visit(node, ())


def test_a_model_saved_by_the_flat_layout_loads_on_the_documented_import(tmp_path):
    """tests/fixtures/round2_model.keras was saved before the wings existed (its config names
    the module ``videoclf.model``); ``import videoclf.training.network`` alone registers the
    ``videoclf>...`` layers it names, and safe mode loads it to the same logits."""
    fixtures = ROOT / "tests" / "fixtures"
    code = ("import sys, numpy as np, keras, videoclf.training.network\n"
            "m = keras.models.load_model(sys.argv[1], safe_mode=True)\n"
            "np.save(sys.argv[3], np.asarray(m.predict_on_batch(np.load(sys.argv[2]))))\n")
    out = tmp_path / "logits.npy"
    r = subprocess.run([sys.executable, "-c", code, fixtures / "round2_model.keras",
                        fixtures / "round2_model_input.npy", out], env=venv_environ(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    np.testing.assert_allclose(np.load(out), np.load(fixtures / "round2_model_logits.npy"),
                               rtol=1e-5, atol=1e-5)
