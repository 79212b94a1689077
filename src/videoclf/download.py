"""The download stage: select, split, fetch and check videos into ``data/videos``."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from . import frames, sources
from .dataset import SPLITS, DatasetError, parse_members, select_classes, split_videos
from .outputs import staged_dir, write_json, write_parquet

log = logging.getLogger(__name__)


def download(data: dict, out_dir: Path, staging_root: Path, workers: int = 0) -> pd.DataFrame:
    """Build ``out_dir/{train,val,test}/<Class>/*.avi``, ``manifest.parquet`` and ``report.json``.

    Members are fetched into a staging folder that survives an interrupted run, and moved into
    ``out_dir`` only when every step succeeded; the staging folder is then removed.
    """
    source = sources.open_source(data, workers)
    names = source.names()
    videos, refused = parse_members(names)
    if not videos:
        raise DatasetError(f"{source.describe()}: no v_<Class>_gXX_cYY.avi member")
    classes = select_classes(videos, data["num_classes"])
    splits = split_videos(videos, classes, data["per_class"], data["split_by"], data["seed"])
    selected = [v for s in SPLITS for v in splits[s]]
    log.info("download: %s, %d members, %d videos in %d classes; %d selected (%s split)",
             source.describe(), len(names), len(videos), len({v.cls for v in videos}),
             len(selected), data["split_by"])

    staging = staging_root / sources.staging_key(data)
    staging.mkdir(parents=True, exist_ok=True)
    paths, failures = source.fetch(selected, staging)
    skipped = refused + failures
    rows = []
    with staged_dir(out_dir) as tmp:
        for split in SPLITS:
            for v in tqdm(splits[split], desc=f"check {split}", unit="clip", leave=False,
                          disable=None):
                if v.member not in paths:
                    continue
                reason = frames.probe(paths[v.member])
                if reason:
                    skipped.append({"member": v.member, "reason": reason})
                    continue
                rel = Path(split) / v.cls / v.filename
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(paths[v.member], tmp / rel)
                rows.append({"video": rel.as_posix(), "member": v.member, "class": v.cls,
                             "label": classes.index(v.cls), "group": v.group_id,
                             "clip": v.clip, "split": split})
        manifest = pd.DataFrame(rows, columns=["video", "member", "class", "label", "group",
                                               "clip", "split"])
        counts = manifest.groupby(["split", "class"]).size()
        missing = [f"{s}/{c}" for s in SPLITS for c in classes if (s, c) not in counts.index]
        if missing:
            raise DatasetError(
                f"no usable clip left for {', '.join(missing)} after skipping "
                f"{len(skipped)} member(s): {skipped[:3]}"
            )
        write_parquet(tmp / "manifest.parquet", manifest)
        write_json(tmp / "report.json", {
            "source": source.describe(),
            "classes": classes,
            "split_by": data["split_by"],
            "counts": {s: {c: int(counts.get((s, c), 0)) for c in classes} for s in SPLITS},
            "skipped": skipped,
        })
    shutil.rmtree(staging, ignore_errors=True)
    summary = ", ".join(f"{s} {int((manifest.split == s).sum())}" for s in SPLITS)
    log.info("download: %d videos (%s); %d skipped%s", len(manifest), summary, len(skipped),
             f", see {out_dir / 'report.json'}" if skipped else "")
    return manifest


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
