"""Where training time goes: the input pipeline alone, the model alone, and fit() over both.

    python benchmarks/input_pipeline.py [--videos 300] [--size 128] [--n-frames 10]

Extracts shards of the given size from data/videos (or generated built-in clips) into a temp
folder, then measures with the params' model and batch size:
- pipeline_clips_per_s: the training tf.data pipeline alone (shuffle, pick, flip, batch);
- model_clips_per_s: model.fit() over one in-memory batch repeated (the limit the way fit
  runs: same network and input kind as params.yaml's, compiled, warmed up, same batch);
- fit_clips_per_s: model.fit() over the real pipeline (an epoch after a warm-up epoch), and
  fit_over_model, their ratio: at most 1, and how close to 1 says what the pipeline costs.
(fit used to read 2.9x its "model-only" figure: fit's and the pipeline's clips/s divided
by every stored clip, K = train_clips_per_video = 3 a video, while an epoch reads one of
them; and the model-only figure came from train_on_batch on the tutorial's rgb/LayerNorm
network. Both now count the clips an epoch yields, on the params' network.)
- tutorial_clips_per_s: the tutorial's per-clip decoding of the same videos.
The last line is JSON with these keys.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))



from _common import project_params, tutorial_frames_from_video_file, videos_for_benchmark  # noqa: E402
from videoclf._tf import keras  # noqa: E402
from videoclf.artifacts import read_index  # noqa: E402
from videoclf.data.extract import extract  # noqa: E402
from videoclf.params import load  # noqa: E402
from videoclf.training.inputs import Stream, make_dataset  # noqa: E402
from videoclf.training.network import build_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)  # the defaults' pathways need 32 | size
    ap.add_argument("--n-frames", type=int, default=10)
    ap.add_argument("--frame-step", type=int, default=15)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args()
    params = load(args.params) if Path(args.params).exists() else project_params()
    batch = params.train.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, videos_dir = videos_for_benchmark(args.videos, tmp)
        manifest = manifest.assign(split="train")
        frames = project_params({"frames": {
            "n_frames": args.n_frames, "frame_step": args.frame_step, "height": args.size,
            "width": args.size}}).frames
        classes = sorted(manifest["class"].unique())
        # Everything is measured as training data; no class is required in val or test.
        extract(manifest, videos_dir, tmp / "frames", frames, classes=[])
        index, _ = read_index(tmp / "frames")
        n = len(index)

        sample = [videos_dir / v for v in manifest.video[:30]]
        t0 = time.perf_counter()
        for p in sample:
            tutorial_frames_from_video_file(str(p), args.n_frames, (args.size, args.size),
                                            args.frame_step)
        tutorial = len(sample) / (time.perf_counter() - t0)

        ds = make_dataset(tmp / "frames", index, "train", batch_size=batch,
                      stream=Stream(seed=0, flip=True, color=False, crop_area=1.0,
                                    first_epoch=0, epochs=1))
        # An epoch reads one of the K clips of each video: count what it yields (the old
        # figures divided by every stored clip, K = 3 times too many).
        per_epoch = sum(int(x.shape[0]) for x, _ in ds)  # also the warm-up: tracing, cache
        t0 = time.perf_counter()
        for _ in range(3):
            for _ in ds:
                pass
        pipeline = 3 * per_epoch / (time.perf_counter() - t0)

        model = build_model(params.model, frames.sampling, len(classes))
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        steps = max(5, per_epoch // batch)
        # One batch of the pipeline itself (same element spec, so the same traced step),
        # cached and repeated: fit with no input cost at all.
        in_memory = ds.take(1).cache().repeat(steps)
        rates = []
        for _ in range(3):  # the first fit traces; the best of the others is the limit
            t0 = time.perf_counter()
            model.fit(in_memory, epochs=1, verbose=0)
            rates.append(steps * batch / (time.perf_counter() - t0))
        model_rate = max(rates[1:])

        model.fit(ds, epochs=1, verbose=0, shuffle=False)
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0, shuffle=False)
        fit = per_epoch / (time.perf_counter() - t0)

    print(f"tutorial per-clip decoding: {tutorial:.1f} clips/s")
    print(f"input pipeline alone:       {pipeline:.1f} clips/s "
          f"({pipeline / tutorial:.0f}x the tutorial)")
    print(f"model alone (fit, one batch in memory): {model_rate:.1f} clips/s")
    print(f"fit over the pipeline:      {fit:.1f} clips/s "
          f"({fit / model_rate:.2f} of the model alone)")
    print(json.dumps({"size": args.size, "n_frames": args.n_frames, "batch_size": batch,
                      "clips": n, "clips_per_epoch": per_epoch,
                      "tutorial_clips_per_s": round(tutorial, 2),
                      "pipeline_clips_per_s": round(pipeline, 1),
                      "model_clips_per_s": round(model_rate, 2), "fit_clips_per_s": round(fit, 2),
                      "fit_over_model": round(fit / model_rate, 2)}))


if __name__ == "__main__":
    main()
