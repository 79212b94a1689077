"""The download stage: select, split, fetch and check videos into ``data/videos``."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from .. import video
from ..artifacts import MANIFEST, MANIFEST_COLUMNS, SPLITS, VIDEOS_REPORT
from ..choices import Layout
from ..engine import Engine, LocalEngine
from ..outputs import staged_dir, write_json, write_parquet
from ..params import DataParams, as_dict
from ..seeding import derive_seed
from . import readers
from .splits import (
    GROUPS_FILE,
    DatasetError,
    Listing,
    Video,
    parse_members,
    read_groups_csv,
    select_classes,
    split_videos,
)

log = logging.getLogger(__name__)


LEAKAGE_NOTE = ("{n} video(s) have no group (no _gNN_ in the name, not in groups.csv): each is "
                "its own group, so clips cut from one recording may sit in train and test, and "
                "leakage across splits cannot be ruled out")


def list_videos(source: readers.Source, layout: Layout) -> Listing:
    """The videos of a source, read with ``layout`` (``groups.csv`` at its root applies)."""
    names = source.names()
    listing = parse_members(names, layout)
    if listing.layout == "folders":
        groups_member = f"{listing.root}/{GROUPS_FILE}" if listing.root else GROUPS_FILE
        if groups_member in names:
            text = source.read_text(groups_member)
            if text is not None:
                listing = parse_members(names, layout, read_groups_csv(text))
    return listing


@dataclass(frozen=True)
class MeasureJob:
    """One fetched video to decode in full: its real frame count, or why it is skipped."""

    path: Path
    min_decodable: float


def _measure(job: MeasureJob) -> tuple[int, dict | None]:
    try:
        return video.measure(job.path, job.min_decodable).decoded, None
    except video.VideoError as e:
        return 0, e.report()


def download(data: DataParams, out_dir: Path, staging_root: Path, workers: int = 0,
             flip_pairs: Sequence[Sequence[str]] = (), engine: Engine | None = None
             ) -> pd.DataFrame:
    """Build ``out_dir/{train,val,test}/<Class>/<video>``, ``manifest.parquet`` and
    ``report.json``.

    Members are fetched into a staging folder that survives an interrupted run, and moved into
    ``out_dir`` only when every step succeeded; the staging folder is then removed. Every
    selected video is decoded once in full: its real frame count goes into the manifest, and
    one that does not decode, or decodes less than ``data.min_decodable`` of the frames its
    header declares, is skipped and reported. ``flip_pairs`` (``train.augment.flip_pairs``
    when flips are on) are checked against the classes chosen here, before any fetching.
    """
    source = readers.open_source(data, workers)
    listing = list_videos(source, data.layout)
    if not listing.videos:
        raise DatasetError(f"{source.describe()}: no video found (layout {listing.layout}: "
                           "v_<Class>_gXX_cYY.<ext> names, or <Class>/<video> folders)")
    classes = select_classes(listing.videos, data.num_classes, data.classes)
    check_pairs(classes, flip_pairs)
    splits = split_videos(listing.videos, classes, as_dict(data.per_class), data.split_by,
                          data.seed, data.max_per_class)
    selected = [v for s in SPLITS for v in splits[s]]
    log.info("download: %s, %d videos in %d classes (%s layout%s); %d selected (%s split)",
             source.describe(), len(listing.videos), len({v.cls for v in listing.videos}),
             listing.layout, f", root {listing.root}/" if listing.root else "", len(selected),
             data.split_by)
    _log_counts(splits, classes)
    ungrouped = sum(1 for v in selected if v.group_from == "none")
    note = LEAKAGE_NOTE.format(n=ungrouped) if ungrouped else None
    if note and data.split_by == "group":
        log.warning("download: %s", note)

    run: Engine = engine or LocalEngine(workers)
    staging = staging_root / readers.staging_key(data)
    check_space(source.declared_bytes(selected), staging_root, data.max_total_mb)
    staging.mkdir(parents=True, exist_ok=True)
    try:
        manifest, skipped = _fetch_and_place(
            source, listing, selected, splits, classes, staging, out_dir, data, note, run)
    except (KeyboardInterrupt, readers.SourceUnreachable):
        raise  # staging is kept: a rerun resumes what was fetched
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # nothing of a failed run stays on disk
        raise
    shutil.rmtree(staging, ignore_errors=True)
    summary = ", ".join(f"{s} {int((manifest.split == s).sum())}" for s in SPLITS)
    log.info("download: %d videos (%s); %d skipped%s", len(manifest), summary, len(skipped),
             f", see {out_dir / VIDEOS_REPORT}" if skipped else "")
    return manifest


def _fetch_and_place(source: readers.Source, listing: Listing, selected: list[Video],
                     splits: dict[str, list[Video]], classes: list[str], staging: Path,
                     out_dir: Path, data: DataParams, note: str | None, engine: Engine
                     ) -> tuple[pd.DataFrame, list[dict]]:
    paths: dict[str, Path] = {}
    checks: dict[str, tuple[int, dict | None]] = {}
    failures: list[dict] = []
    fetch = partial(_fetch_checked, source, staging, data.min_decodable, engine, paths, checks,
                    failures)
    fetch(selected)
    _refill(listing.videos, splits, classes, checks, fetch, data.seed)
    skipped = listing.refused + source.refused() + failures
    taken = [v for s in SPLITS for v in splits[s]]
    in_splits = {v.member for v in taken}
    # Tried as a replacement and found unusable: skipped, with why, like the others.
    skipped += [{"member": m, **problem} for m, (_, problem) in checks.items()
                if problem and m not in in_splits]
    named = {r["member"] for r in skipped}
    left_out = listing.ignored + [r for r in _not_selected(listing.videos, taken, classes)
                                  if r["member"] not in named]
    if left_out:
        log.info("download: %d file(s) left out: %s (each in %s)", len(left_out),
                 _by_reason(left_out), VIDEOS_REPORT)
    with staged_dir(out_dir) as tmp:
        # never hard-link a user's own files
        manifest = _place(splits, classes, paths, checks, skipped, tmp,
                          copy=isinstance(source, readers.DirSource))
        write_parquet(tmp / MANIFEST, manifest)
        counts = manifest.groupby(["split", "class"]).size()
        write_json(tmp / VIDEOS_REPORT, {
            "source": source.describe(),
            "layout": listing.layout,
            "root": listing.root,
            "classes": classes,
            "split_by": data.split_by,
            "grouped_by": listing.grouped_by,
            "leakage_warning": note,
            "counts": {s: {c: int(counts.get((s, c), 0)) for c in classes} for s in SPLITS},
            "skipped": skipped,
            "left_out": left_out,
        })
    return manifest, skipped


def _fetch_checked(source: readers.Source, staging: Path, min_decodable: float, engine: Engine,
                   paths: dict[str, Path], checks: dict[str, tuple[int, dict | None]],
                   failures: list[dict], videos: list[Video]) -> None:
    """Fetch ``videos`` and decode each once in full; results are added to the mappings."""
    got, failed = source.fetch(videos, staging)
    paths.update(got)
    failures += failed
    fetched = [v for v in videos if v.member in got]
    new = dict(zip((v.member for v in fetched), engine.map(
        _measure, [MeasureJob(got[v.member], min_decodable) for v in fetched], "check")))
    _check_whole(source, new, paths)
    checks.update(new)


def _refill(videos: list[Video], splits: dict[str, list[Video]], classes: list[str],
            checks: dict[str, tuple[int, dict | None]],
            fetch: Callable[[list[Video]], None], seed: int) -> None:
    """A split that lost every video of a class (damaged, unreadable) takes an unused whole
    group of that class instead, in a seeded order, so one bad file never empties a split
    while the class has usable videos elsewhere; only a class without one is an error."""
    def usable(v: Video) -> bool:
        return v.member in checks and checks[v.member][1] is None

    used = {v.member for s in SPLITS for v in splits[s]}
    for cls in classes:
        for split in SPLITS:
            if any(usable(v) for v in splits[split] if v.cls == cls):
                continue
            spare: dict[str, list[Video]] = {}
            for v in videos:
                if v.cls == cls and v.member not in used:
                    spare.setdefault(v.group, []).append(v)
            order = sorted(spare)
            rng = np.random.default_rng(derive_seed(seed, "refill", cls, split))
            for i in rng.permutation(len(order)):
                group = spare[order[i]]
                fetch(group)
                used |= {v.member for v in group}
                if any(usable(v) for v in group):
                    splits[split] += group
                    log.warning("download: %s/%s had no usable video left (see skipped); "
                                "took the unused group %s instead", split, cls, order[i])
                    break


def _not_selected(videos: list[Video], selected: list[Video], classes: list[str]
                  ) -> list[dict]:
    """Every video of the source that no split takes, with why."""
    taken, wanted = {v.member for v in selected}, set(classes)
    return [{"member": v.member, "reason": (
        "not selected: its class is not among data.classes / data.num_classes"
        if v.cls not in wanted else
        "not selected: beyond data.per_class or data.max_per_class")}
        for v in videos if v.member not in taken]


def _by_reason(rows: list[dict]) -> str:
    """``not a video (.txt) 3, hidden file 1, ...``: a count per reason, most first."""
    counts = Counter(r["reason"].split(":")[0] if r["reason"].startswith("not selected")
                     else r["reason"] for r in rows)
    return ", ".join(f"{reason} {n}" for reason, n in counts.most_common())


def _log_counts(splits: dict[str, list[Video]], classes: list[str]) -> None:
    """One line: per split, the fewest and most videos a class got (report.json: each)."""
    parts = []
    for s in SPLITS:
        per = Counter(v.cls for v in splits[s])
        n = [per.get(c, 0) for c in classes]
        parts.append(f"{s} {min(n)}" if min(n) == max(n) else f"{s} {min(n)}-{max(n)}")
    log.info("download: %d classes, videos per class: %s", len(classes), ", ".join(parts))


def _check_whole(source: readers.Source, checks: dict[str, tuple[int, dict | None]],
                 paths: dict[str, Path]) -> None:
    """A video whose source knows its length (the built-in set) must decode to all of it: a
    clip written short (OpenCV's writer says nothing on a full disk) is an error, never a
    video, and its staged file is removed."""
    for member, (n, _) in checks.items():
        want = source.expected_frames(member)
        if want is not None and n != want:
            paths[member].unlink(missing_ok=True)
            if shutil.disk_usage(paths[member].parent).free < SPACE_MARGIN_BYTES:
                raise OSError(errno.ENOSPC, "No space left on device", str(paths[member].parent))
            raise DatasetError(f"{member}: decodes {n} of the {want} frames it was generated "
                               "with: it was not written whole")


# Besides the members' declared bytes: a member's compressed copy while it is inflated, the
# index files, and what the file system itself needs.
SPACE_MARGIN_BYTES = 64 * 2**20


def check_space(declared: int | None, where: Path, max_total_mb: int) -> None:
    """Refuse a selection whose declared size is over ``data.max_total_mb`` or over the free
    space where it would be written, before anything is fetched."""
    if declared is None:  # the built-in set: a few hundred KB a clip, generated
        return
    mb = declared / 2**20
    if declared > max_total_mb * 2**20:
        raise DatasetError(f"the selected videos declare {mb:.0f} MB, over data.max_total_mb "
                           f"({max_total_mb}); select fewer (data.num_classes, data.per_class) "
                           "or raise the limit")
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if declared + SPACE_MARGIN_BYTES > free:
        raise DatasetError(f"the selected videos declare {mb:.0f} MB, and {free / 2**20:.0f} MB "
                           f"are free under {probe}: free some space or select fewer")


def check_pairs(classes: list[str], pairs: Sequence[Sequence[str]]) -> None:
    """A mirror pair naming one selected class but not the other cannot be trained with flips
    (the mirror image of that class is missing): said here, before anything is fetched."""
    for a, b in pairs:
        have = [c in classes for c in (a, b)]
        if any(have) and not all(have):
            present, absent = (a, b) if have[0] else (b, a)
            raise DatasetError(f"train.augment.flip_pairs: [{a}, {b}]: {absent} is not among "
                               f"the {len(classes)} classes selected, so {present} has no "
                               "mirror image here; select both, drop the pair, or set "
                               "train.augment.flip: false")


def _place(splits: dict[str, list[Video]], classes: list[str], paths: dict[str, Path],
           checks: dict[str, tuple[int, dict | None]], skipped: list[dict], out: Path,
           copy: bool) -> pd.DataFrame:
    """Link (or copy) every checked video to ``out/<split>/<Class>/<name>``; the manifest.
    Videos whose check found a problem are added to ``skipped``; a split left without a
    class is an error."""
    rows = []
    for split in SPLITS:
        for v in splits[split]:
            if v.member not in checks:
                continue
            n_frames, problem = checks[v.member]
            if problem:
                skipped.append({"member": v.member, **problem})
                continue
            rel = Path(split) / v.cls / v.filename
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(paths[v.member], out / rel, copy)
            rows.append({"video": rel.as_posix(), "member": v.member, "class": v.cls,
                         "label": classes.index(v.cls), "group": v.group_id,
                         "clip": v.clip, "split": split, "frames": n_frames})
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    counts = manifest.groupby(["split", "class"]).size()
    missing = [f"{s}/{c}" for s in SPLITS for c in classes if (s, c) not in counts.index]
    if missing:
        raise DatasetError(
            f"no usable clip left for {', '.join(missing)} after skipping "
            f"{len(skipped)} member(s): {skipped[:3]}"
        )
    return manifest


def _link_or_copy(src: Path, dst: Path, copy: bool = False) -> None:
    if copy:
        shutil.copyfile(src, dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
