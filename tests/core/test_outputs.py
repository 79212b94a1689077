"""Atomic outputs: a reader sees the old output or the new one, never half of either."""

from __future__ import annotations

import os

import pytest

from videoclf import outputs


def test_a_failure_while_swapping_in_the_new_output_keeps_the_old_one(tmp_path, monkeypatch):
    final = tmp_path / "videos"
    final.mkdir()
    (final / "old.txt").write_text("old")
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the new folder into place
            raise PermissionError(13, "Permission denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", flaky)
    with pytest.raises(PermissionError), outputs.staged_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]  # whole, and only the old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["videos"]  # nothing stranded


def test_the_new_output_replaces_the_old_whole(tmp_path):
    final = tmp_path / "frames"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with outputs.staged_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]
