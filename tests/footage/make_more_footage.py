"""The less common containers of tests/footage (``carphone_*``), re-encoded from
``h264_carphone.mp4`` through OpenCV's own FFmpeg (no ffmpeg binary needed):

    python tests/footage/make_more_footage.py
"""

from __future__ import annotations

from pathlib import Path

import cv2

HERE = Path(__file__).parent
# suffix: (FourCC, frames); raw formats (y4m, nut/FFV1) are large, so they keep fewer frames.
FORMATS = {".m1v": ("PIM1", 8), ".m2v": ("MPG2", 8), ".3g2": ("mp4v", 8),
           ".mxf": ("MPG2", 8), ".ivf": ("VP80", 8), ".mjpeg": ("MJPG", 8),
           ".nut": ("FFV1", 4), ".y4m": ("I420", 3)}


def main() -> None:
    cap = cv2.VideoCapture(str(HERE / "h264_carphone.mp4"))
    frames = []
    while len(frames) < 8:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    h, w = frames[0].shape[:2]
    for suffix, (fourcc, n) in FORMATS.items():
        path = HERE / f"carphone{suffix}"
        writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*fourcc), 25,
                                 (w, h))
        for frame in frames[:n]:
            writer.write(frame)
        writer.release()
        print(path.name, path.stat().st_size)


if __name__ == "__main__":
    main()
