"""The videoclf modules a script runs: its import closure within ``src/videoclf``.

Every ``import`` statement counts, including those inside functions (imported lazily, but
run), so the closure is what a stage can execute, not only what it loads at start. It is what
``dvc.yaml`` lists as each stage's code deps (``tests/test_stages.py`` checks it) and what the
train stage's checkpoint key hashes, so both see the same change of code. Pure ``ast``: no
module is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PKG = Path(__file__).resolve().parent


def module_file(name: str) -> Path | None:
    """The file of a dotted videoclf module name, or None (not videoclf, or no such module)."""
    parts = name.split(".")
    if parts[0] != "videoclf":
        return None
    base = PKG.joinpath(*parts[1:])
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def imports(path: Path) -> set[str]:
    """Dotted names of every videoclf module ``path`` imports (absolute or relative)."""
    path = Path(path).resolve()
    in_pkg = path.is_relative_to(PKG)
    here = ["videoclf", *path.relative_to(PKG).with_suffix("").parts[:-1]] if in_pkg else []
    if in_pkg and path.name == "__init__.py":
        here = ["videoclf", *path.parent.relative_to(PKG).parts]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}  # `from . import video`
    return {m for m in out if m.split(".")[0] == "videoclf"}


def _walk(todo: list[Path], seen: set[Path]) -> set[Path]:
    while todo:
        f = todo.pop()
        for name in imports(f):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                mf = module_file(".".join(parts[:i]))
                if mf and mf not in seen:
                    seen.add(mf)
                    todo.append(mf)
    return seen


def closure(script: Path) -> set[Path]:
    """Files under src/videoclf that ``script`` imports, directly or not (parents included)."""
    return _walk([Path(script).resolve()], set())


def module_closure(names: Iterable[str]) -> set[Path]:
    """The files of the modules ``names`` (and their parent packages) and of all they import:
    the closure of a script whose only videoclf imports are ``names``."""
    seen: set[Path] = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            mf = module_file(".".join(parts[:i]))
            if mf:
                seen.add(mf)
    return _walk(sorted(seen), seen)
