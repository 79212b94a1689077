"""Data set layouts (UCF101 names or class folders), class selection and leak-free splitting
(pure logic, no I/O)."""

from __future__ import annotations

import csv
import difflib
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from ..artifacts import SPLITS
from ..choices import Layout, SplitBy
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
    ignored: list[dict] = field(default_factory=list)  # files that are no video, with why


def unsafe_member(name: str) -> bool:
    """True for a member that would escape the extraction folder (zip slip)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return ".." in re.split(r"[/\\]", name)


def _hidden(parts: tuple[str, ...]) -> bool:
    """macOS resource forks (``__MACOSX/``, ``._x.mp4``), ``.DS_Store`` and other dot files."""
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def classify_member(name: str) -> tuple[str, str] | None:
    """None for a member that may be a video; else ``("ignored" | "refused", why)``, or
    ``("folder", "")`` for a zip's folder entry. The one rule for labelled and unlabelled
    sources alike: a suffix FFmpeg reads, no hidden file, no path leaving the folder."""
    if name.endswith(("/", "\\")):
        return "folder", ""
    hidden = _hidden(PurePosixPath(name.replace("\\", "/")).parts)
    if not is_video(name):
        suffix = PurePosixPath(name.replace("\\", "/")).suffix.lower() or "no suffix"
        return "ignored", "hidden file" if hidden else f"not a video ({suffix})"
    if unsafe_member(name):
        return "refused", "unsafe path (absolute or '..'): refused"
    if hidden:
        return "ignored", "hidden file (macOS resource fork or dot file)"
    return None


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


def parse_members(names: list[str], layout: Layout = "auto",
                  groups: dict[str, str] | None = None) -> Listing:
    """Videos among source members, and a report of the members refused.

    ``ucf101``: ``v_<Class>_gXX_cYY.<ext>`` anywhere; class and group from the name.
    ``folders``: ``<root>/<Class>/<any/sub/path>/<video>``; the class is the folder name, the
    group comes from ``_gNN_`` in the name, else from ``groups`` (``groups.csv``: path below
    the root -> group), else each video is its own group. ``auto``: ucf101 when every video
    is named that way, else folders. Files that are no video (by suffix: any container
    FFmpeg reads) and hidden ones are listed in ``ignored``, with why.
    """
    candidates, refused, ignored = [], [], []
    for name in names:
        verdict = classify_member(name)
        if verdict is None:
            candidates.append(name)
        elif verdict[0] == "refused":
            refused.append({"member": name, "reason": verdict[1]})
        elif verdict[0] == "ignored":
            ignored.append({"member": name, "reason": verdict[1]})
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
    return Listing(videos, refused, layout, root, {k: v for k, v in grouped_by.items() if v},
                   ignored)


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


def select_classes(videos: list[Video], num_classes: int, names: Sequence[str] = ()
                   ) -> list[str]:
    """The classes to use, in sorted order: those named (``data.classes``), else the first
    ``num_classes`` (0: every class). A name the source does not hold is an error naming the
    nearest ones it does."""
    classes = sorted({v.cls for v in videos})
    if names:
        have = set(classes)
        for name in names:
            if name not in have:
                near = difflib.get_close_matches(name, classes, n=3, cutoff=0.6)
                hint = f"; nearest: {', '.join(near)}" if near else ""
                raise DatasetError(f"data.classes: no class {name!r} in the source "
                                   f"({len(classes)} classes){hint}")
        return sorted(names)
    if num_classes == 0:
        return classes
    if len(classes) < num_classes:
        raise DatasetError(
            f"data.num_classes: the archive has {len(classes)} classes, {num_classes} requested"
        )
    return classes[:num_classes]


Target = int | float | str  # a count (>= 1), a fraction (0 < f < 1), or "all" (train)


def _targets(per_class: Mapping[str, Target], n: int) -> dict[str, float] | None:
    """Per split, the videos a class of ``n`` should give, or None when every target is a
    count (today's meaning: ``_fill_groups``, surplus left out). Fractions are of ``n``;
    ``all`` is what the other splits leave."""
    if all(isinstance(per_class[s], int) and not isinstance(per_class[s], bool)
           for s in SPLITS):
        return None
    want: dict[str, float] = {}
    for s in SPLITS:
        t = per_class[s]
        if isinstance(t, float):
            want[s] = t * n
        elif isinstance(t, int):
            want[s] = float(min(t, n))
    rest = [s for s in SPLITS if per_class[s] == "all"]
    for s in rest:
        want[s] = max(0.0, n - sum(want.values()))
    return want


def _cap(vids: list[Video], cap: int, rng: np.random.Generator) -> list[Video]:
    """At most ``cap`` videos of a class, as whole groups in a seeded order (one group at
    least); the videos left out are reported by the caller."""
    if not cap or len(vids) <= cap:
        return vids
    by_group = _by_group(vids)
    order = list(by_group)
    kept: list[Video] = []
    for i in rng.permutation(len(order)):
        g = by_group[order[i]]
        if kept and len(kept) + len(g) > cap:
            continue
        kept += g
    return sorted(kept, key=lambda v: (_group_order(v.group), v.clip, v.member))


def _by_group(vids: list[Video]) -> dict[str, list[Video]]:
    out: dict[str, list[Video]] = {}
    for v in vids:
        out.setdefault(v.group, []).append(v)
    return out


def split_videos(
    videos: list[Video],
    classes: list[str],
    per_class: Mapping[str, Target],
    split_by: SplitBy,
    seed: int,
    max_per_class: int = 0,
) -> dict[str, list[Video]]:
    """Assign videos of the chosen classes to splits.

    ``group``: groups are shuffled (seeded per class) and each goes whole to one split, so no
    group is ever in two splits. ``file``: the tutorial's split, files shuffled (seeded) and
    cut into consecutive runs, which lets one actor and scene appear in train and test.

    Counts (``per_class`` integers) are targets: whole groups fill train, then val, then test,
    and clips of a group beyond what its split needs are left out; a class with fewer clips
    than all targets together is split in proportion to them, with a warning. Fractions (and
    ``all`` for train) use every video: each whole group goes to the split furthest below its
    share. Either way each split gets a group when the class has three or more, and a split
    left empty is an error. ``max_per_class`` (0: no cap) keeps at most that many videos of a
    class, whole groups, before splitting.
    """
    out: dict[str, list[Video]] = {s: [] for s in SPLITS}
    by_class: dict[str, list[Video]] = {c: [] for c in classes}
    for v in videos:
        if v.cls in by_class:
            by_class[v.cls].append(v)
    for cls in classes:
        # Sorting first makes the result independent of the archive's listing order.
        vids = sorted(by_class[cls], key=lambda v: (_group_order(v.group), v.clip, v.member))
        vids = _cap(vids, max_per_class, np.random.default_rng(derive_seed(seed, "cap", cls)))
        got = _split_class(vids, per_class, split_by,
                           np.random.default_rng(derive_seed(seed, "split", split_by, cls)))
        n_groups = len({v.group for v in vids})
        empty = [s for s in SPLITS if not got[s]]
        if empty:
            raise DatasetError(
                f"class {cls} has {len(vids)} clips in {n_groups} groups: "
                f"not enough for split(s) {', '.join(empty)} (data.per_class, data.split_by)"
            )
        counted = {s: t for s in SPLITS if isinstance(t := per_class[s], int)}
        if any(len(got[s]) < t for s, t in counted.items()):
            log.warning("class %s has %d clips in %d groups, fewer than asked: got %s", cls,
                        len(vids), n_groups,
                        ", ".join(f"{s} {len(got[s])}/{per_class[s]}" for s in SPLITS))
        for s in SPLITS:
            out[s] += sorted(got[s], key=lambda v: v.member)
    return out


def _split_class(vids: list[Video], per_class: Mapping[str, Target], split_by: SplitBy,
                 rng: np.random.Generator) -> dict[str, list[Video]]:
    want = _targets(per_class, len(vids))
    if split_by == "file":
        order = [vids[i] for i in rng.permutation(len(vids))]
        if want is not None:
            return _cut_files(order, {s: int(round(w)) for s, w in want.items()}, False)
        short = len(vids) < sum(int(per_class[s]) for s in SPLITS)
        return _cut_files(order, {s: int(per_class[s]) for s in SPLITS}, short)
    groups = sorted({v.group for v in vids}, key=_group_order)
    groups = [groups[i] for i in rng.permutation(len(groups))]
    by_group = _by_group(vids)
    members = {g: [by_group[g][i] for i in rng.permutation(len(by_group[g]))] for g in groups}
    if want is not None:
        return _share_groups(groups, members, want)
    counts = {s: int(per_class[s]) for s in SPLITS}
    if len(vids) < sum(counts.values()):
        total = len(vids)
        return _share_groups(groups, members,
                             {s: total * counts[s] / sum(counts.values()) for s in SPLITS})
    return _fill_groups(groups, members, counts)


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


def _whole_counts(shares: Mapping[str, float], total: int, n_groups: int) -> dict[str, int]:
    """Largest-remainder rounding of ``shares`` to whole clips summing to ``total``: each
    share's floor, then one more to the largest remainders (ties in split order), so no share
    is rounded up at another's cost (0.6/0.2/0.2 of 12: 7/3/2, not 6/3/3). With three groups
    or more, every split with a share gets at least one (taken from the largest)."""
    out = {s: int(w) for s, w in shares.items()}
    order = list(shares)
    by_remainder = sorted(order, key=lambda s: (-(shares[s] - out[s]), order.index(s)))
    for s in by_remainder[: max(0, total - sum(out.values()))]:
        out[s] += 1
    if n_groups >= len(SPLITS):
        for s in SPLITS:
            if s in out and out[s] == 0:
                out[max(out, key=lambda k: (out[k], -order.index(k)))] -= 1
                out[s] = 1
    return out


def _share_groups(groups: list[str], members: dict[str, list[Video]],
                  want: Mapping[str, float]) -> dict[str, list[Video]]:
    """Each whole group goes to a split with a share of the clips (``want``, rounded by
    ``_whole_counts``): first to a split that has none yet (in split order, so the first
    three groups go to three different splits), then to the one furthest below its count
    (ties in split order). Shares that add up to less than the clips leave the rest out (an
    ``unused`` share)."""
    total = sum(len(m) for m in members.values())
    shares = {s: w for s, w in want.items() if w > 0}
    if total - sum(shares.values()) >= 0.5:
        shares["unused"] = total - sum(shares.values())
    target = _whole_counts(shares, total, len(groups))
    got: dict[str, list[Video]] = {s: [] for s in (*SPLITS, "unused")}
    order = list(shares)
    for g in groups:
        s = max(order, key=lambda s: (s != "unused" and not got[s] and target[s] > 0,
                                      target[s] - len(got[s]), -order.index(s)))
        got[s] += members[g]
    return {s: got[s] for s in SPLITS}


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
