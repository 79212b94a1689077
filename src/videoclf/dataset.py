"""UCF101 naming, class selection and leak-free splitting (pure logic, no I/O)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from .seeding import derive_seed

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
_NAME = re.compile(r"^v_(?P<cls>[A-Za-z0-9]+)_g(?P<group>\d+)_c(?P<clip>\d+)\.avi$", re.IGNORECASE)


class DatasetError(RuntimeError):
    """The archive cannot give the requested dataset."""


@dataclass(frozen=True)
class Video:
    """One UCF101 member: ``UCF101/v_<cls>_g<group>_c<clip>.avi``."""

    member: str
    cls: str
    group: int
    clip: int

    @property
    def filename(self) -> str:
        return PurePosixPath(self.member).name

    @property
    def group_id(self) -> str:
        """Groups are per class in UCF101: g08 of Archery is not g08 of Basketball."""
        return f"{self.cls}_g{self.group:02d}"


def unsafe_member(name: str) -> bool:
    """True for a member that would escape the extraction folder (zip slip)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return ".." in re.split(r"[/\\]", name)


def parse_members(names: list[str]) -> tuple[list[Video], list[dict]]:
    """Videos among archive members, and a report of the members refused.

    A video is any member ending in ``.avi`` (any case); other members are ignored silently.
    Members with unsafe paths or names outside the UCF101 pattern are reported.
    """
    videos, refused = [], []
    for name in names:
        if not name.lower().endswith(".avi"):
            continue
        if unsafe_member(name):
            refused.append({"member": name, "reason": "unsafe path (absolute or '..'): refused"})
            continue
        m = _NAME.match(PurePosixPath(name.replace("\\", "/")).name)
        if not m:
            refused.append({"member": name, "reason": "name is not v_<Class>_gXX_cYY.avi"})
            continue
        videos.append(Video(name, m["cls"], int(m["group"]), int(m["clip"])))
    return videos, refused


def select_classes(videos: list[Video], num_classes: int) -> list[str]:
    """The first ``num_classes`` class names in sorted order."""
    classes = sorted({v.cls for v in videos})
    if len(classes) < num_classes:
        raise DatasetError(
            f"data.num_classes: the archive has {len(classes)} classes, {num_classes} requested"
        )
    return classes[:num_classes]


def split_videos(
    videos: list[Video],
    classes: list[str],
    per_class: dict[str, int],
    split_by: str,
    seed: int,
) -> dict[str, list[Video]]:
    """Assign videos of the chosen classes to splits.

    ``group``: groups are shuffled (seeded per class) and each goes whole to one split, filling
    train, then val, then test; clips of a group beyond what its split needs are left out, so no
    group is ever in two splits. ``file``: the tutorial's split, files shuffled (seeded) and cut
    into consecutive runs, which lets one actor and scene appear in train and test.
    Per-class counts are targets: a class with too few clips gets what it has (with a warning),
    and a class left with an empty split is an error.
    """
    out: dict[str, list[Video]] = {s: [] for s in SPLITS}
    by_class: dict[str, list[Video]] = {c: [] for c in classes}
    for v in videos:
        if v.cls in by_class:
            by_class[v.cls].append(v)
    for cls in classes:
        # Sorting first makes the result independent of the archive's listing order.
        vids = sorted(by_class[cls], key=lambda v: (v.group, v.clip, v.member))
        rng = np.random.default_rng(derive_seed(seed, "split", split_by, cls))
        got = {s: [] for s in SPLITS}
        if split_by == "file":
            order = [vids[i] for i in rng.permutation(len(vids))]
            start = 0
            for s in SPLITS:
                got[s] = order[start : start + per_class[s]]
                start += per_class[s]
        else:
            groups = sorted({v.group for v in vids})
            groups = [groups[i] for i in rng.permutation(len(groups))]
            split_iter = iter(SPLITS)
            current = next(split_iter)
            for g in groups:
                while current is not None and len(got[current]) >= per_class[current]:
                    current = next(split_iter, None)
                if current is None:
                    break
                members = [v for v in vids if v.group == g]
                members = [members[i] for i in rng.permutation(len(members))]
                got[current] += members[: per_class[current] - len(got[current])]
        short = {s: (len(got[s]), per_class[s]) for s in SPLITS if len(got[s]) < per_class[s]}
        if short:
            empty = [s for s, (n, _) in short.items() if n == 0]
            if empty:
                raise DatasetError(
                    f"class {cls} has {len(vids)} clips in {len({v.group for v in vids})} groups: "
                    f"not enough for split(s) {', '.join(empty)} (data.per_class, data.split_by)"
                )
            log.warning("class %s: fewer clips than asked: %s", cls,
                        ", ".join(f"{s} {n}/{want}" for s, (n, want) in short.items()))
        for s in SPLITS:
            out[s] += sorted(got[s], key=lambda v: v.member)
    return out
