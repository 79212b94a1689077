"""Stage download: a class subset of a video archive or folder, split by group, into VIDEOS."""

from videoclf.artifacts import STAGING
from videoclf.data.download import download
from videoclf.engine import open_engine
from videoclf.stage import run


def main(p, a) -> None:
    # Mirror pairs are checked against the classes chosen here, before anything is fetched.
    pairs = p.train.augment.flip_pairs if p.train.augment.flip else ()
    with open_engine(p.engine, "download") as engine:
        download(p.data, a.videos, a.videos.parent / STAGING, flip_pairs=pairs, engine=engine)


if __name__ == "__main__":
    run("download", main, outputs=["videos"])
