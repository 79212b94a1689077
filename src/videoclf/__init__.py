"""videoclf: a reproducible (2+1)D ResNet video-classification pipeline on DVC.

Importing the package is light (no TensorFlow): the stages that only decode video never pay
for it. ``import videoclf.training.network`` registers the model's custom Keras layers, so
that ``keras.models.load_model("data/model/model.keras", safe_mode=True)`` works after it.
The package version is pyproject.toml's (``importlib.metadata.version("videoclf")``).
"""

from __future__ import annotations

import os

# FFmpeg's own log lines ("[ogg @ 0x...] CRC mismatch!") go straight to stderr from C, many
# per damaged file; the stages and predict report each unreadable video in one line of their
# own instead. VIDEOCLF_FFMPEG_LOG=1 keeps FFmpeg's and OpenCV's lines (to diagnose a codec).
if os.environ.get("VIDEOCLF_FFMPEG_LOG", "0") == "0":
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    # OpenCV's own warnings too ("[ WARN:0@0.5] global cap.cpp:212 open VIDEOIO(FFMPEG):
    # backend is generally available but can't be used to capture by name").
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2  # noqa: E402

# One OpenCV thread per process: parallelism comes from process pools, and an OpenCV thread
# pool alive in a parent deadlocks the children it forks.
cv2.setNumThreads(1)
