"""The pretext set of the pretrain stage: every video pretraining may see without labels, cut
into clips labelled by the self-supervised task, in extract's frames layout (shards, index,
meta), so that the train stage's code fits it unchanged (resume, dvclive, precise BatchNorm).

The pool is the train split of ``data/videos`` (its class column is never read) and every
video of ``data.unlabeled_url``, checked as download checks labelled videos (decoded once in
full; broken, non-video and unsafe files reported with why). A file with the bytes of a val
or test video is left out and reported: pretraining on the videos a model is scored on would
be transductive leakage. Equal files count once.

Tasks (``pretrain.task``), after the field's pace and arrow-of-time pretext tasks:

- ``pace``: one class per ``pretrain.frame_steps`` value; a video gives clips at every step
  its length allows (Wang et al. 2020, playback-pace prediction).
- ``arrow``: two classes, a clip as recorded or reversed in time; each (video, direction)
  draws its step among the ones that fit (Wei et al. 2018, arrow of time).

A tenth of the pool videos (at least one), drawn from ``pretrain.seed``, is the pretext
validation split, so that early stopping and the best epoch work as in train.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import video
from ..artifacts import INDEX, PoolReport, clips_per_video, read_manifest
from ..outputs import write_json
from ..params import DataParams, FramesParams, Params, PretrainParams, as_dict
from ..pool import map_videos
from ..seeding import derive_seed
from . import readers
from .download import check_space
from .shards import FramesMeta, IndexRow, Slot, frames_layout, plan_shards, write_index, write_rows
from .splits import DatasetError, Video, classify_member

log = logging.getLogger(__name__)

VAL_SHARE = 10  # one pool video in ten validates the pretext task
PRETEXT = ".pretext"            # beside the output: the pretext set, kept until pretrain ends
STAGING = ".unlabeled-staging"  # beside the output: fetched unlabeled videos
SHORT = "short.json"            # beside the pretext set: pool videos it could not use


@dataclass(frozen=True)
class PoolVideo:
    """A video pretraining may see: a stable name (``train/<path>`` or ``unlabeled/<member>``),
    where it is, its real length in frames and the SHA-256 of its bytes."""

    name: str
    path: Path
    length: int
    sha256: str


def task_classes(p: PretrainParams) -> list[str]:
    """The pretext task's class names, in label order."""
    if p.task == "pace":
        return [f"step{s}" for s in p.frame_steps]
    return ["forward", "backward"]


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check(job: tuple[str, Path, float]) -> tuple[str, int, str | None, str]:
    name, path, min_decodable = job
    try:
        return name, video.measure(path, min_decodable).decoded, None, _sha256(path)
    except video.VideoError as e:
        return name, 0, str(e), ""
    except OSError as e:
        return name, 0, f"cannot read it: {e.strerror}", ""


def gather_pool(videos_dir: Path, data: DataParams, staging: Path, workers: int
                ) -> tuple[list[PoolVideo], PoolReport]:
    """The pool and its report (counts, and every file left out or skipped, with why). Pool
    names: ``videos/<path in data/videos>`` and ``unlabeled/<member of the source>``."""
    manifest = read_manifest(videos_dir)
    held_out = {_sha256(Path(videos_dir) / v): v for v in
                manifest[manifest.split.isin(["val", "test"])].video}
    train = manifest[manifest.split == "train"]
    pool = [PoolVideo(f"videos/{v}", Path(videos_dir) / v, int(n), _sha256(Path(videos_dir) / v))
            for v, n in zip(train.video, train.frames)]
    report = PoolReport(train_videos=len(pool))
    if data.unlabeled_url:
        found = _unlabeled(data, staging, workers, report)
        seen = {p.sha256: p.name for p in pool}
        for p in found:
            if p.sha256 in held_out:
                report.left_out.append({"member": p.name, "reason": "the bytes of "
                                           f"{held_out[p.sha256]} (val/test): never pretrained on"})
            elif p.sha256 in seen:
                report.left_out.append({"member": p.name,
                                           "reason": f"the bytes of {seen[p.sha256]}: used once"})
            else:
                seen[p.sha256] = p.name
                pool.append(p)
                report.unlabeled_videos += 1
    return pool, report


