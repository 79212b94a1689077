"""Stage features: with a frozen image backbone (train.freeze_backbone), its per-frame
features of every train and val clip of FRAMES (and of each clip mirrored, when training
flips), from the weights in WEIGHTS, as float16 shards into FEATURES; otherwise only a record
saying why train reads pixels. train.* but the freeze and the flip do not rerun it."""

from videoclf.stage import run


def main(p, a) -> None:
    from videoclf.training.features import write_features  # TensorFlow: when needed

    write_features(a.frames, a.weights, a.features, p.model, p.train)


if __name__ == "__main__":
    run("features", main, inputs=["frames", "weights"], outputs=["features"])
