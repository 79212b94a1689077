"""Stage start-up: seconds until each stage's code is loaded, now and at an earlier commit.

``import videoclf`` once loaded TensorFlow (before a1fadad), so every stage (download,
extract, plot, a params check, ``predict --help``) paid for it. This measures, in fresh
processes, the imports each entry point makes before it does any work, here and at
``--compare REV`` (a temporary git worktree), on the same machine in the same run (median of
``--repeat``).

    python benchmarks/startup.py [--compare a1fadad] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What each entry point imports before its work starts (the modules its script names).
ENTRY_POINTS = {
    "download": "import videoclf.stage, videoclf.data.download",
    "extract": "import videoclf.stage, videoclf.data.extract",
    "plot": "import videoclf.stage, videoclf.report.plot",
    "params check": "import videoclf.stage, videoclf.params",
    "predict --help": "import videoclf.__main__",
    "train (TensorFlow)": "import videoclf.stage, videoclf.training.train",
}


def _time(code: str, src: Path, repeat: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(src), TF_CPP_MIN_LOG_LEVEL="3")
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", default="a1fadad", help="an earlier commit (default a1fadad)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old),
                        args.compare], check=True)
        try:
            print(f"{'entry point':<20} {args.compare + ' (s)':>12} {'now (s)':>9} {'ratio':>7}")
            for name, code in ENTRY_POINTS.items():
                try:
                    before = _time(code, old / "src", args.repeat)
                except subprocess.CalledProcessError:
                    before = float("nan")  # the module did not exist then
                now = _time(code, ROOT / "src", args.repeat)
                print(f"{name:<20} {before:>12.2f} {now:>9.2f} {before / now:>6.1f}x")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False)


if __name__ == "__main__":
    main()