def _unlabeled(data: DataParams, staging: Path, workers: int, report: PoolReport
               ) -> list[PoolVideo]:
    """Every video file of ``data.unlabeled_url``, fetched and decoded once; the rest reported."""
    as_source = dataclasses.replace(data, source="url", url=data.unlabeled_url)
    try:
        src = readers.open_source(as_source, workers)
        names = src.names()
        candidates = []
        for name in names:
            verdict = classify_member(name)
            if verdict is None:
                candidates.append(Video(member=name, cls="", group=name, clip=0))
            elif verdict[0] != "folder":
                into = report.skipped if verdict[0] == "refused" else report.left_out
                into.append({"member": f"unlabeled/{name}", "reason": verdict[1]})
        if not candidates:
            other = len(report.left_out) + len(report.skipped)
            raise DatasetError(f"data.unlabeled_url: {data.unlabeled_url} holds no video file"
                               + (f" ({other} other file(s), none a video)" if other else
                                  " (it is empty)"))
        where = staging / readers.staging_key(as_source)
        check_space(src.declared_bytes(candidates), staging, data.max_total_mb)
        where.mkdir(parents=True, exist_ok=True)
        got, failed = src.fetch(candidates, where)
    except DatasetError as e:
        raise DatasetError(str(e).replace("data.url", "data.unlabeled_url")) from None
    report.skipped += [{**r, "member": f"unlabeled/{r['member']}"}
                          for r in failed + src.refused()]
    jobs = [(v.member, got[v.member], data.min_decodable) for v in candidates if v.member in got]
    found = []
    for name, length, problem, sha in map_videos(_check, jobs, workers, "check"):
        if problem:
            report.skipped.append({"member": f"unlabeled/{name}", "reason": problem})
        else:
            found.append(PoolVideo(f"unlabeled/{name}", got[name], length, sha))
    log.info("pretrain: %s: %d videos usable, %d skipped, %d other files left out",
             src.describe(), len(found), len(report.skipped), len(report.left_out))
    return found


@dataclass(frozen=True)
class PretextExample:
    """One pretext example: a (video, class) pair's clips, all at one frame step."""

    name: str             # ``<pool name>#<class>``: the index's video column
    cls: str
    label: int
    source: PoolVideo
    split: str
    step: int
    reverse: bool         # arrow: the clip played backwards
    starts: list[int]


@dataclass(frozen=True)
class VideoCut:
    """One pool video for a worker: decoded once for all its examples' clips."""

    path: Path
    length: int
    sampling: video.Sampling
    folder: Path          # the staged pretext set, where the shards are
    examples: list[tuple[PretextExample, Slot]]


def _step(v: PoolVideo, p: PretrainParams, label: int, cls: str, fits: list[int]) -> int | None:
    """The frame step of one class's clips of ``v``, or None when the video is too short."""
    if p.task == "pace":
        return p.frame_steps[label] if p.frame_steps[label] in fits else None
    if not fits:
        return None
    rng = np.random.default_rng(derive_seed(p.seed, v.name, cls))
    return fits[int(rng.integers(len(fits)))]


def _entries(v: PoolVideo, split: str, p: PretrainParams, base: video.Sampling
             ) -> list[PretextExample]:
    """The pretext examples one video gives: (class, step, reversed, start frames)."""
    fits = [s for s in p.frame_steps
            if dataclasses.replace(base, frame_step=s).need <= v.length]
    k = clips_per_video(split, p.clips_per_video)
    out = []
    for label, cls in enumerate(task_classes(p)):
        step = _step(v, p, label, cls, fits)
        if step is None:
            continue
        sampling = dataclasses.replace(base, frame_step=step)
        key = f"{v.name}#{cls}"
        starts = (video.train_starts(v.length, k, sampling, p.seed, key) if split == "train"
                  else video.eval_starts(v.length, k, sampling))
        out.append(PretextExample(key, cls, label, v, split, step,
                                  p.task == "arrow" and label == 1, starts))
    return out


