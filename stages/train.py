"""Stage train: the (2+1)D ResNet on FRAMES, from the PRETRAINED body when pretrain ran, an
image backbone from WEIGHTS (fitted on its cached FEATURES when frozen); the model folder to
MODEL, curves to LIVE, and the wall-clock clips/s to THROUGHPUT."""

from videoclf.artifacts import read_pretrained
from videoclf.stage import run


def main(p, a) -> None:
    from videoclf.training.train import train  # TensorFlow loads after params and paths

    train(a.frames, a.model, a.live, p.model, p.train,
          clips_per_video=p.evaluate.clips_per_video, flip_test=p.evaluate.flip,
          throughput_file=a.throughput,
          pretrained=read_pretrained(a.pretrained), weights_dir=a.weights,
          features_dir=a.features)


if __name__ == "__main__":
    run("train", main, inputs=["frames", "pretrained", "weights", "features"],
        outputs=["model", "live", "throughput"])
