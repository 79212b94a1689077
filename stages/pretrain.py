"""Stage pretrain: the network fitted on a self-supervised task (pretrain.task) over VIDEOS'
train split and data.unlabeled_url (labels never read, val/test never seen; UNLABELED is the
source stage's fingerprint of it), into PRETRAINED, curves to LIVE. Off with epochs 0."""

import logging

from videoclf.stage import run

log = logging.getLogger("videoclf")


def main(p, a) -> None:
    from videoclf.training.pretrain import write_off

    if p.pretrain.epochs == 0:
        write_off(a.pretrained, a.live)
        log.info("pretrain: off (pretrain.epochs 0)")
        return
    from videoclf.data import pretext
    from videoclf.training.pretrain import fit_pretext  # TensorFlow loads after the pool

    work, report = pretext.prepare(a.videos, p, a.pretrained.parent)
    info = fit_pretext(work, a.pretrained, a.live, p, report)
    pretext.clean(a.pretrained.parent)
    log.info("pretrain: %s on %d train + %d unlabeled videos; pretext val accuracy %.3f; "
             "%d file(s) skipped or left out (in %s)", info.task, report.train_videos,
             report.unlabeled_videos, info.best_val_accuracy,
             len(report.skipped) + len(report.left_out), a.pretrained / "pretrain.json")


if __name__ == "__main__":
    run("pretrain", main, inputs=["videos", "unlabeled"], outputs=["pretrained", "live"])
