"""Data set layouts (UCF101 names or class folders), class selection and leak-free splitting
(pure logic, no I/O)."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from ..artifacts import SPLITS
from ..errors import VideoclfError
from ..seeding import derive_seed
from ..video import is_video

log = logging.getLogger(__name__)

GROUPS_FILE = "groups.csv"
_UCF_NAME = re.compile(r"^v_(?P<cls>[A-Za-z0-9]+)_g(?P<group>\d+)_c(?P<clip>\d+)\.[^.]+$",
                       re.IGNORECASE)
_GROUP_IN_NAME = re.compile(r"_g(?P<group>\d+)_", re.IGNORECASE)
_CLIP_IN_NAME = re.compile(r"_c(?P<clip>\d+)(?:\.|_|$)", re.IGNORECASE)


class DatasetError(VideoclfError):
    """The archive cannot give the requested dataset."""


@dataclass(frozen=True)
class Video:
    """One video of the source: its member path, class, group and where it is stored.

    ``group`` names the group within the class (``g08`` from a UCF101 name, a ``groups.csv``
    value, or the video's own path when nothing groups it); ``rel`` is the path below the
    class folder under which it is stored, with its real extension.
    """

    member: str
    cls: str
    group: str
    clip: int
    rel: str = ""
    group_from: str = "name"    # name | groups.csv | none (the video is its own group)

    @property
    def filename(self) -> str:
        return self.rel or PurePosixPath(self.member.replace("\\", "/")).name

    @property
    def group_id(self) -> str:
        """Groups are per class in UCF101: g08 of Archery is not g08 of Basketball."""
        return f"{self.cls}_{self.group}"


@dataclass
class Listing:
    """The videos found in a source, what was refused, and how they were read."""

    videos: list[Video]
    refused: list[dict]
    layout: str                   # ucf101 | folders
    root: str = ""                # folder holding the class folders ("" = the source's top)
    grouped_by: dict[str, int] = field(default_factory=dict)  # name | groups.csv | none -> videos


def unsafe_member(name: str) -> bool:
    """True for a member that would escape the extraction folder (zip slip)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return ".." in re.split(r"[/\\]", name)


def _hidden(parts: tuple[str, ...]) -> bool:
    """macOS resource forks (``__MACOSX/``, ``._x.mp4``), ``.DS_Store`` and other dot files."""
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _ucf_group(number: str) -> str:
    return f"g{int(number):02d}"


def find_root(names: list[str]) -> str:
    """The folder that holds the class folders: the leading folders every video shares, as
    long as some video still sits in a class folder below it."""
    parts = [PurePosixPath(n.replace("\\", "/")).parts for n in names]
    k = 0
    while parts and all(len(p) > k + 1 and p[k] == parts[0][k] for p in parts) and any(
            len(p) > k + 2 for p in parts):
        k += 1
    return "/".join(parts[0][:k]) if parts else ""


def parse_members(names: list[str], layout: str = "auto",
                  groups: dict[str, str] | None = None) -> Listing:
    """Videos among source members, and a report of the members refused.

    ``ucf101``: ``v_<Class>_gXX_cYY.<ext>`` anywhere; class and group from the name.
    ``folders``: ``<root>/<Class>/<any/sub/path>/<video>``; the class is the folder name, the
    group comes from ``_gNN_`` in the name, else from ``groups`` (``groups.csv``: path below
    the root -> group), else each video is its own group. ``auto``: ucf101 when every video
    is named that way, else folders. Members that are not videos are ignored silently.
    """
    candidates, refused = [], []
    for name in names:
        if name.endswith(("/", "\\")) or not is_video(name):
            continue
        if unsafe_member(name):
            refused.append({"member": name, "reason": "unsafe path (absolute or '..'): refused"})
            continue
        if _hidden(PurePosixPath(name.replace("\\", "/")).parts):
            continue
        candidates.append(name)
    if layout == "auto":
        # Mostly UCF101 names: ucf101 (the odd names are then reported); else class folders.
        ucf = sum(1 for n in candidates
                  if _UCF_NAME.match(PurePosixPath(n.replace("\\", "/")).name))
        layout = "ucf101" if candidates and 2 * ucf > len(candidates) else "folders"
    grouped_by = {"name": 0, GROUPS_FILE: 0, "none": 0}
    root = ""
    if layout == "ucf101":
        videos = _ucf101_videos(candidates, refused, grouped_by)
    else:
        root = find_root(candidates)
        videos = _folder_videos(candidates, root, groups or {}, refused, grouped_by)
    return Listing(videos, refused, layout, root, {k: v for k, v in grouped_by.items() if v})


def _ucf101_videos(candidates: list[str], refused: list[dict], grouped_by: dict[str, int]
                   ) -> list[Video]:
    videos = []
    first_with_name: dict[str, str] = {}
    for name in sorted(candidates):
        base = PurePosixPath(name.replace("\\", "/")).name
        m = _UCF_NAME.match(base)
        if not m:
            refused.append({"member": name, "reason": "name is not v_<Class>_gXX_cYY.<ext>"})
            continue
        if base.lower() in first_with_name:  # stored by file name: one name, one video
            refused.append({"member": name, "reason": "another member has this file name: "
                            f"{first_with_name[base.lower()]}"})
            continue
        first_with_name[base.lower()] = name
        videos.append(Video(name, m["cls"], _ucf_group(m["group"]), int(m["clip"])))
        grouped_by["name"] += 1
    return videos


def _folder_videos(candidates: list[str], root: str, groups: dict[str, str],
                   refused: list[dict], grouped_by: dict[str, int]) -> list[Video]:
    videos = []
    depth = len(PurePosixPath(root).parts) if root else 0
    for name in candidates:
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if len(parts) < depth + 2:
            refused.append({"member": name, "reason": "not inside a class folder"})
            continue
        cls, rel = parts[depth], "/".join(parts[depth + 1:])
        stem = PurePosixPath(parts[-1]).stem
        clip = _CLIP_IN_NAME.search(stem + ".")
        if g := _GROUP_IN_NAME.search(stem):
            group, how = _ucf_group(g["group"]), "name"
        elif (key := "/".join(parts[depth:])) in groups:
            group, how = str(groups[key]), GROUPS_FILE
        else:
            group, how = rel, "none"
        grouped_by[how] += 1
        videos.append(Video(name, cls, group, int(clip["clip"]) if clip else 0, rel, how))
    return videos


def read_groups_csv(text: str) -> dict[str, str]:
    """``video,group`` rows (video: path below the data set root) as a mapping."""
    reader = csv.reader(io.StringIO(text))
    out = {}
    try:
        header = next(reader, None)
        if not header or [c.strip().lower() for c in header[:2]] != ["video", "group"]:
            raise DatasetError(f"{GROUPS_FILE}: the first line must be the header 'video,group'")
        for row in reader:
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise DatasetError(f"{GROUPS_FILE}: line {reader.line_num}: expected "
                                   f"'video,group', got {str(row)[:80]}")
            out[row[0].strip().replace("\\", "/").lstrip("./")] = row[1].strip()
    except csv.Error as e:  # a field over csv's size limit, a NUL byte, ...
        raise DatasetError(f"{GROUPS_FILE}: line {reader.line_num}: not CSV ({e})") from None
    return out


def _group_order(group: str) -> tuple:
    """UCF101 groups sort by number (g2 before g10), any other group by name."""
    m = re.fullmatch(r"g(\d+)", group)
    return (0, int(m[1]), "") if m else (1, 0, group)


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
    Per-class counts are targets. A class with fewer clips than all targets together is split
    in proportion to them (whole groups; each split gets a group when the class has three or
    more), with a warning; a class left with an empty split is an error.
    """
    out: dict[str, list[Video]] = {s: [] for s in SPLITS}
    by_class: dict[str, list[Video]] = {c: [] for c in classes}
    for v in videos:
        if v.cls in by_class:
            by_class[v.cls].append(v)
    for cls in classes:
        # Sorting first makes the result independent of the archive's listing order.
        vids = sorted(by_class[cls], key=lambda v: (_group_order(v.group), v.clip, v.member))
        rng = np.random.default_rng(derive_seed(seed, "split", split_by, cls))
        short = len(vids) < sum(per_class[s] for s in SPLITS)
        if split_by == "file":
            order = [vids[i] for i in rng.permutation(len(vids))]
            got = _cut_files(order, per_class, short)
        else:
            groups = sorted({v.group for v in vids}, key=_group_order)
            groups = [groups[i] for i in rng.permutation(len(groups))]
            members = {g: [v for v in vids if v.group == g] for g in groups}
            members = {g: [m[i] for i in rng.permutation(len(m))] for g, m in members.items()}
            got = (_share_groups(groups, members, per_class) if short
                   else _fill_groups(groups, members, per_class))
        empty = [s for s in SPLITS if not got[s]]
        if empty:
            raise DatasetError(
                f"class {cls} has {len(vids)} clips in {len({v.group for v in vids})} groups: "
                f"not enough for split(s) {', '.join(empty)} (data.per_class, data.split_by)"
            )
        if any(len(got[s]) < per_class[s] for s in SPLITS):
            log.warning("class %s has %d clips in %d groups, fewer than asked: got %s", cls,
                        len(vids), len({v.group for v in vids}),
                        ", ".join(f"{s} {len(got[s])}/{per_class[s]}" for s in SPLITS))
        for s in SPLITS:
            out[s] += sorted(got[s], key=lambda v: v.member)
    return out


def _fill_groups(groups: list[str], members: dict[str, list[Video]],
                 per_class: Mapping[str, int]) -> dict[str, list[Video]]:
    """Whole groups fill train, then val, then test; a group's surplus clips are left out.
    A split that has a group already stops taking more when the groups left are only enough
    for one each of the splits after it (3 groups of 20 for 30/10/10: one group each)."""
    got: dict[str, list[Video]] = {s: [] for s in SPLITS}
    i = 0
    for g_index, g in enumerate(groups):
        while i < len(SPLITS) and len(got[SPLITS[i]]) >= per_class[SPLITS[i]]:
            i += 1
        later = len(SPLITS) - 1 - i
        if i < len(SPLITS) and got[SPLITS[i]] and len(groups) - g_index <= later:
            i += 1
        if i >= len(SPLITS):
            break
        split = SPLITS[i]
        got[split] += members[g][: per_class[split] - len(got[split])]
    return got


def _share_groups(groups: list[str], members: dict[str, list[Video]],
                  per_class: dict[str, int]) -> dict[str, list[Video]]:
    """A short class: each whole group goes to the split furthest below its share of the
    clips (ties in split order), so the first three groups go to three different splits."""
    total = sum(len(m) for m in members.values())
    want = {s: total * per_class[s] / sum(per_class.values()) for s in SPLITS}
    got: dict[str, list[Video]] = {s: [] for s in SPLITS}
    for g in groups:
        s = max(SPLITS, key=lambda s: ((want[s] - len(got[s])) / want[s], -SPLITS.index(s)))
        got[s] += members[g]
    return got


def _cut_files(order: list[Video], per_class: dict[str, int], short: bool
               ) -> dict[str, list[Video]]:
    """Consecutive runs of the shuffled files; a short class is cut in proportion."""
    want = dict(per_class)
    if short:
        scale = len(order) / sum(per_class.values())
        want = {s: max(1, int(per_class[s] * scale)) if len(order) >= len(SPLITS) else
                int(per_class[s] * scale) for s in SPLITS}
        want["train"] = max(0, len(order) - want["val"] - want["test"])
    got, start = {}, 0
    for s in SPLITS:
        got[s] = order[start : start + want[s]]
        start += want[s]
    return got
