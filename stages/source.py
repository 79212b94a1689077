"""Stage source: a fingerprint of what data.url holds (names, sizes, times; never the videos'
bytes) into FINGERPRINT, so that DVC reruns download exactly when the source changed."""

from videoclf.data.fingerprint import write_fingerprint
from videoclf.stage import run

if __name__ == "__main__":
    run("source", lambda p, a: write_fingerprint(p.data, a.fingerprint),
        outputs=["fingerprint"])
