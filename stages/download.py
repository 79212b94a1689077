"""Stage download: a class subset of a UCF101-layout archive, split by group, into data/videos."""

from pathlib import Path

from videoclf.download import download
from videoclf.stage import run

if __name__ == "__main__":
    run("download", lambda p: download(p["data"], Path("data/videos"), Path("data/.staging")))