def plan(pool: list[PoolVideo], p: PretrainParams, base: video.Sampling
         ) -> tuple[list[PretextExample], list[dict]]:
    """Every pretext example (in a fixed order) and the videos too short for any."""
    names = sorted(v.name for v in pool)
    if len(names) < 2:
        raise DatasetError(f"pretrain: {len(names)} usable video(s); the pretext task needs at "
                           "least 2 (one validates it)")
    rng = np.random.default_rng(derive_seed(p.seed, "pretext-val"))
    val = set(rng.choice(names, size=max(1, len(names) // VAL_SHARE), replace=False))
    by_name = {v.name: v for v in pool}
    examples, short = [], []
    for name in names:
        got = _entries(by_name[name], "val" if name in val else "train", p, base)
        if not got:
            short.append({"member": name, "reason": f"{by_name[name].length} frames: shorter "
                          f"than a clip at step {p.frame_steps[0]}"})
        examples += got
    return examples, short


def _cut(job: VideoCut) -> str | None:
    """Decode one video once and write all its pretext clips into their shard rows."""
    base = job.sampling
    plans = [[video.clip_indices(job.length, s, dataclasses.replace(base, frame_step=e.step))
              for s in e.starts] for e, _ in job.examples]
    wanted = {i for clips in plans for clip in clips for i in clip if i is not None}
    try:
        frames = video.read_frames(job.path, wanted, base)
    except video.VideoError as e:
        return str(e)
    black = np.zeros((base.height, base.width, 3), np.uint8)
    for (example, slot), clips in zip(job.examples, plans):
        arr = np.stack([np.stack([frames[i] if i is not None else black for i in clip])
                        for clip in clips])
        write_rows(job.folder / slot.shard, slot.row, arr[:, ::-1] if example.reverse else arr)
    return None


def _cuts(examples: list[PretextExample], slots: list[Slot], base: video.Sampling,
          folder: Path) -> dict[str, VideoCut]:
    """One job per pool video, its examples in plan order."""
    cuts: dict[str, VideoCut] = {}
    for e, slot in zip(examples, slots):
        cuts.setdefault(e.source.name, VideoCut(e.source.path, e.source.length, base, folder,
                                                [])).examples.append((e, slot))
    return cuts


def _log_counts(index: pd.DataFrame, p: PretrainParams) -> None:
    counts = index.drop_duplicates("video").groupby(["split", "class"]).size()
    log.info("pretrain: task %s, %d clips from %d videos (%s)", p.task, len(index),
             index.group.nunique(), ", ".join(f"{c} {int(counts.get(('train', c), 0))}"
                                              for c in task_classes(p)))


def build_pretext(pool: list[PoolVideo], p: PretrainParams, frames: FramesParams,
                  out_dir: Path) -> tuple[pd.DataFrame, list[dict]]:
    """Write the pretext set into ``out_dir`` (in extract's frames layout); return its index
    and the pool videos it could not use, with why."""
    base = frames.sampling
    examples, short = plan(pool, p, base)
    per_video = {s: clips_per_video(s, p.clips_per_video) for s in ("train", "val", "test")}
    slots, shard_rows = plan_shards([e.split for e in examples], per_video, base.clip_bytes,
                                    frames.shard_mb * 2**20)
    with frames_layout(out_dir, shard_rows, base) as tmp:
        cuts = _cuts(examples, slots, base, tmp)
        problems = map_videos(_cut, list(cuts.values()), frames.workers or os.cpu_count() or 1,
                              "pretext")
        failed = {g: e for g, e in zip(cuts, problems) if e}
        rows = [IndexRow(e.name, e.cls, e.label, e.source.name, e.split, c, s, slot.shard,
                         slot.row + c, base.n_frames)
                for e, slot in zip(examples, slots) if e.source.name not in failed
                for c, s in enumerate(e.starts)]
        if not {"train", "val"} <= {r.split for r in rows}:
            raise DatasetError("pretrain: the pool gives no pretext clip to train or to "
                               "validate on (too few or too short videos)")
        index = write_index(tmp, rows, FramesMeta(base, task_classes(p), p.clips_per_video))
    _log_counts(index, p)
    return index, short + [{"member": g, "reason": e} for g, e in failed.items()]


def _key(pool: list[PoolVideo], params: Params) -> str:
    h = hashlib.sha256(json.dumps([as_dict(params.pretrain), as_dict(params.frames)],
                                  sort_keys=True).encode())
    for v in sorted(pool, key=lambda v: v.name):
        h.update(f"{v.name}\0{v.sha256}\0{v.length}\n".encode())
    return h.hexdigest()[:16]


def prepare(videos_dir: Path, params: Params, root: Path) -> tuple[Path, PoolReport]:
    """The pretext set under ``root/.pretext`` (reused when an interrupted run built it from
    the same pool and params, so a resumed fit finds the same shards) and the pool report."""
    staging = Path(root) / STAGING
    pool, report = gather_pool(videos_dir, params.data, staging, params.frames.workers)
    work = Path(root) / PRETEXT / _key(pool, params)
    if not ((work / INDEX).is_file() and (work.parent / SHORT).is_file()):
        shutil.rmtree(work.parent, ignore_errors=True)  # another pool's set, or half of one
        _, short = build_pretext(pool, params.pretrain, params.frames, work)
        write_json(work.parent / SHORT, short)
    report.skipped += json.loads((work.parent / SHORT).read_text())
    return work, report


def clean(root: Path) -> None:
    """Remove the pretext set and the fetched unlabeled videos (pretraining is done)."""
    shutil.rmtree(Path(root) / PRETEXT, ignore_errors=True)
    shutil.rmtree(Path(root) / STAGING, ignore_errors=True)
