"""Stage extract: sampled frames of every video in VIDEOS, once, into NPY shards in FRAMES."""

from videoclf.artifacts import read_classes, read_manifest
from videoclf.data.extract import extract
from videoclf.engine import open_engine
from videoclf.stage import run


def main(p, a) -> None:
    with open_engine(p.engine, "extract", p.frames.workers) as engine:
        extract(read_manifest(a.videos), a.videos, a.frames, p.frames, read_classes(a.videos),
                engine)


if __name__ == "__main__":
    run("extract", main, inputs=["videos"], outputs=["frames"])
