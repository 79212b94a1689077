"""What the ``data`` params may choose between, declared once (no imports): the schema in
``videoclf.params`` validates against these, and the modules that act on a choice import
the same names."""

from __future__ import annotations

SOURCES: tuple[str, ...] = ("builtin", "url")            # sources.open_source
LAYOUTS: tuple[str, ...] = ("auto", "ucf101", "folders")  # splits.parse_members
SPLIT_BY: tuple[str, ...] = ("group", "file")            # splits.split_videos
