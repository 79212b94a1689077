"""params.yaml is the one place values are set: no function or dataclass of the package has a
default, for an argument named as a params key, that differs from params.yaml's value (a
builder called without it would build another network than the pipeline trains)."""

from __future__ import annotations

import ast
from collections import defaultdict

import yaml

from videoclf.closure import PKG

from helpers import ROOT

# Arguments named as a params key that mean something else where they have a default, why.
OTHER_MEANING = {
    # predict and the service take whatever decodes; data.min_decodable is download's bar
    ("video.py", "measure", "min_decodable"), ("video.py", "read_clips", "min_decodable"),
    ("scoring.py", "sample_video", "min_decodable"),
    ("scoring.py", "sample_videos", "min_decodable"),
    ("scoring.py", "score_videos", "min_decodable"),
    # clips per inference call, not train.batch_size
    ("scoring.py", "score_videos", "batch_size"), ("windows.py", "scan", "batch_size"),
    ("service.py", "make_app", "workers"),  # the service's decoding threads
    ("network.py", "architecture", "classes"),  # a flag: compare the classifiers too
    # Keras layer configs saved before model.norm existed have no norm key: LayerNorm then
    ("r2plus1d.py", "__init__", "norm"),
}


def _leaves(block: dict, out: dict) -> dict:
    for key, value in block.items():
        if isinstance(value, dict):
            _leaves(value, out)
        else:
            out[key].append(value)
    return out


def _defaults(tree: ast.AST):
    """(owner, argument, default) for every constant default of a function or dataclass."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d]
            for arg, default in pairs:
                if isinstance(default, ast.Constant):
                    yield node.name, arg.arg, default.value
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                        and isinstance(item.value, ast.Constant)):
                    yield node.name, item.target.id, item.value.value


def test_no_default_in_code_differs_from_params_yaml():
    keys = _leaves(yaml.safe_load((ROOT / "params.yaml").read_text()), defaultdict(list))
    differ = []
    checked = 0
    for path in sorted(PKG.rglob("*.py")):
        for owner, name, value in _defaults(ast.parse(path.read_text())):
            if name not in keys or value is None:
                continue
            checked += 1
            same = value in keys[name] and isinstance(value, bool) == isinstance(keys[name][0],
                                                                                  bool)
            if not same and (path.name, owner, name) not in OTHER_MEANING:
                differ.append(f"{path.relative_to(PKG)}: {owner}({name}={value!r}); "
                              f"params.yaml: {keys[name]}")
    assert not differ, "\n".join(differ)
    assert checked  # the scan sees defaults at all (Sampling.short_video, layout, ...)
