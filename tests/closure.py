"""The videoclf modules a script runs: the import closure within ``src/videoclf``.

Every ``import`` statement counts, including those inside functions (imported lazily, but run),
so the closure is what a stage can execute, not only what it loads at start.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "videoclf"


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "videoclf":
        return None
    base = PKG.joinpath(*parts[1:])
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _imports(path: Path) -> set[str]:
    """Dotted names of every videoclf module ``path`` imports (absolute or relative)."""
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
            out |= {f"{mod}.{a.name}" for a in node.names}  # `from . import frames`
    return {m for m in out if m.split(".")[0] == "videoclf"}


def closure(script: Path) -> set[Path]:
    """Files under src/videoclf that ``script`` imports, directly or not (parents included)."""
    seen: set[Path] = set()
    todo = [Path(script)]
    while todo:
        f = todo.pop()
        for name in _imports(f):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                mf = _module_file(".".join(parts[:i]))
                if mf and mf not in seen:
                    seen.add(mf)
                    todo.append(mf)
    return seen


if __name__ == "__main__":
    import sys

    for s in sys.argv[1:]:
        print(s, sorted(p.relative_to(ROOT).as_posix() for p in closure(ROOT / s)))
