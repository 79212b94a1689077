"""Stage download: a class subset of a video archive or folder, split by group, into VIDEOS."""

from videoclf.artifacts import STAGING
from videoclf.data.download import download
from videoclf.stage import run

if __name__ == "__main__":
    run("download", lambda p, a: download(p.data, a.videos, a.videos.parent / STAGING),
        outputs=["videos"])
