import dataclasses

import pytest
import yaml

from videoclf.params import (
    SCHEMA,
    DataParams,
    Params,
    ParamsError,
    TrainParams,
    as_dict,
    load,
    override,
    validate,
)

from helpers import ROOT, project_params


def test_project_params_file_is_valid():
    p = load(ROOT / "params.yaml")
    assert p.data.source == "builtin"
    assert p.frames.height % 16 == 0


def _leaves(schema: dict, prefix: str = ""):
    for k, v in schema.items():
        key = f"{prefix}.{k}" if prefix else k
        yield from _leaves(v, key) if isinstance(v, dict) else [key]


def _without(raw: dict, dotted: str) -> dict:
    out = override(raw, {})
    *parents, last = dotted.split(".")
    node = out
    for k in parents:
        node = node[k]
    del node[last]
    return out


def test_params_yaml_is_the_one_source_every_key_is_required():
    """No defaults in code: removing any key of params.yaml is an error naming that key."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    keys = list(_leaves(SCHEMA))
    assert len(keys) > 30
    for key in keys + ["train.augment", "data.per_class"]:
        with pytest.raises(ParamsError) as e:
            validate(_without(raw, key))
        assert str(e.value).startswith(f"{key}: missing"), key
    with pytest.raises(ParamsError, match="^train: expected a mapping"):
        validate(override(raw, {"train": None}))


def test_changes_apply_over_params_yaml():
    p = project_params({"train": {"epochs": 3}})
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert p.train.epochs == 3
    assert p.train.batch_size == raw["train"]["batch_size"]
    assert as_dict(p.data.per_class) == raw["data"]["per_class"]


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
    ({"model": {"appearance_filters": []}}, "model.appearance_filters"),
    ({"model": {"motion_scale": 0}}, "model.motion_scale"),
    ({"model": {"dropout": 1}}, "model.dropout"),
    ({"train": {"weight_decay": -0.1}}, "train.weight_decay"),
    ({"train": {"augment": {"crop_area": 0}}}, "train.augment.crop_area"),
])
def test_bad_values_name_the_key(raw, key):
    with pytest.raises(ParamsError) as e:
        project_params(raw)
    assert str(e.value).startswith(key + ":")


def test_height_must_survive_every_halving():
    # Three blocks halve three times: 24 is not divisible by 16 but 8 divides it.
    one = {"input": "diff", "motion_scale": 1}
    p = project_params({"model": {"filters": [8, 16, 32], **one},
                        "frames": {"height": 48, "width": 48}})
    assert p.frames.height == 48
    with pytest.raises(ParamsError, match="frames.height: must be divisible by 32"):
        project_params({"model": {"filters": [8, 8, 8, 8, 8], **one}, "frames": {"height": 48}})
    # The motion body sees 1/motion_scale of the frame, then halves it 4 times: 2 x 16.
    with pytest.raises(ParamsError, match=r"frames.height: must be divisible by 32 "
                                          r"\(model.motion_scale 2"):
        project_params({"frames": {"height": 48, "width": 48}})
    assert project_params({"model": {"input": "rgb"},  # no motion body to scale
                           "frames": {"height": 48, "width": 48}}).frames.height == 48
    # The appearance pathway halves it once per appearance_filters entry.
    with pytest.raises(ParamsError, match="frames.width: must be divisible by 64"):
        project_params({"model": {"appearance_filters": [8] * 6, "motion_scale": 1,
                                   "appearance_stem_stride": 2},
                        "frames": {"height": 128, "width": 96}})
    # ResNet's whole stem (appearance_stem_stride 4) pools once more before the blocks.
    with pytest.raises(ParamsError, match="frames.width: must be divisible by 32"):
        project_params({"model": {"appearance_stem_stride": 4, "motion_scale": 1},
                        "frames": {"height": 96, "width": 48}})


def test_bad_stage_fails_before_work(tmp_path, venv_env):
    import subprocess
    import sys

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(override(raw, {"frames": {"height": 50}})))
    r = subprocess.run([sys.executable, str(ROOT / "stages" / "download.py"), "data/videos"],
                       cwd=tmp_path,
                       capture_output=True, text=True, env=venv_env, timeout=120)
    assert r.returncode == 2
    assert "frames.height" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "data").exists()


def test_blocks_are_frozen_dataclasses_with_the_schema_keys():
    p = project_params()
    assert isinstance(p, Params) and isinstance(p.data, DataParams)
    assert isinstance(p.train, TrainParams)
    for block in ("data", "frames", "model", "train", "evaluate"):
        assert set(as_dict(getattr(p, block))) == set(SCHEMA[block]), block
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.train.epochs = 2  # type: ignore[misc]
    # Lists become tuples, so a block can be hashed and never changes under a caller.
    assert isinstance(p.model.filters, tuple)
    assert all(isinstance(pair, tuple) for pair in p.train.augment.flip_pairs)
    assert p.frames.sampling.need == 1 + (p.frames.n_frames - 1) * p.frames.frame_step


def _literal_keys(cls=None, prefix=""):
    """(dotted key, Literal type) of every params key whose type is a choice."""
    import dataclasses
    from typing import Literal, get_origin, get_type_hints

    from videoclf.params import Params

    cls = cls or Params
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, hint = f"{prefix}{f.name}", hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from _literal_keys(hint, f"{key}.")
        elif get_origin(hint) is Literal:
            yield key, hint


def test_every_choice_is_a_literal_of_the_core_and_the_schema_takes_exactly_it():
    """Each choice key's type is a Literal of videoclf.choices; the schema accepts each of its
    values and refuses another (and a value equal but of another type: 1 for true)."""
    from videoclf import choices

    declared = {getattr(choices, n) for n in dir(choices) if not n.startswith("_")}
    keys = dict(_literal_keys())
    assert {"data.source", "data.builtin_style", "data.layout", "data.split_by",
            "frames.short_video", "model.input", "model.norm", "model.fusion",
            "model.motion_downscale", "model.appearance_stem_stride", "train.lr_schedule",
            "train.balance", "train.distribute", "train.mixed_precision", "pretrain.task",
            } <= set(keys)
    for key, choice in keys.items():
        assert choice in declared, key
        block, name = key.split(".")
        for c in choices.options(choice):
            assert getattr(getattr(project_params({block: {name: c}}), block), name) == c
        for bad in ("no-such-choice", 1.5):
            with pytest.raises(ParamsError, match=f"{key}: must be one of"):
                project_params({block: {name: bad}})
    with pytest.raises(ParamsError, match="train.jit_compile: must be one of"):
        project_params({"train": {"jit_compile": 1}})


def test_the_built_in_styles_are_the_choices_of_data_builtin_style():
    from videoclf.choices import BuiltinStyle, options
    from videoclf.data.builtin.styles import MIRROR_PAIRS, STYLES

    assert tuple(STYLES) == options(BuiltinStyle) == tuple(MIRROR_PAIRS)


def test_pathway_dropout_must_leave_a_pathway():
    assert project_params({"model": {"pathway_dropout": 0}}).model.pathway_dropout == 0.0
    assert project_params({"model": {"pathway_dropout": 0.5}}).model.pathway_dropout == 0.5
    for bad in (0.51, -0.1, "x", True):
        with pytest.raises(ParamsError, match=r"model.pathway_dropout: must be a number in"):
            project_params({"model": {"pathway_dropout": bad}})


def test_train_seed_fits_the_32_bits_tensorflow_takes():
    assert project_params({"train": {"seed": 2**32 - 1}}).train.seed == 2**32 - 1
    with pytest.raises(ParamsError, match="train.seed: must be <= 4294967295"):
        project_params({"train": {"seed": 2**32}})


@pytest.mark.parametrize("text, words", [
    (b"data:\n  seed: 1\n  seed: 2\n", "line 3, column 3: key 'seed' is given twice"),
    (b"data: [\n  x: 1\n", "not valid YAML: line 3, column 1: expected ',' or ']'"),
    (b"data:\n  url: caf\xe9\n", "not UTF-8 text"),
])
def test_a_broken_params_file_is_one_line_naming_the_problem(tmp_path, text, words):
    (tmp_path / "params.yaml").write_bytes(text)
    with pytest.raises(ParamsError) as e:
        load(tmp_path / "params.yaml")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_per_class_takes_counts_fractions_and_all_and_classes_take_names():
    p = project_params({"data": {"per_class": {"train": "all", "val": 0.15, "test": 10},
                                 "num_classes": 0, "classes": ["B", "A"], "max_per_class": 50}})
    assert as_dict(p.data.per_class) == {"train": "all", "val": 0.15, "test": 10}
    assert p.data.classes == ("B", "A") and p.data.num_classes == 0
    assert project_params({"data": {"num_classes": 400}}).data.num_classes == 400
    for bad, words in [({"per_class": {"val": "all"}}, "data.per_class.val: expected a count"),
                       ({"per_class": {"val": 1.5}}, "data.per_class.val: a fraction must be"),
                       ({"per_class": {"val": 1.0}}, "strictly between 0 and 1"),
                       ({"num_classes": 1}, "data.num_classes: a classifier needs 2"),
                       ({"classes": ["A", "A"]}, "data.classes: A is listed twice")]:
        with pytest.raises(ParamsError, match=words):
            project_params({"data": bad})


def test_fractions_must_split_a_class_whole():
    for given, words in [((0.5, 0.4, 0.3), "sum to 1.2"), ((0.9, 0.9, 0.9), "sum to 2.7"),
                         ((0.6, 0.2, 0.1), "sum to 0.9"), (("all", 0.5, 0.5), "leaving train")]:
        with pytest.raises(ParamsError, match=f"data.per_class: .*{words}"):
            project_params({"data": {"per_class": dict(zip(("train", "val", "test"), given))}})
    for fine in [(0.6, 0.2, 0.2), (0.7, 0.15, 0.15), ("all", 0.15, 0.15), (0.5, 10, 10)]:
        project_params({"data": {"per_class": dict(zip(("train", "val", "test"), fine))}})

