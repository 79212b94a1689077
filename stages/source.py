"""Stage source: fingerprints of what data.url and data.unlabeled_url hold (names, sizes,
times; never the videos' bytes) into FINGERPRINT and UNLABELED, so that DVC reruns download
(pretrain) exactly when its source changed."""

from videoclf.data.source import write_fingerprint, write_unlabeled_fingerprint
from videoclf.stage import run


def main(p, a) -> None:
    write_fingerprint(p.data, a.fingerprint)
    write_unlabeled_fingerprint(p.data, a.unlabeled)


if __name__ == "__main__":
    run("source", main, outputs=["fingerprint", "unlabeled"])
