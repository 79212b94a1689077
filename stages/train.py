"""Stage train: the (2+1)D ResNet on FRAMES, from the PRETRAINED body when pretrain ran; the
model folder to MODEL, curves to LIVE, and the wall-clock clips/s to THROUGHPUT."""

from videoclf.artifacts import read_pretrained
from videoclf.stage import run


def main(p, a) -> None:
    from videoclf.training.train import train  # TensorFlow loads after params and paths

    train(a.frames, a.model, a.live, p.model, p.train,
          clips_per_video=p.evaluate.clips_per_video, flip_test=p.evaluate.flip,
          throughput_file=a.throughput,
          pretrained=read_pretrained(a.pretrained))


if __name__ == "__main__":
    run("train", main, inputs=["frames", "pretrained"], outputs=["model", "live", "throughput"])
