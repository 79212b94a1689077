"""What a network costs per training step, without data: variants of ``model.*`` and
``frames.*`` side by side, each in a fresh process, in alternating rounds.

    python benchmarks/step_cost.py "" \
        "model.input=diff frames.height=64 frames.width=64 model.motion_scale=1"

Each argument is one variant: space-separated ``KEY=VALUE`` overrides of params.yaml (""
= the defaults). A variant builds the network train fits (with the pathway classifiers when
``model.pathway_loss`` is on), under train's runtime (op determinism, precision, XLA), and
times ``fit`` over one random batch of ``train.batch_size`` clips repeated, after a warm-up,
and one forward pass (``predict_on_batch``, as validation and precise statistics run).
On this project's 2-core machines one process's figures move by 30% or more from minute
to minute, so the rounds alternate and the medians are printed, with each variant's ratio
to the first. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import overrides, project_params  # noqa: E402


def _measure(variant: str, steps: int) -> dict:
    """One variant in this process: seconds per training step and per forward pass."""
    import numpy as np

    from videoclf._tf import keras
    from videoclf.training.network import build_model, pathway_loss, with_pathway_heads
    from videoclf.training.runtime import configure_runtime
    from videoclf.training.train import optimizer

    p = project_params(overrides(variant.split()))
    rt = configure_runtime(p.train)
    s, classes, batch = p.frames.sampling, 10, p.train.batch_size
    model = fitted = build_model(p.model, s, classes)
    loss, metric = keras.losses.SparseCategoricalCrossentropy(from_logits=True), "accuracy"
    if p.model.pathway_loss and p.model.input == "two_pathway":
        fitted = with_pathway_heads(model)
        loss, metric = pathway_loss(classes, p.model.pathway_loss)
    fitted.compile(optimizer=optimizer(p.train.learning_rate, p.train.weight_decay), loss=loss,
                   metrics=[metric], jit_compile=rt.jit_compile)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, s.n_frames, s.height, s.width, 3), dtype=np.uint8)
    y = rng.integers(0, classes, batch)
    fitted.fit(x, y, batch_size=batch, epochs=2, verbose=0)  # traces, warms up
    t0 = time.perf_counter()
    fitted.fit(np.repeat(x, steps, 0), np.repeat(y, steps), batch_size=batch, verbose=0,
               shuffle=False)
    step = (time.perf_counter() - t0) / steps
    model.predict_on_batch(x)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.predict_on_batch(x)
    forward = (time.perf_counter() - t0) / steps
    return {"step_s": step, "forward_s": forward, "params": model.count_params()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+",
                    help='space-separated KEY=VALUE overrides ("" = the defaults)')
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child process: measure one variant
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(_measure(args.one, args.steps)))
        return
    runs: dict[str, list[dict]] = {v: [] for v in args.variants}
    for _ in range(args.rounds):
        for v in args.variants:
            out = subprocess.run([sys.executable, __file__, "x", "--one", v, "--steps",
                                  str(args.steps)], capture_output=True, text=True, check=True)
            runs[v].append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = statistics.median(r["step_s"] for r in runs[args.variants[0]])
    rows = []
    print("| variant | params | step s (median) | forward s | step / first |")
    print("| --- | --- | --- | --- | --- |")
    for v, rs in runs.items():
        step = statistics.median(r["step_s"] for r in rs)
        fwd = statistics.median(r["forward_s"] for r in rs)
        rows.append({"variant": v or "(defaults)", "params": rs[0]["params"],
                     "step_s": round(step, 4), "forward_s": round(fwd, 4),
                     "ratio": round(step / first, 2),
                     "steps_s": [round(r["step_s"], 4) for r in rs]})
        print(f"| {v or '(defaults)'} | {rs[0]['params']} | {step:.3f} | {fwd:.3f} | "
              f"{step / first:.2f}x |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
