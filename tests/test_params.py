import pytest
import yaml

from videoclf.params import ParamsError, load, validate
from conftest import ROOT


def test_project_params_file_is_valid():
    p = load(ROOT / "params.yaml")
    assert p["data"]["source"] == "builtin"
    assert p["frames"]["height"] % 16 == 0


def test_defaults_fill_missing_keys():
    p = validate({"train": {"epochs": 3}})
    assert p["train"]["epochs"] == 3
    assert p["train"]["batch_size"] == 8
    assert p["data"]["per_class"] == {"train": 30, "val": 10, "test": 10}


@pytest.mark.parametrize("raw, key", [
    ({"train": {"epochs": "ten"}}, "train.epochs"),
    ({"train": {"learning_rate": -1}}, "train.learning_rate"),
    ({"data": {"source": "ftp"}}, "data.source"),
    ({"frames": {"height": 100}}, "frames.height"),
    ({"frames": {"width": 40}}, "frames.width"),
    ({"data": {"per_class": {"train": 0}}}, "data.per_class.train"),
    ({"data": {"split_by": "random"}}, "data.split_by"),
    ({"train": {"epoch": 3}}, "train.epoch"),
    ({"train": {"augment": {"flip": "yes"}}}, "train.augment.flip"),
    ({"model": {"filters": []}}, "model.filters"),
    ({"train": {"batch_size": True}}, "train.batch_size"),
])
def test_bad_values_name_the_key(raw, key):
    with pytest.raises(ParamsError) as e:
        validate(raw)
    assert str(e.value).startswith(key + ":")


def test_height_must_survive_every_halving():
    # Three blocks halve three times: 24 is not divisible by 16 but 8 divides it.
    p = validate({"model": {"filters": [8, 16, 32]}, "frames": {"height": 48, "width": 48}})
    assert p["frames"]["height"] == 48
    with pytest.raises(ParamsError, match="frames.height: must be divisible by 32"):
        validate({"model": {"filters": [8, 8, 8, 8, 8]}, "frames": {"height": 48}})


def test_bad_stage_fails_before_work(tmp_path, venv_env):
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"frames": {"height": 50}}))
    r = subprocess.run([sys.executable, str(ROOT / "stages" / "download.py")], cwd=tmp_path,
                       capture_output=True, text=True, env=venv_env, timeout=120)
    assert r.returncode == 2
    assert "frames.height" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "data").exists()
